//! Plaintext directories: where generator inputs and outputs, prompt answers and bootstrap's
//! host keys live while varsmith needs them. They are only ever made on a RAM filesystem
//! (tmpfs or ramfs): `$XDG_RUNTIME_DIR`, else `/dev/shm`. With neither, it is an error (a secret
//! must not silently reach a disk) unless `VARSMITH_ALLOW_DISK_TMP=1`.
//!
//! Every such directory is `<base>/varsmith-run-<pid>-<random>`, mode 0700, registered for
//! removal on SIGINT/SIGTERM, removed on drop (success, failure, panic), and swept by the next
//! varsmith run when its process was killed with SIGKILL.
//!
//! Removal ([`remove_tree`]) first gives every directory of the tree back its owner's write
//! and search permission (a script may leave a read-only directory in `$out`, which a non-root
//! owner could not empty), never following a symlink. A directory that still cannot be
//! removed is named on stderr, never left silently.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::signals::DirGuard;

/// Prefix of every plaintext directory.
pub(crate) const PLAINTEXT_PREFIX: &str = "varsmith-run-";

/// Environment variable that allows a plaintext directory on a disk filesystem.
pub(crate) const ALLOW_DISK_ENV: &str = "VARSMITH_ALLOW_DISK_TMP";

/// Errors making a plaintext directory.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No RAM filesystem to put plaintext on.
    #[error(
        "no tmpfs for plaintext secrets: neither $XDG_RUNTIME_DIR nor /dev/shm is a usable tmpfs directory{detail}; set XDG_RUNTIME_DIR to one (or {ALLOW_DISK_ENV}=1 to accept plaintext on disk)"
    )]
    NoTmpfs {
        /// Why the candidates were refused.
        detail: String,
    },
    /// Creating or preparing the directory failed.
    #[error("creating a private directory in {path}: {cause}")]
    Io {
        /// The base the private directory was made in (`$XDG_RUNTIME_DIR` or `/dev/shm`).
        path: PathBuf,
        /// Why making, narrowing or handing over the directory failed.
        cause: std::io::Error,
    },
}

/// Is `path` on tmpfs or ramfs?
fn on_ram_fs(path: &Path) -> bool {
    let Ok(st) = rustix::fs::statfs(path) else {
        return false;
    };
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    let t = st.f_type as i64;
    t == TMPFS_MAGIC || t == RAMFS_MAGIC
}

/// The base directory for plaintext directories. `traversable`: the base must let other uids
/// pass through it (the root-dropped sandbox uid must reach its own run directory).
pub(crate) fn base(traversable: bool) -> Result<PathBuf, Error> {
    let mut refused = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && x.is_absolute()
    {
        candidates.push(x);
    }
    candidates.push(PathBuf::from("/dev/shm"));
    for c in &candidates {
        let Ok(meta) = std::fs::metadata(c) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        if !on_ram_fs(c) {
            refused.push(format!("{} is not on tmpfs", c.display()));
            continue;
        }
        if traversable && meta.permissions().mode() & 0o001 == 0 {
            refused.push(format!(
                "{} is not searchable by the sandbox uid",
                c.display()
            ));
            continue;
        }
        return Ok(c.clone());
    }
    if std::env::var(ALLOW_DISK_ENV).as_deref() == Ok("1") {
        return Ok(std::env::temp_dir());
    }
    let detail = if refused.is_empty() {
        String::new()
    } else {
        format!(" ({})", refused.join("; "))
    };
    Err(Error::NoTmpfs { detail })
}

/// A private plaintext directory; removed on drop and on a signal.
#[derive(Debug)]
pub(crate) struct PlaintextDir {
    dir: PathBuf,
    _guard: DirGuard,
}

impl Drop for PlaintextDir {
    fn drop(&mut self) {
        // Before the guard (a field) unregisters the directory.
        if let Err(e) = remove_tree(&self.dir) {
            report_leftover(&self.dir, &e);
        }
    }
}

/// Says on stderr that a plaintext directory could not be removed (it may hold secrets).
pub(crate) fn report_leftover(dir: &Path, e: &std::io::Error) {
    eprintln!(
        "varsmith: warning: could not remove the plaintext directory {}: {e}; remove it by hand",
        dir.display()
    );
}

/// Gives the directory at `path` (a directory, not a symlink to one) mode 0700. Through an
/// `O_PATH | O_NOFOLLOW` descriptor and `/proc/self/fd`, so a directory swapped for a symlink
/// in between is never followed; without `/proc`, by path after `lstat`.
fn make_writable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let perm = || std::fs::Permissions::from_mode(0o700);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(path)?;
    let via = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&f)
    ));
    match std::fs::set_permissions(&via, perm()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::set_permissions(path, perm())
        }
        r => r,
    }
}

/// Makes every directory under `dir` (itself included) writable by its owner, depth first,
/// without following symlinks. Errors are ignored here: the removal that follows reports
/// what is left.
fn restore_write(dir: &Path, depth: usize) {
    let writable = std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o700 == 0o700);
    if !writable {
        let _ = make_writable(dir);
    }
    if depth == 0 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            restore_write(&e.path(), depth - 1);
        }
    }
}

/// Deepest directory nesting [`remove_tree`] restores permissions in (far beyond what a run
/// directory holds; bounds the recursion).
const MAX_DEPTH: usize = 256;

/// Removes the tree at `dir` (a missing one is fine): first as is, then after restoring the
/// owner's write permission on every directory in it.
pub(crate) fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return std::fs::remove_file(dir);
    }
    restore_write(dir, MAX_DEPTH);
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl PlaintextDir {
    /// Makes a new 0700 directory. With `owner`, it is then given to that uid/gid (the
    /// root-dropped sandbox).
    pub(crate) fn new(owner: Option<(u32, u32)>) -> Result<PlaintextDir, Error> {
        let base = base(owner.is_some())?;
        let io = |source| Error::Io {
            path: base.clone(),
            cause: source,
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PLAINTEXT_PREFIX}{}-", std::process::id()))
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(io)?
            .keep();
        let guard = DirGuard::register(&dir);
        let made = PlaintextDir { dir, _guard: guard };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&made.dir, Some(uid), Some(gid)).map_err(io)?;
        }
        Ok(made)
    }

    /// The directory (mode 0700, on tmpfs or ramfs unless plaintext on disk was allowed).
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }
}

/// Removes plaintext directories left by varsmith processes that no longer exist (SIGKILL,
/// power loss) from every base it may have used. Returns how many were removed; each one that
/// cannot be removed is named on stderr.
pub(crate) fn sweep_stale() -> usize {
    let mut bases = vec![PathBuf::from("/dev/shm"), std::env::temp_dir()];
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        bases.insert(0, PathBuf::from(x));
    }
    bases.dedup();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for base in bases {
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(PLAINTEXT_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let owned = e.metadata().is_ok_and(|m| {
                let uid = std::os::unix::fs::MetadataExt::uid(&m);
                uid == me || me == 0
            });
            if !owned || crate::process::pid_alive(pid) {
                continue;
            }
            match remove_tree(&e.path()) {
                Ok(()) => removed += 1,
                Err(err) => report_leftover(&e.path(), &err),
            }
        }
    }
    removed
}
