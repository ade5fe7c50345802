//! `deploy`: per-machine commands built as data (so `--dry-run` prints exactly what would
//! run), ordered by `deploy.order` tags, and run with a bounded number of parallel workers.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Error;
use super::known_hosts::KnownHosts;
use crate::workspace::{Backend, Inventory, Machine};

/// Options shaping the deploy commands.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Activate at next boot (`boot`) instead of `switch`.
    pub boot: bool,
    /// Pass `--fast` to nixos-rebuild.
    pub fast: bool,
}

/// One machine's deploy command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The machine.
    pub machine: String,
    /// Environment variables set for the command.
    pub env: Vec<(String, String)>,
    /// The argv, program first.
    pub argv: Vec<String>,
}

impl Step {
    /// The command as one shell line (`VAR='…' prog args…`), exactly as it runs.
    pub fn display(&self) -> String {
        let env = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect::<Vec<_>>();
        let argv = self.argv.iter().map(|a| quote(a)).collect::<Vec<_>>();
        env.into_iter().chain(argv).collect::<Vec<_>>().join(" ")
    }
}

fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// A group of steps that runs after the previous group has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `tag NAME` for a `deploy.order` group, `rest` for the remaining machines.
    pub label: String,
    /// Its steps, in inventory order.
    pub steps: Vec<Step>,
}

/// The whole deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Stages, run one after another; steps within a stage run in parallel.
    pub stages: Vec<Stage>,
}

impl Plan {
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len()).sum()
    }

    /// True when nothing is to deploy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The machines selected by `hosts` (in the given order, deduplicated) or every machine with
/// `all`. Unknown names and an empty selection are usage errors.
pub fn select(inv: &Inventory, hosts: &[String], all: bool) -> Result<Vec<String>, Error> {
    if all {
        if !hosts.is_empty() {
            return Err(Error::Usage("give machine names or --all, not both".into()));
        }
        return Ok(inv.machines.keys().cloned().collect());
    }
    if hosts.is_empty() {
        return Err(Error::Usage(
            "no machines given: name them or pass --all".into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for h in hosts {
        if !inv.machines.contains_key(h) {
            return Err(Error::Usage(inv.unknown_machine(h)));
        }
        if seen.insert(h.as_str()) {
            out.push(h.clone());
        }
    }
    Ok(out)
}

/// The backend machine `name` deploys with: its own override, else nix-darwin machines use
/// darwin-rebuild (unless the fleet uses clan), else the fleet default, else nixos-rebuild.
pub fn backend(inv: &Inventory, m: &Machine) -> Backend {
    if let Some(b) = m.deploy {
        return b;
    }
    let fleet = inv.deploy.backend;
    if m.is_darwin() && fleet != Some(Backend::Clan) {
        return Backend::DarwinRebuild;
    }
    fleet.unwrap_or(Backend::NixosRebuild)
}

/// The deploy step of machine `name`. `pinned` says whether `known_hosts` pins it; then
/// nixos-rebuild and nh get `NIX_SSHOPTS` that verify the host against that pin.
pub fn step(
    inv: &Inventory,
    name: &str,
    o: &DeployOptions,
    known_hosts: &KnownHosts,
    pinned: bool,
) -> Result<Step, Error> {
    let m = inv
        .machines
        .get(name)
        .ok_or_else(|| Error::Usage(inv.unknown_machine(name)))?;
    let target = m.target_or_default(name);
    super::no_leading_dash("target", &target)?;
    let b = backend(inv, m);
    let mut env = Vec::new();
    if pinned && matches!(b, Backend::NixosRebuild | Backend::Nh) {
        env.push(("NIX_SSHOPTS".to_string(), ssh_opts(known_hosts, name)));
    }
    let argv = argv(b, name, target, o)?;
    Ok(Step {
        machine: name.to_string(),
        env,
        argv,
    })
}

/// `NIX_SSHOPTS` verifying the host against its pin (plus the user's own `NIX_SSHOPTS`).
fn ssh_opts(known_hosts: &KnownHosts, name: &str) -> String {
    let mut opts: Vec<String> = known_hosts
        .pin_options(name)
        .into_iter()
        .flat_map(|o| ["-o".to_string(), o])
        .collect();
    if let Ok(user) = std::env::var("NIX_SSHOPTS")
        && !user.trim().is_empty()
    {
        opts.push(user);
    }
    opts.join(" ")
}

/// The backend's command line for machine `name` on `target`.
fn argv(b: Backend, name: &str, target: String, o: &DeployOptions) -> Result<Vec<String>, Error> {
    let action = if o.boot { "boot" } else { "switch" };
    let s = |x: &str| x.to_string();
    let no_boot = |tool: &str| {
        Err(Error::Usage(format!(
            "{name}: {tool} has no boot activation; deploy it without --boot"
        )))
    };
    Ok(match b {
        Backend::NixosRebuild => {
            let mut v = vec![
                s("nixos-rebuild"),
                s(action),
                s("--flake"),
                format!(".#{name}"),
                s("--target-host"),
                target,
                s("--build-host"),
                s("localhost"),
                s("--show-trace"),
            ];
            if o.fast {
                v.push(s("--fast"));
            }
            v
        }
        Backend::Nh => vec![
            s("nh"),
            s("os"),
            s(action),
            s("."),
            s("--hostname"),
            s(name),
            s("--target-host"),
            target,
            s("--"),
            s("--show-trace"),
        ],
        Backend::DarwinRebuild if o.boot => return no_boot("darwin-rebuild"),
        Backend::DarwinRebuild => vec![
            s("darwin-rebuild"),
            s("switch"),
            s("--flake"),
            format!(".#{name}"),
            s("--show-trace"),
        ],
        Backend::Clan if o.boot => return no_boot("clan machines update"),
        Backend::Clan => vec![s("clan"), s("machines"), s("update"), s(name)],
    })
}

/// Orders `machines` into stages: for each tag of `deploy.order`, in that order, the selected
/// machines carrying it (not already placed); then every other machine.
pub fn plan(
    inv: &Inventory,
    machines: &[String],
    o: &DeployOptions,
    known_hosts: &KnownHosts,
) -> Result<Plan, Error> {
    if let Some(n) = machines
        .iter()
        .find(|n| !inv.machines.contains_key(n.as_str()))
    {
        return Err(Error::Usage(inv.unknown_machine(n)));
    }
    let pins = known_hosts.pinned_aliases()?;
    let mut placed: HashSet<&str> = HashSet::with_capacity(machines.len());
    let mut stages = Vec::new();
    let mk = |n: &str| step(inv, n, o, known_hosts, pins.contains(n));
    for tag in &inv.deploy.order {
        let mut steps = Vec::new();
        for n in machines {
            let tagged = inv.machines.get(n).is_some_and(|m| m.tags.contains(tag));
            if !placed.contains(n.as_str()) && tagged {
                placed.insert(n);
                steps.push(mk(n)?);
            }
        }
        if !steps.is_empty() {
            stages.push(Stage {
                label: format!("tag {tag}"),
                steps,
            });
        }
    }
    let rest = machines
        .iter()
        .filter(|n| !placed.contains(n.as_str()))
        .map(|n| mk(n))
        .collect::<Result<Vec<_>, _>>()?;
    if !rest.is_empty() {
        stages.push(Stage {
            label: "rest".into(),
            steps: rest,
        });
    }
    Ok(Plan { stages })
}

/// A machine whose deploy failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The machine.
    pub machine: String,
    /// What happened (exit status or spawn error).
    pub reason: String,
}

/// Runs the plan from `cwd`: stages in order, up to `jobs` steps of a stage at once. With
/// more than one step running at a time, output lines are prefixed with `[machine]` and stdin
/// is closed; a lone step inherits the terminal. Returns the failures, in plan order.
pub fn execute(plan: &Plan, cwd: &Path, jobs: usize) -> Vec<Failure> {
    let jobs = jobs.max(1);
    let mut failures = Vec::new();
    for stage in &plan.stages {
        let n = stage.steps.len();
        let workers = jobs.min(n);
        let prefix = workers > 1;
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, Failure)>> = Mutex::new(Vec::new());
        std::thread::scope(|sc| {
            for _ in 0..workers {
                sc.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(st) = stage.steps.get(i) else { break };
                        if let Err(reason) = run_step(st, cwd, prefix) {
                            let f = Failure {
                                machine: st.machine.clone(),
                                reason,
                            };
                            if let Ok(mut r) = results.lock() {
                                r.push((i, f));
                            }
                        }
                    }
                });
            }
        });
        let mut r = results.into_inner().unwrap_or_default();
        r.sort_by_key(|(i, _)| *i);
        failures.extend(r.into_iter().map(|(_, f)| f));
    }
    failures
}

/// Runs one step; `Err` holds a one-line reason.
fn run_step(st: &Step, cwd: &Path, prefix: bool) -> Result<(), String> {
    let mut cmd = Command::new(&st.argv[0]);
    cmd.args(&st.argv[1..]).current_dir(cwd);
    for (k, v) in &st.env {
        cmd.env(k, v);
    }
    let status = if prefix {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", st.argv[0]))?;
        let tag = format!("[{}] ", st.machine);
        let out = child.stdout.take();
        let err = child.stderr.take();
        std::thread::scope(|sc| {
            if let Some(o) = out {
                sc.spawn(|| copy_prefixed(o, &tag, &mut std::io::stdout()));
            }
            if let Some(e) = err {
                sc.spawn(|| copy_prefixed(e, &tag, &mut std::io::stderr()));
            }
        });
        child.wait()
    } else {
        cmd.status()
    }
    .map_err(|e| format!("cannot run `{}`: {e}", st.argv[0]))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` {status}", st.argv[0]))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        let mut inv = Inventory::default();
        for (n, tags, sys) in [
            ("peer1", vec!["zt"], "x86_64-linux"),
            ("ctl", vec!["zerotier-controller"], "x86_64-linux"),
            ("mac", vec![], "aarch64-darwin"),
            ("peer2", vec!["zt"], "x86_64-linux"),
        ] {
            inv.machines.insert(
                n.into(),
                Machine {
                    tags: tags.into_iter().map(String::from).collect(),
                    system: sys.into(),
                    ..Default::default()
                },
            );
        }
        inv.deploy.order = vec!["zerotier-controller".into(), "missing".into()];
        inv
    }

    #[test]
    fn order_and_commands() {
        let d = tempfile::tempdir().unwrap();
        let kh = KnownHosts::for_workspace(d.path());
        let inv = inv();
        let all = select(&inv, &[], true).unwrap();
        let p = plan(&inv, &all, &DeployOptions::default(), &kh).unwrap();
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].steps[0].machine, "ctl");
        assert_eq!(
            p.stages[0].steps[0].display(),
            "nixos-rebuild switch --flake '.#ctl' --target-host root@ctl --build-host localhost --show-trace"
        );
        let mac = &p.stages[1].steps[1];
        assert_eq!(mac.argv[0], "darwin-rebuild");
        let boot = DeployOptions {
            boot: true,
            fast: false,
        };
        assert!(plan(&inv, &all, &boot, &kh).is_err());
        assert!(select(&inv, &[], false).is_err());
        assert!(select(&inv, &["nope".into()], false).is_err());
        kh.pin("ctl", "ssh-ed25519 AAAAx").unwrap();
        let p = plan(&inv, &["ctl".into()], &DeployOptions::default(), &kh).unwrap();
        let env = &p.stages[0].steps[0].env;
        assert_eq!(env[0].0, "NIX_SSHOPTS");
        assert!(env[0].1.contains("-o HostKeyAlias=ctl"));
    }
}
