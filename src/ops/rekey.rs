//! `varsmith rekey`: re-wrap data keys of secrets files whose recipients differ from the
//! inventory (admins added or removed, host keys changed), like `sops updatekeys`: values,
//! `lastmodified` and MAC unchanged.

use std::path::PathBuf;

use crate::keys::Identities;
use crate::plan::{Graph, Node};
use crate::store;
use crate::workspace::{Definitions, Workspace};

/// Errors of a rekey.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or re-wrapped.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// sops failed (no identity can decrypt the file, malformed file).
    #[error(transparent)]
    Sops(#[from] crate::sops::Error),
}

/// Re-wraps the secrets files of one node whose recipients are not exactly the expected ones.
/// Returns the paths rewritten.
pub fn rekey_node(
    ws: &Workspace,
    defs: &Definitions,
    n: &Node,
    ids: &Identities,
) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let g = &n.generator;
    for (path, admin_only) in n.existing_secrets_files(&ws.root) {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let origin = path
            .strip_prefix(&ws.root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let want = store::expected_recipients(ws, defs, &n.owner, &g.name, admin_only)?;
        let have = crate::sops::recipients(&bytes, crate::sops::Format::Yaml, &origin)?;
        if same_set(&want, &have) {
            continue;
        }
        let new = crate::sops::update_keys(&bytes, crate::sops::Format::Yaml, ids, &want, &origin)?;
        store::write_atomic(&ws.root, &path, &new)?;
        out.push(path);
    }
    Ok(out)
}

/// Same recipients, ignoring order.
pub fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&str> = a.iter().map(|s| s.trim()).collect();
    let mut b: Vec<&str> = b.iter().map(|s| s.trim()).collect();
    a.sort_unstable();
    b.sort_unstable();
    a.dedup();
    b.dedup();
    a == b
}

/// Files re-wrapped, and (label, error) of the generators whose files could not be.
pub type Outcome = (Vec<PathBuf>, Vec<(String, String)>);

/// Rekeys every file of the given machines (all when empty) and the shared files they use.
pub fn run(ws: &Workspace, hosts: &[String], ids: &Identities) -> anyhow::Result<Outcome> {
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let machines = crate::ops::generate::select_machines(ws, hosts)?;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for i in graph.scope(&defs, &machines) {
        let n = &graph.nodes[i];
        match rekey_node(ws, &defs, n, ids) {
            Ok(p) => done.extend(p),
            Err(e) => failed.push((n.label(), e.to_string())),
        }
    }
    if !done.is_empty() {
        let _ = crate::store::sopsconfig::write(ws, &defs);
    }
    Ok((done, failed))
}
