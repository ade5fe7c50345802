//! Errors of the sops module. Every message names the file and never holds a value.

/// Errors of the sops module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input cannot be parsed or breaks a sops rule (bad syntax, non-string key, top-level
    /// list, malformed `ENC[...]`, truncated file).
    #[error("{origin}: {msg}")]
    Malformed {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// What is wrong (never a value).
        msg: String,
    },
    /// The file does not decrypt or verify (GCM failure, MAC mismatch).
    #[error("{origin}: {msg}")]
    Decrypt {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// What failed (never a value).
        msg: String,
    },
    /// The MAC does not verify (mismatch, missing, or it does not decrypt).
    #[error("{origin}: {msg}")]
    Mac {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// What failed (never a value or a MAC).
        msg: String,
    },
    /// A tree path (`["a"][0]`) that does not parse.
    #[error("{msg}")]
    InvalidPath {
        /// What is wrong with it.
        msg: String,
    },
    /// `set`/`unset`: a tree path or JSON value that does not parse (sops exit 7).
    #[error("{msg}")]
    InvalidSet {
        /// What is wrong (never the value).
        msg: String,
    },
    /// A path component that is not in the file.
    #[error("{origin}: {msg}")]
    NotFound {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// Which component.
        msg: String,
    },
    /// `edit`: the editor left the file as it was; nothing was written.
    #[error("{origin}: file has not changed, exiting")]
    Unchanged {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
    },
    /// `edit`: no editor could be started, or it failed.
    #[error("{msg}")]
    Editor {
        /// What went wrong (never file content).
        msg: String,
        /// True when no editor was found at all (sops exit 201).
        missing: bool,
    },
    /// No identity unwraps the data key.
    #[error(
        "{origin}: no identity can decrypt the data key (recipients: {recipients}; searched: {searched})"
    )]
    NoIdentity {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// The file's recipients.
        recipients: String,
        /// Where identities were looked for.
        searched: String,
    },
    /// The file has no `sops` metadata.
    #[error("{origin}: sops metadata not found (not an encrypted sops file)")]
    NoMetadata {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
    },
    /// Encrypting a file that already holds `sops` metadata.
    #[error("{origin}: file already encrypted (it has a top-level `sops` key)")]
    AlreadyEncrypted {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
    },
    /// A recipient could not be used.
    #[error("{origin}: {cause}")]
    Key {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// The key error.
        cause: crate::keys::Error,
    },
    /// Reading or writing a file failed.
    #[error("{origin}: {cause}")]
    Io {
        /// The file as messages name it (its path, or `<stdin>`).
        origin: String,
        /// The I/O error.
        cause: std::io::Error,
    },
}

impl crate::error::HasKind for Error {
    /// Failed (exit 1) for a file that fails to decrypt/verify, has no matching identity or
    /// cannot be read; usage (exit 2) for malformed input (including a file without sops
    /// metadata or a truncated one) or bad recipients.
    fn kind(&self) -> crate::error::Kind {
        match self {
            Error::Malformed { .. }
            | Error::AlreadyEncrypted { .. }
            | Error::Key { .. }
            | Error::NoMetadata { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidSet { .. } => crate::error::Kind::Usage,
            _ => crate::error::Kind::Failed,
        }
    }
}

impl Error {
    /// The exit code the sops 3.11 binary uses for this kind of error, for the `varsmith sops`
    /// verbs that stand in for it: 1 no metadata / missing path component / other, 2 input
    /// that cannot be read or parsed (including the parser limits), 25 a value that does not
    /// decrypt, 7 a bad `set`/`unset` path or value, 51 a MAC that does not verify, 91 a
    /// bad `--extract` path, 100 a file that does not
    /// exist, 128 no identity for the data key, 200 an edit that changed nothing, 201 no
    /// editor, 203 already encrypted. (sops exits 1 when a file to decrypt does not parse;
    /// varsmith keeps 2 for every parse failure, whichever command reads the file.)
    pub(crate) fn sops_exit_code(&self) -> i32 {
        match self {
            Error::Io { cause: source, .. } if source.kind() == std::io::ErrorKind::NotFound => 100,
            Error::Malformed { .. } | Error::Io { .. } => 2,
            Error::Decrypt { .. } => 25,
            Error::Mac { .. } => 51,
            Error::InvalidSet { .. } => 7,
            Error::InvalidPath { .. } => 91,
            Error::NoIdentity { .. } => 128,
            Error::Unchanged { .. } => 200,
            Error::Editor { missing: true, .. } => 201,
            Error::AlreadyEncrypted { .. } => 203,
            Error::NoMetadata { .. }
            | Error::NotFound { .. }
            | Error::Editor { .. }
            | Error::Key { .. } => 1,
        }
    }

    /// A MAC verification error.
    pub fn mac(origin: &str, msg: impl Into<String>) -> Self {
        Error::Mac {
            origin: origin.to_string(),
            msg: msg.into(),
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
