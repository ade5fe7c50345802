//! The seed's `hey` wrapper verbs beside deploy: `rollback`, `ssh` (and `sync`, `install`).
//! Each prints its exact command with `--dry-run` and runs nothing then.

use std::process::Command;

use crate::remote::deploy::quote;
use crate::remote::rollback;
use crate::remote::ssh::Ssh;
use crate::workspace::Workspace;

use super::args::{CmdResult, TargetArgs};
use super::core_cmd::Context;
use super::remote_cmd::{known_hosts, lib};

/// The machine's ssh connection (pinned when `known_hosts` pins it) and whether it is darwin.
fn connect(ctx: &Context, a: &TargetArgs) -> anyhow::Result<(Ssh, bool)> {
    let ws = Workspace::discover(ctx.dir.as_deref())?;
    let m = ws.machine(&a.host)?;
    let target = a
        .target
        .clone()
        .unwrap_or_else(|| m.target_or_default(&a.host));
    let kh = known_hosts(&a.known_hosts, &ws.root);
    let ssh = Ssh::new(&target, &a.host, &kh, &a.ssh_options).map_err(lib)?;
    Ok((ssh, m.is_darwin()))
}

/// Prints `argv` as one line (dry run) or runs it with the terminal; its exit code.
fn run_or_print(argv: &[String], dry_run: bool) -> CmdResult {
    if dry_run {
        println!(
            "{}",
            argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
        );
        return Ok(0);
    }
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .env_remove("SOPS_AGE_KEY")
        .status()
        .map_err(|source| crate::remote::Error::Spawn {
            program: argv[0].clone(),
            source,
        })?;
    Ok(status.code().unwrap_or(crate::EXIT_PROBLEM))
}

/// `varsmith rollback HOST [TARGET]`.
pub fn rollback(ctx: &Context, a: TargetArgs) -> CmdResult {
    let (ssh, darwin) = connect(ctx, &a)?;
    let argv = rollback::argv(&ssh, darwin).map_err(lib)?;
    let code = run_or_print(&argv, a.dry_run)?;
    if code != 0 {
        anyhow::bail!("{}: rollback failed (exit {code})", a.host);
    }
    Ok(0)
}

/// `varsmith ssh HOST [TARGET]`: ssh's own exit code.
pub fn ssh(ctx: &Context, a: TargetArgs) -> CmdResult {
    let (ssh, _) = connect(ctx, &a)?;
    run_or_print(&ssh.shell_argv(), a.dry_run)
}
