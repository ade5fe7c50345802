//! age identities and recipients, the ssh-to-age conversion, and admin key generation.
//!
//! * [`Identities`] collects every identity sops would use (`--identity`, `SOPS_AGE_KEY`,
//!   `SOPS_AGE_KEY_FILE`, `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `~/.ssh/id_ed25519`, the default
//!   `keys.txt`), so decryption tries them all, as sops does.
//! * [`ssh_to_age`] converts OpenSSH ed25519 keys into age keys exactly as Mic92/ssh-to-age.
//! * [`keygen`] appends new admin keys without ever overwriting.
//! * Plugin recipients and identities (`age1yubikey1…`, `AGE-PLUGIN-…`) go to `age-plugin-NAME`
//!   on `PATH`; passphrase-protected identity files ask the passphrase on the terminal.

mod callbacks;
pub(crate) mod existing;
mod identities;
pub mod keygen;
mod passphrase;
mod plugin;
mod recipient;
pub mod ssh_to_age;

pub(crate) use identities::default_key_file;
pub use identities::{Identities, IdentitySource};
pub(crate) use recipient::{parse_recipient, validate_recipient};

use std::path::PathBuf;

/// Errors about keys: unreadable or malformed key files, unknown recipient types.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A key file or variable holds something that is not an identity.
    #[error("{origin}: {reason}")]
    BadIdentity {
        /// Where the identity came from (a path or an environment variable).
        origin: String,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// An identity file that does not exist.
    #[error("{origin}: no such identity file")]
    MissingIdentity {
        /// Where it was named (the path, or `SOPS_AGE_KEY_FILE=…`).
        origin: String,
    },
    /// A recipient string is not an age or ssh recipient.
    #[error("invalid age recipient {recipient:?}: {reason}")]
    BadRecipient {
        /// The recipient string (public, safe to print).
        recipient: String,
        /// What is wrong.
        reason: String,
    },
    /// An OpenSSH key could not be parsed or is not ed25519.
    #[error("{0}")]
    Ssh(String),
}

impl crate::error::HasKind for Error {
    /// Malformed input is usage (exit 2), I/O a failure (exit 1).
    fn kind(&self) -> crate::error::Kind {
        match self {
            Error::Io { .. } => crate::error::Kind::Failed,
            _ => crate::error::Kind::Usage,
        }
    }
}
