//! Harnesses shared by the integration tests: real components only (sops, age, bubblewrap, sshd,
//! the offline nix kit, a pty), and the CI rule that a missing component fails instead of skipping.

pub mod ci;
pub mod common;
pub mod nix;
pub mod remote;
pub mod sops;
pub mod tty;
