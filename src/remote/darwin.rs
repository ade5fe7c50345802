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
pub fn is_local(target: &str) -> bool {
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

/// `darwin-rebuild switch --flake .#HOST …` for a deploy of this machine.
pub fn local_argv(name: &str, o: &DeployOptions) -> Vec<String> {
    let mut v = vec!["darwin-rebuild".to_string(), "switch".to_string()];
    v.extend(darwin_flags(&format!(".#{}", o.attr(name)), o));
    v
}

fn darwin_flags(flake: &str, o: &DeployOptions) -> Vec<String> {
    let mut v = vec!["--flake".to_string(), flake.to_string()];
    v.extend((!o.no_show_trace).then(|| "--show-trace".to_string()));
    v.extend(o.dry_activate.then(|| "--dry-run".to_string()));
    v.extend(o.debug.then(|| "--verbose".to_string()));
    v
}

/// The two commands of a remote darwin deploy. `sshopts` is the `NIX_SSHOPTS` of the copy.
pub fn remote(
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
    let mut copy = Cmd::new(
        ["nix", "flake", "archive", "--json", "--to"]
            .iter()
            .map(|s| s.to_string())
            .chain([format!("ssh-ng://{target}"), ".".to_string()])
            .collect(),
    );
    copy.env
        .extend(sshopts.map(|v| ("NIX_SSHOPTS".to_string(), v)));
    let ssh = Ssh::new(target, name, known_hosts, &o.ssh_options)?;
    let sudo = if target.starts_with("root@") {
        ""
    } else {
        "sudo "
    };
    let flags = darwin_flags("$src#HOST", o)
        .iter()
        .map(|f| {
            if f == "$src#HOST" {
                format!("\"$src#\"{}", super::deploy::quote(o.attr(name)))
            } else {
                super::deploy::quote(f)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let script = format!(
        "set -eu\nIFS= read -r src\ncase $src in /nix/store/*) ;; *) echo \"varsmith: not a store path: $src\" >&2; exit 1;; esac\n{sudo}darwin-rebuild switch {flags}\n"
    );
    let mut activate = Cmd::new(ssh.script_argv(&script)?);
    activate.input = Input::PreviousPath;
    Ok(vec![copy, activate])
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
