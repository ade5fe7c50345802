//! varsmith: a secrets and vars generator toolkit for NixOS and nix-darwin fleets.
//!
//! The library holds everything; `src/main.rs` is a thin CLI over it. Each module owns one
//! concern:
//!
//! * [`workspace`]: `varsmith.yaml`, generator definitions and their validation.
//! * [`graph`]: the DAG over (machine, generator) and the what-runs plan.
//! * [`sandbox`]: one generator run inside bubblewrap.
//! * [`generate`]: orchestration: plan, prompts, parallel runs, storage.
//! * [`store`]: the on-disk layout, atomic commits and fingerprints.
//! * [`sops`]: the sops file format (YAML, JSON, dotenv, binary), byte-compatible with sops 3.11.
//! * [`keys`]: age identities and recipients, ssh-to-age, OpenSSH key generation.
//! * [`remote`]: push-keys, bootstrap and deploy wrappers.
//! * [`audit`]: searching the nix store and the repo for leaked secrets.

pub mod audit;
pub mod check;
pub mod generate;
pub mod gitops;
pub mod graph;
pub mod keys;
pub mod progress;
pub mod prompts;
pub mod rekey;
pub mod remote;
pub mod sandbox;
pub mod sops;
pub mod sopsconfig;
pub mod store;
pub mod workspace;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code when the work failed or found a problem (check, audit).
pub const EXIT_PROBLEM: i32 = 1;
/// Exit code for a bad invocation or bad definitions.
pub const EXIT_USAGE: i32 = 2;

/// A bad invocation: unknown machine, malformed argument, missing prompt value. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl UsageError {
    /// Builds a usage error from anything displayable.
    pub fn new(msg: impl Into<String>) -> Self {
        UsageError(msg.into())
    }
}

/// Does a process with this pid exist? (Used to tell leftovers of killed runs from live ones.)
pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) sends no signal; it only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
