//! Running generators: plaintext directories on tmpfs ([`tmpfs`]), the sandbox ([`sandbox`],
//! [`bwrap`], [`identity`], [`limits`], [`outputs`], [`capture`]), the panic-safe scheduler
//! ([`scheduler`]), prompts, progress and signals.

pub mod bwrap;
pub mod capture;
pub mod fault;
pub mod helper;
pub mod identity;
pub mod limits;
pub mod outputs;
pub mod progress;
pub mod prompts;
pub mod sandbox;
pub mod scheduler;
pub(crate) mod seccomp;
pub mod signals;
pub mod tmpfs;
