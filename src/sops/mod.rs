//! The sops file format, byte-compatible with sops 3.11 (see `docs/sops-format.md`).
//!
//! CONTRACT (used by the rest of varsmith; the sops module owner fills in the bodies):

use std::path::Path;

use indexmap::IndexMap;
use zeroize::Zeroizing;

use crate::keys::Identities;

/// The file formats sops knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`).
    Yaml,
    /// JSON (`.json`).
    Json,
    /// dotenv (`.env`).
    Dotenv,
    /// Anything else: the raw bytes under a `data` key, in a JSON envelope.
    Binary,
}

impl Format {
    /// The format sops picks for a path by its extension.
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") | Some("yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            _ => Format::Binary,
        }
    }
}

/// Errors of the sops module. Messages name the file when one is known and never hold a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until the module is built.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// The process exit code for this error (1 for a file that fails to decrypt or verify,
    /// 2 for malformed input).
    pub fn exit_code(&self) -> i32 {
        crate::EXIT_PROBLEM
    }
}

/// Encrypts a flat map of name -> raw bytes (any bytes, not only UTF-8) into a sops YAML file
/// for `recipients` (each `age1…` or `ssh-ed25519 …`), as `sops encrypt` would write it.
pub fn encrypt_flat_yaml(
    _entries: &[(String, &[u8])],
    _recipients: &[String],
) -> Result<Vec<u8>, Error> {
    Err(Error::Other("sops: not built yet".into()))
}

/// Decrypts a flat sops file (any format) into name -> raw bytes, verifying the MAC.
/// `origin` names the file in errors.
pub fn decrypt_flat(
    _file: &[u8],
    _format: Format,
    _ids: &Identities,
    _origin: &str,
) -> Result<IndexMap<String, Zeroizing<Vec<u8>>>, Error> {
    Err(Error::Other("sops: not built yet".into()))
}

/// The recipient strings of a sops file's metadata, in file order (no decryption).
pub fn recipients(_file: &[u8], _format: Format, _origin: &str) -> Result<Vec<String>, Error> {
    Err(Error::Other("sops: not built yet".into()))
}

/// `sops updatekeys`: unwraps the data key with `ids` and wraps it for exactly `recipients`;
/// values, `lastmodified` and `mac` stay byte-identical.
pub fn update_keys(
    _file: &[u8],
    _format: Format,
    _ids: &Identities,
    _recipients: &[String],
    _origin: &str,
) -> Result<Vec<u8>, Error> {
    Err(Error::Other("sops: not built yet".into()))
}
