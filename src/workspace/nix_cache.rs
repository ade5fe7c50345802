//! The flake-evaluation cache directory: `$XDG_CACHE_HOME/varsmith/` (else `~/.cache/varsmith/`).
//!
//! Invariants, since a cache entry decides which generator scripts run as the admin:
//! - the directory is created 0700 and every file in it 0600 (an existing directory of ours
//!   that is wider is narrowed to 0700);
//! - a directory or file that is a symlink, is not owned by the caller or is writable by group
//!   or others is refused: varsmith says so on stderr once and evaluates without the cache
//!   (nothing is read from it or written to it);
//! - every entry carries an HMAC-SHA256 of its name and body, keyed by a per-user random key
//!   (`key`, 32 bytes, 0600, created atomically beside the entries); an entry whose MAC does
//!   not verify is ignored like a missing one.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the MAC key, in bytes.
const KEY_LEN: usize = 32;

/// An opened, verified cache directory with its MAC key.
pub(crate) struct Cache {
    dir: PathBuf,
    key: zeroize::Zeroizing<Vec<u8>>,
}

/// Why a cache directory or file is not trusted, if it is not.
fn untrusted(meta: &std::fs::Metadata, want_dir: bool) -> Option<String> {
    let uid = unsafe { libc::geteuid() };
    if meta.file_type().is_symlink() {
        return Some("is a symlink".into());
    }
    if want_dir != meta.is_dir() || (!want_dir && !meta.is_file()) {
        return Some(if want_dir {
            "is not a directory".into()
        } else {
            "is not a regular file".into()
        });
    }
    if meta.uid() != uid {
        return Some(format!(
            "is owned by uid {}, not by you (uid {uid})",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "is writable by group or others (mode {:04o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Says on stderr that the cache is not used, and why.
fn refuse(path: &Path, why: &str) {
    eprintln!(
        "varsmith: not using the flake-evaluation cache: {} {why}; evaluating without it",
        path.display()
    );
}

/// The cache base directory, when one is known.
fn base() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
}

/// Opens a file without following a symlink (read-only).
fn open_nofollow(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl Cache {
    /// Opens (creating it 0700 when missing) the cache directory; `None` when there is no
    /// cache base, it cannot be created, or it is refused (said on stderr).
    pub(crate) fn open() -> Option<Cache> {
        let base = base()?;
        let dir = base.join("varsmith");
        if std::fs::create_dir_all(&base).is_err() {
            return None;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(_) => return None,
        }
        let meta = std::fs::symlink_metadata(&dir).ok()?;
        if let Some(why) = untrusted(&meta, true) {
            refuse(&dir, &why);
            return None;
        }
        if meta.mode() & 0o077 != 0 {
            // Ours, from an older version (0755): narrow it.
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        let key = Self::load_key(&dir)?;
        Some(Cache { dir, key })
    }

    /// Reads the MAC key, creating it atomically (a whole file appears, or none) when missing.
    fn load_key(dir: &Path) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let path = dir.join("key");
        if !path.exists() && std::fs::symlink_metadata(&path).is_err() {
            let mut k = zeroize::Zeroizing::new(vec![0u8; KEY_LEN]);
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
            let mut tmp = tempfile::NamedTempFile::new_in(dir).ok()?;
            tmp.write_all(&k).ok()?;
            tmp.as_file().sync_all().ok()?;
            // `persist_noclobber` links: a concurrent run's key wins, never a torn file.
            let _ = tmp.persist_noclobber(&path);
        }
        let mut f = match open_nofollow(&path) {
            Ok(f) => f,
            Err(e) => {
                refuse(&path, &format!("cannot be opened ({e})"));
                return None;
            }
        };
        let meta = f.metadata().ok()?;
        if let Some(why) = untrusted(&meta, false) {
            refuse(&path, &why);
            return None;
        }
        if meta.mode() & 0o077 != 0 {
            refuse(&path, "is readable by group or others");
            return None;
        }
        let mut k = zeroize::Zeroizing::new(Vec::new());
        f.read_to_end(&mut k).ok()?;
        if k.len() != KEY_LEN {
            refuse(&path, "is not a cache key");
            return None;
        }
        Some(k)
    }

    fn mac(&self, name: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(name.as_bytes());
        m.update(&[0]);
        m.update(body);
        m
    }

    /// The body of entry `name`, when it exists, is trusted and its MAC verifies.
    pub(crate) fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let mut f = open_nofollow(&path).ok()?;
        let meta = f.metadata().ok()?;
        if let Some(why) = untrusted(&meta, false) {
            refuse(&path, &why);
            return None;
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        let nl = memchr::memchr(b'\n', &bytes)?;
        let tag = hex::decode(&bytes[..nl]).ok()?;
        let body = &bytes[nl + 1..];
        self.mac(name, body).verify_slice(&tag).ok()?;
        Some(body.to_vec())
    }

    /// Writes entry `name` (0600, atomically: a reader sees the old or the new whole entry).
    pub(crate) fn write(&self, name: &str, body: &[u8]) {
        let tag = hex::encode(self.mac(name, body).finalize().into_bytes());
        let entry = [tag.as_bytes(), b"\n", body].concat();
        let mode = crate::replace::Mode::Fixed(0o600);
        let _ = crate::replace::replace_file(&self.dir.join(name), &entry, mode, ".tmp");
    }
}
