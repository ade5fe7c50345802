//! varsmith: a secrets and vars generator toolkit for NixOS and nix-darwin fleets.
//!
//! The library holds everything; `src/main.rs` is a thin CLI over it. Each module owns one
//! concern:
//!
//! * `child`: every non-sandboxed child process, built with no key material in its environment.
//! * [`cli`]: clap, human and `--json` output, error kinds to exit codes.
//! * [`error`] and [`secret`]: error kinds / exit codes, and the `SecretBytes` type.
//! * [`workspace`]: `varsmith.yaml`, generator definitions and their validation.
//! * `plan`: the DAG over (machine, generator), fingerprints, status and the what-runs plan.
//! * [`run`]: the sandbox, the panic-safe scheduler and prompt answers.
//! * `process`, `term`, `tty`: leaves every layer may use: pid liveness, signals, the commit
//!   gate and tmpfs plaintext directories; control-character escaping; terminal questions.
//! * `store`: the only writer: layout, symlink-safe atomic commits, manifest, lock, git.
//! * `ops`: one module per command (generate, check, rekey).
//! * [`sops`]: the sops file format (YAML, JSON, dotenv, binary), byte-compatible with sops 3.11.
//! * [`keys`]: age identities and recipients, ssh-to-age, OpenSSH key generation.
//! * [`remote`]: push-keys, bootstrap and deploy wrappers.
//! * [`audit`]: searching the nix store and the repo for leaked secrets.
//! * `zerotier`: ZeroTier identities, network ids and member addresses.

pub mod audit;
pub(crate) mod child;
pub mod cli;
pub(crate) mod confined;
pub mod error;
pub mod keys;
pub(crate) mod ops;
pub(crate) mod plan;
pub(crate) mod process;
pub mod remote;
pub(crate) mod replace;
pub mod run;
pub mod secret;
pub mod sops;
pub(crate) mod store;
pub(crate) mod suggest;
pub(crate) mod term;
pub(crate) mod tty;
pub mod workspace;
pub(crate) mod zerotier;

pub use error::{EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, UsageError};
