//! home-manager users of a flake workspace: every standalone `homeConfigurations.<attr>` and
//! every `home-manager.users.<user>` of a `nixosConfigurations` / `darwinConfigurations`
//! entry whose home imports varsmith's home-manager module (`varsmith.definitions` exists).
//!
//! One `nix eval` per output, over all of its configurations at once (never one per home),
//! reading only each home's user name and generator names and kinds: nothing forces `pkgs` or
//! a generated file. A standalone home whose evaluation throws (e.g. another module's failed
//! assertion) is listed with its error rather than failing the whole discovery.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::Error;

/// The home-manager configurations that hold users, and how each is reached.
const OUTPUTS: [(&str, HomeKind); 3] = [
    ("homeConfigurations", HomeKind::Standalone),
    ("nixosConfigurations", HomeKind::Nixos),
    ("darwinConfigurations", HomeKind::Darwin),
];

/// Where a home is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HomeKind {
    /// `homeConfigurations."<user>@<host>"` (switched with `home-manager switch`).
    Standalone,
    /// `home-manager.users.<user>` of a NixOS machine.
    Nixos,
    /// `home-manager.users.<user>` of a nix-darwin machine.
    Darwin,
}

/// One home of one user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Home {
    /// The user (`varsmith.userName`, default `home.username`).
    pub user: String,
    /// How it is declared.
    pub kind: HomeKind,
    /// The flake attribute: `alice@stibnite`, or the machine's configuration name.
    pub attr: String,
    /// Generator name to whether it is shared (`share = true`).
    pub generators: BTreeMap<String, bool>,
    /// Set when the home did not evaluate (the message, escaped).
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    user: Option<String>,
    generators: Option<BTreeMap<String, bool>>,
    error: Option<String>,
}

/// The Nix function reading one home (`h` is its evaluated `config`).
const HOME: &str = r#"h: let
    r = builtins.tryEval (let d = h.varsmith.definitions or null; in
      if d == null then null else builtins.deepSeq [ d.name (builtins.attrNames d.generators) ] {
        user = d.name;
        generators = builtins.mapAttrs (_: g: g.share) d.generators;
      });
  in if r.success then r.value else { error = "the home did not evaluate (run nix eval on it for the message)"; }"#;

/// The `--apply` function of one output.
fn apply(kind: HomeKind) -> String {
    match kind {
        HomeKind::Standalone => format!(
            "hs: builtins.mapAttrs (_: c: let r = builtins.tryEval c.config; in if r.success then ({HOME}) r.value else {{ error = \"the home did not evaluate\"; }}) hs"
        ),
        _ => format!(
            "cs: builtins.mapAttrs (_: c: if c.options ? home-manager then builtins.mapAttrs (_: ({HOME})) c.config.home-manager.users else {{ }}) cs"
        ),
    }
}

/// Every home of the workspace flake that imports varsmith's home-manager module, sorted by
/// user, then kind and attribute.
pub(crate) fn discover(root: &Path) -> Result<Vec<Home>, Error> {
    let mut homes = Vec::new();
    for (output, kind) in OUTPUTS {
        let Some(json) = super::nix::eval_output_json(root, output, &apply(kind))? else {
            continue;
        };
        let bad = |e: serde_json::Error| Error::Invalid {
            path: root.join("flake.nix"),
            msg: format!("{output}: unexpected output of nix eval: {e}"),
        };
        match kind {
            HomeKind::Standalone => {
                let m: BTreeMap<String, Option<Raw>> =
                    serde_json::from_slice(&json).map_err(bad)?;
                homes.extend(m.into_iter().filter_map(|(attr, r)| home(kind, attr, r?)));
            }
            _ => {
                let m: BTreeMap<String, BTreeMap<String, Option<Raw>>> =
                    serde_json::from_slice(&json).map_err(bad)?;
                for (attr, users) in m {
                    homes.extend(
                        users
                            .into_values()
                            .filter_map(|r| home(kind, attr.clone(), r?)),
                    );
                }
            }
        }
    }
    homes.sort_by(|a, b| (&a.user, a.kind, &a.attr).cmp(&(&b.user, b.kind, &b.attr)));
    Ok(homes)
}

fn home(kind: HomeKind, attr: String, r: Raw) -> Option<Home> {
    if r.user.is_none() && r.error.is_none() {
        return None;
    }
    Some(Home {
        user: r
            .user
            .unwrap_or_else(|| attr.split('@').next().unwrap_or(&attr).to_string()),
        kind,
        attr,
        generators: r.generators.unwrap_or_default(),
        error: r.error,
    })
}

/// The generators of every user of the workspace's flake homes ([`super::Workspace::homes`]),
/// by owner key (`alice`, or a per-home home's `alice@host`), each in a dependency-first order.
/// A user's homes share one store, so a generator two homes declare must have one definition
/// (an error naming both attributes otherwise). Dependencies a user does not declare are
/// recorded in `deferred`, checked by [`check_dependencies`] once every owner is known.
pub(crate) fn definitions(
    ws: &super::Workspace,
    deferred: &mut Vec<super::definitions::Deferred>,
) -> Result<
    indexmap::IndexMap<String, indexmap::IndexMap<String, std::sync::Arc<super::Generator>>>,
    Error,
> {
    use indexmap::IndexMap;
    let flake = ws.root.join("flake.nix");
    let invalid = |msg: String| Error::Invalid {
        path: flake.clone(),
        msg,
    };
    let mut merged: IndexMap<String, IndexMap<String, (String, std::sync::Arc<super::Generator>)>> =
        IndexMap::new();
    for h in &ws.homes {
        if let Some(e) = &h.error {
            eprintln!(
                "varsmith: warning: {}: {e}; its user's generators are left out",
                h.attr
            );
            continue;
        }
        if h.per_home {
            let ok = h.home_name.as_deref().is_some_and(|n| {
                n.strip_prefix(&format!("{}@", h.user_name))
                    .is_some_and(|host| !host.is_empty() && !host.contains('@'))
                    && super::names::check_component(n).is_ok()
            });
            if !ok {
                return Err(invalid(format!(
                    "{}: user {} has varsmith.perHome = true: varsmith.homeName must be \"{}@<host>\" (got {:?})",
                    h.attr, h.user_name, h.user_name, h.home_name
                )));
            }
        }
        let key = h.owner_key();
        let visible = h
            .definitions()
            .map_err(|m| invalid(format!("{}: {m}", h.attr)))?;
        let ctx = format!("user {key}");
        super::definitions::check_graph(&visible, Some(&ctx), Some(deferred))?;
        let slot = merged.entry(key.clone()).or_default();
        for (name, g) in visible {
            if let Some((attr0, g0)) = slot.get(&name) {
                if g0.own_fingerprint() != g.own_fingerprint() {
                    return Err(invalid(format!(
                        "user {key}: generator {name} is defined differently by {attr0} and {}; the homes of a user share its outputs (sops/users/{}/), so define it once (a module every home imports), or set varsmith.perHome",
                        h.attr, h.user_name
                    )));
                }
                continue;
            }
            slot.insert(name, (h.attr.clone(), g));
        }
    }
    Ok(merged
        .into_iter()
        .map(|(k, gens)| {
            let visible: IndexMap<_, _> = gens.into_iter().map(|(n, (_, g))| (n, g)).collect();
            let names: Vec<String> = visible.keys().cloned().collect();
            (k, super::definitions::dependency_first(&visible, &names))
        })
        .collect())
}

/// A user generator's dependency the user does not declare must be a shared generator some
/// machine or user declares; a machine's own generator is refused (its secrets are encrypted to
/// that host, never to a user), naming the definition, the user and the machine.
pub(crate) fn check_dependencies(
    defs: &super::Definitions,
    deferred: Vec<super::definitions::Deferred>,
) -> Result<(), Error> {
    for (src, ctx, dep) in deferred {
        if defs.declares_shared(&dep) {
            continue;
        }
        let machine = defs
            .machines
            .iter()
            .find(|(_, gens)| gens.contains_key(&dep))
            .map(|(m, _)| m);
        let msg = match machine {
            Some(m) => format!(
                "{ctx}depends on {dep:?}, a generator of machine {m}: a user generator may depend only on the user's own generators and shared ones (a machine's secrets are encrypted to its host, never to a user); make {dep} shared (`share = true`) or give the user its own"
            ),
            None => format!(
                "{ctx}unknown dependency {dep:?} (neither the user nor any machine or user declares a shared generator of that name)"
            ),
        };
        return Err(Error::Invalid { path: src, msg });
    }
    Ok(())
}
