//! One writer per workspace: `sops/.tmp/lock`, held with `flock(2)` for the whole command.
//!
//! Writers (generate, set, rekey, admin and machine edits) take it exclusively; readers that
//! must not see a half-committed run (check) take it shared. A second writer waits and says
//! who holds it (found through `/proc/locks`, so the lock file is never written and stays
//! empty). The lock goes with the process, so a killed holder never leaves it stuck.
//!
//! The file is mode 0600 (an existing one we own is narrowed to it): another local user who
//! can read the workspace cannot open it to hold a lock and block every writer. A waiting
//! writer (or reader) gives up after [`timeout`] (default [`DEFAULT_TIMEOUT`], else
//! `--lock-timeout` or `VARSMITH_LOCK_TIMEOUT`, in seconds) with an error naming the holder.

use std::fs::File;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use super::Error;
use super::fs::Dir;

/// The lock file's name inside `sops/.tmp`.
pub(crate) const LOCK_NAME: &str = "lock";

/// The lock file's mode.
pub(crate) const LOCK_MODE: u32 = 0o600;

/// How long a command waits for the lock by default.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable giving the wait in seconds (`--lock-timeout` wins).
pub(crate) const TIMEOUT_ENV: &str = "VARSMITH_LOCK_TIMEOUT";

static TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the wait for this process (from `--lock-timeout`); the first call wins.
pub(crate) fn set_timeout(d: Duration) {
    let _ = TIMEOUT.set(d);
}

/// The wait: [`set_timeout`]'s, else `VARSMITH_LOCK_TIMEOUT` (seconds, may be fractional),
/// else [`DEFAULT_TIMEOUT`]. A malformed variable is an error naming it.
pub(crate) fn timeout() -> Result<Duration, Error> {
    if let Some(d) = TIMEOUT.get() {
        return Ok(*d);
    }
    let Ok(v) = std::env::var(TIMEOUT_ENV) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    parse_seconds(&v).ok_or_else(|| Error::Malformed {
        path: TIMEOUT_ENV.into(),
        msg: format!(
            "expected a number of seconds, got {:?}",
            v.chars().take(16).collect::<String>()
        ),
    })
}

/// `--lock-timeout`'s parser.
pub(crate) fn seconds_arg(s: &str) -> Result<Duration, String> {
    parse_seconds(s).ok_or_else(|| "expected a number of seconds (e.g. 60 or 0.5)".into())
}

/// A non-negative, finite number of seconds.
pub(crate) fn parse_seconds(s: &str) -> Option<Duration> {
    let f: f64 = s.trim().parse().ok()?;
    (0.0..1e9).contains(&f).then(|| Duration::from_secs_f64(f))
}

/// A held workspace lock; released on drop.
#[derive(Debug)]
pub(crate) struct WorkspaceLock {
    _file: File,
}

/// Shared (readers) or exclusive (writers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Readers: many at once, never during a writer.
    Shared,
    /// One writer, and no reader meanwhile.
    Exclusive,
}

/// `flock(2)` without waiting, retried on `EINTR`.
fn try_flock(f: &File, mode: Mode) -> std::io::Result<()> {
    let op = match mode {
        Mode::Shared => FlockOperation::NonBlockingLockShared,
        Mode::Exclusive => FlockOperation::NonBlockingLockExclusive,
    };
    loop {
        match rustix::fs::flock(f, op) {
            Ok(()) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn open_lock_file(root: &Path, create: bool) -> Result<Option<File>, Error> {
    let dir = match Dir::open(root, &super::temp_dir(root), create) {
        Ok(d) => d,
        Err(crate::confined::Error::Io { cause: source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let name = std::ffi::OsStr::new(LOCK_NAME);
    if let Some(f) = dir.open_file(name)? {
        narrow_mode(&f);
        return Ok(Some(f));
    }
    if !create {
        return Ok(None);
    }
    match dir.create_new(name, LOCK_MODE) {
        Ok(f) => Ok(Some(f)),
        Err(crate::confined::Error::Io { cause: source, .. })
            if source.raw_os_error() == Some(Errno::EXIST.raw_os_error()) =>
        {
            Ok(dir.open_file(name)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Narrows an existing lock file we own (made 0644 by older versions) to [`LOCK_MODE`]; one
/// owned by someone else is left alone (its owner decides).
fn narrow_mode(f: &File) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = f.metadata() else { return };
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() == me && meta.mode() & 0o7777 != LOCK_MODE {
        let _ = rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(LOCK_MODE));
    }
}

/// Waits for `op` on `f` until `limit` has passed, polling (flock has no timed wait) with a
/// backoff from 10 ms to 250 ms. `Ok(false)`: timed out.
fn flock_within(f: &File, mode: Mode, limit: Duration) -> std::io::Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match try_flock(f, mode) {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(Errno::WOULDBLOCK.raw_os_error()) => {}
            Err(e) => return Err(e),
        }
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(250));
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
        return crate::term::escape_controls(&format!("pid {pid} ({cmd})"));
    }
    fallback
}

impl WorkspaceLock {
    /// Takes the lock of the workspace at `root` for `what`, waiting for another holder and
    /// saying so on stderr. A shared lock on a workspace without `sops/.tmp` is a no-op
    /// (nothing was ever written there).
    pub(crate) fn acquire(
        root: &Path,
        mode: Mode,
        what: &str,
    ) -> Result<Option<WorkspaceLock>, Error> {
        let path = super::temp_dir(root).join(LOCK_NAME);
        let Some(f) = open_lock_file(root, mode == Mode::Exclusive)? else {
            return Ok(None);
        };
        let io = |source| Error::Io {
            path: path.clone(),
            cause: source,
        };
        if let Err(e) = try_flock(&f, mode) {
            if e.raw_os_error() != Some(Errno::WOULDBLOCK.raw_os_error()) {
                return Err(io(e));
            }
            let limit = timeout()?;
            let who = holder(&f);
            eprintln!(
                "{what}: waiting for the workspace lock {} held by {who} (up to {} s) …",
                path.display(),
                limit.as_secs_f64()
            );
            if !flock_within(&f, mode, limit).map_err(io)? {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "gave up waiting for the workspace lock after {} s: it is held by {who}; stop that process, or wait longer with --lock-timeout SECONDS (or {TIMEOUT_ENV})",
                        limit.as_secs_f64()
                    ),
                )));
            }
        }
        // What this process read before holding the lock may have changed meanwhile.
        crate::confined::recheck_cached_reads();
        Ok(Some(WorkspaceLock { _file: f }))
    }
}
