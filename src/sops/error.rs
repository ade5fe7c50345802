//! Errors of the sops module. Every message names the file and never holds a value.

/// Errors of the sops module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be parsed or breaks a sops rule (bad syntax, non-string key, top-level
    /// list, malformed `ENC[...]`, truncated file).
    #[error("{origin}: {msg}")]
    Malformed {
        /// The file.
        origin: String,
        /// What is wrong (never a value).
        msg: String,
    },
    /// The file does not decrypt or verify (GCM failure, MAC mismatch).
    #[error("{origin}: {msg}")]
    Decrypt {
        /// The file.
        origin: String,
        /// What failed (never a value).
        msg: String,
    },
    /// No identity unwraps the data key.
    #[error(
        "{origin}: no identity can decrypt the data key (recipients: {recipients}; searched: {searched})"
    )]
    NoIdentity {
        /// The file.
        origin: String,
        /// The file's recipients.
        recipients: String,
        /// Where identities were looked for.
        searched: String,
    },
    /// The file has no `sops` metadata.
    #[error("{origin}: sops metadata not found (not an encrypted sops file)")]
    NoMetadata {
        /// The file.
        origin: String,
    },
    /// Encrypting a file that already holds `sops` metadata.
    #[error("{origin}: file already encrypted (it has a top-level `sops` key)")]
    AlreadyEncrypted {
        /// The file.
        origin: String,
    },
    /// A recipient could not be used.
    #[error("{origin}: {source}")]
    Key {
        /// The file.
        origin: String,
        /// The key error.
        source: crate::keys::Error,
    },
    /// Reading or writing a file failed.
    #[error("{origin}: {source}")]
    Io {
        /// The file.
        origin: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code: 1 for a file that fails to decrypt/verify, has no matching
    /// identity or cannot be read; 2 for malformed input (including a file without sops
    /// metadata or a truncated one) or bad recipients.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Malformed { .. }
            | Error::AlreadyEncrypted { .. }
            | Error::Key { .. }
            | Error::NoMetadata { .. } => crate::EXIT_USAGE,
            _ => crate::EXIT_PROBLEM,
        }
    }

    /// A malformed-input error.
    pub fn malformed(origin: &str, msg: impl Into<String>) -> Self {
        Error::Malformed {
            origin: origin.to_string(),
            msg: msg.into(),
        }
    }

    /// A decrypt/verify error.
    pub fn decrypt(origin: &str, msg: impl Into<String>) -> Self {
        Error::Decrypt {
            origin: origin.to_string(),
            msg: msg.into(),
        }
    }
}

/// Result alias of the sops module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
