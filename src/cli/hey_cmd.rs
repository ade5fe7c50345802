//! The seed's `hey` wrapper verbs beside deploy: `rollback`, `ssh` (and `sync`, `install`).
//! Each prints its exact command with `--dry-run` and runs nothing then.

use crate::remote::deploy::quote;
use crate::remote::rollback;
use crate::remote::ssh::Ssh;

use super::args::{CmdResult, InstallArgs, SyncArgs, TargetArgs};
use super::core_cmd::Context;
use super::remote_cmd::{known_hosts, lib, with_generators};

/// The machine's ssh connection (pinned when `known_hosts` pins it) and whether it is darwin.
fn connect(ctx: &Context, a: &TargetArgs) -> anyhow::Result<(Ssh, bool)> {
    let ws = ctx.workspace()?;
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
    let status = crate::child::command(&argv[0])
        .args(&argv[1..])
        .status()
        .map_err(|source| crate::remote::Error::Spawn {
            program: argv[0].clone(),
            cause: source,
        })?;
    Ok(status.code().unwrap_or(crate::EXIT_PROBLEM))
}

/// `varsmith rollback HOST [TARGET]`.
pub(super) fn rollback(ctx: &Context, a: TargetArgs) -> CmdResult {
    let (ssh, darwin) = connect(ctx, &a)?;
    let argv = rollback::argv(&ssh, darwin).map_err(lib)?;
    let code = run_or_print(&argv, a.dry_run)?;
    if code != 0 {
        anyhow::bail!("{}: rollback failed (exit {code})", a.host);
    }
    Ok(0)
}

/// `varsmith ssh HOST [TARGET]`: ssh's own exit code.
pub(super) fn ssh(ctx: &Context, a: TargetArgs) -> CmdResult {
    let (ssh, _) = connect(ctx, &a)?;
    run_or_print(&ssh.shell_argv(), a.dry_run)
}

/// This machine's short host name.
fn this_host() -> anyhow::Result<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().split('.').next().unwrap_or("").to_string())
        .filter(|h| !h.is_empty());
    h.ok_or_else(|| crate::UsageError::new("cannot tell this machine's name; pass --host").into())
}

/// The machine `sync` rebuilds: `--host` (a machine of the workspace, else an error with
/// the closest names), else this host's name, which must be a machine too (else an error
/// naming the choices).
fn sync_host(ws: &crate::workspace::Workspace, host: Option<String>) -> anyhow::Result<String> {
    let machines = &ws.inventory.machines;
    match host {
        Some(h) if machines.contains_key(&h) => Ok(h),
        Some(h) => Err(crate::UsageError::new(format!(
            "--host: {}",
            ws.inventory.unknown_machine(&h)
        ))
        .into()),
        None => {
            let h = this_host()?;
            if machines.contains_key(&h) {
                return Ok(h);
            }
            let names: Vec<&str> = machines.keys().map(String::as_str).collect();
            Err(crate::UsageError::new(format!(
                "this machine's name {h:?} is not a machine of the workspace; pass --host with one of: {}",
                names.join(", ")
            ))
            .into())
        }
    }
}

/// `varsmith sync`.
pub(super) fn sync(ctx: &Context, a: SyncArgs) -> CmdResult {
    let ws = ctx.workspace()?;
    let host = sync_host(&ws, a.host)?;
    let darwin = ws.machine(&host)?.is_darwin();
    let o = crate::remote::sync::SyncOptions {
        action: a.action,
        host: ws.flake_attr(&host).to_string(),
        debug: a.debug,
        no_show_trace: a.no_show_trace,
        darwin,
        have_nh: !darwin && crate::remote::sync::on_path("nh"),
        // SAFETY: geteuid has no preconditions.
        root: unsafe { libc::geteuid() } == 0,
    };
    let argv = crate::remote::sync::argv(&o).map_err(lib)?;
    std::env::set_current_dir(&ws.root)?;
    let code = run_or_print(&argv, a.dry_run)?;
    if code != 0 {
        anyhow::bail!("`{}` failed (exit {code})", argv.join(" "));
    }
    Ok(0)
}

/// Refuses a nix-darwin machine for a verb that installs NixOS (exit 2).
pub(super) fn refuse_darwin(
    ws: &crate::workspace::Workspace,
    host: &str,
    verb: &str,
) -> anyhow::Result<()> {
    if ws.machine(host)?.is_darwin() {
        return Err(crate::UsageError::new(format!(
            "{host} is a nix-darwin machine: `varsmith {verb}` installs NixOS; set the Mac up with nix-darwin's installer, then `varsmith push-keys {host}` and `varsmith deploy {host}`"
        ))
        .into());
    }
    Ok(())
}

/// `varsmith install`.
pub(super) fn install(ctx: &Context, a: InstallArgs) -> CmdResult {
    use crate::remote::{activation, hostkeys, install};
    let ws = ctx.workspace()?;
    let m = ws.machine(&a.host)?;
    refuse_darwin(&ws, &a.host, "install")?;
    if !a.root.is_dir() {
        return Err(crate::UsageError::new(format!(
            "--root {}: no such directory (mount the target's file systems there first)",
            a.root.display()
        ))
        .into());
    }
    let with_global = !a.no_global && hostkeys::wants_global(&ws.root, m, &a.host);
    let argv = install::argv(ws.flake_attr(&a.host), &a.root, !a.no_show_trace);
    let need = crate::workspace::NeededFor::Activation;
    if a.dry_run {
        let act: Vec<(String, String, u32)> = with_generators(&ws, &a.host, |gens| {
            Ok(activation::specs(gens.iter().copied(), need)
                .into_iter()
                .map(|(g, f, s)| (g.name.clone(), f.to_string(), s.mode))
                .collect())
        })?;
        for (p, mode) in install::layout(&hostkeys::bundle_files(with_global), a.persist, &act) {
            println!(
                "# place {} ({mode:04o})",
                quote(&a.root.join(p).to_string_lossy())
            );
        }
        return run_or_print(&argv, true);
    }
    let ids = ctx.identities()?;
    let bundle = hostkeys::load(&ws.root, &a.host, &ids, with_global).map_err(lib)?;
    let act = with_generators(&ws, &a.host, |gens| {
        activation::load(&ws.root, &a.host, gens.iter().copied(), need, &ids).map_err(lib)
    })?;
    for p in install::place(&a.root, &bundle, a.persist, &act).map_err(lib)? {
        eprintln!("{}: placed {}", a.host, p.display());
    }
    std::env::set_current_dir(&ws.root)?;
    let code = run_or_print(&argv, false)?;
    if code != 0 {
        anyhow::bail!("{}: nixos-install failed (exit {code})", a.host);
    }
    Ok(0)
}
