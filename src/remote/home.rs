//! `deploy --home USER@HOST`: switches a standalone home-manager configuration
//! (`homeConfigurations."USER@HOST"`) on machine HOST as USER. Like a darwin deploy it runs on
//! the target: `nix flake archive --json --to ssh-ng://USER@ADDR .` copies the flake source,
//! then one ssh connection as USER, verified against HOST's pin, reads that store path on
//! stdin and runs `home-manager switch --flake "$src#USER@HOST"` there (no sudo: a home is its
//! user's). ADDR is the host part of HOST's deploy target. A HOST that is this machine runs
//! `home-manager switch --flake .#USER@HOST` here.

use super::Error;
use super::deploy::{Cmd, DeployOptions, Input, Plan, Stage, Step};
use super::known_hosts::KnownHosts;
use super::ssh::Ssh;
use crate::workspace::Inventory;

/// `USER@HOST` split, both parts valid names; HOST must be a machine of the inventory.
pub(crate) fn parse<'a>(inv: &Inventory, home: &'a str) -> Result<(&'a str, &'a str), Error> {
    let (user, host) = home.split_once('@').ok_or_else(|| {
        Error::Usage(format!(
            "--home {home}: expected USER@HOST (the homeConfigurations attribute)"
        ))
    })?;
    crate::workspace::names::check_component(user)
        .map_err(|e| Error::Usage(format!("--home {home}: user name: {e}")))?;
    if !inv.machines.contains_key(host) {
        return Err(Error::Usage(format!(
            "--home {home}: {}",
            inv.unknown_machine(host)
        )));
    }
    Ok((user, host))
}

/// The one-step plan of `deploy --home USER@HOST`.
pub(crate) fn plan(
    inv: &Inventory,
    home: &str,
    o: &DeployOptions,
    known_hosts: &KnownHosts,
) -> Result<Plan, Error> {
    let (user, host) = parse(inv, home)?;
    let m = &inv.machines[host];
    let machine_target = m.target_or_default(host);
    let addr = machine_target
        .rsplit_once('@')
        .map_or(machine_target.as_str(), |(_, a)| a);
    let target = format!("{user}@{addr}");
    super::no_leading_dash("target", &target)?;
    let flags = flags(o);
    let commands = if super::darwin::is_local(&target) {
        let mut argv = vec![
            "home-manager".to_string(),
            "switch".to_string(),
            "--flake".to_string(),
            format!(".#{home}"),
        ];
        argv.extend(flags);
        vec![Cmd::new(argv)]
    } else {
        let pinned = known_hosts.pinned_aliases()?.contains(host);
        let sshopts = super::deploy::nix_sshopts(known_hosts, host, pinned, &o.ssh_options)?;
        let copy = super::darwin::archive_to(&target, sshopts);
        let ssh = Ssh::new(&target, host, known_hosts, &o.ssh_options)?;
        let extra: String = flags
            .iter()
            .map(|f| format!(" {}", super::deploy::quote(f)))
            .collect();
        let script = format!(
            "set -eu\nIFS= read -r src\ncase $src in /nix/store/*) ;; *) echo \"varsmith: not a store path: $src\" >&2; exit 1;; esac\nhome-manager switch --flake \"$src#\"{}{extra}\n",
            super::deploy::quote(home)
        );
        let mut activate = Cmd::new(ssh.script_argv(&script)?);
        activate.input = Input::PreviousPath;
        vec![copy, activate]
    };
    Ok(Plan {
        stages: vec![Stage {
            label: format!("home {home}"),
            steps: vec![Step {
                machine: host.to_string(),
                backend: super::deploy::backend(inv, m),
                target,
                upload: None,
                commands,
                verify: None,
                ssh_config: None,
            }],
        }],
    })
}

/// home-manager's flags: `--show-trace` unless turned off, `-v` with `--debug`.
fn flags(o: &DeployOptions) -> Vec<String> {
    let mut v = Vec::new();
    v.extend((!o.no_show_trace).then(|| "--show-trace".to_string()));
    v.extend(o.debug.then(|| "-v".to_string()));
    v
}
