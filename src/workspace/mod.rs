//! The workspace: `varsmith.yaml` (inventory) and generator definitions, validated.

pub mod inventory;

use std::path::PathBuf;

pub use inventory::{Backend, DeploySettings, Inventory, Machine};

/// Errors in the workspace's definitions. All are exit code 2 and name the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Exit code: definitions errors are always 2.
    pub fn exit_code(&self) -> i32 {
        crate::EXIT_USAGE
    }
}

/// A loaded workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The directory holding `varsmith.yaml`.
    pub root: PathBuf,
    /// The parsed inventory.
    pub inventory: Inventory,
}
