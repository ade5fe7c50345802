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
//! A record is workspace content a pull request can plant (`"old": ["age1attacker…"]`), and
//! so is any other plain file, so the old recipients are *authenticated*: [`begin`] keeps
//! them in the machine's state, `sops/machines/<host>/state/.rotation-recorded.json` (a
//! leading dot: no generator can be named so), and [`seal`] (once the new host key's sops
//! file is written) adds an HMAC-SHA256 over the host's name and those recipients, keyed by
//! that file's sops data key. Only someone who can decrypt the host key file (an admin or the
//! host) can compute it; planting both files, or copying another host's, does not verify.
//! An old recipient is honoured ([`honoured`]: kept on the host's files, in `.sops.yaml`, by
//! rekey and generate) only when the record verifies with an identity of this process (the
//! ones [`trust`] is given, else those found in the environment as for any sops command);
//! without one the rotation is [`Trust::NoIdentity`]: `check` reports it unverified and
//! nothing is honoured. [`clear`] removes both files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Error, Owner};
use crate::keys::Identities;
use crate::workspace::{HOST_KEY_GENERATOR, Workspace};

/// File name of the record inside `sops/machines/<host>/`.
pub(crate) const RECORD: &str = "rotation.json";

/// The pending rotation of one machine's host key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pending {
    /// The recipients the host had before (it decrypts with one of them until confirmed).
    pub old: Vec<String>,
    /// When the rotation started (RFC 3339, UTC).
    pub started: String,
}

/// What [`begin`] recorded in the machine's state: the host's recipients of before, and
/// the MAC [`seal`] adds (hex; empty until sealed).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Recorded {
    recipients: Vec<String>,
    #[serde(default)]
    mac: String,
}

/// Whether a pending rotation's old recipients verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Trust {
    /// The recipients this workspace recorded and authenticated (possibly empty: nothing
    /// verified, the record is planted or altered).
    Verified(Vec<String>),
    /// No identity of this process decrypts the host key file: nothing can be verified.
    NoIdentity,
}

/// Verified recipients per (workspace, host), for this process: filled by [`begin`] (this
/// process recorded them), [`seal`] and [`trust`]; emptied by [`clear`].
static TRUSTED: Mutex<Option<Verified>> = Mutex::new(None);

/// Verified old recipients by (workspace root, host).
type Verified = HashMap<(PathBuf, String), Vec<String>>;

fn cached(root: &Path, host: &str) -> Option<Vec<String>> {
    let c = TRUSTED.lock().ok()?;
    c.as_ref()?
        .get(&(root.to_path_buf(), host.to_string()))
        .cloned()
}

fn remember(root: &Path, host: &str, recipients: Option<Vec<String>>) {
    if let Ok(mut c) = TRUSTED.lock() {
        let map = c.get_or_insert_with(HashMap::new);
        let key = (root.to_path_buf(), host.to_string());
        match recipients {
            Some(r) => map.insert(key, r),
            None => map.remove(&key),
        };
    }
}

/// HMAC-SHA256 over the host and its old recipients, keyed by `host`'s host key sops file's
/// data key; None when that file is absent.
fn mac_of(
    root: &Path,
    host: &str,
    recipients: &[String],
    ids: &Identities,
) -> Result<Option<Hmac<Sha256>>, Error> {
    let file = Owner::Machine(host.to_string()).secrets_file(root, HOST_KEY_GENERATOR);
    let Some(bytes) = super::read_file(root, &file)? else {
        return Ok(None);
    };
    let origin = file.display().to_string();
    let opened = crate::sops::verbs::open(&bytes, crate::sops::Format::Yaml, ids, &origin)?;
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(opened.data_key().as_slice()).map_err(|e| {
            Error::Malformed {
                path: file.clone(),
                msg: e.to_string(),
            }
        })?;
    m.update(b"varsmith rotation record v1\0");
    m.update(host.as_bytes());
    for r in recipients {
        m.update(b"\0");
        m.update(r.as_bytes());
    }
    Ok(Some(m))
}

/// Verifies `host`'s recorded old recipients with `ids` (see the module docs).
pub(crate) fn trust(root: &Path, host: &str, ids: &Identities) -> Result<Trust, Error> {
    let rec = recorded(root, host)?;
    let Some(mac) = sealed_mac(&rec) else {
        return Ok(Trust::Verified(Vec::new()));
    };
    let m = match mac_of(root, host, &rec.recipients, ids) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(Trust::Verified(Vec::new())),
        Err(Error::Sops(e)) if crate::error::HasKind::kind(&e) != crate::error::Kind::Usage => {
            return Ok(Trust::NoIdentity);
        }
        Err(e) => return Err(e),
    };
    let ok = m.verify_slice(&mac).is_ok();
    let verified = if ok { rec.recipients } else { Vec::new() };
    remember(root, host, Some(verified.clone()));
    Ok(Trust::Verified(verified))
}

/// The `--identity` files of this process, for [`trust_here`].
static IDENTITY_FILES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Makes [`trust_here`] use the `--identity` files given to this process too.
pub(crate) fn identity_files(files: &[PathBuf]) {
    if let Ok(mut f) = IDENTITY_FILES.lock() {
        *f = files.to_vec();
    }
}

/// [`trust`] with this process's identities: the `--identity` files ([`identity_files`]) and
/// those found in the environment, as for any sops command. Cached per process.
pub(crate) fn trust_here(root: &Path, host: &str) -> Result<Trust, Error> {
    if let Some(r) = cached(root, host) {
        return Ok(Trust::Verified(r));
    }
    if sealed_mac(&recorded(root, host)?).is_none() {
        // Nothing sealed: nothing to verify, whatever the identities.
        return Ok(Trust::Verified(Vec::new()));
    }
    let files = IDENTITY_FILES.lock().map(|f| f.clone()).unwrap_or_default();
    match Identities::discover(&files) {
        Ok(ids) if !ids.is_empty() => trust(root, host, &ids),
        _ => Ok(Trust::NoIdentity),
    }
}

/// The MAC of a sealed record with recipients, or None.
fn sealed_mac(rec: &Recorded) -> Option<Vec<u8>> {
    if rec.recipients.is_empty() || rec.mac.is_empty() {
        return None;
    }
    hex::decode(&rec.mac).ok()
}

/// Authenticates `host`'s recorded old recipients (see the module docs): call once its new
/// host key's sops file is written, with an identity that decrypts it.
pub(crate) fn seal(root: &Path, host: &str, ids: &Identities) -> Result<(), Error> {
    let mut rec = recorded(root, host)?;
    let Some(m) = mac_of(root, host, &rec.recipients, ids)? else {
        return Ok(());
    };
    rec.mac = hex::encode(m.finalize().into_bytes());
    write_recorded(root, host, &rec)?;
    remember(root, host, Some(rec.recipients));
    Ok(())
}

fn write_recorded(root: &Path, host: &str, rec: &Recorded) -> Result<(), Error> {
    let mut json = serde_json::to_vec_pretty(rec).unwrap_or_default();
    json.push(b'\n');
    super::write_atomic(root, &recorded_path(root, host), &json)
}

/// File name, inside `sops/machines/<host>/state/`, of the recipients [`begin`] recorded.
pub(crate) const RECORDED: &str = ".rotation-recorded.json";

/// `sops/machines/<host>/state/.rotation-recorded.json`.
pub(crate) fn recorded_path(root: &Path, host: &str) -> PathBuf {
    Owner::Machine(host.to_string())
        .base(root)
        .join("state")
        .join(RECORDED)
}

fn recorded(root: &Path, host: &str) -> Result<Recorded, Error> {
    let path = recorded_path(root, host);
    let Some(bytes) = super::read_file_shared(root, &path)? else {
        return Ok(Recorded::default());
    };
    serde_json::from_slice::<Recorded>(&bytes).map_err(|e| Error::Malformed {
        path,
        msg: format!(
            "expected {{\"recipients\": [\"age1…\"], \"mac\": \"…\"}}: {}",
            crate::workspace::quote::parser_message(&e.to_string())
        ),
    })
}

/// The old recipients of `host`'s pending rotation that the workspace itself recorded for it
/// and that verify ([`trust_here`]): the only ones kept as recipients. Empty when no rotation
/// is pending, or when it cannot be verified here.
pub(crate) fn honoured(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    let Some(p) = pending(root, host)? else {
        return Ok(Vec::new());
    };
    let Trust::Verified(rec) = trust_here(root, host)? else {
        return Ok(Vec::new());
    };
    Ok(p.old.into_iter().filter(|r| rec.contains(r)).collect())
}

/// The old recipients a pending record names that do not verify for `host` (a planted or
/// hand-edited record): never recipients, a finding in `check`. Empty when the rotation
/// cannot be verified here ([`unverifiable`]).
pub(crate) fn unrecorded(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    let Some(p) = pending(root, host)? else {
        return Ok(Vec::new());
    };
    let Trust::Verified(rec) = trust_here(root, host)? else {
        return Ok(Vec::new());
    };
    Ok(p.old.into_iter().filter(|r| !rec.contains(r)).collect())
}

/// True when `host`'s pending rotation has recorded old recipients but no MAC: its run stopped
/// between [`begin`] and [`seal`] (or both files were planted). Nothing of it is honoured:
/// only a MAC tells the two apart.
pub(crate) fn unsealed(root: &Path, host: &str) -> Result<bool, Error> {
    if pending(root, host)?.is_none() || cached(root, host).is_some() {
        return Ok(false);
    }
    let rec = recorded(root, host)?;
    Ok(!rec.recipients.is_empty() && rec.mac.is_empty())
}

/// True when `host` has a pending rotation that no identity of this process can verify
/// (`check` without a key): it is reported as unverified and nothing of it is honoured.
pub(crate) fn unverifiable(root: &Path, host: &str) -> Result<bool, Error> {
    if pending(root, host)?.is_none() {
        return Ok(false);
    }
    Ok(trust_here(root, host)? == Trust::NoIdentity)
}

/// A pending rotation of `host` that varsmith started: at least one honoured old recipient.
pub(crate) fn genuine(root: &Path, host: &str) -> Result<bool, Error> {
    Ok(!honoured(root, host)?.is_empty())
}

/// `sops/machines/<host>/rotation.json`.
pub(crate) fn record_path(root: &Path, host: &str) -> PathBuf {
    Owner::Machine(host.to_string()).base(root).join(RECORD)
}

/// The pending rotation of `host`, if any.
pub(crate) fn pending(root: &Path, host: &str) -> Result<Option<Pending>, Error> {
    let path = record_path(root, host);
    let Some(bytes) = super::read_file_shared(root, &path)? else {
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
pub(crate) fn begin(root: &Path, host: &str, old: &[String]) -> Result<bool, Error> {
    let prev = pending(root, host)?;
    let created = prev.is_none();
    let mut rec = prev.unwrap_or_else(|| Pending {
        old: Vec::new(),
        started: crate::sops::gofmt::now_rfc3339(),
    });
    // Only what verifies carries over (a planted state file adds nothing); this process
    // records `old` itself: trusted here until sealed (the MAC needs the new key's file).
    let mut trusted = match trust_here(root, host)? {
        Trust::Verified(v) => v,
        Trust::NoIdentity => Vec::new(),
    };
    // Old recipients that do not verify (planted, or of a run stopped before sealing) are
    // dropped from the record: they were never honoured.
    rec.old.retain(|r| trusted.contains(r));
    for r in old {
        if !trusted.contains(r) {
            trusted.push(r.clone());
        }
        if !rec.old.contains(r) {
            rec.old.push(r.clone());
        }
    }
    // The state first: a record is never honoured beyond what is recorded.
    let state = Recorded {
        recipients: trusted.clone(),
        mac: String::new(),
    };
    write_recorded(root, host, &state)?;
    remember(root, host, Some(trusted));
    write(root, host, &rec)?;
    Ok(created)
}

/// Removes the record (a rotation that did not happen, or a confirmed one).
pub(crate) fn clear(root: &Path, host: &str) -> Result<(), Error> {
    let mut b = super::Batch::new(root);
    b.remove(&record_path(root, host))?;
    b.remove(&recorded_path(root, host))?;
    remember(root, host, None);
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
pub(crate) fn confirm(
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
        // A genuine rotation on top records only the host's real recipients, and drops the
        // planted one from the record.
        begin(root, "web", &["age1real".into()]).unwrap();
        assert_eq!(honoured(root, "web").unwrap(), vec!["age1real".to_string()]);
        assert!(unrecorded(root, "web").unwrap().is_empty());
        assert_eq!(pending(root, "web").unwrap().unwrap().old, ["age1real"]);
        // Planted state with a MAC that is not one: nothing verifies, whatever it names.
        let forged = r#"{"recipients": ["age1evil"], "mac": "abab"}"#;
        remember(root, "web", None);
        std::fs::write(recorded_path(root, "web"), forged).unwrap();
        let ids = Identities::default();
        assert_eq!(
            trust(root, "web", &ids).unwrap(),
            Trust::Verified(Vec::new())
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
