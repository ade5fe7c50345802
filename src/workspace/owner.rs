//! Who owns a generator's outputs (a domain type shared by plan, run, store and ops; where an
//! owner's files live is `store::layout`'s business).

/// Who owns a generator's outputs: one machine, or the whole fleet (shared generators).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A per-machine generator's outputs.
    Machine(String),
    /// A shared generator's outputs (one value set for every machine that uses it).
    Shared,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Machine(m) => write!(f, "{m}"),
            Owner::Shared => write!(f, "shared"),
        }
    }
}

impl Owner {
    /// The machine name, if any.
    pub fn machine(&self) -> Option<&str> {
        match self {
            Owner::Machine(m) => Some(m),
            Owner::Shared => None,
        }
    }
}
