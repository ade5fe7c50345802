//! Core commands: init, admin, machine, generate, check, list, get, set, rekey.

use std::path::PathBuf;

use crate::{CmdResult, Command};

/// What every command needs: the workspace directory option and the identity files.
pub struct Context {
    /// `-C DIR`.
    pub dir: Option<PathBuf>,
    /// `--identity FILE…`.
    pub identity: Vec<PathBuf>,
}

impl Context {
    /// Builds the context from the global options.
    pub fn new(dir: Option<PathBuf>, identity: Vec<PathBuf>) -> Self {
        Context { dir, identity }
    }

    /// Loads the identities (explicit files first, then sops' sources).
    pub fn identities(&self) -> anyhow::Result<varsmith::keys::Identities> {
        Ok(varsmith::keys::Identities::discover(&self.identity)?)
    }
}

/// Runs a core command.
pub fn run(_ctx: &Context, _cmd: Command) -> CmdResult {
    anyhow::bail!("not built yet")
}
