//! The workspace's pinned host keys: `<root>/known_hosts`, an OpenSSH known_hosts file whose
//! host field is the machine name (used with `-o HostKeyAlias=<machine>`, so a pin survives
//! address and port changes). It holds only public keys and is meant to be committed.
//!
//! Invariant: the file holds *exact* entries only: a plain machine name (or a comma-separated
//! list of them), a key type and a key. ssh is pointed at this file alone
//! (`UserKnownHostsFile=<it>`, `GlobalKnownHostsFile=/dev/null`, `KnownHostsCommand=none`),
//! so a line that matches more than its own names would widen every machine's pin: a wildcard
//! or negated pattern (`*`, `?`, `!`), a `[host]:port` form, a `@cert-authority` or
//! `@revoked` marker, or a hashed entry (`|1|…`, which varsmith cannot tell apart from a
//! pattern's target). Such a line makes every read of the file a usage error naming its line
//! (exit 2), before any ssh runs; varsmith never writes one.

use std::path::{Path, PathBuf};

use super::Error;

/// File name of the pin file at the workspace root.
pub const FILE_NAME: &str = "known_hosts";

/// A known_hosts file holding pins keyed by machine name.
///
/// The workspace's own file is written through `store::write_atomic` (symlink-safe,
/// atomic) under the workspace lock; a file given with `--known-hosts` outside the workspace
/// is replaced atomically beside itself.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
    root: Option<PathBuf>,
}

impl KnownHosts {
    /// The pin file of the workspace rooted at `root`.
    pub fn for_workspace(root: &Path) -> KnownHosts {
        KnownHosts {
            path: root.join(FILE_NAME),
            root: Some(root.to_path_buf()),
        }
    }

    /// A pin file at an explicit path.
    pub fn at(path: impl Into<PathBuf>) -> KnownHosts {
        KnownHosts {
            path: path.into(),
            root: None,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text, checked: every entry exact ([`check_line`]); empty when absent.
    fn read_checked(&self) -> Result<String, Error> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        for (i, line) in text.lines().enumerate() {
            if let Err(why) = check_line(line) {
                return Err(Error::Usage(format!(
                    "{}:{}: {why}; varsmith's pin file holds exact machine entries only (`NAME TYPE KEY`), and such a line would widen every machine's pin: remove it",
                    self.path.display(),
                    i + 1
                )));
            }
        }
        Ok(text)
    }

    /// The key lines (`type base64`) pinned for `alias`; empty when the file or the entry is
    /// absent. A non-exact line anywhere in the file is an error (module docs).
    pub fn pinned(&self, alias: &str) -> Result<Vec<String>, Error> {
        let text = self.read_checked()?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let mut f = line.split_whitespace();
                let hosts = f.next()?;
                if hosts.starts_with('#') || !hosts.split(',').any(|h| h == alias) {
                    return None;
                }
                Some(format!("{} {}", f.next()?, f.next()?))
            })
            .collect())
    }

    /// Pins `public_key` (an OpenSSH public key line; its comment is dropped) for `alias`,
    /// replacing the alias' previous entries. The file is rewritten atomically (mode 0644).
    /// After an install, use `KnownHosts::pin_installed`.
    pub fn pin(&self, alias: &str, public_key: &str) -> Result<(), Error> {
        let mut f = public_key.split_whitespace();
        let (Some(kind), Some(b64)) = (f.next(), f.next()) else {
            return Err(Error::BadKey {
                path: self.path.clone(),
                msg: format!("cannot pin {alias:?}: not an OpenSSH public key line"),
            });
        };
        super::no_leading_dash("machine name", alias)?;
        let old = self.read_checked()?;
        let mut out = String::with_capacity(old.len() + 128);
        for line in old.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if !first.starts_with('#') && first.split(',').any(|h| h == alias) {
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&format!("{alias} {kind} {b64}\n"));
        self.write(&out)
    }

    /// Replaces the file's content atomically (mode 0644).
    fn write(&self, out: &str) -> Result<(), Error> {
        if let Some(root) = &self.root {
            use crate::store::lock::{Mode, WorkspaceLock};
            let _lock = WorkspaceLock::acquire(root, Mode::Exclusive, "pinning a host key")?;
            crate::store::write_atomic(root, &self.path, out.as_bytes())?;
            return Ok(());
        }
        use crate::replace::{Mode, replace_file};
        replace_file(
            &self.path,
            out.as_bytes(),
            Mode::Fixed(0o644),
            ".known_hosts.",
        )
        .map_err(|e| Error::io(&self.path, e))
    }

    /// Pins the host key just installed on machine `alias` (by push-keys or bootstrap): the
    /// one place a freshly installed key is trusted, so that whatever must follow a new pin
    /// (host-key rotation's confirmation) hooks in here. With `keep_previous` (push-keys: the
    /// running sshd serves its old key until it restarts) the alias' earlier pins stay
    /// beside the new one; otherwise (bootstrap: a fresh install) they are replaced.
    pub(crate) fn pin_installed(
        &self,
        alias: &str,
        public_key: &str,
        keep_previous: bool,
    ) -> Result<(), Error> {
        let mut keys = if keep_previous {
            self.pinned(alias)?
        } else {
            Vec::new()
        };
        let mut f = public_key.split_whitespace();
        if let (Some(kind), Some(b64)) = (f.next(), f.next()) {
            keys.retain(|k| k != &format!("{kind} {b64}"));
        }
        self.pin(alias, public_key)?;
        for k in keys {
            self.add(alias, &k)?;
        }
        Ok(())
    }

    /// Appends one more pin for `alias` (atomically rewriting the file).
    fn add(&self, alias: &str, key: &str) -> Result<(), Error> {
        let old = self.read_checked()?;
        self.write(&format!("{old}{alias} {key}\n"))
    }

    /// Every alias with at least one pin (one read of the file, for whole-fleet commands).
    pub(crate) fn pinned_aliases(&self) -> Result<std::collections::HashSet<String>, Error> {
        let text = self.read_checked()?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|h| !h.starts_with('#'))
            .flat_map(|h| h.split(','))
            .map(str::to_string)
            .collect())
    }

    /// The ssh options that make OpenSSH verify `alias` against this file only, or `None`
    /// when nothing is pinned for it (then the user's own OpenSSH trust settings apply).
    pub fn ssh_options(&self, alias: &str) -> Result<Option<Vec<String>>, Error> {
        if self.pinned(alias)?.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.pin_options(alias)))
    }

    /// The pinning ssh options for `alias`, whether or not a pin exists: this file alone
    /// (no global file, no `KnownHostsCommand`), never updated by ssh (`UpdateHostKeys=no`).
    pub(crate) fn pin_options(&self, alias: &str) -> Vec<String> {
        vec![
            format!(
                "UserKnownHostsFile={}",
                ssh_quote(&self.path.to_string_lossy())
            ),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "KnownHostsCommand=none".to_string(),
            "UpdateHostKeys=no".to_string(),
            format!("HostKeyAlias={alias}"),
            "StrictHostKeyChecking=yes".to_string(),
        ]
    }
}

/// Checks one line of the pin file: blank, a comment, or `NAMES TYPE KEY [COMMENT]` whose
/// names are plain (no pattern, negation, port form, marker or hash). `Err`: why not (names
/// the offending field kind, never the key).
pub(crate) fn check_line(line: &str) -> Result<(), &'static str> {
    let mut f = line.split_whitespace();
    let Some(hosts) = f.next() else { return Ok(()) };
    if hosts.starts_with('#') {
        return Ok(());
    }
    if hosts.starts_with('@') {
        return Err("a marker line (@cert-authority / @revoked)");
    }
    if hosts.starts_with('|') {
        return Err("a hashed entry");
    }
    for h in hosts.split(',') {
        if h.is_empty() {
            return Err("an empty host name");
        }
        if h.contains(['*', '?']) {
            return Err("a wildcard pattern");
        }
        if h.starts_with('!') {
            return Err("a negated pattern");
        }
        if h.contains(['[', ']']) {
            return Err("a [host]:port entry");
        }
    }
    if f.next().is_none() || f.next().is_none() {
        return Err("an entry without a key type and key");
    }
    Ok(())
}

/// Quotes a value for an ssh `-o` option when it holds whitespace or quotes.
fn ssh_quote(v: &str) -> String {
    if v.chars().any(|c| c.is_whitespace() || c == '"') {
        format!("\"{}\"", v.replace('"', "\\\""))
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_replaces_only_the_alias() {
        let d = tempfile::tempdir().unwrap();
        let kh = KnownHosts::for_workspace(d.path());
        assert!(kh.pinned("a").unwrap().is_empty());
        assert!(kh.ssh_options("a").unwrap().is_none());
        kh.pin("a", "ssh-ed25519 AAAA1 comment").unwrap();
        kh.pin("ab", "ssh-ed25519 AAAA2").unwrap();
        kh.pin("a", "ssh-ed25519 AAAA3 x").unwrap();
        assert_eq!(kh.pinned("a").unwrap(), vec!["ssh-ed25519 AAAA3"]);
        assert_eq!(kh.pinned("ab").unwrap(), vec!["ssh-ed25519 AAAA2"]);
        let opts = kh.ssh_options("a").unwrap().unwrap();
        assert!(opts.contains(&"HostKeyAlias=a".to_string()));
        assert!(opts.contains(&"StrictHostKeyChecking=yes".to_string()));
        assert!(kh.pin("a", "garbage").is_err());
        kh.pin_installed("a", "ssh-ed25519 AAAA4 new", true)
            .unwrap();
        assert_eq!(
            kh.pinned("a").unwrap(),
            vec!["ssh-ed25519 AAAA4", "ssh-ed25519 AAAA3"]
        );
        kh.pin_installed("a", "ssh-ed25519 AAAA5", false).unwrap();
        assert_eq!(kh.pinned("a").unwrap(), vec!["ssh-ed25519 AAAA5"]);
        assert_eq!(kh.pinned("ab").unwrap(), vec!["ssh-ed25519 AAAA2"]);
    }
}

#[cfg(test)]
mod line_tests {
    use super::check_line;

    #[test]
    fn only_exact_entries_pass() {
        for ok in ["", "# c", "web ssh-ed25519 AAAA", "a,b ssh-ed25519 AAAA x"] {
            assert!(check_line(ok).is_ok(), "{ok}");
        }
        for bad in [
            "* ssh-ed25519 AAAA",
            "w?b ssh-ed25519 AAAA",
            "!x,web ssh-ed25519 AAAA",
            "[web]:22 ssh-ed25519 AAAA",
            "@revoked web ssh-ed25519 AAAA",
            "@cert-authority * ssh-ed25519 AAAA",
            "|1|a|b ssh-ed25519 AAAA",
            "web ssh-ed25519",
            "a,,b ssh-ed25519 AAAA",
        ] {
            assert!(check_line(bad).is_err(), "{bad}");
        }
    }
}
