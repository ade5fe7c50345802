//! The sops file format, byte-compatible with sops 3.11 (see `docs/sops-format.md`).
//!
//! * [`tree`]: the data model (documents of ordered maps, lists, typed leaves, comments).
//! * `crypto`: `ENC[AES256_GCM,…]` values and age wrapping of the data key.
//! * `walk` + `rules`: which leaves are encrypted, the walk that encrypts/decrypts them
//!   and computes the SHA-512 MAC.
//! * `metadata`: the `sops` block in 3.11 struct order.
//! * `validate`: a file's structure checked without keys (every `ENC` value, the metadata),
//!   and full verification with identities, for `varsmith check`.
//! * `yaml`, `json`, `dotenv`, [`store`]: the file formats (binary is a JSON envelope).
//! * `config`: `.sops.yaml` creation rules and `stores:` settings (pgp/kms/... keys are
//!   refused, never dropped).
//! * `limits` + `io`: nesting depth, alias expansion and input size bounds shared by
//!   every parser (violations are malformed input, exit 2).
//! * `path`, `edit`, `verbs`, `editor`: tree paths, extract/set/unset, re-sealing an
//!   opened file (edit, set, rotate) and running `$EDITOR`, for the `varsmith sops` verbs.
//! * INI (`.ini`) is recognised and refused: there is no INI store.
//!
//! The first five functions below are the CONTRACT used by the rest of varsmith.

pub(crate) mod config;
pub(crate) mod crypto;
pub(crate) mod dotenv;
mod error;
pub(crate) mod gofmt;
pub(crate) mod json;
pub(crate) mod limits;
pub(crate) mod metadata;
pub(crate) mod rules;
pub mod store;
pub mod tree;
pub(crate) mod validate;
pub(crate) mod walk;
pub(crate) mod yaml;

mod api;
pub(crate) mod edit;
pub(crate) mod editor;
pub(crate) mod io;
pub(crate) mod path;
pub(crate) mod verbs;

pub use api::{Decrypted, EncryptOptions, decrypt, decrypt_to_plaintext, encrypt, encrypt_tree};
pub(crate) use api::{encrypt_tree_with, encrypt_with};
pub use error::{Error, Result};
pub use metadata::Metadata;

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
    /// INI (`.ini`): recognised so it is refused with a clear error instead of being
    /// silently treated as binary (sops has an INI store; varsmith does not).
    Ini,
}

impl Format {
    /// The format sops picks for a path by its extension.
    pub(crate) fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml") | Some("yml") => Format::Yaml,
            Some("json") => Format::Json,
            Some("env") => Format::Dotenv,
            Some("ini") => Format::Ini,
            _ => Format::Binary,
        }
    }
}

/// Encrypts a flat map of name -> raw bytes (any bytes, not only UTF-8) into a sops YAML file
/// for `recipients` (each `age1…` or `ssh-ed25519 …`), as `sops encrypt` would write it.
pub fn encrypt_flat_yaml(
    entries: &[(String, &[u8])],
    recipients: &[String],
) -> Result<Vec<u8>, Error> {
    api::encrypt_flat_yaml(entries, recipients)
}

/// Decrypts a flat sops file (any format) into name -> raw bytes, verifying the MAC.
/// `origin` names the file in errors.
pub fn decrypt_flat(
    file: &[u8],
    format: Format,
    ids: &Identities,
    origin: &str,
) -> Result<IndexMap<String, Zeroizing<Vec<u8>>>, Error> {
    api::decrypt_flat(file, format, ids, origin)
}

/// The recipient strings of a sops file's metadata, in file order (no decryption).
pub fn recipients(file: &[u8], format: Format, origin: &str) -> Result<Vec<String>, Error> {
    api::recipients(file, format, origin)
}

/// `sops updatekeys`: unwraps the data key with `ids` and wraps it for exactly `recipients`;
/// values, `lastmodified` and `mac` stay byte-identical.
pub fn update_keys(
    file: &[u8],
    format: Format,
    ids: &Identities,
    recipients: &[String],
    origin: &str,
) -> Result<Vec<u8>, Error> {
    api::update_keys(file, format, ids, recipients, origin)
}
