//! `varsmith push-keys`, `bootstrap` and `deploy`: the CLI edge over [`crate::remote`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::remote::activation::{self, SecretFile};
use crate::remote::bootstrap::{self, BootstrapOptions};
use crate::remote::hostkeys::{self, KeyPaths};
use crate::remote::known_hosts::KnownHosts;
use crate::remote::push_keys;
use crate::remote::ssh::Ssh;
use crate::workspace::{Generator, NeededFor, Workspace};
use anyhow::Context as _;

use super::core_cmd::Context;
use crate::cli::args::{BootstrapArgs, Cli, CmdResult, PushKeysArgs};
use clap::Parser as _;

/// Maps a library error to anyhow, turning usage errors into [`crate::UsageError`] (exit 2).
pub(super) fn lib(e: crate::remote::Error) -> anyhow::Error {
    match e {
        crate::remote::Error::Usage(m) => crate::UsageError::new(m).into(),
        other => other.into(),
    }
}

pub(super) fn known_hosts(opt: &Option<PathBuf>, root: &Path) -> KnownHosts {
    match opt {
        Some(p) => KnownHosts::at(p.clone()),
        None => KnownHosts::for_workspace(root),
    }
}

/// `varsmith -C ROOT [--identity F]… ARGS…` as argv (program first).
fn self_argv(ctx: &Context, root: &Path, args: &[&str]) -> anyhow::Result<Vec<OsString>> {
    let exe = std::env::current_exe().context("cannot locate the varsmith executable")?;
    let mut v: Vec<OsString> = vec![exe.into(), "-C".into(), root.into()];
    for id in &ctx.identity {
        v.push("--identity".into());
        v.push(id.into());
    }
    if crate::workspace::nix::ifd_allowed() {
        v.push("--allow-ifd".into());
    }
    v.extend(args.iter().map(OsString::from));
    Ok(v)
}

/// `varsmith … ARGS` as one shell-quoted line (what a dry run prints).
pub(super) fn self_line(ctx: &Context, root: &Path, args: &[&str]) -> anyhow::Result<String> {
    Ok(self_argv(ctx, root, args)?
        .iter()
        .map(|s| crate::remote::deploy::quote(&s.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Runs `varsmith check …` with inherited stdio and without `SOPS_AGE_KEY` (check decrypts
/// nothing, so key bytes need not reach it).
pub(super) fn run_self_quiet_env(
    ctx: &Context,
    root: &Path,
    args: &[&str],
) -> anyhow::Result<std::process::ExitStatus> {
    let argv = self_argv(ctx, root, args)?;
    Command::new(&argv[0])
        .args(&argv[1..])
        .env_remove("SOPS_AGE_KEY")
        .status()
        .with_context(|| format!("cannot run `varsmith {}`", args.join(" ")))
}

/// Runs the generators producing missing keys (`--generate`), as `varsmith generate HOST -g GEN`
/// would.
fn generate_missing(
    ctx: &Context,
    ws: &Workspace,
    host: &str,
    with_global: bool,
) -> anyhow::Result<()> {
    for generator in KeyPaths::new(&ws.root, host).missing_generators(with_global) {
        eprintln!("{host}: {generator} has no value yet; generating it");
        // In this process, so that no key (SOPS_AGE_KEY) is handed to a child.
        let cli = Cli::try_parse_from(["varsmith", "generate", host, "-g", generator])?;
        let crate::cli::args::Command::Generate(args) = cli.command else {
            anyhow::bail!("internal error: `generate` parsed as another command");
        };
        let code = super::core_cmd::generate(ctx, args)?;
        if code != 0 {
            anyhow::bail!("{host}: `varsmith generate {host} -g {generator}` failed (exit {code})");
        }
    }
    Ok(())
}

/// `varsmith push-keys`.
pub(super) fn push_keys(ctx: &Context, a: PushKeysArgs) -> CmdResult {
    push_keys_with(ctx, a, true)
}

/// `push-keys`; with `confirm`, a pending host key rotation is confirmed after the pin
/// (`rotate-host-key` confirms in a step of its own).
pub(super) fn push_keys_with(ctx: &Context, a: PushKeysArgs, confirm: bool) -> CmdResult {
    let ws = ctx.workspace()?;
    let m = ws.machine(&a.host)?;
    let target = a
        .target
        .clone()
        .unwrap_or_else(|| m.target_or_default(&a.host));
    let with_global = !a.no_global && hostkeys::wants_global(&ws.root, m, &a.host);
    let kh = known_hosts(&a.remote.known_hosts, &ws.root);
    let ssh = Ssh::new(&target, &a.host, &kh, &a.remote.ssh_options).map_err(lib)?;
    let dir = push_keys::ssh_dir(a.persist);
    if a.remote.dry_run {
        let files = hostkeys::bundle_files(with_global);
        let argv = ssh
            .script_argv(&push_keys::remote_script(dir, &files))
            .map_err(lib)?;
        return super::remote_dry::push_keys(
            &a.host,
            &target,
            dir,
            &files,
            argv,
            &kh,
            a.remote.json,
        );
    }
    if a.remote.json {
        return Err(crate::UsageError::new("--json needs --dry-run").into());
    }
    if a.generate {
        generate_missing(ctx, &ws, &a.host, with_global)?;
    }
    let ids = ctx.identities()?;
    let bundle = hostkeys::load(&ws.root, &a.host, &ids, with_global).map_err(lib)?;
    if !ssh.is_pinned() {
        eprintln!(
            "note: no host key is pinned for {} in {}; {target} is verified by your own OpenSSH known_hosts",
            a.host,
            kh.path().display()
        );
    }
    let report = push_keys::push(&ssh, &bundle, a.persist).map_err(lib)?;
    for p in &report.installed {
        eprintln!("{target}: installed {p}");
    }
    kh.pin_installed(&a.host, &bundle.host_public, true)
        .map_err(lib)?;
    eprintln!(
        "{}: host key {} verified on {target} and pinned in {} (beside its previous pin)",
        a.host,
        report.fingerprint,
        kh.path().display()
    );
    served_key_note(&a, &target, &bundle.host_public);
    if confirm {
        confirm_rotation(ctx, &ws.root, &a.host, &bundle.host_public, &ids)?;
    }
    Ok(0)
}

/// Says whether the target's running sshd already serves the pushed key: one more connection
/// that trusts that key alone (a throwaway pin file). Until sshd restarts it serves its old
/// key, which stays pinned beside the new one, so `ssh`, `deploy` and `rollback` keep working.
fn served_key_note(a: &PushKeysArgs, target: &str, public: &str) {
    let probe = || -> Result<bool, crate::remote::Error> {
        let dir = tempfile::tempdir().map_err(|e| crate::remote::Error::io("tempdir", e))?;
        let kh = KnownHosts::at(dir.path().join("known_hosts"));
        kh.pin(&a.host, public)?;
        match Ssh::new(target, &a.host, &kh, &a.remote.ssh_options)?.run_script("true", b"") {
            Ok(_) => Ok(true),
            Err(crate::remote::Error::HostKeyMismatch { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    };
    match probe() {
        Ok(true) => eprintln!("{}: sshd on {target} already serves the new key", a.host),
        Ok(false) => eprintln!(
            "{}: sshd on {target} still serves its previous key: restart sshd (`systemctl restart sshd`, or reboot) for the new key to serve; both keys stay pinned, so ssh, deploy and rollback keep working until then",
            a.host
        ),
        Err(e) => eprintln!(
            "{}: cannot tell which key sshd on {target} serves ({e}); restart sshd for the new key to serve",
            a.host
        ),
    }
}

/// A machine's `(activation, partitioning)` secret files as `(generator, file, mode)`, from
/// its definitions (nothing decrypted).
fn secret_specs(
    ws: &Workspace,
    host: &str,
) -> anyhow::Result<Vec<(NeededFor, String, String, u32)>> {
    with_generators(ws, host, |gens| {
        let mut out = Vec::new();
        for needed in [NeededFor::Activation, NeededFor::Partitioning] {
            for (g, f, spec) in activation::specs(gens.iter().copied(), needed) {
                out.push((needed, g.name.clone(), f.to_string(), spec.mode));
            }
        }
        Ok(out)
    })
}

/// Runs `f` on the resolved generators of machine `host`: an empty list, without evaluating
/// any definition, when the machine lists none.
pub(super) fn with_generators<T>(
    ws: &Workspace,
    host: &str,
    f: impl FnOnce(&[&Generator]) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if ws.machine(host)?.generators.is_empty() {
        return f(&[]);
    }
    let defs = ws.definitions()?;
    let gens: Vec<&Generator> = defs
        .machines
        .get(host)
        .map(|g| g.values().map(|g| g.as_ref()).collect())
        .unwrap_or_default();
    f(&gens)
}

/// Decrypts the machine's activation and partitioning secrets.
fn load_secrets(
    ws: &Workspace,
    host: &str,
    ids: &crate::keys::Identities,
) -> anyhow::Result<(Vec<SecretFile>, Vec<SecretFile>)> {
    with_generators(ws, host, |gens| {
        let load = |n| activation::load(&ws.root, host, gens.iter().copied(), n, ids).map_err(lib);
        Ok((load(NeededFor::Activation)?, load(NeededFor::Partitioning)?))
    })
}

/// `varsmith bootstrap`.
pub(super) fn bootstrap(ctx: &Context, a: BootstrapArgs) -> CmdResult {
    let ws = ctx.workspace()?;
    let m = ws.machine(&a.host)?;
    super::hey_cmd::refuse_darwin(&ws, &a.host, "bootstrap")?;
    let with_global = !a.no_global && hostkeys::wants_global(&ws.root, m, &a.host);
    let kh = known_hosts(&a.remote.known_hosts, &ws.root);
    let o = BootstrapOptions {
        persist: a.persist,
        no_reboot: a.no_reboot,
        no_disko_deps: a.no_disko_deps,
        debug: a.debug,
        ssh_options: a.remote.ssh_options.clone(),
        flake_attr: Some(ws.flake_attr(&a.host).to_string()),
        installer_key: if a.remote.dry_run {
            a.installer_host_key.clone()
        } else {
            installer_key(&a)?
        },
        ..Default::default()
    };
    if a.remote.dry_run {
        return bootstrap_dry_run(&ws, &a, &o, with_global, &kh);
    }
    if a.remote.json {
        return Err(crate::UsageError::new("--json needs --dry-run").into());
    }
    let ids = ctx.identities()?;
    let bundle = hostkeys::load(&ws.root, &a.host, &ids, with_global).map_err(lib)?;
    let (act, disk) = load_secrets(&ws, &a.host, &ids)?;
    bootstrap::run_with(&ws.root, &bundle, (&act, &disk), &a.target, &o, &kh).map_err(lib)?;
    confirm_rotation(ctx, &ws.root, &a.host, &bundle.host_public, &ids)?;
    eprintln!(
        "{}: installed; host key {} pinned in {}",
        a.host,
        bundle.fingerprint(),
        kh.path().display()
    );
    Ok(0)
}

/// `--installer-host-key KEY|@FILE`; without it, `--trust-on-first-use` must be given (exit 2
/// otherwise): the machine's keys must not go to an unverified target by default.
fn installer_key(a: &BootstrapArgs) -> anyhow::Result<Option<String>> {
    let Some(k) = &a.installer_host_key else {
        if a.trust_on_first_use {
            eprintln!(
                "warning: {}: --trust-on-first-use: the installer at {} is not verified; its host key is accepted as presented",
                a.host, a.target
            );
            return Ok(None);
        }
        return Err(crate::UsageError::new(format!(
            "{}: bootstrap sends the machine's host keys to {}: pass the installer's host key (--installer-host-key 'ssh-ed25519 AAAA…' or @FILE, e.g. from the provider's console or `ssh-keyscan` over a trusted path), or --trust-on-first-use",
            a.host, a.target
        ))
        .into());
    };
    let line = match k.strip_prefix('@') {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?,
        None => k.clone(),
    };
    Ok(Some(line.lines().next().unwrap_or("").trim().to_string()))
}

fn bootstrap_dry_run(
    ws: &Workspace,
    a: &BootstrapArgs,
    o: &BootstrapOptions,
    with_global: bool,
    kh: &KnownHosts,
) -> CmdResult {
    use super::remote_dry::EXTRA_FILES_PLACEHOLDER as ROOT;
    crate::remote::no_leading_dash("target", &a.target).map_err(lib)?;
    crate::remote::ssh::check_options(&a.remote.ssh_options).map_err(lib)?;
    let ssh_dir = if a.persist {
        "persist/etc/ssh"
    } else {
        "etc/ssh"
    };
    let mut files: Vec<(String, u32)> = hostkeys::bundle_files(with_global)
        .into_iter()
        .map(|(n, m)| (format!("{ssh_dir}/{n}"), m))
        .collect();
    let mut disk = Vec::new();
    for (needed, g, f, mode) in secret_specs(ws, &a.host)? {
        if needed == NeededFor::Activation {
            files.push((format!("var/lib/varsmith/activation/{g}/{f}"), mode));
        } else {
            let local = PathBuf::from(format!("<tmpfs>/disk-keys/{g}/{f}"));
            disk.push((bootstrap::disk_key_path(&g, &f), local));
        }
    }
    let argv = bootstrap::command(&a.host, &a.target, Path::new(ROOT), &disk, o);
    if let (Some(k), false) = (&o.installer_key, a.remote.json) {
        let kind = k.split_whitespace().next().unwrap_or("");
        println!(
            "# nixos-anywhere runs with an `ssh` wrapper first on its PATH that accepts only the installer's {kind} key, pinned as {}",
            bootstrap::installer_alias(&a.host)
        );
    }
    super::remote_dry::bootstrap(&a.host, &a.target, &files, &disk, argv, kh, a.remote.json)
}

/// After `installed` (a host public key line) was put on `host` and pinned: completes a
/// pending host key rotation ([`crate::store::rotation::confirm`]), so the old key stops
/// being a recipient. Nothing happens when no rotation is pending.
pub(super) fn confirm_rotation(
    ctx: &Context,
    root: &Path,
    host: &str,
    installed: &str,
    ids: &crate::keys::Identities,
) -> anyhow::Result<()> {
    if crate::store::rotation::pending(root, host)?.is_none() {
        return Ok(());
    }
    let ws = ctx.workspace()?;
    let done = crate::store::rotation::confirm(&ws, host, installed, ids).with_context(|| {
        format!(
            "{host}: the new host key is installed, but dropping the old one from its files failed; `varsmith rekey {host}` finishes it"
        )
    })?;
    if crate::store::rotation::pending(root, host)?.is_none() {
        eprintln!(
            "{host}: host key rotation confirmed; {} files no longer encrypted to the old key",
            done.len()
        );
        crate::store::git::stage(&ws, &done, false)?;
    }
    Ok(())
}
