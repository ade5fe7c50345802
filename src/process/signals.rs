//! SIGINT / SIGTERM: one handler for the whole process.
//!
//! The signal handler itself only sets a flag and wakes a watcher thread (async-signal-safe).
//! The watcher kills the process groups of every registered child (generator scripts, deploy
//! tools), removes every registered plaintext directory, restores a terminal left without
//! echo, waits until no store commit is in flight, and exits with 130. The main thread, when
//! it gets there first, also exits 130 (see [`interrupted`]): the exit code never depends on
//! which process the signal reached first or what the children did with it.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, Once, RwLock, RwLockReadGuard};

use crate::error::EXIT_INTERRUPTED;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
static INSTALL: Once = Once::new();
static CHILDREN: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static TTY: Mutex<Option<(RawFd, libc::termios)>> = Mutex::new(None);
/// Store commits hold it shared; the watcher takes it exclusively before exiting.
static COMMITS: RwLock<()> = RwLock::new(());

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; fd is our pipe's write end.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

/// Installs the handler for SIGINT and SIGTERM (once per process).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills two fds; both close on exec.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        WAKE_FD.store(fds[1], Ordering::SeqCst);
        let read_fd = fds[0];
        std::thread::spawn(move || watcher(read_fd));
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction with a valid handler; SA_RESTART so that blocking
            // calls elsewhere are not failed by EINTR.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

fn watcher(fd: RawFd) {
    let mut b = 0u8;
    loop {
        // SAFETY: reading one byte from our own pipe.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        if n == 1 || (n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
        {
            break;
        }
    }
    kill_children();
    remove_dirs();
    restore_tty();
    // An in-flight commit finishes its renames first: every file stays an old or a new
    // whole version, and no new commit starts once the flag is set.
    let _gate = COMMITS.write().unwrap_or_else(|e| e.into_inner());
    std::process::exit(EXIT_INTERRUPTED);
}

/// True once SIGINT or SIGTERM arrived.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Marks the process interrupted and kills the registered children, as a signal would (used
/// when a child reports that it died of SIGINT before our own handler ran).
pub(crate) fn note_child_interrupted() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn kill_children() {
    if let Ok(guard) = CHILDREN.lock()
        && let Some(set) = guard.as_ref()
    {
        for &pgid in set {
            // SAFETY: kill(2) on the process group of a child we spawned in its own group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

fn remove_dirs() {
    if let Ok(dirs) = DIRS.lock() {
        for d in dirs.iter() {
            let _ = super::tmpfs::remove_tree(d);
        }
    }
}

fn restore_tty() {
    if let Ok(g) = TTY.lock()
        && let Some((fd, t)) = g.as_ref()
    {
        // SAFETY: restoring saved terminal attributes on an fd we opened.
        unsafe { libc::tcsetattr(*fd, libc::TCSANOW, t) };
    }
}

/// A child process group killed on a signal while the guard lives.
#[derive(Debug)]
pub(crate) struct ChildGuard(i32);

impl ChildGuard {
    /// Registers the process group `pgid` (a child spawned with `process_group(0)`). If a signal
    /// already arrived, the group is killed at once.
    pub(crate) fn register(pgid: u32) -> ChildGuard {
        let pgid = pgid as i32;
        if let Ok(mut g) = CHILDREN.lock() {
            g.get_or_insert_with(HashSet::new).insert(pgid);
        }
        if interrupted() {
            // SAFETY: as in kill_children.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        ChildGuard(pgid)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(mut g) = CHILDREN.lock()
            && let Some(set) = g.as_mut()
        {
            set.remove(&self.0);
        }
    }
}

/// A directory removed on a signal while the guard lives (plaintext run directories).
#[derive(Debug)]
pub(crate) struct DirGuard(PathBuf);

impl DirGuard {
    /// Registers `path`.
    pub(crate) fn register(path: &Path) -> DirGuard {
        if let Ok(mut d) = DIRS.lock() {
            d.push(path.to_path_buf());
        }
        DirGuard(path.to_path_buf())
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Ok(mut d) = DIRS.lock() {
            d.retain(|p| p != &self.0);
        }
    }
}

/// Terminal attributes restored on a signal while the guard lives (a prompt with echo off).
#[derive(Debug)]
pub(crate) struct TtyGuard(());

impl TtyGuard {
    /// Remembers `saved` as the attributes to restore on `fd`.
    pub(crate) fn register(fd: RawFd, saved: libc::termios) -> TtyGuard {
        if let Ok(mut g) = TTY.lock() {
            *g = Some((fd, saved));
        }
        TtyGuard(())
    }
}

impl Drop for TtyGuard {
    fn drop(&mut self) {
        if let Ok(mut g) = TTY.lock() {
            *g = None;
        }
    }
}

/// Held by every store commit: the signal watcher waits for it before exiting. `None` once
/// interrupted (no new commit starts then).
pub(crate) fn commit_gate() -> Option<RwLockReadGuard<'static, ()>> {
    if interrupted() {
        return None;
    }
    let g = COMMITS.read().unwrap_or_else(|e| e.into_inner());
    (!interrupted()).then_some(g)
}

/// Was this exit status a death by (or the conventional exit code of) SIGINT / SIGTERM?
pub(crate) fn status_is_interrupt(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status.signal(), Some(libc::SIGINT) | Some(libc::SIGTERM))
        || matches!(status.code(), Some(130) | Some(143))
}
