//! Every prompt answer of the planned runs, gathered before any script runs: given values,
//! persisted previous answers, then the terminal.

use std::collections::HashMap;

use crate::UsageError;
use crate::keys::Identities;
use crate::plan::{Graph, Planned};
use crate::run::prompts;
use crate::store::{self, Files};
use crate::workspace::Workspace;

/// Gathers every prompt answer of the planned runs, before any script runs.
pub(super) fn gather_prompts(
    ws: &Workspace,
    graph: &Graph,
    plan: &[Planned],
    sources: &prompts::Sources,
    ids: &Identities,
) -> Result<HashMap<usize, Files>, UsageError> {
    let mut out: HashMap<usize, Files> = HashMap::new();
    let mut missing = Vec::new();
    // Every secret is encrypted to the admins: without one, asking anything is wasted.
    let secrets_planned = plan.iter().any(|p| {
        graph.nodes[p.node]
            .generator
            .files
            .values()
            .any(|f| f.secret)
    });
    if secrets_planned && ws.inventory.admins.is_empty() {
        return Err(UsageError::new(format!(
            "{}: no admin yet, so nothing could be encrypted; add yourself first: `varsmith admin add NAME AGE_RECIPIENT` (or `varsmith init` on a fresh workspace)",
            ws.root.join(crate::workspace::INVENTORY_FILE).display()
        )));
    }
    for p in plan {
        let n = &graph.nodes[p.node];
        let g = &n.generator;
        if g.prompts.is_empty() {
            continue;
        }
        // Previously persisted answers (admins-only secrets of the same name). Stored outputs
        // that exist but do not open are said so, never silently asked again.
        let mut unreadable = None;
        let previous: Files = if g.prompts.values().any(|x| x.persist) {
            store::read_outputs(&ws.root, &n.owner, g, ids).unwrap_or_else(|e| {
                if matches!(
                    &e,
                    store::Error::Sops(crate::sops::Error::NoIdentity { .. })
                ) {
                    unreadable = Some(e.to_string());
                }
                Files::new()
            })
        } else {
            Files::new()
        };
        let mut answers = Files::new();
        for (name, prompt) in &g.prompts {
            if let Some(v) = sources.lookup(&g.name, name) {
                if v.is_empty() && prompts::required(prompt) {
                    return Err(UsageError::new(format!(
                        "{}: prompt {name} is required (display.required) but the value given ({}) is empty; give a value, or set display.required = false to accept an empty one",
                        p.label,
                        sources
                            .origin(&g.name, name)
                            .unwrap_or_else(|| prompts::env_name(&g.name, name))
                    )));
                }
                answers.insert(name.clone(), v);
            } else if let Some(v) = previous.get(name).filter(|_| prompt.persist) {
                answers.insert(name.clone(), v.clone());
            } else if let Some(e) = unreadable.as_ref().filter(|_| prompt.persist) {
                return Err(UsageError::new(format!(
                    "{}: cannot decrypt the stored value of the persisted prompt {name} ({e}); run with an identity that opens it (--identity FILE, SOPS_AGE_KEY_FILE), or give a new value (--prompt {}.{name}=@FILE or {})",
                    p.label,
                    g.name,
                    prompts::env_name(&g.name, name)
                )));
            } else {
                match prompts::ask_terminal(&p.label, name, g) {
                    Some(Ok(mut a)) => {
                        if let Some(v) = a.shift_remove(name) {
                            answers.insert(name.clone(), v);
                        }
                    }
                    Some(Err(e)) => return Err(UsageError::new(e)),
                    None => missing.push(format!(
                        "{} prompt {name} (--prompt {}.{name}=@FILE or {})",
                        p.label,
                        g.name,
                        prompts::env_name(&g.name, name)
                    )),
                }
            }
        }
        out.insert(p.node, answers);
    }
    if !missing.is_empty() {
        return Err(UsageError::new(format!(
            "no terminal to ask and no value given for:\n  {}",
            missing.join("\n  ")
        )));
    }
    Ok(out)
}

/// Every `--prompt`/prompts-file entry must name a prompt of a generator the selected
/// machines use; one that does not is an error naming the entry (never silently ignored).
pub(super) fn check_given(
    defs: &crate::workspace::Definitions,
    (machines, homes): (&[String], &[String]),
    sources: &prompts::Sources,
) -> Result<(), UsageError> {
    let owners: Vec<(
        String,
        &indexmap::IndexMap<String, std::sync::Arc<crate::workspace::Generator>>,
    )> = machines
        .iter()
        .filter_map(|m| defs.machines.get(m).map(|g| (m.clone(), g)))
        .chain(
            homes
                .iter()
                .filter_map(|u| defs.users.get(u).map(|g| (format!("user {u}"), g))),
        )
        .collect();
    for (g, p, at) in sources.given() {
        let using: Vec<&(String, _)> = owners.iter().filter(|(_, gs)| gs.contains_key(g)).collect();
        let users: Vec<&str> = using.iter().map(|(m, _)| m.as_str()).collect();
        let Some(def) = using.first().and_then(|(_, gs)| gs.get(g)) else {
            return Err(UsageError::new(format!(
                "{at}: no selected machine or user uses a generator {g:?}"
            )));
        };
        if !def.prompts.contains_key(p) {
            let known: Vec<&str> = def.prompts.keys().map(String::as_str).collect();
            return Err(UsageError::new(format!(
                "{at}: generator {g} (machine {}) has no prompt {p:?} (its prompts: {})",
                users.join(", "),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
}
