//! `varsmith rotate-host-key MACHINE [TARGET]`: runs the steps of
//! [`crate::remote::rotate`] from where the last run stopped, each through the same code as
//! the verb it stands for (`generate`, `deploy`, `push-keys`), in this process (no key is
//! handed to a child).

use std::path::Path;

use anyhow::Context as _;
use clap::Parser as _;

use crate::remote::hostkeys::KeyPaths;
use crate::remote::rotate::{self, Step};
use crate::store::lock::{Mode, WorkspaceLock};

use super::args::{Cli, CmdResult, Command, RotateHostKeyArgs};
use super::core_cmd::Context;
use super::remote_cmd::{confirm_rotation, lib, self_line};

/// `varsmith rotate-host-key`.
pub(super) fn run(ctx: &Context, a: RotateHostKeyArgs) -> CmdResult {
    let ws = ctx.workspace()?;
    ws.machine(&a.host)?;
    if let Some(t) = &a.target {
        crate::remote::no_leading_dash("target", t).map_err(lib)?;
    }
    crate::remote::ssh::check_options(&a.ssh_options).map_err(lib)?;
    // Steps 2 and 5 deploy: refuse before step 1 generates anything.
    if crate::remote::deploy::flake_dir(&ws.root).is_none() {
        return Err(lib(crate::remote::deploy::no_flake(&ws.root)));
    }
    let start = rotate::resume_at(&ws.root, &a.host).map_err(lib)?;
    if a.dry_run {
        return dry_run(ctx, &ws.root, &a, start);
    }
    let host = &a.host;
    let mut step = Some(start);
    while let Some(s) = step {
        let n = Step::ALL.iter().position(|x| *x == s).unwrap_or(0) + 1;
        eprintln!("{host}: step {n}/5 {}: {}", s.name(), s.purpose());
        run_step(ctx, &ws.root, &a, s).with_context(|| {
            format!(
                "{host}: host key rotation stopped at step {n}/5 ({}); fix the cause and rerun `varsmith rotate-host-key {host}` to continue there",
                s.name()
            )
        })?;
        let _lock = WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "rotate-host-key")?;
        rotate::advance(&ws.root, host, s).map_err(lib)?;
        step = s.next();
    }
    eprintln!("{host}: host key rotation complete");
    Ok(0)
}

/// The argv (after `varsmith`) of the verb a step runs; `None` for `confirm`.
fn verb_args(a: &RotateHostKeyArgs, s: Step) -> Option<Vec<String>> {
    let mut v: Vec<String> = match s {
        Step::Generate => {
            return Some(
                [
                    "generate",
                    &a.host,
                    "-g",
                    "openssh",
                    "--regenerate",
                    "--rotate-host-key",
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        Step::Confirm => return None,
        Step::DeployBoth | Step::DeployNew => vec!["deploy".into(), a.host.clone()],
        Step::PushKeys => vec!["push-keys".into(), a.host.clone()],
    };
    v.extend(a.target.clone());
    if s == Step::PushKeys {
        v.extend(a.persist.then(|| "--persist".to_string()));
        v.extend(a.no_global.then(|| "--no-global".to_string()));
    }
    for o in &a.ssh_options {
        v.extend(["--ssh-option".to_string(), o.clone()]);
    }
    if let Some(k) = &a.known_hosts {
        v.extend([
            "--known-hosts".to_string(),
            k.to_string_lossy().into_owned(),
        ]);
    }
    Some(v)
}

/// Fails when the test build asks this step to (`VARSMITH_TEST_ROTATE_FAIL=<step>`), so the
/// tests can stop a rotation at every step; release builds ignore it.
fn injected(s: Step) -> anyhow::Result<()> {
    #[cfg(debug_assertions)]
    if std::env::var("VARSMITH_TEST_ROTATE_FAIL").ok().as_deref() == Some(s.name()) {
        anyhow::bail!("injected failure (VARSMITH_TEST_ROTATE_FAIL={})", s.name());
    }
    let _ = s;
    Ok(())
}

fn run_step(ctx: &Context, root: &Path, a: &RotateHostKeyArgs, s: Step) -> anyhow::Result<()> {
    injected(s)?;
    let host = &a.host;
    if s == Step::Generate && crate::store::rotation::pending(root, host)?.is_some() {
        eprintln!("{host}: a new host key is already generated (rotation pending)");
        return Ok(());
    }
    let Some(args) = verb_args(a, s) else {
        if crate::store::rotation::pending(root, host)?.is_none() {
            return Ok(());
        }
        let public = KeyPaths::new(root, host).host_public;
        let line = std::fs::read_to_string(&public)
            .with_context(|| format!("cannot read {}", public.display()))?;
        let ids = ctx.identities()?;
        return confirm_rotation(ctx, root, host, &line, &ids);
    };
    let cli = Cli::try_parse_from(std::iter::once("varsmith".to_string()).chain(args))?;
    let code = match cli.command {
        Command::Generate(g) => super::core_cmd::generate(ctx, g)?,
        Command::Deploy(d) => super::deploy_cmd::run(ctx, d)?,
        Command::PushKeys(p) => super::remote_cmd::push_keys_with(ctx, p, false)?,
        _ => anyhow::bail!("internal error: step {} parsed as another verb", s.name()),
    };
    if code != 0 {
        anyhow::bail!("`varsmith {}` exited {code}", s.name());
    }
    Ok(())
}

/// `--dry-run`: every step, the done ones marked, each with the command it runs.
fn dry_run(ctx: &Context, root: &Path, a: &RotateHostKeyArgs, start: Step) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let n = Step::ALL.iter().position(|x| *x == start).unwrap_or(0) + 1;
    writeln!(
        out,
        "# rotate-host-key {}: next step {n}/5 ({})",
        a.host,
        start.name()
    )?;
    for (i, s) in Step::ALL.iter().enumerate() {
        let done = if *s < start { " (done)" } else { "" };
        writeln!(out, "{}. {}{done}: {}", i + 1, s.name(), s.purpose())?;
        let line = match verb_args(a, *s) {
            Some(v) => {
                let v: Vec<&str> = v.iter().map(String::as_str).collect();
                self_line(ctx, root, &v)?
            }
            None => format!(
                "# in process: re-encrypt {}'s files without the old key (as `varsmith rekey {}` after the record is removed)",
                a.host, a.host
            ),
        };
        writeln!(out, "   {line}")?;
    }
    out.flush()?;
    Ok(0)
}
