//! The plan of one `generate`: which machines are selected, and which nodes run and why
//! (missing, changed, torn, forced, or a dependency runs), across machines.

use indexmap::IndexMap;

use super::graph::{Graph, NEVER_GENERATED, Reason, status};
use crate::UsageError;
use crate::workspace::{Definitions, Owner, Workspace};

/// What to plan for.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// Machines (empty: all).
    pub hosts: Vec<String>,
    /// Only these generators (and what depends on them).
    pub generators: Vec<String>,
    /// Rerun the selected generators even when up to date.
    pub regenerate: bool,
}

/// One planned run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Node index in the graph.
    pub node: usize,
    /// `machine/generator` or `shared/generator`.
    pub label: String,
    /// Why it runs.
    pub reason: Reason,
    /// Where its definition comes from (file, `bundled:<name>` or flake attribute).
    pub source: String,
}

/// Resolves the machine list: the given ones (each must exist) or all. An inventory with no
/// machine (an empty or comment-only `varsmith.yaml`) is an error naming the file.
pub fn select_machines(ws: &Workspace, hosts: &[String]) -> Result<Vec<String>, UsageError> {
    if ws.inventory.machines.is_empty() {
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

/// Computes what runs and why.
pub fn plan(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    opts: &Selection,
) -> Result<Vec<Planned>, UsageError> {
    let machines = select_machines(ws, &opts.hosts)?;
    for g in &opts.generators {
        if !graph.nodes.iter().any(|n| &n.generator.name == g) {
            return Err(UsageError::new(defs.generator_not_used(g, None)));
        }
    }
    let scope = graph.scope(defs, &machines);
    let selected = |i: usize| {
        opts.generators.is_empty() || opts.generators.contains(&graph.nodes[i].generator.name)
    };
    let mut reasons: IndexMap<usize, Reason> = IndexMap::new();
    for &i in &scope {
        if !selected(i) {
            continue;
        }
        if opts.regenerate {
            reasons.insert(i, Reason::Forced);
        } else if let Some(r) = status(&ws.root, graph, i) {
            reasons.insert(i, r);
        }
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
    let mut stack: Vec<usize> = reasons.keys().copied().collect();
    while let Some(i) = stack.pop() {
        for &d in &dependents[i] {
            if reasons.contains_key(&d) {
                continue;
            }
            // Machines outside the selection are only updated, never generated for the first
            // time (their own host key may not exist yet).
            let outside = match &graph.nodes[d].owner {
                Owner::Machine(m) => !machines.contains(m),
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
