//! Host keys to targets (push-keys), nixos-anywhere bootstrap, and wrapped deploys.
//!
//! Everything here shells out: OpenSSH `ssh` for push-keys (so the user's ssh config, agent,
//! ProxyJump and hardware keys all work), `nixos-anywhere` for bootstrap, and
//! `nixos-rebuild`/`nh`/`darwin-rebuild`/`clan` for deploy. Secret key bytes only ever travel on
//! a child's stdin or through a private tmpfs directory; they never appear in an argv, a log
//! line or an error message.
//!
//! * `activation`: activation and partitioning secrets, and deploy's upload of them.
//! * [`known_hosts`]: the workspace's pinned host keys (`<root>/known_hosts`).
//! * [`ssh`]: the `ssh` command line builder and its error classification.
//! * [`hostkeys`]: loading and checking a machine's key pair and the global identity.
//! * `tar`: a minimal ustar writer, the framing of push-keys' stdin stream.
//! * [`push_keys`]: installing keys on a running target.
//! * [`bootstrap`]: the `--extra-files` tree and the nixos-anywhere run.
//! * `deploy`: per-machine deploy commands as data, and their order in stages.
//! * `build_host`: a remote `--build-host`, verified against its own pin (an ssh config).
//! * `darwin`: nix-darwin deploys on the target (flake source copied, activated over ssh).
//! * `stages`: running the stages as barriers, in parallel within one, with a summary.
//! * `sync`: rebuilding this machine (nh, nixos-rebuild or darwin-rebuild).
//! * `install`: keys and activation secrets under the installer's root, then nixos-install.
//! * `rollback`: the previous generation, on the target.
//! * `verify`: `deploy --verify`, the secrets' paths, owners, modes and failed units.
//!
//! # Host trust
//!
//! The workspace keeps `<root>/known_hosts` (public, committed), keyed by machine name.
//! `bootstrap` pins the generated host key (from the facts) once nixos-anywhere succeeded.
//! When a machine is pinned, every ssh connection varsmith makes (and `NIX_SSHOPTS` for
//! nixos-rebuild and nh) uses `UserKnownHostsFile=<that file>`, `GlobalKnownHostsFile=/dev/null`,
//! `HostKeyAlias=<machine>` and `StrictHostKeyChecking=yes`, placed before the user's
//! `--ssh-option`s so they cannot be overridden: a target presenting another key is refused.
//! When nothing is pinned (an installer, or a machine installed by other means), varsmith
//! does not invent trust: the user's own OpenSSH known_hosts and config decide, in
//! `BatchMode`, so an unknown key is an error that suggests verifying it or passing
//! `--ssh-option StrictHostKeyChecking=accept-new` (explicit trust on first use).
//! `push-keys` pins the pushed key too, beside the key pinned before (the running sshd keeps
//! serving its old key until it restarts); both go through `known_hosts::KnownHosts::pin_installed`.

pub(crate) mod activation;
pub mod bootstrap;
pub(crate) mod build_host;
pub(crate) mod darwin;
pub(crate) mod deploy;
pub(crate) mod home;
pub mod hostkeys;
pub(crate) mod install;
pub mod known_hosts;
pub mod push_keys;
pub(crate) mod rollback;
pub(crate) mod rotate;
pub mod ssh;
pub(crate) mod stages;
pub(crate) mod sync;
pub(crate) mod tar;
pub(crate) mod verify;

use std::path::PathBuf;

/// Errors of the remote commands. Messages name the machine, target and file involved and never
/// hold key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad invocation (unknown machine, malformed option, impossible combination). Exit 2.
    #[error("{0}")]
    Usage(String),
    /// A key that push-keys or bootstrap needs has not been generated.
    #[error(
        "{host}: {what} has not been generated ({path} is missing); run `varsmith generate {host} -g {generator}` or pass --generate"
    )]
    MissingKey {
        /// Machine.
        host: String,
        /// Human name of the key.
        what: &'static str,
        /// Generator producing it.
        generator: &'static str,
        /// The missing file.
        path: PathBuf,
    },
    /// A deployable secret's sops file does not exist yet.
    #[error(
        "{host}: generator {generator}: {path} is missing; run `varsmith generate {host} -g {generator}`"
    )]
    NotGenerated {
        /// Machine.
        host: String,
        /// Generator.
        generator: String,
        /// The missing sops file.
        path: PathBuf,
    },
    /// A decrypted secret does not belong to its committed public half.
    #[error("{host}: the private key in {secret} does not match the public key in {public}")]
    KeyMismatch {
        /// Machine.
        host: String,
        /// The sops file.
        secret: PathBuf,
        /// The public fact.
        public: PathBuf,
    },
    /// A key file is malformed (not an OpenSSH key, or the expected entry is absent).
    #[error("{path}: {msg}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the value).
        msg: String,
    },
    /// Decryption failed.
    #[error(transparent)]
    Sops(#[from] crate::sops::Error),
    /// A workspace write (the pin file) failed.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// A local file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// An external program could not be started.
    #[error("cannot run `{program}`: {cause}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        cause: std::io::Error,
    },
    /// The target presented a host key other than the pinned one.
    #[error(
        "{target}: host key verification failed: the key it presents does not match the one pinned for {alias:?} in {known_hosts}; refusing to connect (if the machine was reinstalled, remove that line and pin again)"
    )]
    HostKeyMismatch {
        /// The ssh target.
        target: String,
        /// The known_hosts alias (the machine name).
        alias: String,
        /// The pin file.
        known_hosts: PathBuf,
    },
    /// Nothing is pinned and the user's OpenSSH setup does not know the target's key.
    #[error(
        "{target}: host key verification failed: {alias:?} has no pinned key in {known_hosts} and OpenSSH does not know the target's key; verify it and add it to your known_hosts, or pass --ssh-option StrictHostKeyChecking=accept-new to trust it on first use"
    )]
    HostKeyUnknown {
        /// The ssh target.
        target: String,
        /// The known_hosts alias (the machine name).
        alias: String,
        /// The pin file.
        known_hosts: PathBuf,
    },
    /// ssh could not connect or authenticate.
    #[error("{target}: unreachable: {detail}")]
    Unreachable {
        /// The ssh target.
        target: String,
        /// ssh's own message.
        detail: String,
    },
    /// The remote side of push-keys failed; the target's temporary files were removed.
    #[error("{target}: installing keys failed (remote exit {code}): {detail}")]
    Remote {
        /// The ssh target.
        target: String,
        /// The remote exit code.
        code: i32,
        /// The remote stderr.
        detail: String,
    },
    /// The installed files do not hash to the local ones.
    #[error("{target}: verification failed: {path} on the target does not match the local key")]
    Verify {
        /// The ssh target.
        target: String,
        /// The remote path.
        path: String,
    },
    /// A wrapped tool (nixos-anywhere, nixos-rebuild, check …) failed.
    #[error("{what} failed: {status}")]
    Tool {
        /// What ran.
        what: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}

impl crate::error::HasKind for Error {
    /// Usage (exit 2) for a bad invocation, the inner kind for sops and store errors,
    /// interrupted for a tool killed by Ctrl-C, else failed (exit 1).
    fn kind(&self) -> crate::error::Kind {
        use crate::error::Kind;
        match self {
            Error::Usage(_) => Kind::Usage,
            Error::Sops(e) => e.kind(),
            Error::Store(e) => e.kind(),
            // A wrapped tool that died of Ctrl-C: the user interrupted us (130), even when
            // the signal reached the tool before varsmith's own handler ran.
            Error::Tool { status, .. } if crate::process::signals::status_is_interrupt(status) => {
                Kind::Interrupted
            }
            _ => Kind::Failed,
        }
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
}

/// The first executable `prog` on `PATH`.
pub(crate) fn sync_which(prog: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Rejects a value that ssh or a wrapped tool would parse as an option.
pub(crate) fn no_leading_dash(what: &str, value: &str) -> Result<(), Error> {
    if value.starts_with('-') || value.is_empty() {
        return Err(Error::Usage(format!("invalid {what} {value:?}")));
    }
    Ok(())
}
