//! The on-disk layout of vars, atomic commits of one generator's outputs, and the per-generator
//! manifest (run id, fingerprint, dependency runs, fact hashes) that tells missing, stale and
//! torn outputs apart.

mod atomic;
mod commit;
pub mod git;
mod layout;
mod manifest;
mod recipients;
pub mod sopsconfig;

pub use atomic::{Batch, sweep_stale_temps, sync_dir_tree, write_atomic};
pub use commit::{Commit, Files, commit, new_run_id, now_rfc3339, read_outputs};
pub use layout::{Owner, admin_key_json, host_key_json};
pub use manifest::{Manifest, RUN_KEY, read_run_id};
pub use recipients::{KeyJsonEntry, expected_recipients, host_recipients, read_key_json};

use std::path::PathBuf;

/// Errors while reading or writing stored vars.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored file is malformed.
    #[error("{path}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Encryption or decryption failed.
    #[error(transparent)]
    Sops(#[from] crate::sops::Error),
}

/// Where commits stage their temp files: `sops/.tmp` (swept of dead runs' leftovers).
pub fn temp_dir(root: &std::path::Path) -> PathBuf {
    root.join("sops/.tmp")
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
