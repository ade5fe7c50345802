//! `varsmith import`: bring existing secrets over without regenerating anything.
//!
//! * `import clan DIR` ([`clan`]): every var of a clan workspace (`vars/per-machine/`,
//!   `vars/shared/`) that a generator of this workspace declares becomes that generator's
//!   committed outputs, values byte-identical, with the fingerprint and dependency runs a
//!   `generate` would record, so `check` is clean and nothing regenerates. Each machine's
//!   clan age key (`sops/machines/<m>/key.json`, whose private half the host has at
//!   `/var/lib/sops-nix/key.txt`) becomes its `key.json` recipient, so every host decrypts
//!   with the key it has today.
//! * `import sops FILE…` ([`sops_files`]): hand-kept sops files adopted as declared external
//!   secrets ([`crate::store::external`]).
//!
//! Both refuse to overwrite anything that exists, decrypt and re-encrypt everything before
//! writing, then make it visible in one batch (one flush, then renames; manifests of each
//! generator after its files) through the store's writer. `--dry-run` does all the reading and
//! decrypting and lists what would be written, writing nothing.

mod clan;
mod clan_import;
mod sops_import;

use std::path::{Path, PathBuf};

pub(crate) use clan_import::clan;
pub(crate) use sops_import::sops_files;

use crate::store::{self, Batch};
use crate::workspace::Workspace;

/// What an import did (or, with `--dry-run`, would do).
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Nothing was written.
    pub dry_run: bool,
    /// Paths written (or that would be), relative to the workspace.
    pub written: Vec<String>,
    /// `machine/generator` (or file) labels imported.
    pub imported: Vec<String>,
    /// Things the user should know (vars not imported and why).
    pub notes: Vec<String>,
}

/// The admins' recipients as sops records them (trimmed).
fn admins(ws: &Workspace) -> Vec<String> {
    ws.inventory
        .admins
        .values()
        .map(|r| r.trim().to_string())
        .collect()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Makes a staged batch visible (refused once SIGINT/SIGTERM arrived), stages the paths in
/// git, and returns them relative to the root.
fn finish(ws: &Workspace, batch: Batch, written: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    {
        let Some(_gate) = crate::process::signals::commit_gate() else {
            return Err(store::Error::Interrupted.into());
        };
        batch.commit()?;
    }
    store::git::stage(ws, written, false)?;
    Ok(written.iter().map(|p| rel(&ws.root, p)).collect())
}
