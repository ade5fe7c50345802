//! The per-generator manifest: which run produced the stored outputs, from which definition
//! (fingerprint) and which dependency runs, and the hashes of the public facts.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::Error;

/// The plaintext (MAC-covered) key in every secrets file that records the run that wrote it.
pub const RUN_KEY: &str = "varsmith_run_unencrypted";

/// What one committed generator run left behind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
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
}

/// The manifest layout this varsmith writes (validation, shape and script hashes).
pub const MANIFEST_FORMAT: u32 = 2;

fn legacy_format() -> u32 {
    1
}

impl Manifest {
    /// Reads a manifest; `Ok(None)` when it does not exist.
    pub fn read(root: &Path, path: &Path) -> Result<Option<Manifest>, Error> {
        let Some(bytes) = super::read_file(root, path)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Malformed {
                path: path.to_path_buf(),
                msg: crate::workspace::quote::parser_message(&e.to_string()),
            })
    }

    /// Serializes the manifest (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Reads the run id recorded in a sops secrets file without decrypting it: the plaintext
/// `varsmith_run_unencrypted:` line. `None` if the file or the line is missing.
pub fn read_run_id(root: &Path, path: &Path) -> Option<String> {
    let text = super::read_file(root, path).ok()??;
    let needle = format!("{RUN_KEY}: ");
    for line in text.split(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(needle.as_bytes()) {
            let s = std::str::from_utf8(rest).ok()?.trim().trim_matches('"');
            return Some(s.to_string());
        }
    }
    None
}
