//! Real ZeroTier identities, made and checked in Rust as ZeroTierOne does (no
//! `zerotier-idtool` needed): type-0 identities with their memory-hard proof of work
//! ([`Identity`], `hash`), network ids and members' RFC 4193 / 6PLANE addresses
//! ([`NetworkId`]). The bundled zerotier generators use them through `varsmith zerotier`, which
//! every generator finds on its PATH (see [`crate::run::helper`]).

mod address;
pub(crate) mod hash;
mod identity;

pub(crate) use address::{Address, NetworkId, RFC4193_PREFIX, SIXPLANE_PREFIX};
pub(crate) use identity::Identity;

/// Errors about ZeroTier identities and ids. Messages never show a private key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Not in the expected text form (exit code 2).
    #[error("{0}")]
    Parse(String),
    /// Well-formed but not a valid identity (exit code 1): the reason.
    #[error("not a valid ZeroTier identity: {0}")]
    Invalid(String),
}

impl crate::error::HasKind for Error {
    /// Malformed text is a usage error, an invalid identity a failed check.
    fn kind(&self) -> crate::error::Kind {
        match self {
            Error::Parse(_) => crate::error::Kind::Usage,
            Error::Invalid(_) => crate::error::Kind::Failed,
        }
    }
}
