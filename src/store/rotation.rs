//! A host key rotation in progress: `sops/machines/<host>/rotation.json`.
//!
//! `generate --rotate-host-key` writes it (before the new key is made) with the host's
//! recipients of then; while it exists those old recipients stay on every file the host
//! decrypts (see [`super::host_recipients`]), because the host only has its old key until the
//! new one is installed there, and `check` reports the machine as "host key rotated, not yet
//! on the host". [`confirm`], called where `push-keys` and `bootstrap` pin the installed key
//! in `known_hosts`, removes the record and re-wraps the host's files for the new key only.
//! Invariant: the record only ever names recipients the host had before the rotation.
//!
//! A record is workspace content a pull request can plant (`"old": ["age1attacker…"]`), so its
//! `old` list is not trusted by itself: [`begin`] also keeps the recipients it records in the
//! machine's state, `sops/machines/<host>/state/.rotation-recorded.json` (a leading dot: no
//! generator can be named so), and only an old recipient found there is honoured
//! ([`honoured`]): kept on the host's files, in `.sops.yaml`, by rekey and generate. Any other
//! ([`unrecorded`]) is never a recipient; `check` reports it. [`clear`] removes both files.

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

/// What [`begin`] recorded in the machine's state: the host's recipients of before.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Recorded {
    recipients: Vec<String>,
}

/// File name, inside `sops/machines/<host>/state/`, of the recipients [`begin`] recorded.
pub const RECORDED: &str = ".rotation-recorded.json";

/// `sops/machines/<host>/state/.rotation-recorded.json`.
pub fn recorded_path(root: &Path, host: &str) -> PathBuf {
    Owner::Machine(host.to_string())
        .base(root)
        .join("state")
        .join(RECORDED)
}

fn recorded(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    let path = recorded_path(root, host);
    let Some(bytes) = super::read_file(root, &path)? else {
        return Ok(Vec::new());
    };
    serde_json::from_slice::<Recorded>(&bytes)
        .map(|r| r.recipients)
        .map_err(|e| Error::Malformed {
            path,
            msg: format!(
                "expected {{\"recipients\": [\"age1…\"]}}: {}",
                crate::workspace::quote::parser_message(&e.to_string())
            ),
        })
}

/// The old recipients of `host`'s pending rotation that the workspace itself recorded for it
/// ([`begin`]): the only ones kept as recipients. Empty when no rotation is pending.
pub fn honoured(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    let Some(p) = pending(root, host)? else {
        return Ok(Vec::new());
    };
    let rec = recorded(root, host)?;
    Ok(p.old.into_iter().filter(|r| rec.contains(r)).collect())
}

/// The old recipients a pending record names that the workspace never recorded for `host`
/// (a planted or hand-edited record): never recipients, a finding in `check`.
pub fn unrecorded(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    let Some(p) = pending(root, host)? else {
        return Ok(Vec::new());
    };
    let rec = recorded(root, host)?;
    Ok(p.old.into_iter().filter(|r| !rec.contains(r)).collect())
}

/// A pending rotation of `host` that varsmith started: at least one honoured old recipient.
pub fn genuine(root: &Path, host: &str) -> Result<bool, Error> {
    Ok(!honoured(root, host)?.is_empty())
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
            msg: format!(
                "expected {{\"old\": [\"age1…\"], \"started\": \"…\"}}: {}",
                crate::workspace::quote::parser_message(&e.to_string())
            ),
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
    let mut kept = recorded(root, host)?;
    for r in old {
        if !rec.old.contains(r) {
            rec.old.push(r.clone());
        }
        if !kept.contains(r) {
            kept.push(r.clone());
        }
    }
    // The state first: a record is never honoured beyond what is recorded.
    let mut json = serde_json::to_vec_pretty(&Recorded { recipients: kept }).unwrap_or_default();
    json.push(b'\n');
    super::write_atomic(root, &recorded_path(root, host), &json)?;
    write(root, host, &rec)?;
    Ok(created)
}

/// Removes the record (a rotation that did not happen, or a confirmed one).
pub fn clear(root: &Path, host: &str) -> Result<(), Error> {
    let mut b = super::Batch::new(root);
    b.remove(&record_path(root, host))?;
    b.remove(&recorded_path(root, host))?;
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
        assert_eq!(honoured(root, "web").unwrap(), p.old);
        clear(root, "web").unwrap();
        assert_eq!(pending(root, "web").unwrap(), None);
        assert!(!recorded_path(root, "web").exists());
    }

    #[test]
    fn a_planted_record_is_not_honoured() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let p = record_path(root, "web");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, r#"{"old": ["age1evil"], "started": "x"}"#).unwrap();
        assert!(honoured(root, "web").unwrap().is_empty());
        assert_eq!(
            unrecorded(root, "web").unwrap(),
            vec!["age1evil".to_string()]
        );
        assert!(!genuine(root, "web").unwrap());
        // A genuine rotation on top records only the host's real recipients.
        begin(root, "web", &["age1real".into()]).unwrap();
        assert_eq!(honoured(root, "web").unwrap(), vec!["age1real".to_string()]);
        assert_eq!(
            unrecorded(root, "web").unwrap(),
            vec!["age1evil".to_string()]
        );
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
