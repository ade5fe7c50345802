//! Running generators: the sandbox ([`sandbox`], `bwrap`, [`identity`], `limits`,
//! `outputs`, `capture`, `spawn`, `supervise`), the panic-safe scheduler (`scheduler`), prompt
//! answers and progress. Plaintext directories, signals and the commit gate live in
//! `crate::process`.

pub(crate) mod bwrap;
pub(crate) mod capture;
pub mod helper;
pub mod identity;
pub(crate) mod limits;
pub(crate) mod outputs;
pub(crate) mod progress;
pub(crate) mod prompts;
pub mod sandbox;
pub(crate) mod scheduler;
pub(crate) mod seccomp;
pub(crate) mod skeleton;
pub(crate) mod spawn;
pub(crate) mod supervise;
