//! Who owns a generator's outputs (a domain type shared by plan, run, store and ops; where an
//! owner's files live is `store::layout`'s business).

/// Who owns a generator's outputs: one machine, one home-manager user, or the whole fleet
/// (shared generators).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A per-machine generator's outputs.
    Machine(String),
    /// A home-manager user's generator outputs: `alice` (every home of the user shares them,
    /// `sops/users/alice/`), or `alice@stibnite` for a home with `varsmith.perHome = true`
    /// (`sops/users/alice/homes/alice@stibnite/`). User names never hold `@`, so the part
    /// before it is always the user.
    User(String),
    /// A shared generator's outputs (one value set for every machine and user that uses it).
    Shared,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Machine(m) => write!(f, "{m}"),
            Owner::User(u) => write!(f, "user:{u}"),
            Owner::Shared => write!(f, "shared"),
        }
    }
}

impl Owner {
    /// The machine name, if any.
    pub fn machine(&self) -> Option<&str> {
        match self {
            Owner::Machine(m) => Some(m),
            _ => None,
        }
    }

    /// The user name (the part before `@` of a per-home owner), if any: whose recipient
    /// (`sops/users/<user>/key.json`) the owner's deployed files are encrypted to.
    pub fn user(&self) -> Option<&str> {
        match self {
            Owner::User(u) => Some(u.split('@').next().unwrap_or(u)),
            _ => None,
        }
    }
}
