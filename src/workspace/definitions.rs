//! Loading every generator definition (bundled, workspace, per machine) and validating how the
//! inventory uses them: unknown generators and dependencies, shared generators depending on
//! per-machine ones or defined differently, and dependency cycles.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};

use super::generator::{Generator, parse_generator};
use super::names::check_component;
use super::{Error, INVENTORY_FILE, Workspace};

/// The bundled generator library, embedded in the binary.
pub const BUNDLED: &[(&str, &str)] = &[
    ("openssh", include_str!("../../generators/openssh.yaml")),
    ("password", include_str!("../../generators/password.yaml")),
    ("wireguard", include_str!("../../generators/wireguard.yaml")),
    ("tls-ca", include_str!("../../generators/tls-ca.yaml")),
    ("tls-cert", include_str!("../../generators/tls-cert.yaml")),
    (
        "zerotier-network",
        include_str!("../../generators/zerotier-network.yaml"),
    ),
    (
        "zerotier-member",
        include_str!("../../generators/zerotier-member.yaml"),
    ),
    (
        "zerotier-controller",
        include_str!("../../generators/zerotier-controller.yaml"),
    ),
    (
        "global-identity",
        include_str!("../../generators/global-identity.yaml"),
    ),
];

/// The name of the host-key generator: its public key is the host's age recipient.
pub const HOST_KEY_GENERATOR: &str = "openssh";
/// The host-key generator's public file.
pub const HOST_KEY_PUB: &str = "ssh_host_ed25519_key.pub";
/// The host key's public file names accepted, in order: varsmith's, then clan's `openssh`
/// generator's (`ssh.id_ed25519.pub`, when a workspace ports clan's definition).
pub const HOST_KEY_PUBS: &[&str] = &[HOST_KEY_PUB, "ssh.id_ed25519.pub"];

/// All definitions, resolved per machine.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// Every definition visible at the workspace level, by name.
    pub generators: IndexMap<String, Arc<Generator>>,
    /// Per machine, every generator it needs (its list plus dependencies, transitively), in a
    /// dependency-first order.
    pub machines: IndexMap<String, IndexMap<String, Arc<Generator>>>,
    /// Per home-manager user (the key of [`super::Owner::User`]: `alice`, or `alice@host` for
    /// a per-home home), the generators of all of its homes, merged (every home declaring a
    /// generator must declare the same definition), in a dependency-first order. Empty for a
    /// YAML-only workspace: users come from the flake.
    pub users: IndexMap<String, IndexMap<String, Arc<Generator>>>,
}

impl Definitions {
    /// The shared generators in use, with the machines that use each (in inventory order).
    pub(crate) fn shared_users(&self) -> IndexMap<String, (Arc<Generator>, Vec<String>)> {
        let mut out: IndexMap<String, (Arc<Generator>, Vec<String>)> = IndexMap::new();
        for gens in self.users.values() {
            for (name, g) in gens.iter().filter(|(_, g)| g.share) {
                out.entry(name.clone())
                    .or_insert_with(|| (g.clone(), Vec::new()));
            }
        }
        for (m, gens) in &self.machines {
            for (name, g) in gens {
                if g.share {
                    out.entry(name.clone())
                        .or_insert_with(|| (g.clone(), Vec::new()))
                        .1
                        .push(m.clone());
                }
            }
        }
        out
    }

    /// Whether some machine or user declares a shared generator named `name`.
    pub(crate) fn declares_shared(&self, name: &str) -> bool {
        self.machines
            .values()
            .chain(self.users.values())
            .any(|gens| gens.get(name).is_some_and(|d| d.share))
    }

    /// The error text for a generator name that `machine` (or, with `None`, every machine)
    /// does not use: a name no definition has gets `suggest::unknown`'s
    /// `unknown generator "wirguard" (did you mean "wireguard"?)`, a defined one that is not
    /// used says so (`generator "tls-ca" is defined but not used by …`).
    /// `declare` is how to use it where the machine is defined (`Workspace::declare_hint`).
    pub(crate) fn generator_not_used(
        &self,
        name: &str,
        machine: Option<&str>,
        declare: &str,
    ) -> String {
        let defined = self.generators.contains_key(name)
            || self.machines.values().any(|gens| gens.contains_key(name));
        let by = match machine {
            Some(m) => format!("machine {m}"),
            None => "any machine".to_string(),
        };
        if defined {
            return format!("generator {name:?} is defined but not used by {by} ({declare})");
        }
        let mut known: IndexSet<&str> = self.generators.keys().map(String::as_str).collect();
        for gens in self.machines.values() {
            known.extend(gens.keys().map(String::as_str));
        }
        crate::suggest::unknown("generator", name, known)
    }
}

fn invalid(path: &Path, msg: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn read_dir_defs(root: &Path, dir: &Path) -> Result<Vec<(String, PathBuf, String)>, Error> {
    super::read::yaml_files(root, dir)
}

fn parse_all(
    defs: Vec<(String, PathBuf, String)>,
) -> Result<IndexMap<String, Arc<Generator>>, Error> {
    let mut out = IndexMap::new();
    for (name, path, text) in defs {
        let g = parse_generator(&name, &path, &text).map_err(|m| invalid(&path, m))?;
        out.insert(name, Arc::new(g));
    }
    Ok(out)
}

/// Checks the inventory's own fields: names, recipients.
fn validate_inventory(ws: &Workspace) -> Result<(), Error> {
    let inv_path = ws.root.join(INVENTORY_FILE);
    for (name, r) in &ws.inventory.admins {
        check_component(name).map_err(|e| invalid(&inv_path, format!("admin {e}")))?;
        crate::keys::validate_recipient(r)
            .map_err(|e| invalid(&inv_path, format!("admin {name}: {e}")))?;
    }
    for (name, m) in &ws.inventory.machines {
        check_component(name).map_err(|e| invalid(&inv_path, format!("machine {e}")))?;
        if let Some(t) = &m.target
            && (t.trim().is_empty() || t.starts_with('-'))
        {
            return Err(invalid(
                &inv_path,
                format!(
                    "machine {name}: bad target \"{}\" (empty, or starts with '-')",
                    super::quote::excerpt(t)
                ),
            ));
        }
        let mut seen = IndexSet::new();
        for g in &m.generators {
            if !seen.insert(g) {
                return Err(invalid(
                    &inv_path,
                    format!("machine {name}: generator {g} listed twice"),
                ));
            }
        }
    }
    Ok(())
}

/// Loads and validates every definition the workspace uses.
pub fn load(ws: &Workspace) -> Result<Definitions, Error> {
    validate_inventory(ws)?;
    let inv_path = ws.root.join(INVENTORY_FILE);
    let mut generators: IndexMap<String, Arc<Generator>> = IndexMap::new();
    for (name, text) in BUNDLED {
        let src = PathBuf::from(format!("bundled:{name}"));
        let g = parse_generator(name, &src, text).map_err(|m| invalid(&src, m))?;
        generators.insert((*name).to_string(), Arc::new(g));
    }
    // Workspace definitions shadow bundled ones of the same name.
    for (name, g) in parse_all(read_dir_defs(&ws.root, &ws.root.join("generators"))?)? {
        generators.insert(name, g);
    }
    // Every definition must be consistent on its own: dependencies exist, no cycles, shared
    // ones depend only on shared ones.
    check_graph(&generators, None, None)?;
    let mut deferred = Vec::new();

    let mut machines = IndexMap::new();
    for (mname, machine) in &ws.inventory.machines {
        if ws.is_stored(mname) {
            continue;
        }
        let flake = ws.flake.iter().find(|f| &f.machine_name == mname);
        if let Some(fm) = flake
            && !ws.in_both.contains(mname)
        {
            machines.insert(mname.clone(), flake_machine(ws, fm, &mut deferred)?);
            continue;
        }
        let overrides = parse_all(read_dir_defs(
            &ws.root,
            &ws.root.join("machines").join(mname).join("generators"),
        )?)?;
        let mut visible = generators.clone();
        for (n, g) in overrides {
            visible.insert(n, g);
        }
        for g in &machine.generators {
            if !visible.contains_key(g) {
                return Err(invalid(
                    &inv_path,
                    format!(
                        "machine {mname}: {}",
                        crate::suggest::unknown("generator", g, visible.keys().map(String::as_str))
                    ),
                ));
            }
        }
        check_graph(
            &visible,
            Some(&format!("machine {mname}")),
            Some(&mut deferred),
        )?;
        let mut order = dependency_first(&visible, &machine.generators);
        if let Some(fm) = flake {
            // Described twice: the same generators and definitions, or an error naming both.
            let from_flake = flake_machine(ws, fm, &mut deferred)?;
            same_machine(&inv_path, mname, &order, fm, &from_flake)?;
            order = from_flake;
        }
        machines.insert(mname.clone(), order);
    }
    super::stored::add(ws, &mut machines)?;
    let mut deferred_users = Vec::new();
    let users = super::users::definitions(ws, &mut deferred_users)?;
    let defs = Definitions {
        generators,
        machines,
        users,
    };
    check_fleet_dependencies(&defs, deferred)?;
    super::users::check_dependencies(&defs, deferred_users)?;
    check_shared_consistency(&defs)?;
    Ok(defs)
}

/// `wanted` and their dependencies, transitively, in a dependency-first order (dependencies
/// not in `visible` are left out).
pub(crate) fn dependency_first(
    visible: &IndexMap<String, Arc<Generator>>,
    wanted: &[String],
) -> IndexMap<String, Arc<Generator>> {
    fn visit(
        name: &str,
        visible: &IndexMap<String, Arc<Generator>>,
        order: &mut IndexMap<String, Arc<Generator>>,
    ) {
        if order.contains_key(name) {
            return;
        }
        if let Some(g) = visible.get(name) {
            for d in &g.dependencies {
                visit(d, visible, order);
            }
            order.insert(name.to_string(), g.clone());
        }
    }
    let mut order = IndexMap::new();
    for name in wanted {
        visit(name, visible, &mut order);
    }
    order
}

/// A machine in `varsmith.yaml` and in the flake must get the same generators, each with the
/// same fingerprint.
fn same_machine(
    inv_path: &Path,
    name: &str,
    yaml: &IndexMap<String, Arc<Generator>>,
    fm: &super::nix::NixMachine,
    nix: &IndexMap<String, Arc<Generator>>,
) -> Result<(), Error> {
    let differ = |what: String| {
        invalid(
            inv_path,
            format!(
                "machine {name} is described here and by the flake's {} differently: {what}; describe it in one place, or make both agree",
                fm.attr
            ),
        )
    };
    let mut a: Vec<&String> = yaml.keys().collect();
    let mut b: Vec<&String> = nix.keys().collect();
    a.sort();
    b.sort();
    if a != b {
        return Err(differ(format!("generators {a:?} here, {b:?} in the flake")));
    }
    for (g, def) in yaml {
        if nix
            .get(g)
            .is_some_and(|n| n.own_fingerprint() != def.own_fingerprint())
        {
            return Err(differ(format!("generator {g} is defined differently")));
        }
    }
    Ok(())
}

/// A flake machine's generators, validated and in dependency-first order.
fn flake_machine(
    ws: &Workspace,
    fm: &super::nix::NixMachine,
    deferred: &mut Vec<Deferred>,
) -> Result<IndexMap<String, Arc<Generator>>, Error> {
    let flake = ws.root.join("flake.nix");
    let visible = fm
        .definitions()
        .map_err(|m| invalid(&flake, format!("{}: {m}", fm.attr)))?;
    check_graph(
        &visible,
        Some(&format!("machine {}", fm.machine_name)),
        Some(deferred),
    )?;
    let names: Vec<String> = visible.keys().cloned().collect();
    Ok(dependency_first(&visible, &names))
}

/// The same shared generator must have one definition across all machines using it.
fn check_shared_consistency(defs: &Definitions) -> Result<(), Error> {
    let mut first: IndexMap<&str, (String, &Arc<Generator>)> = IndexMap::new();
    let owners = defs
        .machines
        .iter()
        .map(|(m, g)| (format!("machine {m}"), g))
        .chain(defs.users.iter().map(|(u, g)| (format!("user {u}"), g)));
    for (m, gens) in owners {
        let m = m.as_str();
        for (name, g) in gens {
            if !g.share {
                if let Some((m0, g0)) = first.get(name.as_str())
                    && g0.share
                {
                    return Err(invalid(
                        &g.source,
                        format!(
                            "generator {name} is shared for {m0} ({}) but not for {m}",
                            g0.source.display()
                        ),
                    ));
                }
                continue;
            }
            match first.get(name.as_str()) {
                None => {
                    first.insert(name, (m.to_string(), g));
                }
                Some((m0, g0)) => {
                    if !g0.same_definition(g) || !g0.share {
                        return Err(invalid(
                            &g.source,
                            format!(
                                "shared generator {name} is defined differently for {m} ({}) and {m0} ({})",
                                g.source.display(),
                                g0.source.display()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A dependency a machine does not declare: (definition source, message prefix, dependency).
/// As clan, it must be a shared generator some other machine declares.
pub(crate) type Deferred = (PathBuf, String, String);

/// Every dependency a machine does not declare is a shared generator of another machine
/// (clan's ZeroTier peers depend on the controller's identity), else "unknown dependency".
fn check_fleet_dependencies(defs: &Definitions, deferred: Vec<Deferred>) -> Result<(), Error> {
    for (src, ctx, dep) in deferred {
        if !defs.declares_shared(&dep) {
            return Err(invalid(
                &src,
                format!(
                    "{ctx}unknown dependency {dep:?} (no machine declares a shared generator of that name)"
                ),
            ));
        }
    }
    Ok(())
}

/// Unknown dependencies, shared-on-per-machine dependencies and cycles. With `deferred`, a
/// dependency the set does not hold is recorded there instead (see [`Deferred`]).
pub(crate) fn check_graph(
    gens: &IndexMap<String, Arc<Generator>>,
    owner: Option<&str>,
    mut deferred: Option<&mut Vec<Deferred>>,
) -> Result<(), Error> {
    let ctx = owner.map(|m| format!("{m}: ")).unwrap_or_default();
    for (name, g) in gens {
        for dep in &g.dependencies {
            let Some(d) = gens.get(dep) else {
                if let Some(list) = deferred.as_deref_mut() {
                    list.push((
                        g.source.clone(),
                        format!("{ctx}generator {name}: "),
                        dep.clone(),
                    ));
                    continue;
                }
                return Err(invalid(
                    &g.source,
                    format!("{ctx}generator {name}: unknown dependency {dep:?}"),
                ));
            };
            if g.share && !d.share {
                return Err(invalid(
                    &g.source,
                    format!(
                        "{ctx}shared generator {name} depends on per-machine generator {dep} ({}); a shared value cannot depend on one machine's",
                        d.source.display()
                    ),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(gens) {
        let src = gens[&cycle[0]].source.clone();
        return Err(invalid(
            &src,
            format!("{ctx}dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

/// Finds one dependency cycle and returns it whole, first node repeated at the end.
pub(crate) fn find_cycle(gens: &IndexMap<String, Arc<Generator>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: IndexMap<&str, Mark> = gens.keys().map(|k| (k.as_str(), Mark::New)).collect();
    let mut stack: Vec<&str> = Vec::new();
    fn dfs<'a>(
        n: &'a str,
        gens: &'a IndexMap<String, Arc<Generator>>,
        mark: &mut IndexMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        mark.insert(n, Mark::Active);
        stack.push(n);
        if let Some(g) = gens.get(n) {
            for d in &g.dependencies {
                match mark.get(d.as_str()).copied() {
                    Some(Mark::Active) => {
                        let start = stack.iter().position(|s| *s == d.as_str()).unwrap_or(0);
                        // Dependencies point "backwards"; print in dependency direction.
                        let mut cyc: Vec<String> =
                            stack[start..].iter().map(|s| s.to_string()).collect();
                        cyc.push(d.clone());
                        return Some(cyc);
                    }
                    Some(Mark::New) => {
                        if let Some(c) = dfs(d, gens, mark, stack) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
        }
        stack.pop();
        mark.insert(n, Mark::Done);
        None
    }
    let names: Vec<&str> = gens.keys().map(|k| k.as_str()).collect();
    for n in names {
        if mark.get(n) == Some(&Mark::New)
            && let Some(c) = dfs(n, gens, &mut mark, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::workspace::generator::parse_generator;

    /// Generators by name, each with its dependencies.
    fn gens(list: &[(&str, &str)]) -> IndexMap<String, Arc<Generator>> {
        list.iter()
            .map(|(name, deps)| {
                let yaml = format!("dependencies: [{deps}]\nfiles: {{a: }}\nscript: x\n");
                let g = parse_generator(name, Path::new("g.yaml"), &yaml).expect("valid");
                (name.to_string(), Arc::new(g))
            })
            .collect()
    }

    #[test]
    fn a_cycle_is_reported_whole_in_dependency_direction() {
        let g = gens(&[("x", "y"), ("y", "z"), ("z", "x"), ("w", "")]);
        assert_eq!(find_cycle(&g).unwrap(), vec!["x", "y", "z", "x"]);
        let err = check_graph(&g, Some("machine m"), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("machine m: dependency cycle: x -> y -> z -> x"),
            "{err}"
        );
    }

    #[test]
    fn a_diamond_is_no_cycle() {
        let g = gens(&[("top", "l, r"), ("l", "base"), ("r", "base"), ("base", "")]);
        assert_eq!(find_cycle(&g), None);
        assert!(check_graph(&g, None, None).is_ok());
    }

    #[test]
    fn an_unknown_dependency_is_named_or_deferred() {
        let g = gens(&[("top", "gone")]);
        let err = check_graph(&g, Some("m"), None).unwrap_err().to_string();
        assert!(
            err.contains("generator top: unknown dependency \"gone\""),
            "{err}"
        );
        let mut later = Vec::new();
        assert!(check_graph(&g, Some("m"), Some(&mut later)).is_ok());
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].2, "gone");
    }
}
