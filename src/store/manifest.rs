//! The per-generator manifest: which run produced the stored outputs, from which definition
//! (fingerprint) and which dependency runs, and the hashes of the public facts.

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::Error;

/// The plaintext (MAC-covered) key in every secrets file that records the run that wrote it.
pub(super) const RUN_KEY: &str = "varsmith_run_unencrypted";

/// What one committed generator run left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// Random id of the run (also stored in its secrets files).
    pub run: String,
    /// The definition fingerprint the outputs were made from.
    pub fingerprint: String,
    /// Run ids of the dependencies whose outputs were the inputs.
    #[serde(default)]
    pub deps: IndexMap<String, String>,
    /// sha256 (hex) of each public fact.
    #[serde(default)]
    pub facts: IndexMap<String, String>,
    /// Names in the deployed secrets file.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Names in the admins-only secrets file.
    #[serde(default)]
    pub admin_secrets: Vec<String>,
    /// When the run was committed (RFC 3339, UTC).
    pub generated: String,
    /// The record's layout: 1 (absent: written before varsmith followed clan's staleness;
    /// none of the fields below), or [`MANIFEST_FORMAT`].
    #[serde(default = "legacy_format")]
    pub format: u32,
    /// The generator's `validationHash` at the run (`None`: validation was null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// The generator's files and their `secret`/`deploy` at the run (a hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    /// The script at the run (a hash, store paths masked); a change is only a notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// Each sops file of the generator as varsmith last wrote or verified it, keyed by its
    /// workspace-relative path (`sops/machines/<h>/secrets/<g>.yaml`, `…/secrets/admin/<g>.yaml`):
    /// its SHA-256 and recipients, so a keyless `check` and the module's assertions see a file
    /// changed outside varsmith. Empty in manifests written before it existed (nothing is
    /// then compared).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub files: IndexMap<String, FileRecord>,
}

/// One sops file as varsmith last wrote (or verified and re-recorded) it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRecord {
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
    /// The age recipients its data key is wrapped for, as sops records them.
    pub recipients: Vec<String>,
}

impl FileRecord {
    /// The record of `bytes` (a sops YAML file shown as `origin` in errors).
    pub(crate) fn of(bytes: &[u8], origin: &str) -> Result<FileRecord, crate::sops::Error> {
        use sha2::{Digest, Sha256};
        let recipients = crate::sops::recipients(bytes, crate::sops::Format::Yaml, origin)?
            .into_iter()
            .map(|r| r.trim().to_string())
            .collect();
        Ok(FileRecord {
            sha256: hex::encode(Sha256::digest(bytes)),
            recipients,
        })
    }
}

/// The manifest layout this varsmith writes (validation, shape and script hashes).
pub(crate) const MANIFEST_FORMAT: u32 = 2;

fn legacy_format() -> u32 {
    1
}

impl Manifest {
    /// Reads a manifest to change it; `Ok(None)` when it does not exist.
    pub(crate) fn read(root: &Path, path: &Path) -> Result<Option<Manifest>, Error> {
        Ok(Manifest::load(root, path)?.map(Arc::unwrap_or_clone))
    }

    /// Reads a manifest to look at it; `Ok(None)` when it does not exist. Parsed once per
    /// version of the file while a read cache is active (`crate::confined::read_parsed`):
    /// the status pass, `check` and the recipients comparison each look at every manifest.
    pub(crate) fn load(root: &Path, path: &Path) -> Result<Option<Arc<Manifest>>, Error> {
        super::fs::read_parsed(root, path, super::MAX_STORE_FILE, |bytes| {
            serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
                path: path.to_path_buf(),
                msg: crate::workspace::quote::parser_message(&e.to_string()),
            })
        })
    }

    /// Serializes the manifest (pretty JSON, trailing newline).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Reads the run id recorded in a sops secrets file without decrypting it: the plaintext
/// `varsmith_run_unencrypted:` line. `None` if the file or the line is missing.
pub(crate) fn read_run_id(root: &Path, path: &Path) -> Option<String> {
    let text = super::read_file_shared(root, path).ok()??;
    let needle = format!("{RUN_KEY}: ");
    for line in text.split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(needle.as_bytes()) {
            let s = std::str::from_utf8(rest).ok()?.trim().trim_matches('"');
            return Some(s.to_string());
        }
    }
    None
}

/// The workspace-relative key of a sops file in [`Manifest::files`] (`/` separated).
pub(crate) fn record_key(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The generator whose manifest records the sops file at `path`: `(owner, generator)` for
/// `sops/machines/<h>/secrets/[admin/]<g>.yaml`, `sops/users/<u>/[homes/<home>/]secrets/…` and `sops/shared/secrets/[admin/]<g>.yaml`,
/// `None` for any other path.
pub(crate) fn owner_of(root: &Path, path: &Path) -> Option<(super::Owner, String)> {
    let key = record_key(root, path);
    let parts: Vec<&str> = key.split('/').collect();
    let (owner, rest) = match parts.as_slice() {
        ["sops", "machines", m, rest @ ..] => (super::Owner::Machine((*m).to_string()), rest),
        ["sops", "shared", rest @ ..] => (super::Owner::Shared, rest),
        ["sops", "users", _, "homes", h, rest @ ..] => (super::Owner::User((*h).to_string()), rest),
        ["sops", "users", u, rest @ ..] => (super::Owner::User((*u).to_string()), rest),
        _ => return None,
    };
    let file = match rest {
        ["secrets", f] | ["secrets", "admin", f] => *f,
        _ => return None,
    };
    let stem = file.strip_suffix(".yaml")?;
    Some((owner, stem.to_string()))
}

/// The recorded state of the sops file at `path` (`None`: no manifest, or no record of it).
pub(crate) fn recorded(root: &Path, path: &Path) -> Option<FileRecord> {
    let (owner, g) = owner_of(root, path)?;
    let man = Manifest::load(root, &owner.manifest_file(root, &g)).ok()??;
    man.files.get(&record_key(root, path)).cloned()
}

/// Records the current bytes of the sops file at `path` in its generator's manifest (a file
/// no manifest covers, or that is gone, is left unrecorded). Returns whether the manifest
/// changed. Callers have verified or written the file themselves: recording is what makes a
/// keyless `check` trust it.
pub(crate) fn record(root: &Path, path: &Path) -> Result<bool, Error> {
    let Some((owner, g)) = owner_of(root, path) else {
        return Ok(false);
    };
    let mpath = owner.manifest_file(root, &g);
    let Some(mut man) = Manifest::read(root, &mpath)? else {
        return Ok(false);
    };
    let key = record_key(root, path);
    let rec = match super::read_file(root, path)? {
        Some(bytes) => Some(FileRecord::of(&bytes, &key).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?),
        None => None,
    };
    let old = man.files.get(&key).cloned();
    if old == rec {
        return Ok(false);
    }
    match rec {
        Some(r) => man.files.insert(key, r),
        None => man.files.shift_remove(&key),
    };
    super::write_atomic(root, &mpath, &man.to_bytes())?;
    Ok(true)
}

/// Records the new bytes of the sops file at `path` only when its previous bytes `old` were
/// the recorded ones (a rewrap of a trusted file stays trusted; a file already changed
/// outside varsmith stays a finding until verified). Returns whether the manifest changed.
pub(crate) fn rerecord(root: &Path, path: &Path, old: &[u8]) -> Result<bool, Error> {
    use sha2::{Digest, Sha256};
    match recorded(root, path) {
        Some(r) if r.sha256 == hex::encode(Sha256::digest(old)) => record(root, path),
        _ => Ok(false),
    }
}
