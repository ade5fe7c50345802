//! Checks made before anything runs: every machine getting deployed secrets has a host key
//! to encrypt to, every home-manager user a registered recipient.

use indexmap::IndexSet;

use crate::UsageError;
use crate::plan::{Graph, Planned};
use crate::store::{self, Owner};
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, Workspace};

/// Checks before anything runs that every machine getting deployed secrets has a host key.
pub(super) fn check_recipients_available(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    plan: &[Planned],
    selected: &[String],
    users: &[String],
) -> Result<(), UsageError> {
    let planned: IndexSet<usize> = plan.iter().map(|p| p.node).collect();
    let selected: std::collections::HashSet<&str> = selected.iter().map(String::as_str).collect();
    for p in plan {
        let n = &graph.nodes[p.node];
        if !n.generator.has_deployed_secrets() || n.generator.name == HOST_KEY_GENERATOR {
            continue;
        }
        let homes: Vec<&str> = match &n.owner {
            Owner::User(_) => n.owner.user().into_iter().collect(),
            Owner::Shared => defs
                .users
                .iter()
                .filter(|(u, g)| g.contains_key(&n.generator.name) && users.contains(u))
                .filter_map(|(u, _)| u.split('@').next())
                .collect(),
            Owner::Machine(_) => Vec::new(),
        };
        for u in homes {
            if store::user_recipients(&ws.root, u)
                .unwrap_or_default()
                .is_empty()
            {
                return Err(UsageError::new(format!(
                    "user {u}, generator {}: the user has no recipient to encrypt to ({} is missing); register it with `varsmith user add {u} --ssh-key <public key>` or `--age <recipient>`",
                    n.generator.name,
                    store::admin_key_json(&ws.root, u)
                        .strip_prefix(&ws.root)
                        .unwrap_or(&store::admin_key_json(&ws.root, u))
                        .display()
                )));
            }
        }
        let machines: Vec<String> = match &n.owner {
            Owner::Machine(m) => vec![m.clone()],
            Owner::User(_) => Vec::new(),
            // Machines outside this run that have no key yet are added to the shared file
            // when their host key is generated (recipients are reconciled at the end).
            Owner::Shared => defs
                .machines
                .iter()
                .filter(|(m, g)| g.contains_key(&n.generator.name) && selected.contains(m.as_str()))
                .map(|(m, _)| m.clone())
                .collect(),
        };
        for m in machines {
            let hk = graph.find(&Owner::Machine(m.clone()), HOST_KEY_GENERATOR);
            let has_key = hk.is_some_and(|h| planned.contains(&h))
                || !store::host_recipients(&ws.root, &m)
                    .unwrap_or_default()
                    .is_empty();
            if !has_key {
                return Err(UsageError::new(format!(
                    "machine {m}, generator {}: the machine has no host key to encrypt to; add the openssh generator to it or write sops/machines/{m}/key.json",
                    n.generator.name
                )));
            }
        }
    }
    Ok(())
}
