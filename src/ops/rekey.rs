//! `varsmith rekey`: re-wrap data keys of secrets files whose recipients differ from the
//! inventory (admins added or removed, host keys changed), like `sops updatekeys`: values,
//! `lastmodified` and MAC unchanged.

use std::path::PathBuf;

use crate::error::Failure;
use crate::keys::Identities;
use crate::plan::Graph;
use crate::workspace::Workspace;

/// Files re-wrapped, and (label, error) of the generators whose files could not be.
pub type Outcome = (Vec<PathBuf>, Vec<(String, Failure)>);

/// Rekeys every file of the given machines (all when empty) and the shared files they use.
pub fn run(ws: &Workspace, hosts: &[String], ids: &Identities) -> anyhow::Result<Outcome> {
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let machines = crate::plan::select_machines(ws, hosts)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for i in graph.scope(&defs, &machines) {
        let n = &graph.nodes[i];
        match crate::store::rewrap::rewrap(ws, &defs, &n.owner, &n.generator, ids) {
            Ok(p) => done.extend(p),
            Err(e) => failed.push((n.label(), Failure::new(e.kind(), e.to_string()))),
        }
    }
    if !done.is_empty()
        && let Err(e) = crate::store::sopsconfig::write(ws, &defs)
    {
        failed.push((".sops.yaml".into(), Failure::new(e.kind(), e.to_string())));
    }
    Ok((done, failed))
}
