//! `varsmith deploy`: the plan, its dry run (text or `--json`), the check first, the staged
//! run and the per-machine summary.

use std::io::Write;

use serde_json::{Value, json};

use crate::remote::activation::{self, Upload};
use crate::remote::deploy::{self, Cmd, DeployOptions, Input, Plan};
use crate::remote::known_hosts::KnownHosts;
use crate::remote::ssh::Ssh;
use crate::remote::stages::{self, MachineReport, Outcome};
use crate::remote::verify;
use crate::workspace::{Definitions, Generator, NeededFor, Workspace};

use super::args::{CmdResult, DeployArgs};
use super::core_cmd::Context;
use super::remote_cmd::{known_hosts, lib, run_self_quiet_env, self_line};

/// Parallel deployments within a stage when `-j` is not given.
pub(super) const DEFAULT_JOBS: usize = 4;

/// `varsmith deploy`.
pub(super) fn run(ctx: &Context, a: DeployArgs) -> CmdResult {
    let ws = ctx.workspace()?;
    if let Some(home) = &a.home {
        return deploy_home(&ws, &a, home);
    }
    let (hosts, target) = split_target(&ws, &a.hosts);
    let machines = deploy::select(&ws.inventory, &hosts, a.all).map_err(lib)?;
    if deploy::flake_dir(&ws.root).is_none() {
        return Err(lib(deploy::no_flake(&ws.root)));
    }
    let jobs = match a.jobs {
        Some(0) => return Err(crate::UsageError::new("--jobs must be at least 1").into()),
        Some(n) => n,
        None => DEFAULT_JOBS,
    };
    let kh = known_hosts(&a.remote.known_hosts, &ws.root);
    let o = DeployOptions {
        boot: a.boot,
        fast: a.fast,
        dry_activate: a.dry_activate,
        build_host: a.build_host.clone(),
        build_host_key: a.build_host_key.clone(),
        debug: a.debug,
        no_show_trace: a.no_show_trace,
        ssh_options: a.remote.ssh_options.clone(),
        // `nixosConfigurations.<attr>`: nixos-rebuild and darwin-rebuild resolve `.#<attr>`.
        flake_attrs: ws
            .flake
            .iter()
            .filter_map(|m| {
                let attr = ws.flake_attr(&m.machine_name);
                (attr != m.machine_name).then(|| (m.machine_name.clone(), attr.to_string()))
            })
            .collect(),
    };
    let mut plan = deploy::plan(&ws.inventory, &machines, target, &o, &kh).map_err(lib)?;
    let wants_defs = machines.iter().any(|m| {
        ws.inventory
            .machines
            .get(m)
            .is_some_and(|m| !m.generators.is_empty())
    });
    if wants_defs {
        let defs = ws.definitions()?;
        add_uploads(ctx, &ws, &defs, &mut plan, &kh, &o, a.remote.dry_run)?;
        if a.verify {
            add_probes(&ws, &defs, &mut plan, &kh, &o)?;
        }
    } else if a.verify {
        let none = Definitions {
            generators: Default::default(),
            machines: Default::default(),
            users: Default::default(),
        };
        add_probes(&ws, &none, &mut plan, &kh, &o)?;
    }
    let check_args: Vec<&str> = std::iter::once("check")
        .chain(machines.iter().map(String::as_str).filter(|_| !a.all))
        .collect();
    let check = (!a.no_check)
        .then(|| self_line(ctx, &ws.root, &check_args))
        .transpose()?;
    if a.remote.dry_run {
        return dry_run(&plan, check.as_deref(), a.remote.json, jobs, a.keep_going);
    }
    if !a.no_check {
        let status = run_self_quiet_env(ctx, &ws.root, &check_args)?;
        if !status.success() {
            anyhow::bail!(
                "check failed for the selected machines ({status}); nothing was deployed (fix the vars, or pass --no-check)"
            );
        }
    }
    let t0 = std::time::Instant::now();
    let reports = stages::execute(&plan, &ws.root, jobs, a.keep_going);
    Ok(summary(&reports, t0.elapsed(), a.remote.json))
}

/// `deploy --home USER@HOST`: one step, `home-manager switch` on HOST as USER ([`crate::remote::home`]).
fn deploy_home(ws: &Workspace, a: &DeployArgs, home: &str) -> CmdResult {
    let kh = known_hosts(&a.remote.known_hosts, &ws.root);
    let o = DeployOptions {
        debug: a.debug,
        no_show_trace: a.no_show_trace,
        ssh_options: a.remote.ssh_options.clone(),
        ..Default::default()
    };
    let plan = crate::remote::home::plan(&ws.inventory, home, &o, &kh).map_err(lib)?;
    if a.remote.dry_run {
        return dry_run(&plan, None, a.remote.json, 1, a.keep_going);
    }
    let t0 = std::time::Instant::now();
    let reports = stages::execute(&plan, &ws.root, 1, a.keep_going);
    Ok(summary(&reports, t0.elapsed(), a.remote.json))
}

/// `deploy HOST TARGET`: a last argument that is not a machine, after exactly one machine, is
/// the target.
fn split_target<'a>(ws: &Workspace, hosts: &'a [String]) -> (Vec<String>, Option<&'a str>) {
    match hosts {
        [h, t]
            if ws.inventory.machines.contains_key(h) && !ws.inventory.machines.contains_key(t) =>
        {
            (vec![h.clone()], Some(t.as_str()))
        }
        _ => (hosts.to_vec(), None),
    }
}

/// Attaches the upload of its activation secrets to every step of a machine that has some
/// (decrypted now; a dry run decrypts nothing and shows the command).
fn add_uploads(
    ctx: &Context,
    ws: &Workspace,
    defs: &Definitions,
    plan: &mut Plan,
    kh: &KnownHosts,
    o: &DeployOptions,
    dry_run: bool,
) -> anyhow::Result<()> {
    let mut ids = None;
    for st in plan.stages.iter_mut().flat_map(|s| s.steps.iter_mut()) {
        let Some(gens) = defs.machines.get(&st.machine) else {
            continue;
        };
        let gens: Vec<&Generator> = gens.values().map(|g| g.as_ref()).collect();
        let specs = activation::specs(gens.iter().copied(), NeededFor::Activation);
        if specs.is_empty() {
            continue;
        }
        let ssh = Ssh::new(&st.target, &st.machine, kh, &o.ssh_options).map_err(lib)?;
        if dry_run {
            st.upload = Some(Upload::preview(&ssh, &specs).map_err(lib)?);
            continue;
        }
        if ids.is_none() {
            ids = Some(ctx.identities()?);
        }
        let Some(ids) = ids.as_ref() else { continue };
        let files = activation::load(&ws.root, &st.machine, gens, NeededFor::Activation, ids)
            .map_err(lib)?;
        st.upload = Some(activation::upload(&ssh, &files).map_err(lib)?);
    }
    Ok(())
}

/// Attaches a `--verify` probe to every step.
fn add_probes(
    ws: &Workspace,
    defs: &Definitions,
    plan: &mut Plan,
    kh: &KnownHosts,
    o: &DeployOptions,
) -> anyhow::Result<()> {
    for st in plan.stages.iter_mut().flat_map(|s| s.steps.iter_mut()) {
        let m = ws.machine(&st.machine)?;
        let gens = defs
            .machines
            .get(&st.machine)
            .into_iter()
            .flat_map(|g| g.values().map(|a| a.as_ref()));
        let expect = verify::expected(gens, m.is_darwin());
        let ssh = Ssh::new(&st.target, &st.machine, kh, &o.ssh_options).map_err(lib)?;
        st.verify = Some(verify::probe(&ssh, expect, !m.is_darwin()).map_err(lib)?);
    }
    Ok(())
}

/// Prints the plan (text: one command per line under `# stage` headers; or JSON).
fn dry_run(
    plan: &Plan,
    check: Option<&str>,
    json: bool,
    jobs: usize,
    keep_going: bool,
) -> CmdResult {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &plan_json(plan, check, jobs, keep_going))?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    if let Some(line) = check {
        writeln!(out, "# first: {line}")?;
    }
    for stage in &plan.stages {
        writeln!(out, "# {} ({} machines)", stage.label, stage.steps.len())?;
        for st in &stage.steps {
            writeln!(out, "{}", st.display())?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// One command as JSON: `argv`, `env`, `stdin` and the shell `line`.
pub(crate) fn cmd_json(c: &Cmd) -> Value {
    let env: serde_json::Map<String, Value> = c
        .env
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let stdin = match c.input {
        Input::None => Value::Null,
        Input::PreviousPath => json!("previous-path"),
        Input::Secrets => json!("activation-secrets"),
    };
    json!({ "argv": c.argv, "env": env, "stdin": stdin, "line": c.display() })
}

/// The `--dry-run --json` document (shape in the README, "Deploy").
fn plan_json(plan: &Plan, check: Option<&str>, jobs: usize, keep_going: bool) -> Value {
    let stages: Vec<Value> = plan
        .stages
        .iter()
        .map(|s| {
            let machines: Vec<Value> = s
                .steps
                .iter()
                .map(|st| {
                    let verify = st.verify.as_ref().map(|p| {
                        let files: Vec<Value> = p
                            .expect
                            .iter()
                            .map(|e| json!({"path": e.path, "owner": e.owner, "group": e.group, "mode": format!("{:04o}", e.mode)}))
                            .collect();
                        json!({ "command": cmd_json(&p.cmd), "files": files, "systemd": p.systemd })
                    });
                    json!({
                        "upload": st.upload.as_ref().map(|u| cmd_json(&u.cmd)),
                        "machine": st.machine,
                        "backend": st.backend,
                        "target": st.target,
                        "commands": st.commands.iter().map(cmd_json).collect::<Vec<_>>(),
                        "verify": verify,
                        "ssh_config": st.ssh_config.as_ref().map(|c| json!({"path": c.path, "text": c.text})),
                    })
                })
                .collect();
            json!({ "label": s.label, "machines": machines })
        })
        .collect();
    json!({
        "command": "deploy",
        "dry_run": true,
        "check": check,
        "jobs": jobs,
        "keep_going": keep_going,
        "stages": stages,
    })
}

/// One machine's summary line (without the leading name).
fn outcome_line(r: &MachineReport) -> String {
    let secs = r.elapsed.as_secs_f64();
    match &r.outcome {
        Outcome::Ok(None) => format!("ok ({}, {secs:.1}s)", r.stage),
        Outcome::Ok(Some(v)) => format!("ok, {v} ({}, {secs:.1}s)", r.stage),
        Outcome::Failed(why) => format!("failed: {why} ({}, {secs:.1}s)", r.stage),
        Outcome::NotAttempted(st) if st == "interrupted" => {
            format!("not attempted: interrupted ({})", r.stage)
        }
        Outcome::NotAttempted(st) => format!("not attempted: stage {st:?} failed ({})", r.stage),
    }
}

/// The summary as JSON (shape in docs/json.md, "deploy").
fn summary_json(reports: &[MachineReport], total: std::time::Duration, code: i32) -> Value {
    let machines: Vec<Value> = reports
        .iter()
        .map(|r| {
            let (result, detail) = match &r.outcome {
                Outcome::Ok(v) => ("ok", v.clone()),
                Outcome::Failed(w) => ("failed", Some(w.clone())),
                Outcome::NotAttempted(st) => ("not-attempted", Some(st.clone())),
            };
            json!({
                "machine": r.machine,
                "stage": r.stage,
                "result": result,
                "detail": detail,
                "seconds": (r.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    json!({
        "command": "deploy",
        "dry_run": false,
        "exit_code": code,
        "seconds": (total.as_secs_f64() * 1000.0).round() / 1000.0,
        "machines": machines,
    })
}

/// Prints the summary (one line per machine with its stage, result and time, then the total)
/// to stderr, or as JSON to stdout with `json`; returns the exit code.
fn summary(reports: &[MachineReport], total: std::time::Duration, json: bool) -> i32 {
    let count = |f: fn(&Outcome) -> bool| reports.iter().filter(|r| f(&r.outcome)).count();
    let ok = count(|o| matches!(o, Outcome::Ok(_)));
    let failed = count(|o| matches!(o, Outcome::Failed(_)));
    let skipped = reports.len() - ok - failed;
    let code = if failed == 0 && skipped == 0 {
        0
    } else {
        crate::EXIT_PROBLEM
    };
    if json {
        let doc = summary_json(reports, total, code);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return code;
    }
    let mut err = std::io::stderr().lock();
    let secs = total.as_secs_f64();
    if code == 0 {
        let _ = writeln!(err, "deployed {ok} machine(s)");
    } else {
        let _ = writeln!(
            err,
            "deploy failed on {failed} of {} machine(s); {ok} ok, {skipped} not attempted:",
            reports.len()
        );
    }
    for r in reports {
        let _ = writeln!(err, "  {}: {}", r.machine, outcome_line(r));
    }
    let _ = writeln!(err, "total: {} machine(s) in {secs:.1}s", reports.len());
    code
}
