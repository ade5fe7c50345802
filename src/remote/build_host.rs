//! A remote `--build-host` for nixos-rebuild and nh, each host verified against its own pin.
//!
//! Both tools pass one `NIX_SSHOPTS` to every ssh they run, to the target and to the build host
//! alike, so the target's pin given there (`-o HostKeyAlias=<target>`) would verify the build
//! host against the target's key. With a remote build host varsmith therefore writes an ssh
//! configuration file per machine and passes `NIX_SSHOPTS=-F <file>`: one `Host` block per host
//! holding that host's pin (the options of [`KnownHosts::pin_options`]), then, for every host,
//! the user's `--ssh-option`s and the `-o` options of the user's own `NIX_SSHOPTS`, then the
//! user's own configuration (`Include ~/.ssh/config`, or the `-F` file of the user's
//! `NIX_SSHOPTS`, and `/etc/ssh/ssh_config`, which `-F` would otherwise skip). ssh keeps the
//! first value it obtains for an option, so nothing after a host's block overrides its pin.
//!
//! The build host's pin: when it is a machine of the workspace (its name, or the host of its
//! target), that machine's pin (none pinned: the user's own OpenSSH trust, as deploying to
//! that machine would use); otherwise the key given with `--build-host-key`, written to a
//! known_hosts file beside the configuration. A build host that is neither is refused (exit 2):
//! varsmith never lets a build host, which produces the system every target runs, be trusted
//! implicitly. `localhost` builds locally (no ssh, no file).
//!
//! The files live in a private directory (0700, under `TMPDIR`) for as long as the deploy runs
//! (a dry run prints their text); they hold host names, aliases and public keys only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Error;
use super::known_hosts::KnownHosts;
use crate::workspace::Inventory;

/// How the build host is reached and verified, resolved once per deploy.
#[derive(Debug, Clone)]
pub(crate) struct BuildHost {
    /// What the backend gets as `--build-host`: the user's value, or a machine's target when
    /// the value named that machine.
    pub dest: String,
    /// The host ssh sees (the destination without `user@`).
    host: String,
    /// `HostKeyAlias` and the known_hosts file pinning it; `None`: the user's own trust.
    pin: Option<(String, PathBuf)>,
    dir: Arc<tempfile::TempDir>,
}

/// One machine's generated ssh configuration: its path and text.
#[derive(Debug, Clone)]
pub(crate) struct SshConfig {
    /// The file (`NIX_SSHOPTS=-F <path>`).
    pub path: PathBuf,
    /// Its content (public: host names, aliases, file paths).
    pub text: String,
    _dir: Arc<tempfile::TempDir>,
}

impl PartialEq for SshConfig {
    fn eq(&self, other: &SshConfig) -> bool {
        self.path == other.path && self.text == other.text
    }
}

impl Eq for SshConfig {}

/// The host part of an ssh destination (`user@host` → `host`), checked to be usable as a
/// `Host` pattern that matches itself only.
fn host_of(what: &str, dest: &str) -> Result<String, Error> {
    let host = dest.rsplit_once('@').map_or(dest, |(_, h)| h);
    let bad = host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "*?!,\"'#=".contains(c));
    if bad {
        return Err(Error::Usage(format!(
            "{what} {dest:?}: not a plain ssh destination (user@host)"
        )));
    }
    Ok(host.to_string())
}

/// Resolves `--build-host` (`None` for `localhost`: a local build). `key` is
/// `--build-host-key`: an OpenSSH public key line, or `@FILE` holding one (as bootstrap's
/// `--installer-host-key`).
pub(crate) fn resolve(
    inv: &Inventory,
    build_host: &str,
    key: Option<&str>,
    known_hosts: &KnownHosts,
) -> Result<Option<BuildHost>, Error> {
    super::no_leading_dash("build host", build_host)?;
    if build_host == "localhost" {
        if key.is_some() {
            return Err(Error::Usage(
                "--build-host-key needs a remote --build-host (localhost builds here, without ssh)"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let (dest, machine) = match inv.machines.get(build_host) {
        Some(m) => (
            m.target_or_default(build_host),
            Some(build_host.to_string()),
        ),
        None => {
            let host = host_of("--build-host", build_host)?;
            let named = inv
                .machines
                .iter()
                .find(|(n, m)| host_of("target", &m.target_or_default(n)).is_ok_and(|h| h == host));
            (build_host.to_string(), named.map(|(n, _)| n.clone()))
        }
    };
    let host = host_of("--build-host", &dest)?;
    let dir = Arc::new(private_dir()?);
    let pin = match (key, machine) {
        (Some(k), _) => Some(key_pin(&dir, &host, k)?),
        (None, Some(m)) if known_hosts.pinned(&m)?.is_empty() => None,
        (None, Some(m)) => Some((m, known_hosts.path().to_path_buf())),
        (None, None) => {
            return Err(Error::Usage(format!(
                "--build-host {build_host}: not a machine of this workspace, so varsmith has no pinned host key for it, and a build host makes the system every target runs. Pass --build-host-key with its public host key ('ssh-ed25519 AAAA…' or @FILE, obtained from the host over a trusted path), or add it as a machine and pin its key (`varsmith push-keys`)"
            )));
        }
    };
    Ok(Some(BuildHost {
        dest,
        host,
        pin,
        dir,
    }))
}

/// A fresh private directory whose path holds no whitespace (`NIX_SSHOPTS` is split on it).
fn private_dir() -> Result<tempfile::TempDir, Error> {
    let dir = tempfile::Builder::new()
        .prefix("varsmith-ssh-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    if dir.path().to_string_lossy().contains(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "the temporary directory {} holds whitespace, which NIX_SSHOPTS cannot carry: set TMPDIR to a path without",
            dir.path().display()
        )));
    }
    Ok(dir)
}

/// Writes `--build-host-key` (a key line, or `@FILE`: its first key line) as the pin of
/// `host` in a known_hosts file of its own; returns (alias, file).
fn key_pin(dir: &tempfile::TempDir, host: &str, key: &str) -> Result<(String, PathBuf), Error> {
    let line = match key.strip_prefix('@') {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| Error::io(Path::new(f), e))?;
            text.lines()
                .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .unwrap_or("")
                .to_string()
        }
        None => key.to_string(),
    };
    let file = dir.path().join("build_host_known_hosts");
    let kh = KnownHosts::at(&file);
    kh.pin(host, &line).map_err(|_| {
        Error::Usage(
            "--build-host-key: not an OpenSSH public key line (`TYPE BASE64`, or @FILE holding one)"
                .into(),
        )
    })?;
    Ok((host.to_string(), file))
}

impl BuildHost {
    /// The configuration for deploying machine `alias` to `target` (`pinned`: the workspace
    /// pins `alias`), written to `<dir>/<alias>.ssh_config`. `user` are the `--ssh-option`s;
    /// returns the file and the `NIX_SSHOPTS` value (`-F <file>` and the tokens of the user's
    /// own `NIX_SSHOPTS` that are not `-o`/`-F`).
    pub(crate) fn config(
        &self,
        known_hosts: &KnownHosts,
        alias: &str,
        target: &str,
        pinned: bool,
        user: &[String],
    ) -> Result<(SshConfig, String), Error> {
        let target_host = host_of("target", target)?;
        let env = std::env::var("NIX_SSHOPTS").unwrap_or_default();
        let env = split_user_sshopts(&env)?;
        let mut text = format!(
            "# varsmith: ssh settings for deploying {alias} with --build-host {}: nixos-rebuild and nh pass one NIX_SSHOPTS to every ssh, so each host gets its own pin here.\n",
            self.dest
        );
        let target_pin = pinned.then(|| (alias.to_string(), known_hosts.path().to_path_buf()));
        if target_host == self.host && target_pin.is_some() && self.pin != target_pin {
            return Err(Error::Usage(format!(
                "--build-host {}: the same host as {alias}'s target {target}, but pinned differently: build on the target (leave out --build-host) or give the same key",
                self.dest
            )));
        }
        let mut blocks = vec![(target_host.as_str(), target_pin.as_ref())];
        if self.host != target_host {
            blocks.push((self.host.as_str(), self.pin.as_ref()));
        }
        for (host, pin) in blocks {
            let Some((a, file)) = pin else { continue };
            text.push_str(&format!("Host {host}\n"));
            for o in KnownHosts::at(file).pin_options(a) {
                text.push_str(&format!("  {o}\n"));
            }
        }
        text.push_str("Match all\n");
        for o in super::ssh::check_options(user)?.iter().chain(&env.options) {
            check_config_option(o)?;
            text.push_str(&format!("  {o}\n"));
        }
        let include = env.config.as_deref().unwrap_or("~/.ssh/config");
        text.push_str(&format!(
            "  Include {include}\n  Include /etc/ssh/ssh_config\n"
        ));
        let path = self.dir.path().join(format!("{alias}.ssh_config"));
        write_private(&path, &text)?;
        let mut opts = vec!["-F".to_string(), path.to_string_lossy().into_owned()];
        opts.extend(env.rest);
        let cfg = SshConfig {
            path,
            text,
            _dir: self.dir.clone(),
        };
        Ok((cfg, opts.join(" ")))
    }
}

/// A user option as a configuration line: one line, and no keyword that would change the
/// file's structure.
fn check_config_option(o: &str) -> Result<(), Error> {
    let key = o
        .split(['=', ' '])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if o.chars().any(char::is_control) || matches!(key.as_str(), "host" | "match" | "include") {
        return Err(Error::Usage(format!(
            "ssh option {o:?} cannot be used with --build-host (one line, no Host, Match or Include)"
        )));
    }
    Ok(())
}

/// The user's own `NIX_SSHOPTS`, split as the tools split it (on whitespace): `-o` options,
/// the `-F` file, and the rest (passed on after varsmith's `-F`).
#[derive(Debug, Default, PartialEq)]
struct UserSshOpts {
    options: Vec<String>,
    config: Option<String>,
    rest: Vec<String>,
}

fn split_user_sshopts(env: &str) -> Result<UserSshOpts, Error> {
    let mut out = UserSshOpts::default();
    let mut words = env.split_whitespace();
    while let Some(w) = words.next() {
        let (flag, inline) = match w.strip_prefix("-o").or(w.strip_prefix("-F")) {
            Some(v) => (&w[..2], (!v.is_empty()).then_some(v)),
            None => {
                out.rest.push(w.to_string());
                continue;
            }
        };
        let Some(v) = inline.or_else(|| words.next()) else {
            return Err(Error::Usage(format!("NIX_SSHOPTS: {flag} without a value")));
        };
        if flag == "-o" {
            out.options.push(v.to_string());
        } else {
            out.config = Some(v.to_string());
        }
    }
    Ok(out)
}

/// Writes `text` to `path`, mode 0600 (ssh refuses a configuration others may write).
fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_sshopts_are_split_as_the_tools_split_them() {
        let u = split_user_sshopts("-o Port=22 -oUser=x -F /c -i /k -p 2").unwrap();
        assert_eq!(u.options, ["Port=22", "User=x"]);
        assert_eq!(u.config.as_deref(), Some("/c"));
        assert_eq!(u.rest, ["-i", "/k", "-p", "2"]);
        assert!(split_user_sshopts("-o").is_err());
        assert!(check_config_option("Host=x").is_err());
        assert!(check_config_option("Port=2\nHost x").is_err());
        assert!(host_of("t", "root@a*").is_err());
        assert_eq!(
            host_of("t", "root@web.example.org").unwrap(),
            "web.example.org"
        );
    }
}
