//! `varsmith rekey`: re-wrap the data keys of sops files whose recipients differ from what
//! their path's creation rule gives (admins added or removed, host keys changed), like
//! `sops updatekeys`: values, `lastmodified` and MAC unchanged. Every sops file under the
//! selected machines' `sops/machines/<h>/secrets/` and under `sops/shared/secrets/` is
//! covered, hand-made ones included (the host and the admins, or the admins only under
//! `admin/`); directories of machines not in the inventory are left alone (`check` reports
//! them).

use std::path::PathBuf;

use crate::error::Failure;
use crate::keys::Identities;
use crate::store::sopsfiles::{self, SopsFile};
use crate::store::{self, Owner};
use crate::workspace::Workspace;

/// Files re-wrapped, and (label, error) of the files that could not be.
pub type Outcome = (Vec<PathBuf>, Vec<(String, Failure)>);

/// Rekeys every sops file of the given machines (all when empty) and the shared files they
/// use (every shared file when no machine is given).
pub fn run(ws: &Workspace, hosts: &[String], ids: &Identities) -> anyhow::Result<Outcome> {
    let defs = ws.definitions()?;
    let machines = crate::plan::select_machines(ws, hosts)?;
    let mut files: Vec<SopsFile> = Vec::new();
    for m in &machines {
        files.extend(sopsfiles::files_of(&ws.root, &Owner::Machine(m.clone()))?);
    }
    files.extend(
        sopsfiles::files_of(&ws.root, &Owner::Shared)?
            .into_iter()
            .filter(|f| {
                hosts.is_empty()
                    || machines.iter().any(|m| {
                        defs.machines
                            .get(m)
                            .is_some_and(|g| g.contains_key(&f.stem))
                    })
            }),
    );
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for f in &files {
        let r = store::expected_recipients(ws, &defs, &f.owner, &f.stem, f.admin_only)
            .and_then(|want| store::rewrap::rewrap_file(&ws.root, &f.path, &want, ids));
        match r {
            Ok(true) => done.push(f.path.clone()),
            Ok(false) => {}
            Err(e) => failed.push((f.shown(&ws.root), Failure::new(e.kind(), e.to_string()))),
        }
    }
    // A whole-workspace rekey always brings varsmith's `.sops.yaml` rules back in line (what
    // `check` asks for after a hand edit), even when no file needed re-wrapping.
    if (!done.is_empty() || hosts.is_empty())
        && let Err(e) = crate::store::sopsconfig::write(ws, &defs)
    {
        failed.push((".sops.yaml".into(), Failure::new(e.kind(), e.to_string())));
    }
    Ok((done, failed))
}
