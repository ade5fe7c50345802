//! `varsmith rekey`: re-wrap the data keys of sops files whose recipients differ from what
//! their path's creation rule gives (admins added or removed, host keys changed), like
//! `sops updatekeys`: values, `lastmodified` and MAC unchanged. Every sops file under the
//! selected machines' `sops/machines/<h>/secrets/` and under `sops/shared/secrets/` is
//! covered, hand-made ones included (the host and the admins, or the admins only under
//! `admin/`); directories of machines not in the inventory are left alone (`check` reports
//! them).

use std::path::PathBuf;

use crate::error::{Failure, HasKind};
use crate::keys::Identities;
use crate::store::sopsfiles::{self, SopsFile};
use crate::store::{self, Owner};
use crate::workspace::Workspace;

/// Files re-wrapped, and (label, error) of the files that could not be.
pub(crate) type Outcome = (Vec<PathBuf>, Vec<(String, Failure)>);

/// Rekeys every sops file of the given machines and home-manager users (all of both when
/// neither is given) and the shared files they use (every shared file when neither is given).
pub(crate) fn run(
    ws: &Workspace,
    hosts: &[String],
    users: &[String],
    ids: &Identities,
) -> anyhow::Result<Outcome> {
    let defs = ws.definitions()?;
    let all = hosts.is_empty() && users.is_empty();
    let (machines, users) = crate::plan::select_targets(ws, &defs, hosts, users)?;
    let mut files: Vec<SopsFile> = Vec::new();
    for m in &machines {
        files.extend(sopsfiles::files_of(&ws.root, &Owner::Machine(m.clone()))?);
    }
    for u in &users {
        files.extend(sopsfiles::files_of(&ws.root, &Owner::User(u.clone()))?);
    }
    let used = |stem: &str| {
        machines
            .iter()
            .filter_map(|m| defs.machines.get(m))
            .chain(users.iter().filter_map(|u| defs.users.get(u)))
            .any(|g| g.contains_key(stem))
    };
    files.extend(
        sopsfiles::files_of(&ws.root, &Owner::Shared)?
            .into_iter()
            .filter(|f| all || used(&f.stem)),
    );
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for f in &files {
        let untrusted = match trust(ws, f, ids) {
            Ok(u) => u,
            Err(e) => {
                failed.push((f.shown(&ws.root), e));
                continue;
            }
        };
        let r = store::expected_recipients(ws, &defs, &f.owner, &f.stem, f.admin_only)
            .and_then(|want| store::rewrap::rewrap_file(&ws.root, &f.path, &want, ids))
            .and_then(|w| Ok(w | (untrusted && store::record(&ws.root, &f.path)?)));
        match r {
            Ok(true) => done.push(f.path.clone()),
            Ok(false) => {}
            Err(e) => failed.push((f.shown(&ws.root), Failure::new(e.kind(), e.to_string()))),
        }
    }
    if let Err(e) = store::write_admins_mirror(&ws.root) {
        failed.push((
            store::ADMINS_MIRROR.into(),
            Failure::new(e.kind(), e.to_string()),
        ));
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

/// Whether `f` differs from what its manifest recorded (changed outside varsmith, or recorded
/// before records existed) and was verified now with `ids`, so rekey records it. A changed
/// file no identity opens, or whose MAC fails, is an error: recording it would launder a
/// tampered file. An unrecorded legacy file no identity opens stays unrecorded.
fn trust(ws: &Workspace, f: &SopsFile, ids: &Identities) -> Result<bool, Failure> {
    use crate::sops::validate::{Verified, verify};
    let fail = |e: store::Error| Failure::new(e.kind(), e.to_string());
    let Some(bytes) = store::read_file(&ws.root, &f.path).map_err(fail)? else {
        return Ok(false);
    };
    let Some(man) =
        store::Manifest::read(&ws.root, &f.owner.manifest_file(&ws.root, &f.stem)).map_err(fail)?
    else {
        return Ok(false);
    };
    let rel = f.shown(&ws.root);
    let record = man.files.get(&store::record_key(&ws.root, &f.path));
    let now = store::FileRecord::of(&bytes, &rel).map_err(|e| fail(e.into()))?;
    if record.is_some_and(|r| r.sha256 == now.sha256) {
        return Ok(false);
    }
    match verify(&bytes, crate::sops::Format::Yaml, ids, &rel) {
        Ok(Verified::Ok) => Ok(true),
        Ok(Verified::NoIdentity) if record.is_none() => Ok(false),
        Ok(Verified::NoIdentity) => Err(Failure::new(
            crate::error::Kind::Failed,
            format!(
                "{rel}: modified outside varsmith since it was last written, and none of your identities opens it to verify it; rekey with an identity of one of its recipients ({}), or regenerate it",
                now.recipients.join(", ")
            ),
        )),
        Err(e) => Err(Failure::new(
            crate::error::Kind::Failed,
            format!(
                "{e}; not recorded: restore the file (e.g. `git checkout -- {rel}`) or regenerate it"
            ),
        )),
    }
}
