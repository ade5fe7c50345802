//! One writer per workspace: `sops/.tmp/lock`, held with `flock(2)` for the whole command.
//!
//! Writers (generate, set, rekey, admin and machine edits) take it exclusively; readers that
//! must not see a half-committed run (check) take it shared. A second writer waits and says
//! who holds it (found through `/proc/locks`, so the lock file is never written and stays
//! empty). The lock goes with the process, so a killed holder never leaves it stuck.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::Error;
use super::fs::Dir;

/// The lock file's name inside `sops/.tmp`.
pub const LOCK_NAME: &str = "lock";

/// A held workspace lock; released on drop.
#[derive(Debug)]
pub struct WorkspaceLock {
    _file: File,
}

/// Shared (readers) or exclusive (writers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Readers: many at once, never during a writer.
    Shared,
    /// One writer.
    Exclusive,
}

fn flock(f: &File, op: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on an open descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn open_lock_file(root: &Path, create: bool) -> Result<Option<File>, Error> {
    let dir = match Dir::open(root, &super::temp_dir(root), create) {
        Ok(d) => d,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let name = std::ffi::OsStr::new(LOCK_NAME);
    if let Some(f) = dir.open_file(name)? {
        return Ok(Some(f));
    }
    if !create {
        return Ok(None);
    }
    match dir.create_new(name, 0o644) {
        Ok(f) => Ok(Some(f)),
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EEXIST) => {
            dir.open_file(name)
        }
        Err(e) => Err(e),
    }
}

/// Who holds a flock on the file `f` (Linux: `/proc/locks`, then the holder's command line).
fn holder(f: &File) -> String {
    use std::os::unix::fs::MetadataExt;
    let fallback = "another varsmith".to_string();
    let Ok(meta) = f.metadata() else {
        return fallback;
    };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return fallback;
    };
    let ino = meta.ino().to_string();
    for line in locks.lines() {
        // "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pos) = fields.iter().position(|f| *f == "FLOCK") else {
            continue;
        };
        let (Some(pid), Some(dev_ino)) = (fields.get(pos + 3), fields.get(pos + 4)) else {
            continue;
        };
        if dev_ino.rsplit(':').next() != Some(ino.as_str()) {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|c| *c == 0)
                    .filter(|a| !a.is_empty())
                    .take(3)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        return crate::run::capture::escape_controls(&format!("pid {pid} ({cmd})"));
    }
    fallback
}

impl WorkspaceLock {
    /// Takes the lock of the workspace at `root` for `what`, waiting for another holder and
    /// saying so on stderr. A shared lock on a workspace without `sops/.tmp` is a no-op
    /// (nothing was ever written there).
    pub fn acquire(root: &Path, mode: Mode, what: &str) -> Result<Option<WorkspaceLock>, Error> {
        let path = super::temp_dir(root).join(LOCK_NAME);
        let Some(f) = open_lock_file(root, mode == Mode::Exclusive)? else {
            return Ok(None);
        };
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let op = match mode {
            Mode::Shared => libc::LOCK_SH,
            Mode::Exclusive => libc::LOCK_EX,
        };
        if let Err(e) = flock(&f, op | libc::LOCK_NB) {
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io(e));
            }
            eprintln!(
                "{what}: waiting for the workspace lock {} held by {} …",
                path.display(),
                holder(&f)
            );
            flock(&f, op).map_err(io)?;
        }
        Ok(Some(WorkspaceLock { _file: f }))
    }
}
