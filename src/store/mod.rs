//! The on-disk layout of vars, atomic commits of one generator's outputs, and the per-generator
//! manifest (run id, fingerprint, dependency runs, fact hashes) that tells missing, stale and
//! torn outputs apart.

mod atomic;
mod commit;
pub(crate) mod durable;
pub(crate) mod external;
pub(crate) mod git;
mod layout;
pub(crate) mod lock;
mod manifest;
mod recipients;
pub(crate) mod rewrap;
pub(crate) mod rotation;
pub(crate) mod sopsconfig;
pub(crate) mod sopsfiles;

pub(crate) use crate::confined as fs;
pub(crate) use crate::workspace::Owner;
pub(crate) use atomic::{Batch, sweep_stale_temps, sync_dir_tree, write_atomic};
pub(crate) use commit::{Commit, Files, Prepared, commit, prepare, read_outputs};
pub(crate) use layout::{admin_key_json, host_key_json};
pub(crate) use manifest::{FileRecord, MANIFEST_FORMAT, Manifest, read_run_id};
pub(crate) use manifest::{record, record_key, recorded, rerecord};
pub(crate) use recipients::{
    ADMINS_MIRROR, KeyJsonEntry, expected_recipients, host_recipients, read_key_json,
    user_recipients,
};
pub(crate) use recipients::{admins_mirror_differs, file_recipients, write_admins_mirror};

use std::path::PathBuf;

/// Errors while reading or writing stored vars.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A stored file is malformed.
    #[error("{path}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A symlink where the workspace must hold a directory or a file.
    #[error(
        "{path}: is a symlink; varsmith never reads or writes through symlinks in the workspace (remove it, or replace it with the real file)"
    )]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// A file where a directory must be.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A directory or special file where a regular file must be.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A path outside the workspace (or with `..` components).
    #[error("{path}: outside the workspace")]
    Outside {
        /// The path.
        path: PathBuf,
    },
    /// SIGINT/SIGTERM arrived before the commit started.
    #[error("interrupted")]
    Interrupted,
    /// Encryption or decryption failed.
    #[error(transparent)]
    Sops(#[from] crate::sops::Error),
}

impl From<crate::confined::Error> for Error {
    /// Every confined-file error keeps its variant (and so its message and exit code).
    fn from(e: crate::confined::Error) -> Self {
        use crate::confined::Error as E;
        match e {
            E::Io {
                path,
                cause: source,
            } => Error::Io {
                path,
                cause: source,
            },
            E::Malformed { path, msg } => Error::Malformed { path, msg },
            E::Symlink { path } => Error::Symlink { path },
            E::NotADirectory { path } => Error::NotADirectory { path },
            E::NotAFile { path } => Error::NotAFile { path },
            E::Outside { path } => Error::Outside { path },
        }
    }
}

impl crate::error::HasKind for Error {
    /// A malformed stored file is bad input (2), a sops error has its own kind, everything
    /// else is a failure (1).
    fn kind(&self) -> crate::error::Kind {
        match self {
            Error::Malformed { .. } => crate::error::Kind::Usage,
            Error::Sops(e) => e.kind(),
            Error::Interrupted => crate::error::Kind::Interrupted,
            _ => crate::error::Kind::Failed,
        }
    }
}

/// Largest stored file varsmith reads (a secrets file, fact or manifest).
pub(crate) const MAX_STORE_FILE: u64 = 64 * 1024 * 1024;

/// Reads a stored file under `root` without following symlinks; `Ok(None)` when missing.
pub(crate) fn read_file(
    root: &std::path::Path,
    path: &std::path::Path,
) -> Result<Option<Vec<u8>>, Error> {
    Ok(fs::read(root, path, MAX_STORE_FILE)?)
}

/// [`read_file`] without a copy while a read cache is active (to look at, not to keep).
pub(crate) fn read_file_shared(
    root: &std::path::Path,
    path: &std::path::Path,
) -> Result<Option<std::sync::Arc<[u8]>>, Error> {
    Ok(fs::read_shared(root, path, MAX_STORE_FILE)?)
}

/// Where commits stage their temp files: `sops/.tmp` (swept of dead runs' leftovers).
pub(crate) fn temp_dir(root: &std::path::Path) -> PathBuf {
    root.join("sops/.tmp")
}
