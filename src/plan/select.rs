//! The plan of one `generate`: which machines are selected, and which nodes run and why
//! (missing, changed, torn, forced, or a dependency runs), across machines.

use indexmap::IndexMap;

use super::graph::{Graph, NEVER_GENERATED, Reason, status};
use crate::UsageError;
use crate::workspace::{Definitions, Owner, Workspace};

/// What `generate` was asked for; the default plans every machine's out-of-date nodes.
#[derive(Debug, Default, Clone)]
pub(crate) struct Selection {
    /// Machines (empty: all, unless `users` are given).
    pub hosts: Vec<String>,
    /// home-manager users, `alice` or a home `alice@stibnite` (`--user`; empty: all, unless
    /// `hosts` are given).
    pub users: Vec<String>,
    /// Only these generators (and what depends on them).
    pub generators: Vec<String>,
    /// Rerun the selected generators even when up to date.
    pub regenerate: bool,
}

/// One node that runs in the plan.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    /// Node index in the graph.
    pub node: usize,
    /// `machine/generator` or `shared/generator`.
    pub label: String,
    /// Why it runs (the first reason found: its own status before a dependency's run).
    pub reason: Reason,
    /// Where its definition comes from (file, `bundled:<name>` or flake attribute).
    pub source: String,
}

/// Resolves the machine list: the given ones (each must exist) or all. An inventory with no
/// machine (an empty or comment-only `varsmith.yaml`) is an error naming the file.
pub(crate) fn select_machines(ws: &Workspace, hosts: &[String]) -> Result<Vec<String>, UsageError> {
    if ws.inventory.machines.is_empty() {
        if crate::workspace::nix::is_flake(&ws.root) {
            return Err(UsageError::new(format!(
                "{}: no machines: no configuration of the flake imports the varsmith module (and {} lists none); import `varsmith.nixosModules.default` (darwin: `varsmith.darwinModules.default`) in a configuration",
                ws.root.join("flake.nix").display(),
                crate::workspace::INVENTORY_FILE
            )));
        }
        return Err(UsageError::new(format!(
            "{}: no machines (the inventory is empty); add one with `varsmith machine add NAME -g openssh`",
            ws.root.join(crate::workspace::INVENTORY_FILE).display()
        )));
    }
    if hosts.is_empty() {
        return Ok(ws.inventory.machines.keys().cloned().collect());
    }
    for h in hosts {
        if !ws.inventory.machines.contains_key(h) {
            return Err(UsageError::new(ws.inventory.unknown_machine(h)));
        }
    }
    Ok(hosts.to_vec())
}

/// The machines and users (owner keys of [`Definitions::users`]) a command covers: the named
/// ones; with neither named, every machine and every user; with only users named, no machine
/// (and the reverse). See [`select_users`] for how a user is named.
pub(crate) fn select_targets(
    ws: &Workspace,
    defs: &Definitions,
    hosts: &[String],
    users: &[String],
) -> Result<(Vec<String>, Vec<String>), UsageError> {
    match (hosts.is_empty(), users.is_empty()) {
        (true, true) if ws.inventory.machines.is_empty() && !defs.users.is_empty() => {
            Ok((Vec::new(), defs.users.keys().cloned().collect()))
        }
        (true, true) => Ok((
            select_machines(ws, hosts)?,
            defs.users.keys().cloned().collect(),
        )),
        (true, false) => Ok((Vec::new(), select_users(ws, defs, users)?)),
        (false, true) => Ok((select_machines(ws, hosts)?, Vec::new())),
        (false, false) => Ok((select_machines(ws, hosts)?, select_users(ws, defs, users)?)),
    }
}

/// Resolves `--user` names to owner keys: `alice` is the user (and each of her per-home homes,
/// `alice@<host>` with `varsmith.perHome`); `alice@stibnite` is that per-home home, or, for a
/// home sharing the user's outputs, the user. An unknown name is an error listing the users.
pub(crate) fn select_users(
    ws: &Workspace,
    defs: &Definitions,
    users: &[String],
) -> Result<Vec<String>, UsageError> {
    let mut out: Vec<String> = Vec::new();
    for u in users {
        let keys: Vec<String> = match u.split_once('@') {
            _ if defs.users.contains_key(u) && u.contains('@') => vec![u.clone()],
            Some((user, host)) => ws
                .homes
                .iter()
                .filter(|h| h.user_name == user && !h.per_home)
                .filter(|h| {
                    h.attr == format!("homeConfigurations.{u}")
                        || ["nixosConfigurations", "darwinConfigurations"]
                            .iter()
                            .any(|o| {
                                h.attr == format!("{o}.{host}.config.home-manager.users.{user}")
                            })
                })
                .map(|h| h.owner_key())
                .take(1)
                .collect(),
            None => defs
                .users
                .keys()
                .filter(|k| *k == u || k.split('@').next() == Some(u.as_str()))
                .cloned()
                .collect(),
        };
        if keys.is_empty() {
            let mut known: Vec<&str> = defs.users.keys().map(String::as_str).collect();
            known.extend(
                ws.homes
                    .iter()
                    .filter_map(|h| h.attr.strip_prefix("homeConfigurations.")),
            );
            return Err(UsageError::new(if known.is_empty() {
                format!(
                    "unknown user {u:?}: the workspace has no home-manager user (a home importing varsmith's homeManagerModules.default, standalone in homeConfigurations or in home-manager.users of a machine)"
                )
            } else {
                crate::suggest::unknown("user", u, known)
            }));
        }
        for k in keys {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    Ok(out)
}

/// Computes what runs and why.
pub(crate) fn plan(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    opts: &Selection,
) -> Result<Vec<Planned>, UsageError> {
    let (machines, users) = select_targets(ws, defs, &opts.hosts, &opts.users)?;
    for g in &opts.generators {
        if !graph.nodes.iter().any(|n| &n.generator.name == g) {
            return Err(UsageError::new(defs.generator_not_used(
                g,
                None,
                &ws.declare_hint(None, g),
            )));
        }
    }
    let scope = graph.scope_of(defs, &machines, &users);
    let selected = |i: usize| {
        opts.generators.is_empty() || opts.generators.contains(&graph.nodes[i].generator.name)
    };
    let mut reasons: IndexMap<usize, Reason> = IndexMap::new();
    let chosen: Vec<usize> = scope.iter().copied().filter(|&i| selected(i)).collect();
    if opts.regenerate {
        reasons.extend(chosen.into_iter().map(|i| (i, Reason::Forced)));
    } else {
        let found = super::par::map_nodes(&chosen, |i| status(&ws.root, graph, i));
        reasons.extend(
            chosen
                .into_iter()
                .zip(found)
                .filter_map(|(i, r)| r.map(|r| (i, r))),
        );
    }
    // Dependencies that are not in a usable state must run first.
    let mut stack: Vec<usize> = reasons.keys().copied().collect();
    while let Some(i) = stack.pop() {
        for &d in &graph.nodes[i].deps {
            if !reasons.contains_key(&d)
                && let Some(r) = status(&ws.root, graph, d)
            {
                reasons.insert(d, r);
                stack.push(d);
            }
        }
    }
    // Everything depending on a node that runs, across machines.
    let dependents = graph.dependents();
    let in_selection: std::collections::HashSet<&str> =
        machines.iter().map(String::as_str).collect();
    let mut stack: Vec<usize> = reasons.keys().copied().collect();
    while let Some(i) = stack.pop() {
        for &d in &dependents[i] {
            if reasons.contains_key(&d) {
                continue;
            }
            // Machines outside the selection are only updated, never generated for the first
            // time (their own host key may not exist yet).
            let outside = match &graph.nodes[d].owner {
                Owner::Machine(m) => !in_selection.contains(m.as_str()),
                Owner::User(u) => !users.contains(u),
                Owner::Shared => false,
            };
            if outside
                && matches!(
                    status(&ws.root, graph, d),
                    Some(Reason::Missing(ref w)) if w == NEVER_GENERATED
                )
            {
                continue;
            }
            reasons.insert(d, Reason::DependencyRuns(graph.nodes[i].label()));
            stack.push(d);
        }
    }
    let mut out: Vec<Planned> = reasons
        .into_iter()
        .map(|(node, reason)| Planned {
            node,
            label: graph.nodes[node].label(),
            reason,
            source: graph.nodes[node].generator.shown_source(&ws.root),
        })
        .collect();
    out.sort_by_key(|p| p.node);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use super::*;
    use crate::workspace::Generator;
    use crate::workspace::generator::parse_generator;

    const FACT: &str = "files: {pub: {secret: false}}\nscript: echo x > $out/pub\n";

    fn def(name: &str, deps: &str) -> Arc<Generator> {
        let yaml = format!("dependencies: [{deps}]\n{FACT}");
        let source = PathBuf::from(format!("generators/{name}.yaml"));
        Arc::new(parse_generator(name, &source, &yaml).expect("valid generator"))
    }

    /// A workspace with machines `a` and `b`, each needing `base` and `top` (which uses `base`),
    /// and nothing generated yet.
    fn fleet() -> (tempfile::TempDir, Workspace, Definitions, Graph) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(crate::workspace::INVENTORY_FILE),
            "machines:\n  a: {generators: [top]}\n  b: {generators: [top]}\n",
        )
        .unwrap();
        let ws = Workspace::load(dir.path()).expect("workspace");
        let (base, top) = (def("base", ""), def("top", "base"));
        let mut defs = Definitions {
            generators: IndexMap::new(),
            machines: IndexMap::new(),
            users: IndexMap::new(),
        };
        for g in [&base, &top] {
            defs.generators.insert(g.name.clone(), Arc::clone(g));
        }
        for m in ["a", "b"] {
            let gens = [&base, &top].map(|g| (g.name.clone(), Arc::clone(g)));
            defs.machines.insert(m.into(), gens.into_iter().collect());
        }
        let graph = Graph::build(&defs);
        (dir, ws, defs, graph)
    }

    fn planned(p: &[Planned]) -> Vec<(String, Reason)> {
        p.iter()
            .map(|p| (p.label.clone(), p.reason.clone()))
            .collect()
    }

    fn sel(hosts: &[&str], generators: &[&str], regenerate: bool) -> Selection {
        Selection {
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            generators: generators.iter().map(|s| s.to_string()).collect(),
            regenerate,
            ..Selection::default()
        }
    }

    #[test]
    fn machines_are_all_or_the_named_existing_ones() {
        let (_dir, ws, _, _) = fleet();
        assert_eq!(select_machines(&ws, &[]).unwrap(), vec!["a", "b"]);
        assert_eq!(select_machines(&ws, &["b".into()]).unwrap(), vec!["b"]);
        let err = select_machines(&ws, &["c".into()]).unwrap_err().to_string();
        assert!(err.contains("\"c\""), "{err}");
        let mut empty = ws.clone();
        empty.inventory.machines.clear();
        let err = select_machines(&empty, &[]).unwrap_err().to_string();
        assert!(
            err.contains("varsmith.yaml") && err.contains("no machines"),
            "{err}"
        );
    }

    #[test]
    fn a_fresh_fleet_plans_every_node_of_the_selected_machines_only() {
        let (_dir, ws, defs, graph) = fleet();
        let missing = || Reason::Missing(crate::plan::NEVER_GENERATED.into());
        let p = plan(&ws, &defs, &graph, &sel(&["a"], &[], false)).unwrap();
        assert_eq!(
            planned(&p),
            vec![("a/base".into(), missing()), ("a/top".into(), missing())]
        );
        assert_eq!(p[0].source, "generators/base.yaml");
        // A selected generator pulls in its dependency when that is not usable.
        let p = plan(&ws, &defs, &graph, &sel(&["b"], &["top"], false)).unwrap();
        assert_eq!(
            planned(&p),
            vec![("b/base".into(), missing()), ("b/top".into(), missing())]
        );
    }

    #[test]
    fn regenerate_forces_the_selection_and_reruns_what_depends_on_it() {
        let (_dir, ws, defs, graph) = fleet();
        let p = plan(&ws, &defs, &graph, &sel(&["a"], &["base"], true)).unwrap();
        // b is outside the selection and was never generated: not generated for it here.
        assert_eq!(
            planned(&p),
            vec![
                ("a/base".into(), Reason::Forced),
                ("a/top".into(), Reason::DependencyRuns("a/base".into())),
            ]
        );
    }

    #[test]
    fn an_unknown_generator_is_a_usage_error() {
        let (_dir, ws, defs, graph) = fleet();
        let err = plan(&ws, &defs, &graph, &sel(&[], &["nope"], false)).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
