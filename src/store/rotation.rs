//! A host key rotation in progress: `sops/machines/<host>/rotation.json`.
//!
//! `generate --rotate-host-key` writes it (before the new key is made) with the host's
//! recipients of then; while it exists those old recipients stay on every file the host
//! decrypts (see [`super::host_recipients`]), because the host only has its old key until the
//! new one is installed there, and `check` reports the machine as "host key rotated, not yet
//! on the host". [`confirm`], called where `push-keys` and `bootstrap` pin the installed key
//! in `known_hosts`, removes the record and re-wraps the host's files for the new key only.
//! Invariant: the record only ever names recipients the host had before the rotation.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Owner};
use crate::keys::Identities;
use crate::workspace::Workspace;

/// File name of the record inside `sops/machines/<host>/`.
pub const RECORD: &str = "rotation.json";

/// The pending rotation of one machine's host key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    /// The recipients the host had before (it decrypts with one of them until confirmed).
    pub old: Vec<String>,
    /// When the rotation started (RFC 3339, UTC).
    pub started: String,
}

/// `sops/machines/<host>/rotation.json`.
pub fn record_path(root: &Path, host: &str) -> PathBuf {
    Owner::Machine(host.to_string()).base(root).join(RECORD)
}

/// The pending rotation of `host`, if any.
pub fn pending(root: &Path, host: &str) -> Result<Option<Pending>, Error> {
    let path = record_path(root, host);
    let Some(bytes) = super::read_file(root, &path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Malformed {
            path,
            msg: format!("expected {{\"old\": [\"age1…\"], \"started\": \"…\"}}: {e}"),
        })
}

/// Starts (or extends) a rotation: records `old` (the host's current recipients) so they stay
/// on its files. Returns whether a record was created (false: one was already pending, and
/// `old` was merged into it). Call with the workspace lock held.
pub fn begin(root: &Path, host: &str, old: &[String]) -> Result<bool, Error> {
    let prev = pending(root, host)?;
    let created = prev.is_none();
    let mut rec = prev.unwrap_or_else(|| Pending {
        old: Vec::new(),
        started: crate::sops::gofmt::now_rfc3339(),
    });
    for r in old {
        if !rec.old.contains(r) {
            rec.old.push(r.clone());
        }
    }
    write(root, host, &rec)?;
    Ok(created)
}

/// Removes the record (a rotation that did not happen, or a confirmed one).
pub fn clear(root: &Path, host: &str) -> Result<(), Error> {
    let mut b = super::Batch::new(root);
    b.remove(&record_path(root, host))?;
    b.commit()
}

fn write(root: &Path, host: &str, rec: &Pending) -> Result<(), Error> {
    let mut json = serde_json::to_vec_pretty(rec).unwrap_or_default();
    json.push(b'\n');
    super::write_atomic(root, &record_path(root, host), &json)
}

/// Confirms `host`'s rotation once `installed` (the OpenSSH public key line just installed on
/// the host and pinned in `known_hosts`) is its new host key: removes the record and re-wraps
/// the host's files (and the shared ones it uses) for the new recipient only, then rewrites
/// `.sops.yaml`. Returns the files re-wrapped; empty when no rotation was pending. A key that
/// is not the workspace's current host key confirms nothing. Takes the workspace lock.
pub fn confirm(
    ws: &Workspace,
    host: &str,
    installed: &str,
    ids: &Identities,
) -> Result<Vec<PathBuf>, Error> {
    let _lock = super::lock::WorkspaceLock::acquire(
        &ws.root,
        super::lock::Mode::Exclusive,
        "confirming the host key rotation",
    )?;
    if pending(&ws.root, host)?.is_none() {
        return Ok(Vec::new());
    }
    let current = super::recipients::derived_host_recipient(&ws.root, host)?;
    let installed = crate::keys::ssh_to_age::public_to_age(installed.trim()).ok();
    if current.is_none() || installed != current {
        return Ok(Vec::new());
    }
    clear(&ws.root, host)?;
    let defs = ws.definitions().map_err(|e| Error::Malformed {
        path: ws.root.join(crate::workspace::INVENTORY_FILE),
        msg: e.to_string(),
    })?;
    let mut done = Vec::new();
    let mut files = super::sopsfiles::files_of(&ws.root, &Owner::Machine(host.to_string()))?;
    files.extend(
        super::sopsfiles::files_of(&ws.root, &Owner::Shared)?
            .into_iter()
            .filter(|f| {
                !f.admin_only
                    && defs
                        .machines
                        .get(host)
                        .is_some_and(|g| g.contains_key(&f.stem))
            }),
    );
    for f in &files {
        let want = super::expected_recipients(ws, &defs, &f.owner, &f.stem, f.admin_only)?;
        if super::rewrap::rewrap_file(&ws.root, &f.path, &want, ids)? {
            done.push(f.path.clone());
        }
    }
    super::sopsconfig::write(ws, &defs)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_merges_and_clear_removes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        assert_eq!(pending(root, "web").unwrap(), None);
        assert!(begin(root, "web", &["age1old".into()]).unwrap());
        // A second rotation before the first is confirmed keeps the first key too.
        assert!(!begin(root, "web", &["age1old".into(), "age1mid".into()]).unwrap());
        let p = pending(root, "web").unwrap().unwrap();
        assert_eq!(p.old, vec!["age1old".to_string(), "age1mid".to_string()]);
        assert!(record_path(root, "web").ends_with("sops/machines/web/rotation.json"));
        clear(root, "web").unwrap();
        assert_eq!(pending(root, "web").unwrap(), None);
    }

    #[test]
    fn a_malformed_record_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = record_path(d.path(), "web");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{\"old\": 1}").unwrap();
        let e = pending(d.path(), "web").unwrap_err().to_string();
        assert!(e.contains("rotation.json"), "{e}");
    }
}
