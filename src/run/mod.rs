//! Running generators: the sandbox ([`sandbox`], [`bwrap`], [`identity`], [`limits`],
//! [`outputs`], [`capture`]), the panic-safe scheduler ([`scheduler`]), prompt answers and
//! progress. Plaintext directories, signals and the commit gate live in `crate::process`.

pub mod bwrap;
pub mod capture;
pub mod helper;
pub mod identity;
pub mod limits;
pub mod outputs;
pub mod progress;
pub mod prompts;
pub mod sandbox;
pub mod scheduler;
pub(crate) mod seccomp;
