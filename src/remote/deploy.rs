//! `deploy`: per-machine commands built as data (so `--dry-run` prints exactly what would
//! run) and ordered into stages by `deploy.order` tags. [`super::stages`] runs them.
//!
//! A NixOS machine deploys with nixos-rebuild (or nh, clan) from here with `--target-host`.
//! A nix-darwin machine deploys *on its target*: the flake source goes there with
//! `nix flake archive --to ssh-ng://TARGET`, then `darwin-rebuild` runs there over ssh (with
//! `sudo` unless the ssh user is root), so a Mac never switches to another Mac's
//! configuration ([`super::darwin`]). Only a target that is this machine (`localhost`, or
//! this host's name) runs `darwin-rebuild` locally.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Error;
use super::build_host::BuildHost;
use super::known_hosts::KnownHosts;
use crate::workspace::{Backend, Inventory, Machine};

/// Options shaping the deploy commands. Defaults: `switch`, `--show-trace`, build on
/// `localhost`, no verbose output.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeployOptions {
    /// Activate at next boot (`boot`) instead of `switch`.
    pub boot: bool,
    /// Pass `--fast` to nixos-rebuild.
    pub fast: bool,
    /// Preview the activation: `nixos-rebuild dry-activate`, `nh os switch --dry`,
    /// a darwin preview that never activates (`darwin-rebuild check` and
    /// `nix store diff-closures`, [`super::darwin::preview_script`]).
    pub dry_activate: bool,
    /// nixos-rebuild's and nh's `--build-host` (default `localhost`): an ssh destination or
    /// a machine's name (then its target), verified against its own pin
    /// ([`super::build_host`]).
    pub build_host: Option<String>,
    /// The build host's public key (a key line or a file) when it is not a machine.
    pub build_host_key: Option<String>,
    /// Verbose output from the backend (`--verbose`, clan's `--debug`).
    pub debug: bool,
    /// Leave out `--show-trace` (on by default).
    pub no_show_trace: bool,
    /// `K=V` ssh options: `-o K=V` for varsmith's ssh and in `NIX_SSHOPTS`.
    pub ssh_options: Vec<String>,
    /// A flake machine's configuration attribute when it differs from its `machineName`
    /// (`.#<attr>`); other machines build `.#<name>`.
    pub flake_attrs: std::collections::HashMap<String, String>,
}

impl DeployOptions {
    /// The flake attribute machine `name` builds.
    pub(crate) fn attr<'a>(&'a self, name: &'a str) -> &'a str {
        self.flake_attrs.get(name).map_or(name, String::as_str)
    }
}

/// Where a command's stdin comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Input {
    /// Nothing (the terminal for a lone step, else closed).
    #[default]
    None,
    /// The `path` field of the JSON the previous command printed (a store path, never a
    /// secret), followed by a newline.
    PreviousPath,
    /// The machine's activation secrets as a ustar stream ([`super::activation`]).
    Secrets,
}

/// One command of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cmd {
    /// Environment variables set for the command (never a secret).
    pub env: Vec<(String, String)>,
    /// The argv, program first.
    pub argv: Vec<String>,
    /// Its stdin.
    pub input: Input,
}

impl Cmd {
    /// A command with no environment and no input.
    pub(crate) fn new(argv: Vec<String>) -> Cmd {
        Cmd {
            env: Vec::new(),
            argv,
            input: Input::None,
        }
    }

    /// The command as one shell line (`VAR='…' prog args…`), exactly as it runs.
    pub(crate) fn display(&self) -> String {
        let env = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect::<Vec<_>>();
        let argv = self.argv.iter().map(|a| quote(a)).collect::<Vec<_>>();
        let mut line = env.into_iter().chain(argv).collect::<Vec<_>>().join(" ");
        match self.input {
            Input::None => {}
            Input::PreviousPath => line.push_str("  # stdin: the .path printed by the line above"),
            Input::Secrets => line.push_str("  # stdin: the activation secrets (tar)"),
        }
        line
    }
}

/// One machine's deploy: its commands, run in order, and an optional check afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// The machine.
    pub machine: String,
    /// Its backend.
    pub backend: Backend,
    /// Its ssh target.
    pub target: String,
    /// Uploads the activation secrets before the commands (when the machine has any).
    pub upload: Option<super::activation::Upload>,
    /// The commands; the first failure ends the step.
    pub commands: Vec<Cmd>,
    /// The post-activation check (`--verify`), run when every command succeeded.
    pub verify: Option<super::verify::Probe>,
    /// The ssh configuration `NIX_SSHOPTS` points at (`-F`), with a remote build host.
    pub ssh_config: Option<super::build_host::SshConfig>,
}

impl Step {
    /// Every command line, one per line, as it runs (the verify probe included).
    pub(crate) fn display(&self) -> String {
        let upload = self.upload.iter().map(|u| u.cmd.display());
        let mut lines: Vec<String> = upload
            .chain(self.commands.iter().map(Cmd::display))
            .collect();
        if let Some(p) = &self.verify {
            lines.push(p.cmd.display());
        }
        if let Some(c) = &self.ssh_config {
            lines.push(format!("# {}:", c.path.display()));
            lines.extend(c.text.lines().map(|l| format!("#   {l}")));
        }
        lines.join("\n")
    }
}

/// Shell-quotes one word. A word holding a newline or another control character is written
/// in `$'…'` form (bash, zsh, ksh), so every command stays on one line.
pub(crate) fn quote(s: &str) -> String {
    if s.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() && (c as u32) < 0x80 => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// A group of steps that runs after the previous group has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stage {
    /// `tag NAME` for a `deploy.order` group, `rest` for the remaining machines.
    pub label: String,
    /// Its steps, in inventory order.
    pub steps: Vec<Step>,
}

/// The whole deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Stages, run one after another; steps within a stage run in parallel.
    pub stages: Vec<Stage>,
}

impl Plan {
    /// Number of steps.
    pub(crate) fn len(&self) -> usize {
        self.stages.iter().map(|s| s.steps.len()).sum()
    }
}

/// The machines selected by `hosts` (in the given order, deduplicated) or every machine with
/// `all`. Unknown names and an empty selection are usage errors.
pub(crate) fn select(inv: &Inventory, hosts: &[String], all: bool) -> Result<Vec<String>, Error> {
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

/// The directory a deploy tool's `--flake .` resolves to when it runs in `root`, found as Nix
/// finds a path flake: `root` when it holds `flake.nix`, else the nearest parent that does,
/// searching no higher than a directory holding `.git` and never across a filesystem
/// boundary. `None`: no flake, so nixos-rebuild, nh, clan and `nix flake archive` would all
/// fail (a workspace whose `varsmith.yaml` sits in a subdirectory of the flake deploys fine).
pub(crate) fn flake_dir(root: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::metadata(root).ok()?.dev();
    for dir in root.ancestors() {
        if dir.join("flake.nix").is_file() {
            return Some(dir.to_path_buf());
        }
        let crossed = std::fs::metadata(dir)
            .ok()
            .is_none_or(|m| m.dev() != device);
        if dir.join(".git").exists() || crossed {
            return None;
        }
    }
    None
}

/// The error for a deploy from `root` with no flake ([`flake_dir`]): what the tools would
/// need, and how to get it (exit 2).
pub(crate) fn no_flake(root: &Path) -> Error {
    Error::Usage(format!(
        "no flake.nix in {} or a parent directory (up to the repository root): deploy runs `nixos-rebuild --flake .#MACHINE` (nh, clan, darwin-rebuild alike) there, so the machines' configurations must be a flake. Create flake.nix with a nixosConfigurations.<machine> (or darwinConfigurations) entry per machine importing varsmith's module (`nix flake init -t <varsmith>` writes one; README, \"NixOS side\"), then deploy again",
        root.display()
    ))
}

/// The backend machine `name` deploys with: its own override, else nix-darwin machines use
/// darwin-rebuild (unless the fleet uses clan), else the fleet default, else nixos-rebuild.
pub(crate) fn backend(inv: &Inventory, m: &Machine) -> Backend {
    if let Some(b) = m.deploy {
        return b;
    }
    let fleet = inv.deploy.backend;
    if m.is_darwin() && fleet != Some(Backend::Clan) {
        return Backend::DarwinRebuild;
    }
    fleet.unwrap_or(Backend::NixosRebuild)
}

/// The deploy step of machine `name` on `target` (the machine's own target when `None`).
/// `pinned` says whether `known_hosts` pins it; then nixos-rebuild and nh get `NIX_SSHOPTS`
/// that verify the host against that pin, and varsmith's own ssh does too.
pub(crate) fn step(
    inv: &Inventory,
    name: &str,
    target: Option<&str>,
    o: &DeployOptions,
    known_hosts: &KnownHosts,
    pinned: bool,
    build: Option<&BuildHost>,
) -> Result<Step, Error> {
    let m = inv
        .machines
        .get(name)
        .ok_or_else(|| Error::Usage(inv.unknown_machine(name)))?;
    let target = target.map_or_else(|| m.target_or_default(name), str::to_string);
    super::no_leading_dash("target", &target)?;
    let b = backend(inv, m);
    let mut sshopts = nix_sshopts(known_hosts, name, pinned, &o.ssh_options)?;
    let mut ssh_config = None;
    let rebuild = matches!(b, Backend::NixosRebuild | Backend::Nh);
    if let (true, Some(bh)) = (rebuild, build) {
        let (cfg, opts) = bh.config(known_hosts, name, &target, pinned, &o.ssh_options)?;
        ssh_config = Some(cfg);
        sshopts = Some(opts);
    }
    let commands = match b {
        Backend::DarwinRebuild if !super::darwin::is_local(&target) => {
            super::darwin::remote(name, &target, o, known_hosts, sshopts)?
        }
        _ => {
            let dest = build.map(|bh| bh.dest.as_str());
            let mut c = Cmd::new(argv(b, name, target.clone(), o, dest)?);
            if rebuild && let Some(v) = sshopts {
                c.env.push(("NIX_SSHOPTS".to_string(), v));
            }
            vec![c]
        }
    };
    Ok(Step {
        machine: name.to_string(),
        backend: b,
        target,
        upload: None,
        commands,
        verify: None,
        ssh_config,
    })
}

/// `NIX_SSHOPTS` for machine `name`: the pin (when `pinned`), the user's `--ssh-option`s and
/// the user's own `NIX_SSHOPTS`; `None` when all three are empty.
pub(crate) fn nix_sshopts(
    known_hosts: &KnownHosts,
    name: &str,
    pinned: bool,
    user: &[String],
) -> Result<Option<String>, Error> {
    let mut opts: Vec<String> = Vec::new();
    let pin = if pinned {
        known_hosts.pin_options(name)
    } else {
        Vec::new()
    };
    for o in pin.into_iter().chain(super::ssh::check_options(user)?) {
        opts.push("-o".to_string());
        opts.push(o);
    }
    if let Ok(env) = std::env::var("NIX_SSHOPTS")
        && !env.trim().is_empty()
    {
        opts.push(env);
    }
    Ok((!opts.is_empty()).then(|| opts.join(" ")))
}

/// The backend's command line for machine `name` on `target`; `build` is the resolved remote
/// build host's destination.
fn argv(
    b: Backend,
    name: &str,
    target: String,
    o: &DeployOptions,
    build: Option<&str>,
) -> Result<Vec<String>, Error> {
    let action = if o.dry_activate {
        "dry-activate"
    } else if o.boot {
        "boot"
    } else {
        "switch"
    };
    let s = |x: &str| x.to_string();
    let refuse = |what: &str| Err(Error::Usage(format!("{name}: {what}")));
    let trace = !o.no_show_trace;
    Ok(match b {
        Backend::NixosRebuild => {
            let build = build.or(o.build_host.as_deref()).unwrap_or("localhost");
            super::no_leading_dash("build host", build)?;
            let sudo = non_root(&target);
            let mut v = vec![s("nixos-rebuild"), s(action), s("--flake")];
            v.extend([format!(".#{}", o.attr(name)), s("--target-host"), target]);
            v.extend([s("--build-host"), s(build)]);
            v.extend(sudo.then(|| s("--use-remote-sudo")));
            v.extend(trace.then(|| s("--show-trace")));
            v.extend(o.fast.then(|| s("--fast")));
            v.extend(o.debug.then(|| s("--verbose")));
            v
        }
        Backend::Nh if o.fast => {
            return refuse(
                "nh has no --fast: it never re-runs a freshly built nixos-rebuild, which is what --fast skips; deploy it without --fast",
            );
        }
        Backend::Nh => {
            let mut v = vec![s("nh")];
            v.extend(o.debug.then(|| s("--verbose")));
            let act = if o.boot && !o.dry_activate {
                "boot"
            } else {
                "switch"
            };
            v.extend([s("os"), s(act), s("."), s("--hostname"), s(o.attr(name))]);
            v.extend([s("--target-host"), target]);
            if let Some(b) = build.or(o.build_host.as_deref()) {
                super::no_leading_dash("build host", b)?;
                v.extend([s("--build-host"), s(b)]);
            }
            v.extend(o.dry_activate.then(|| s("--dry")));
            if trace {
                v.extend([s("--"), s("--show-trace")]);
            }
            v
        }
        Backend::DarwinRebuild if o.boot => {
            return refuse("darwin-rebuild has no boot activation; deploy it without --boot");
        }
        Backend::DarwinRebuild if o.fast => {
            return refuse(
                "darwin-rebuild has no --fast (it never re-runs a freshly built copy of itself); deploy it without --fast",
            );
        }
        Backend::DarwinRebuild if o.build_host.is_some() => {
            return refuse(
                "--build-host is nixos-rebuild's; a darwin machine builds on its target",
            );
        }
        Backend::DarwinRebuild => super::darwin::local_argv(name, o),
        Backend::Clan if o.boot || o.dry_activate => {
            return refuse("clan machines update has no boot or preview activation");
        }
        Backend::Clan if o.fast || o.build_host.is_some() => {
            return refuse(
                "clan machines update takes neither --fast nor --build-host (set the build host in clan's own inventory)",
            );
        }
        Backend::Clan => {
            let mut v = vec![s("clan")];
            v.extend(o.debug.then(|| s("--debug")));
            v.extend([s("machines"), s("update"), s(name)]);
            v
        }
    })
}

/// One entry of `deploy.order`: `tag:NAME`, `os:nixos` / `os:darwin`, `machine:NAME`, or a bare
/// name: a tag when some machine carries it (as before), else a machine of that name, else a
/// tag that no selected machine has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OrderEntry {
    /// Machines carrying the tag.
    Tag(String),
    /// NixOS (`false`) or nix-darwin (`true`) machines.
    Os(bool),
    /// One machine.
    Machine(String),
}

impl OrderEntry {
    /// Parses one entry; an unknown `os:` or an unknown `machine:` is a usage error naming
    /// the entry.
    pub(crate) fn parse(inv: &Inventory, e: &str) -> Result<OrderEntry, Error> {
        let bad = |why: String| Error::Usage(format!("deploy.order entry {e:?}: {why}"));
        if let Some(t) = e.strip_prefix("tag:") {
            return Ok(OrderEntry::Tag(t.to_string()));
        }
        if let Some(os) = e.strip_prefix("os:") {
            return match os {
                "nixos" | "linux" => Ok(OrderEntry::Os(false)),
                "darwin" | "nix-darwin" | "macos" => Ok(OrderEntry::Os(true)),
                other => Err(bad(format!(
                    "unknown OS {other:?} (expected nixos or darwin)"
                ))),
            };
        }
        if let Some(m) = e.strip_prefix("machine:") {
            if !inv.machines.contains_key(m) {
                return Err(bad(inv.unknown_machine(m)));
            }
            return Ok(OrderEntry::Machine(m.to_string()));
        }
        let tagged = inv.machines.values().any(|m| m.tags.iter().any(|t| t == e));
        if !tagged && inv.machines.contains_key(e) {
            return Ok(OrderEntry::Machine(e.to_string()));
        }
        Ok(OrderEntry::Tag(e.to_string()))
    }

    fn matches(&self, name: &str, m: &Machine) -> bool {
        match self {
            OrderEntry::Tag(t) => m.tags.contains(t),
            OrderEntry::Os(darwin) => m.is_darwin() == *darwin,
            OrderEntry::Machine(n) => n == name,
        }
    }

    fn label(&self) -> String {
        match self {
            OrderEntry::Tag(t) => format!("tag {t}"),
            OrderEntry::Os(false) => "os nixos".into(),
            OrderEntry::Os(true) => "os darwin".into(),
            OrderEntry::Machine(n) => format!("machine {n}"),
        }
    }
}

/// True when `target` names a user other than root (`user@host`): nixos-rebuild then needs
/// `--use-remote-sudo` to activate. Without a user part, ssh's configured user applies and
/// nothing is added.
pub(crate) fn non_root(target: &str) -> bool {
    target
        .rsplit_once('@')
        .is_some_and(|(user, _)| !user.is_empty() && user != "root")
}

/// The remote build host, resolved once when a selected machine deploys with nixos-rebuild
/// or nh (the backends that take one); `--build-host-key` without `--build-host` is an error.
fn build_host(
    inv: &Inventory,
    machines: &[String],
    o: &DeployOptions,
    known_hosts: &KnownHosts,
) -> Result<Option<BuildHost>, Error> {
    let Some(b) = &o.build_host else {
        if o.build_host_key.is_some() {
            return Err(Error::Usage("--build-host-key needs --build-host".into()));
        }
        return Ok(None);
    };
    let rebuilds = machines.iter().any(|n| {
        inv.machines
            .get(n)
            .is_some_and(|m| matches!(backend(inv, m), Backend::NixosRebuild | Backend::Nh))
    });
    if !rebuilds {
        return Ok(None);
    }
    super::build_host::resolve(inv, b, o.build_host_key.as_deref(), known_hosts)
}

/// Orders `machines` into stages: for each entry of `deploy.order` ([`OrderEntry`]), in that
/// order, the selected machines it names (not already placed); then every other machine.
/// `target` overrides the target of a lone machine (`deploy HOST TARGET`).
pub(crate) fn plan(
    inv: &Inventory,
    machines: &[String],
    target: Option<&str>,
    o: &DeployOptions,
    known_hosts: &KnownHosts,
) -> Result<Plan, Error> {
    if target.is_some() && machines.len() != 1 {
        return Err(Error::Usage("a TARGET needs exactly one machine".into()));
    }
    if let Some(n) = machines
        .iter()
        .find(|n| !inv.machines.contains_key(n.as_str()))
    {
        return Err(Error::Usage(inv.unknown_machine(n)));
    }
    let order = inv
        .deploy
        .order
        .iter()
        .map(|e| OrderEntry::parse(inv, e))
        .collect::<Result<Vec<_>, _>>()?;
    let pins = known_hosts.pinned_aliases()?;
    let build = build_host(inv, machines, o, known_hosts)?;
    let mut placed: HashSet<&str> = HashSet::with_capacity(machines.len());
    let mut stages = Vec::new();
    let mk = |n: &str| {
        step(
            inv,
            n,
            target,
            o,
            known_hosts,
            pins.contains(n),
            build.as_ref(),
        )
    };
    for entry in &order {
        let mut steps = Vec::new();
        for n in machines {
            let named = inv.machines.get(n).is_some_and(|m| entry.matches(n, m));
            if !placed.contains(n.as_str()) && named {
                placed.insert(n);
                steps.push(mk(n)?);
            }
        }
        if !steps.is_empty() {
            stages.push(Stage {
                label: entry.label(),
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
    fn multi_line_words_stay_on_one_line() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("set -eu\nx='1' \\"), "$'set -eu\\nx=\\'1\\' \\\\'");
        let out = std::process::Command::new("bash")
            .args(["-c", &format!("printf %s {}", quote("a\n'b'\\\tc"))])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a\n'b'\\\tc");
    }

    #[test]
    fn seed_order_from_os_entries() {
        let d = tempfile::tempdir().unwrap();
        let kh = KnownHosts::for_workspace(d.path());
        let mut inv = inv();
        inv.deploy.order = vec![
            "tag:zerotier-controller".into(),
            "os:nixos".into(),
            "os:darwin".into(),
        ];
        let all = select(&inv, &[], true).unwrap();
        let p = plan(&inv, &all, None, &DeployOptions::default(), &kh).unwrap();
        let got: Vec<(String, Vec<String>)> = p
            .stages
            .iter()
            .map(|s| {
                (
                    s.label.clone(),
                    s.steps.iter().map(|st| st.machine.clone()).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "tag zerotier-controller".to_string(),
                    vec!["ctl".to_string()]
                ),
                ("os nixos".into(), vec!["peer1".into(), "peer2".into()]),
                ("os darwin".into(), vec!["mac".into()]),
            ]
        );
        inv.deploy.order = vec!["os:windows".into()];
        assert!(plan(&inv, &all, None, &DeployOptions::default(), &kh).is_err());
        inv.deploy.order = vec!["machine:nope".into()];
        assert!(plan(&inv, &all, None, &DeployOptions::default(), &kh).is_err());
        inv.deploy.order = vec!["mac".into()];
        let p = plan(&inv, &all, None, &DeployOptions::default(), &kh).unwrap();
        assert_eq!(p.stages[0].label, "machine mac");
    }

    #[test]
    fn order_and_commands() {
        let d = tempfile::tempdir().unwrap();
        let kh = KnownHosts::for_workspace(d.path());
        let inv = inv();
        let all = select(&inv, &[], true).unwrap();
        let p = plan(&inv, &all, None, &DeployOptions::default(), &kh).unwrap();
        assert_eq!(p.stages.len(), 2);
        assert_eq!(p.stages[0].steps[0].machine, "ctl");
        assert_eq!(
            p.stages[0].steps[0].display(),
            "nixos-rebuild switch --flake '.#ctl' --target-host root@ctl --build-host localhost --show-trace"
        );
        let mac = &p.stages[1].steps[1];
        assert_eq!(mac.commands[0].argv[..3], ["nix", "flake", "archive"]);
        assert_eq!(mac.commands[1].argv[0], "ssh");
        let boot = DeployOptions {
            boot: true,
            ..Default::default()
        };
        assert!(plan(&inv, &all, None, &boot, &kh).is_err());
        assert!(select(&inv, &[], false).is_err());
        assert!(select(&inv, &["nope".into()], false).is_err());
        kh.pin("ctl", "ssh-ed25519 AAAAx").unwrap();
        let p = plan(&inv, &["ctl".into()], None, &DeployOptions::default(), &kh).unwrap();
        let env = &p.stages[0].steps[0].commands[0].env;
        assert_eq!(env[0].0, "NIX_SSHOPTS");
        assert!(env[0].1.contains("-o HostKeyAlias=ctl"));
        let o = DeployOptions {
            flake_attrs: [("ctl".to_string(), "ctl-vps".to_string())].into(),
            ..Default::default()
        };
        let p = plan(&inv, &["ctl".into()], None, &o, &kh).unwrap();
        assert_eq!(p.stages[0].steps[0].commands[0].argv[3], ".#ctl-vps");
    }
}
