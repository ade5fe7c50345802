//! Identity discovery, in sops' order: every source that exists is loaded and all identities
//! are tried together.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Error, ssh_to_age};

/// Where one identity came from (for messages; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A file given with `--identity`.
    File(PathBuf),
    /// The `SOPS_AGE_KEY` variable.
    EnvKey,
    /// The file named by `SOPS_AGE_KEY_FILE`.
    EnvKeyFile(PathBuf),
    /// An OpenSSH key file (`SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `~/.ssh/id_ed25519`).
    SshFile(PathBuf),
    /// The default key file (`~/.config/sops/age/keys.txt`).
    Default(PathBuf),
}

impl std::fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentitySource::File(p) => write!(f, "{}", p.display()),
            IdentitySource::EnvKey => write!(f, "SOPS_AGE_KEY"),
            IdentitySource::EnvKeyFile(p) => write!(f, "SOPS_AGE_KEY_FILE={}", p.display()),
            IdentitySource::SshFile(p) => write!(f, "{}", p.display()),
            IdentitySource::Default(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A set of age identities to decrypt with, and the places that were searched.
#[derive(Default)]
pub struct Identities {
    ids: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// Every place that was looked at, found or not (for "no identity" messages).
    pub searched: Vec<String>,
    /// Every source that contributed at least one identity.
    pub sources: Vec<IdentitySource>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identities")
            .field("count", &self.ids.len())
            .field("sources", &self.sources)
            .finish()
    }
}

impl Identities {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every identity sops would use, plus the `explicit` files first.
    /// A source that exists but is malformed is an error; a missing default is not.
    pub(crate) fn discover(explicit: &[PathBuf]) -> Result<Self, Error> {
        let mut me = Self::new();
        for p in explicit {
            me.searched.push(p.display().to_string());
            me.add_file(p, IdentitySource::File(p.clone()))?;
        }
        if let Some(p) = env_nonempty("SOPS_AGE_SSH_PRIVATE_KEY_FILE") {
            let p = PathBuf::from(p);
            me.searched.push("SOPS_AGE_SSH_PRIVATE_KEY_FILE".into());
            me.add_file(&p, IdentitySource::SshFile(p.clone()))?;
        }
        if let Some(home) = home_dir() {
            let p = home.join(".ssh/id_ed25519");
            me.searched.push(p.display().to_string());
            if p.is_file() {
                // A user's personal ssh key that we cannot read (passphrase) is skipped, as
                // it is only one optional source among several.
                let _ = me.add_file(&p, IdentitySource::SshFile(p.clone()));
            }
        }
        me.searched.push("SOPS_AGE_KEY".into());
        if let Ok(v) = std::env::var("SOPS_AGE_KEY") {
            let v = Zeroizing::new(v);
            me.add_text(v.as_bytes(), IdentitySource::EnvKey)?;
        }
        me.searched.push("SOPS_AGE_KEY_FILE".into());
        if let Some(p) = env_nonempty("SOPS_AGE_KEY_FILE") {
            let p = PathBuf::from(p);
            me.add_file(&p, IdentitySource::EnvKeyFile(p.clone()))?;
        }
        if let Some(p) = default_key_file() {
            me.searched.push(p.display().to_string());
            if p.is_file() {
                me.add_file(&p, IdentitySource::Default(p.clone()))?;
            }
        }
        Ok(me)
    }

    /// Adds the identities of one file: an age identity file (`AGE-SECRET-KEY-1…` and
    /// `AGE-PLUGIN-…` lines), the same passphrase-protected (asked on the terminal), or an
    /// OpenSSH ed25519 private key (both its ssh identity and its ssh-to-age X25519 identity).
    /// A file that does not exist is [`Error::MissingIdentity`] (exit 2).
    pub(crate) fn add_file(&mut self, path: &Path, source: IdentitySource) -> Result<(), Error> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::MissingIdentity {
                    origin: source.to_string(),
                }
            } else {
                Error::Io {
                    path: path.to_path_buf(),
                    cause: e,
                }
            }
        })?);
        if super::passphrase::is_encrypted(&bytes) {
            let plain = super::passphrase::decrypt(&bytes, &source.to_string())?;
            return self.add_text(&plain, source);
        }
        self.add_text(&bytes, source)
    }

    /// Adds identities from text (an identity file's content or an OpenSSH private key).
    pub fn add_text(&mut self, bytes: &[u8], source: IdentitySource) -> Result<(), Error> {
        let origin = source.to_string();
        let text = std::str::from_utf8(bytes).map_err(|_| Error::BadIdentity {
            origin: origin.clone(),
            reason: "not UTF-8 text (expected an age identity file or an OpenSSH private key)"
                .into(),
        })?;
        if text
            .trim_start()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        {
            self.add_ssh(text, bytes, &origin)?;
            self.sources.push(source);
            return Ok(());
        }
        let mut plugins = Vec::new();
        let mut found = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| Error::BadIdentity {
                origin: origin.clone(),
                reason: format!("line {}: {reason}", n + 1),
            };
            if line.starts_with("AGE-SECRET-KEY-1") {
                let id: age::x25519::Identity =
                    line.parse().map_err(|_| bad("malformed AGE-SECRET-KEY"))?;
                self.ids.push(Box::new(id));
                found += 1;
            } else if line.starts_with("AGE-PLUGIN-") {
                let id: age::plugin::Identity = line
                    .parse()
                    .map_err(|e: &str| bad(&format!("malformed AGE-PLUGIN identity: {e}")))?;
                plugins.push(id);
            } else if is_public_key(line) {
                return Err(bad(
                    "this is a public key (a recipient), not an identity; pass the private key file",
                ));
            } else {
                return Err(bad(
                    "unknown identity type (expected AGE-SECRET-KEY-1…, AGE-PLUGIN-…-1… or an OpenSSH private key)",
                ));
            }
        }
        if !plugins.is_empty() {
            found += plugins.len();
            self.ids
                .extend(super::plugin::identities(&plugins, &origin)?);
        }
        if found > 0 {
            self.sources.push(source);
        }
        Ok(())
    }

    /// Adds an OpenSSH private key: its ssh-to-age X25519 identity (what sops-nix derives)
    /// and, when unencrypted, the ssh identity itself (what age and sops use for ssh
    /// recipients).
    fn add_ssh(&mut self, text: &str, bytes: &[u8], origin: &str) -> Result<(), Error> {
        let bad = |reason: String| Error::BadIdentity {
            origin: origin.to_string(),
            reason,
        };
        let converted = ssh_to_age::private_to_age(text).map_err(|e| bad(e.to_string()))?;
        let x: age::x25519::Identity = converted.parse().map_err(|e: &str| bad(e.to_string()))?;
        self.ids.push(Box::new(x));
        let ssh = age::ssh::Identity::from_buffer(BufReader::new(bytes), Some(origin.to_string()))
            .map_err(|e| bad(e.to_string()))?;
        if let age::ssh::Identity::Unencrypted(_) = ssh {
            self.ids.push(Box::new(ssh));
        }
        Ok(())
    }

    /// Adds one already-parsed identity.
    pub fn push(&mut self, id: Box<dyn age::Identity + Send + Sync>) {
        self.ids.push(id);
    }

    /// The identities, for `age::Decryptor::decrypt`.
    pub fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.ids.iter().map(|b| b.as_ref() as &dyn age::Identity)
    }

    /// Number of identities.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there is no identity at all.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// True when identities were given on purpose: some source is neither the user's personal
    /// `~/.ssh/id_ed25519` nor the default key file (`~/.config/sops/age/keys.txt`), which sops
    /// (and varsmith) merely try by default and which often hold other projects' keys.
    pub(crate) fn deliberate(&self) -> bool {
        let personal = home_dir().map(|h| h.join(".ssh/id_ed25519"));
        self.sources.iter().any(|s| match s {
            IdentitySource::SshFile(p) => Some(p) != personal.as_ref(),
            IdentitySource::Default(_) => false,
            _ => true,
        })
    }

    /// The sources, as the user would name them (`~/.ssh/id_ed25519, ~/.config/…/keys.txt`).
    pub(crate) fn source_names(&self) -> String {
        let home = home_dir();
        self.sources
            .iter()
            .map(|s| {
                let text = s.to_string();
                match home
                    .as_ref()
                    .and_then(|h| text.strip_prefix(&*h.to_string_lossy()))
                {
                    Some(rest) if rest.starts_with('/') => format!("~{rest}"),
                    _ => text,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Tries to unwrap one armored age file (a sops `enc` blob) with any identity.
    /// Returns `None` when no identity matches.
    pub(crate) fn unwrap_armored(&self, armored: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        use std::io::Read;
        if self.ids.is_empty() {
            return None;
        }
        let reader = age::armor::ArmoredReader::new(armored);
        let dec = age::Decryptor::new(reader).ok()?;
        let mut r = dec.decrypt(self.iter()).ok()?;
        let mut out = Zeroizing::new(Vec::with_capacity(64));
        r.read_to_end(&mut out).ok()?;
        Some(out)
    }
}

/// True for a line that is a recipient (`age1…`, an OpenSSH public key line): what someone
/// passes as `-i bob.pub` by mistake.
fn is_public_key(line: &str) -> bool {
    line.starts_with("age1")
        || [
            "ssh-ed25519 ",
            "ssh-rsa ",
            "ecdsa-sha2-",
            "sk-ssh-",
            "sk-ecdsa-",
        ]
        .iter()
        .any(|p| line.starts_with(p))
}

/// An environment variable that is set and not empty (an empty one is unset, as for sops).
fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The user's home directory from `$HOME`.
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// sops' default key file: `$XDG_CONFIG_HOME/sops/age/keys.txt`, else
/// `~/.config/sops/age/keys.txt`.
pub(crate) fn default_key_file() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("sops/age/keys.txt"));
    }
    home_dir().map(|h| h.join(".config/sops/age/keys.txt"))
}
