//! Running a deploy [`Plan`]: stages one after another, each a barrier. Within a stage up to
//! `jobs` machines deploy at once; when any machine of a stage fails (a command or its
//! `--verify`), no later stage starts unless `keep_going`, and every machine of those stages
//! is reported "not attempted" with the stage that failed. The machines of the failing stage
//! itself all run.
//!
//! After Ctrl-C (or a tool that died of it) no further machine starts.
//!
//! Children get no `SOPS_AGE_KEY` (key bytes never reach a deploy tool's environment).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::deploy::{Cmd, Input, Plan, Stage, Step};

/// What happened to one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every command succeeded (and the verification passed, when asked: its summary).
    Ok(Option<String>),
    /// A command failed, or the verification found problems.
    Failed(String),
    /// Not started because an earlier stage failed (its label).
    NotAttempted(String),
}

/// One machine's line of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MachineReport {
    /// The machine.
    pub machine: String,
    /// The label of its stage.
    pub stage: String,
    /// What happened.
    pub outcome: Outcome,
    /// Wall time of its deploy (zero when not attempted).
    pub elapsed: std::time::Duration,
}

/// Runs `plan` from `cwd` and reports every machine, in plan order. With more than one step
/// running at a time, output lines are prefixed with `[machine]` and stdin is closed; a lone
/// step inherits the terminal.
pub(crate) fn execute(
    plan: &Plan,
    cwd: &Path,
    jobs: usize,
    keep_going: bool,
) -> Vec<MachineReport> {
    let mut reports = Vec::with_capacity(plan.len());
    let mut failed_stage: Option<&str> = None;
    for stage in &plan.stages {
        if crate::process::signals::interrupted() {
            failed_stage = failed_stage.or(Some("interrupted"));
        }
        if let Some(label) = failed_stage {
            reports.extend(stage.steps.iter().map(|st| MachineReport {
                machine: st.machine.clone(),
                stage: stage.label.clone(),
                outcome: Outcome::NotAttempted(label.to_string()),
                elapsed: Default::default(),
            }));
            continue;
        }
        let r = run_stage(stage, cwd, jobs.max(1));
        if !keep_going && r.iter().any(|m| matches!(m.outcome, Outcome::Failed(_))) {
            failed_stage = Some(&stage.label);
        }
        reports.extend(r);
    }
    reports
}

fn run_stage(stage: &Stage, cwd: &Path, jobs: usize) -> Vec<MachineReport> {
    let workers = jobs.min(stage.steps.len());
    let prefix = workers > 1;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome, std::time::Duration)>> = Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(st) = stage.steps.get(i) else { break };
                    let t0 = std::time::Instant::now();
                    let o = if crate::process::signals::interrupted() {
                        Outcome::NotAttempted("interrupted".into())
                    } else {
                        run_step(st, cwd, prefix)
                    };
                    if let Ok(mut r) = results.lock() {
                        r.push((i, o, t0.elapsed()));
                    }
                }
            });
        }
    });
    let mut r = results.into_inner().unwrap_or_default();
    r.sort_by_key(|(i, _, _)| *i);
    let mut out: Vec<MachineReport> = stage
        .steps
        .iter()
        .map(|st| MachineReport {
            machine: st.machine.clone(),
            stage: stage.label.clone(),
            outcome: Outcome::Failed("did not finish (worker panicked)".into()),
            elapsed: Default::default(),
        })
        .collect();
    for (i, o, t) in r {
        out[i].outcome = o;
        out[i].elapsed = t;
    }
    out
}

/// Runs one step's commands in order, then its verification.
fn run_step(st: &Step, cwd: &Path, prefix: bool) -> Outcome {
    let tag = format!("[{}] ", st.machine);
    if let Some(u) = &st.upload
        && let Err(reason) = super::activation::run(u)
    {
        return Outcome::Failed(reason);
    }
    let mut previous: Vec<u8> = Vec::new();
    for (i, c) in st.commands.iter().enumerate() {
        let capture = st
            .commands
            .get(i + 1)
            .is_some_and(|n| n.input == Input::PreviousPath);
        let input = match c.input {
            Input::None | Input::Secrets => None,
            Input::PreviousPath => match previous_path(&previous) {
                Some(p) => Some(format!("{p}\n").into_bytes()),
                None => {
                    return Outcome::Failed(format!(
                        "`{}` printed no store path",
                        st.commands[i - 1].argv[0]
                    ));
                }
            },
        };
        match run_cmd(c, cwd, prefix.then_some(tag.as_str()), capture, input) {
            Ok(out) => previous = out,
            Err(reason) => return Outcome::Failed(reason),
        }
    }
    let Some(p) = &st.verify else {
        return Outcome::Ok(None);
    };
    let out = match run_cmd(&p.cmd, cwd, prefix.then_some(tag.as_str()), true, None) {
        Ok(o) => o,
        Err(reason) => return Outcome::Failed(format!("verify: {reason}")),
    };
    match super::verify::evaluate(p, &String::from_utf8_lossy(&out)) {
        Ok(summary) => Outcome::Ok(Some(summary)),
        Err(problems) => Outcome::Failed(format!("verify: {}", problems.join("; "))),
    }
}

/// The `path` field of `nix flake archive --json`'s output.
fn previous_path(out: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(out).ok()?;
    let p = v.get("path")?.as_str()?;
    (p.starts_with('/') && !p.contains('\n')).then(|| p.to_string())
}

/// Runs one command; `Ok` holds its stdout when `capture`, `Err` a one-line reason.
fn run_cmd(
    c: &Cmd,
    cwd: &Path,
    prefix: Option<&str>,
    capture: bool,
    input: Option<Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let prog = &c.argv[0];
    let mut cmd = crate::child::command(prog);
    cmd.args(&c.argv[1..]).current_dir(cwd);
    cmd.envs(c.env.iter().map(|(k, v)| (k, v)));
    let piped = prefix.is_some() || capture;
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    } else if prefix.is_some() {
        cmd.stdin(Stdio::null());
    }
    if piped {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let spawn_err = |e: std::io::Error| format!("cannot run `{prog}`: {e}");
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(bytes), Some(mut w)) = (input, child.stdin.take()) {
        // A child that exits early closes the pipe: its status tells what happened.
        let _ = w.write_all(&bytes);
    }
    let mut captured = Vec::new();
    if piped {
        let tag = prefix.unwrap_or("");
        let (out, err) = (child.stdout.take(), child.stderr.take());
        std::thread::scope(|sc| {
            if let Some(e) = err {
                sc.spawn(|| copy_prefixed(e, tag, &mut std::io::stderr()));
            }
            if let Some(mut o) = out {
                if capture {
                    let _ = o.read_to_end(&mut captured);
                } else {
                    copy_prefixed(o, tag, &mut std::io::stdout());
                }
            }
        });
    }
    let status = child.wait().map_err(spawn_err)?;
    if crate::process::signals::status_is_interrupt(&status) {
        // Ctrl-C reached the tool before varsmith's own handler: start nothing more.
        crate::process::signals::note_child_interrupted();
    }
    if status.success() {
        Ok(captured)
    } else {
        Err(format!("`{prog}` {status}"))
    }
}

/// Copies `r` to `w` line by line, each line prefixed with `tag` and written whole.
fn copy_prefixed<R: Read, W: Write>(r: R, tag: &str, w: &mut W) {
    let mut r = BufReader::new(r);
    let mut line = Vec::with_capacity(256);
    let mut buf = Vec::with_capacity(256);
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                buf.clear();
                buf.extend_from_slice(tag.as_bytes());
                buf.extend_from_slice(&line);
                if !line.ends_with(b"\n") {
                    buf.push(b'\n');
                }
                let _ = w.write_all(&buf);
            }
        }
    }
}
