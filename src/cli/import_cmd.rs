//! `varsmith import clan` and `varsmith import sops`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::CmdResult;
use super::core_cmd::Context;
use crate::ops::import::Report;
use crate::store::Owner;

/// `varsmith import …`
#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Import a clan workspace's vars (vars/per-machine/, vars/shared/) with values
    /// byte-identical and nothing to regenerate; each machine keeps its clan age key
    /// (/var/lib/sops-nix/key.txt on the host) as its recipient.
    Clan(ImportClanArgs),
    /// Adopt hand-kept sops YAML files (e.g. sops-nix's secrets/common.yaml) as declared
    /// external secrets: re-keyed by `rekey`, verified by `check`, never generated.
    Sops(ImportSopsArgs),
}

/// `varsmith import clan`
#[derive(Args, Debug)]
pub struct ImportClanArgs {
    /// The clan workspace (the directory holding vars/ and sops/); default: this workspace.
    #[arg(value_name = "CLAN_DIR")]
    pub clan_dir: Option<PathBuf>,
    /// Decrypt and check everything, print what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `varsmith import sops`
#[derive(Args, Debug)]
pub struct ImportSopsArgs {
    /// sops YAML files to adopt (each becomes secrets/<name>.yaml).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// For this machine only (sops/machines/<M>/secrets/).
    #[arg(
        long,
        value_name = "M",
        conflicts_with = "shared",
        required_unless_present = "shared"
    )]
    pub machine: Option<String>,
    /// For every machine (sops/shared/secrets/).
    #[arg(long)]
    pub shared: bool,
    /// Check everything, print what would be written, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs an import command.
pub(super) fn run(ctx: &Context, cmd: ImportCmd) -> CmdResult {
    let ws = ctx.workspace()?;
    let ids = ctx.identities()?;
    let report = match cmd {
        ImportCmd::Clan(a) => {
            let dir = a.clan_dir.unwrap_or_else(|| ws.root.clone());
            crate::ops::import::clan(&ws, &dir, &ids, a.dry_run)?
        }
        ImportCmd::Sops(a) => {
            let owner = match a.machine {
                Some(m) => Owner::Machine(m),
                None => Owner::Shared,
            };
            crate::ops::import::sops_files(&ws, &a.files, &owner, &ids, a.dry_run)?
        }
    };
    print(&report);
    Ok(0)
}

fn print(r: &Report) {
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    let verb = if r.dry_run { "would write" } else { "wrote" };
    for p in &r.written {
        println!("{verb} {p}");
    }
    let what = if r.dry_run {
        "would import"
    } else {
        "imported"
    };
    eprintln!(
        "{what} {} item(s): {}",
        r.imported.len(),
        r.imported.join(", ")
    );
}
