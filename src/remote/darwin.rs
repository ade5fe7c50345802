//! nix-darwin deploys. `darwin-rebuild` activates the machine it runs on, so a darwin machine
//! is deployed on its target: `nix flake archive --json --to ssh-ng://TARGET .` copies the
//! flake source (and its inputs) into the target's store, then one ssh connection, verified
//! against the pin like every other, reads that store path on stdin and runs
//! `darwin-rebuild switch --flake "$src#HOST"` there (with `sudo` unless the ssh user is
//! root). Only a target that is this machine runs `darwin-rebuild` here.

use super::Error;
use super::deploy::{Cmd, DeployOptions, Input};
use super::known_hosts::KnownHosts;
use super::ssh::Ssh;

/// True when `target` (`[user@]host`) names this machine: `localhost`, `127.0.0.1`'s name
/// `localhost.localdomain`, or this host's name (short or full). An IP address is never local
/// (a loopback port may be forwarded to another machine).
pub(crate) fn is_local(target: &str) -> bool {
    let host = target.rsplit_once('@').map_or(target, |(_, h)| h);
    if host == "localhost" || host == "localhost.localdomain" {
        return true;
    }
    let Some(me) = hostname() else { return false };
    let short = me.split('.').next().unwrap_or(&me);
    host == me || host == short
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec())
        .ok()
        .filter(|h| !h.is_empty())
}

/// `darwin-rebuild switch --flake .#HOST …` for a deploy of this machine; with
/// `--dry-activate`, the preview ([`preview_script`]) under `sh -c`.
pub(crate) fn local_argv(name: &str, o: &DeployOptions) -> Vec<String> {
    let attr = super::deploy::quote(o.attr(name));
    if o.dry_activate {
        let script = format!(
            "set -eu\n{}",
            preview_script(&format!(".#{attr}"), &attr, "", &extra_flags(o))
        );
        return vec!["sh".into(), "-c".into(), script];
    }
    let mut v = vec!["darwin-rebuild".to_string(), "switch".to_string()];
    v.extend(["--flake".to_string(), format!(".#{}", o.attr(name))]);
    v.extend(extra_flags(o));
    v
}

/// `--show-trace` (unless turned off) and `--verbose` (with `--debug`).
fn extra_flags(o: &DeployOptions) -> Vec<String> {
    let mut v = Vec::new();
    v.extend((!o.no_show_trace).then(|| "--show-trace".to_string()));
    v.extend(o.debug.then(|| "--verbose".to_string()));
    v
}

/// The nix-darwin preview, which never activates: `darwin-rebuild check` (it builds the
/// system, then runs only the activation's checks, `checkActivation=1`, and changes no
/// profile; nix-darwin's `switch --dry-run` would still run `nix-env --set` and `activate`
/// when the build is already in the store), then what would change:
/// `nix store diff-closures /run/current-system <built>`. `flake` is the shell word of the
/// flake ref before `#`, `attr` the quoted configuration name.
pub(crate) fn preview_script(flake: &str, attr: &str, sudo: &str, flags: &[String]) -> String {
    let flags: String = flags
        .iter()
        .map(|f| format!(" {}", super::deploy::quote(f)))
        .collect();
    let base = flake.rsplit_once('#').map_or(flake, |(b, _)| b);
    let nix = "nix --extra-experimental-features 'nix-command flakes'";
    [
        format!("{sudo}darwin-rebuild check --flake {flake}{flags}"),
        format!(
            "out=$({nix} build --no-link --print-out-paths {base}#darwinConfigurations.{attr}.system)"
        ),
        "echo \"varsmith: preview only, nothing activated; $out would change /run/current-system by:\"".to_string(),
        format!("{nix} store diff-closures /run/current-system \"$out\""),
    ]
    .map(|l| l + "\n")
    .concat()
}

/// The two commands of a remote darwin deploy. `sshopts` is the `NIX_SSHOPTS` of the copy.
pub(crate) fn remote(
    name: &str,
    target: &str,
    o: &DeployOptions,
    known_hosts: &KnownHosts,
    sshopts: Option<String>,
) -> Result<Vec<Cmd>, Error> {
    if o.boot {
        return Err(Error::Usage(format!(
            "{name}: darwin-rebuild has no boot activation; deploy it without --boot"
        )));
    }
    if o.fast {
        return Err(Error::Usage(format!(
            "{name}: darwin-rebuild has no --fast (it never re-runs a freshly built copy of itself); deploy it without --fast"
        )));
    }
    if o.build_host.is_some() {
        return Err(Error::Usage(format!(
            "{name}: --build-host is nixos-rebuild's; a darwin machine builds on its target"
        )));
    }
    let copy = archive_to(target, sshopts);
    let ssh = Ssh::new(target, name, known_hosts, &o.ssh_options)?;
    let sudo = if target.starts_with("root@") {
        ""
    } else {
        "sudo "
    };
    let attr = super::deploy::quote(o.attr(name));
    let flake = format!("\"$src\"#{attr}");
    let body = if o.dry_activate {
        preview_script(&flake, &attr, sudo, &extra_flags(o))
    } else {
        let flags: String = extra_flags(o)
            .iter()
            .map(|f| format!(" {}", super::deploy::quote(f)))
            .collect();
        format!("{sudo}darwin-rebuild switch --flake {flake}{flags}\n")
    };
    let script = format!(
        "set -eu\nIFS= read -r src\ncase $src in /nix/store/*) ;; *) echo \"varsmith: not a store path: $src\" >&2; exit 1;; esac\n{body}"
    );
    let mut activate = Cmd::new(ssh.script_argv(&script)?);
    activate.input = Input::PreviousPath;
    Ok(vec![copy, activate])
}

/// `nix flake archive --json --to ssh-ng://TARGET .`: the flake and its inputs copied to the
/// target's store, over ssh with `sshopts` (the pin) as `NIX_SSHOPTS`.
pub(crate) fn archive_to(target: &str, sshopts: Option<String>) -> Cmd {
    let mut copy = Cmd::new(
        ["nix", "flake", "archive", "--json", "--to"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("ssh-ng://{target}"), ".".to_string()])
            .collect(),
    );
    copy.env
        .extend(sshopts.map(|v| ("NIX_SSHOPTS".to_string(), v)));
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_only_for_this_machine() {
        assert!(is_local("root@localhost"));
        assert!(is_local("localhost"));
        assert!(!is_local("root@127.0.0.1"));
        assert!(!is_local("admin@stibnite.example.org"));
        if let Some(h) = hostname() {
            assert!(is_local(&format!("me@{h}")));
        }
    }
}
