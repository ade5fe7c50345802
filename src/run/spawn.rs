//! Starting a generator's process (bubblewrap, or bash with `--no-sandbox`) without copying
//! varsmith's address space.
//!
//! `std::process::Command` gives up `posix_spawn` for a full `fork` as soon as a uid, a gid or
//! a `pre_exec` closure is set, and every run needs one of them (the uid switch as root, the
//! resource limits, the keyring and the seccomp filter's descriptor). A fork copies the page
//! tables of the whole process and makes every thread's next write to a page fault once; per
//! run, that was the largest cost of varsmith's own. Here the child is made as glibc's and
//! musl's `posix_spawn` make theirs, with `clone(CLONE_VM | CLONE_VFORK)`: it runs on a small
//! stack of its own inside varsmith's memory, the calling thread suspended until the child has
//! executed the program or failed. The child makes the system calls the forked child of
//! `Command` made, in the same order (the `pre_exec` steps after the uid switch and the
//! process group), and resets the signal handlers and the mask first and last:
//!
//! 1. every caught signal's handler back to the default (all signals stay blocked meanwhile,
//!    see below), and `SIGPIPE` to the default (std's rule; Rust ignores it);
//! 2. standard input and output on `/dev/null`, standard error on a pipe read by varsmith;
//! 3. with [`Spec::drop_to`] (varsmith runs as root): no supplementary groups, the gid, then
//!    the uid;
//! 4. the working directory ([`Spec::cwd`]);
//! 5. a process group of its own (a signal to varsmith kills it as a group);
//! 6. with [`Spec::fresh_keyring`]: a new anonymous session keyring, after the uid switch so
//!    that it belongs to the run's uid ([`super::seccomp::join_fresh_session_keyring`]);
//! 7. [`Spec::memfd`]: memory files at fixed descriptors (the seccomp filter, `passwd`,
//!    `group`; [`super::seccomp::install_memfd`]);
//! 8. [`Spec::rlimit`]: resource limits, both soft and hard;
//! 9. an empty signal mask, then `execve` with the argument and environment arrays prepared
//!    by the parent.
//!
//! Invariants of the child, which shares varsmith's memory with its other threads running:
//! it allocates nothing, takes no lock, cannot panic, and only reads what the suspended
//! calling thread prepared. Credentials change through raw system calls (glibc's `setuid`
//! and `setgroups` would ask every thread of varsmith to change theirs). Every signal is
//! blocked in the calling thread from before the clone until the child has reset the
//! handlers, so no handler of varsmith ever runs in the child. A failure before `execve` is
//! handed back as its errno through shared memory; the child then exits and is reaped before
//! [`Spec::spawn`] returns the error.

use std::borrow::Cow;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicI32, Ordering};

/// Stack of the child: what runs there is a few small frames (the handler reset loop and the
/// memory files), far below this even unoptimised; a guard page below it.
const CHILD_STACK: usize = 256 * 1024;

/// A resource limit the child sets (soft and hard alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `RLIMIT_CORE`.
    Core,
    /// `RLIMIT_FSIZE`.
    FileSize,
    /// `RLIMIT_NPROC`.
    Processes,
}

/// A memory file the child puts at a fixed descriptor, read from its start.
struct MemFd {
    name: &'static CStr,
    data: Cow<'static, [u8]>,
    at: RawFd,
}

/// What to start and how (see the module documentation for the order of the steps). The
/// environment is exactly the variables given ([`Spec::env`]); standard input and output are
/// `/dev/null`, standard error a pipe ([`Child::stderr`]).
pub(crate) struct Spec {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<OsString>,
    drop_to: Option<(u32, u32)>,
    fresh_keyring: bool,
    memfds: Vec<MemFd>,
    rlimits: Vec<(Limit, u64)>,
}

/// A started child: its pid (also its process group) and the read end of its stderr.
pub(crate) struct Child {
    pid: libc::pid_t,
    /// The read end of the child's standard error.
    pub stderr: File,
}

impl Spec {
    /// `program` (a path, or a name looked up on the child's `PATH`) with no argument, an
    /// empty environment and nothing else set.
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Spec {
        let program = program.as_ref().to_os_string();
        Spec {
            args: vec![program.clone()],
            program,
            env: Vec::new(),
            cwd: None,
            drop_to: None,
            fresh_keyring: false,
            memfds: Vec::new(),
            rlimits: Vec::new(),
        }
    }

    /// Adds an argument.
    pub(crate) fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Spec {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub(crate) fn args<I, S>(&mut self, args: I) -> &mut Spec
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Sets an environment variable of the child (the last value of a name wins).
    pub(crate) fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Spec {
        let key = key.as_ref().to_os_string();
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.as_ref().to_os_string()));
        self
    }

    /// The child's working directory.
    pub(crate) fn cwd(&mut self, dir: impl AsRef<Path>) -> &mut Spec {
        self.cwd = Some(dir.as_ref().as_os_str().to_os_string());
        self
    }

    /// Drops from root to `uid`/`gid` (and no supplementary group).
    pub(crate) fn drop_to(&mut self, uid: u32, gid: u32) -> &mut Spec {
        self.drop_to = Some((uid, gid));
        self
    }

    /// Joins a fresh anonymous session keyring (after the uid switch).
    pub(crate) fn fresh_keyring(&mut self) -> &mut Spec {
        self.fresh_keyring = true;
        self
    }

    /// Puts `data` in a memory file named `name` at descriptor `at` of the child.
    pub(crate) fn memfd(
        &mut self,
        name: &'static CStr,
        data: impl Into<Cow<'static, [u8]>>,
        at: RawFd,
    ) -> &mut Spec {
        self.memfds.push(MemFd {
            name,
            data: data.into(),
            at,
        });
        self
    }

    /// Sets a resource limit (soft and hard) of the child.
    pub(crate) fn rlimit(&mut self, limit: Limit, value: u64) -> &mut Spec {
        self.rlimits.push((limit, value));
        self
    }

    /// Starts the child (see the module documentation).
    pub(crate) fn spawn(&self) -> io::Result<Child> {
        let program = self.resolve()?;
        let argv = CStrings::new(self.args.iter().map(|a| a.as_bytes().to_vec()))?;
        // Sorted by name, as `Command` passes a cleared environment.
        let mut env: Vec<&(OsString, OsString)> = self.env.iter().collect();
        env.sort_by(|a, b| a.0.cmp(&b.0));
        let envp = CStrings::new(env.iter().map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            kv
        }))?;
        let cwd = match &self.cwd {
            Some(d) => Some(cstring(d.as_bytes().to_vec())?),
            None => None,
        };
        let stdin = open_null(libc::O_RDONLY)?;
        let stdout = open_null(libc::O_WRONLY)?;
        let (stderr_read, stderr_write) = pipe()?;
        let args = ChildArgs {
            program: program.as_ptr(),
            argv: argv.ptrs.as_ptr(),
            envp: envp.ptrs.as_ptr(),
            cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            stdio: [
                stdin.as_raw_fd(),
                stdout.as_raw_fd(),
                stderr_write.as_raw_fd(),
            ],
            drop_to: self.drop_to,
            fresh_keyring: self.fresh_keyring,
            memfds: &self.memfds,
            rlimits: &self.rlimits,
            errno: AtomicI32::new(0),
        };
        let pid = clone_vfork(&args)?;
        drop((stdin, stdout, stderr_write));
        match args.errno.load(Ordering::SeqCst) {
            0 => Ok(Child {
                pid,
                stderr: File::from(stderr_read),
            }),
            errno => {
                // The child exited without executing the program: reap it.
                let _ = wait_pid(pid);
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }

    /// The program's path: as given when it names a path, else the first executable match on
    /// the child's `PATH` (as `execvp` would look it up there).
    fn resolve(&self) -> io::Result<CString> {
        let p = self.program.as_bytes();
        if p.contains(&b'/') {
            return cstring(p.to_vec());
        }
        let path = self
            .env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
        std::env::split_paths(&path)
            .map(|d| d.join(&self.program))
            .find(|c| {
                use std::os::unix::fs::PermissionsExt;
                c.metadata()
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .map_or_else(
                || Err(io::Error::from_raw_os_error(libc::ENOENT)),
                |c| cstring(c.into_os_string().into_vec()),
            )
    }
}

impl Child {
    /// The child's pid, which is also its process group's id.
    pub(crate) fn id(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// A pidfd of the child, readable once it exited; `None` where the kernel has none
    /// (Linux < 5.3). Race-free: the child is not reaped before [`Child::wait`].
    pub(crate) fn pidfd(&self) -> Option<OwnedFd> {
        // SAFETY: pidfd_open on our own unreaped child; the descriptor (close-on-exec) is ours.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: a descriptor we just got and own.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Waits for the child's end.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        wait_pid(self.pid)
    }
}

fn wait_pid(pid: libc::pid_t) -> io::Result<ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// C strings and the null-terminated array of pointers to them.
struct CStrings {
    _owned: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStrings {
    fn new(items: impl Iterator<Item = Vec<u8>>) -> io::Result<CStrings> {
        let owned = items.map(cstring).collect::<io::Result<Vec<_>>>()?;
        let mut ptrs: Vec<*const libc::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Ok(CStrings {
            _owned: owned,
            ptrs,
        })
    }
}

fn open_null(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: open with a C string; the descriptor is owned from here.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two descriptors, both close on exec.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two descriptors we just made and own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Everything the child reads, prepared by the parent and alive until the clone returns.
struct ChildArgs<'a> {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    /// Null for none.
    cwd: *const libc::c_char,
    stdio: [RawFd; 3],
    drop_to: Option<(u32, u32)>,
    fresh_keyring: bool,
    memfds: &'a [MemFd],
    rlimits: &'a [(Limit, u64)],
    /// Set by the child when it fails before `execve`.
    errno: AtomicI32,
}

/// A mapped stack with a guard page at its bottom, unmapped on drop.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = CHILD_STACK + page;
        // SAFETY: a fresh private anonymous mapping; its first page becomes the guard.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let stack = Stack { base, len };
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(stack)
        }
    }

    /// The top of the stack (it grows down), 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of our own mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping, no longer used (the child has exited or exec'd).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Blocks every signal of the calling thread (glibc's internal ones too) until dropped.
struct AllSignalsBlocked {
    old: u64,
}

impl AllSignalsBlocked {
    fn new() -> io::Result<AllSignalsBlocked> {
        let all: u64 = !0;
        let mut old: u64 = 0;
        // SAFETY: rt_sigprocmask with the kernel's 8-byte signal set.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_BLOCK,
                &all as *const u64,
                &mut old as *mut u64,
                std::mem::size_of::<u64>(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(AllSignalsBlocked { old })
    }
}

impl Drop for AllSignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved by new().
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &self.old as *const u64,
                std::ptr::null_mut::<u64>(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

/// Clones the child (see the module documentation); returns once it has executed the
/// program or exited.
fn clone_vfork(args: &ChildArgs<'_>) -> io::Result<libc::pid_t> {
    let stack = Stack::new()?;
    let blocked = AllSignalsBlocked::new()?;
    // SAFETY: the child runs `child_main` on its own stack with `args`, which outlives the
    // call: CLONE_VFORK suspends this thread until the child has exec'd or exited. The child
    // keeps to the invariants of the module documentation.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (args as *const ChildArgs<'_>).cast_mut().cast(),
        )
    };
    let err = io::Error::last_os_error();
    drop(blocked);
    drop(stack);
    if pid < 0 {
        return Err(err);
    }
    Ok(pid)
}

/// The child: runs the steps, and on a failure hands its errno back and exits.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` of clone_vfork, alive while the parent is suspended.
    let args = unsafe { &*arg.cast::<ChildArgs<'_>>() };
    // SAFETY: runs in the child only, under the module's invariants.
    let errno = unsafe { child_steps(args) };
    args.errno.store(errno.max(1), Ordering::SeqCst);
    // SAFETY: _exit ends the child alone (its own thread group) without running anything.
    unsafe { libc::_exit(127) }
}

/// Steps 1 to 9; returns only on a failure, with its errno.
///
/// # Safety
/// Only in the child of [`clone_vfork`].
unsafe fn child_steps(a: &ChildArgs<'_>) -> i32 {
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    // SAFETY (whole body): system calls on the child's own state, with pointers into `a`.
    unsafe {
        // 1. No handler of varsmith may run here: every caught signal back to its default.
        let mut sa: libc::sigaction = std::mem::zeroed();
        for sig in 1..=64 {
            if libc::sigaction(sig, std::ptr::null(), &mut sa) != 0 {
                continue; // SIGKILL, SIGSTOP, glibc's internal ones
            }
            let caught = sa.sa_sigaction != libc::SIG_DFL && sa.sa_sigaction != libc::SIG_IGN;
            if caught || sig == libc::SIGPIPE {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                if libc::sigaction(sig, &dfl, std::ptr::null_mut()) != 0 {
                    return errno();
                }
            }
        }
        // 2. Standard descriptors.
        for (target, &fd) in a.stdio.iter().enumerate() {
            let target = target as RawFd;
            let r = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if r < 0 {
                return errno();
            }
        }
        // 3. Credentials, as raw system calls (this thread only).
        if let Some((uid, gid)) = a.drop_to
            && (libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) != 0
                || libc::syscall(libc::SYS_setgid, gid) != 0
                || libc::syscall(libc::SYS_setuid, uid) != 0)
        {
            return errno();
        }
        // 4. Working directory.
        if !a.cwd.is_null() && libc::chdir(a.cwd) != 0 {
            return errno();
        }
        // 5. A process group of its own.
        if libc::setpgid(0, 0) != 0 {
            return errno();
        }
        // 6. A fresh session keyring.
        if a.fresh_keyring
            && let Err(e) = super::seccomp::join_fresh_session_keyring()
        {
            return e.raw_os_error().unwrap_or(libc::EINVAL);
        }
        // 7. Memory files.
        for m in a.memfds {
            if let Err(e) = super::seccomp::install_memfd(m.name, &m.data, m.at) {
                return e.raw_os_error().unwrap_or(libc::EINVAL);
            }
        }
        // 8. Resource limits.
        for &(limit, value) in a.rlimits {
            let resource = match limit {
                Limit::Core => libc::RLIMIT_CORE,
                Limit::FileSize => libc::RLIMIT_FSIZE,
                Limit::Processes => libc::RLIMIT_NPROC,
            };
            let lim = libc::rlimit {
                rlim_cur: value as libc::rlim_t,
                rlim_max: value as libc::rlim_t,
            };
            if libc::setrlimit(resource, &lim) != 0 {
                return errno();
            }
        }
        // 9. An empty signal mask, then the program.
        let none: u64 = 0;
        if libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        ) != 0
        {
            return errno();
        }
        libc::execve(a.program, a.argv, a.envp);
        errno()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Runs `sh -c script` (its stdout is discarded: it reports on stderr).
    fn sh(script: &str, setup: impl FnOnce(&mut Spec)) -> (ExitStatus, String) {
        let mut spec = Spec::new("/bin/sh");
        spec.args(["-c", script]).env("PATH", "/usr/bin:/bin");
        setup(&mut spec);
        let mut child = spec.spawn().unwrap();
        let mut err = String::new();
        child.stderr.read_to_string(&mut err).unwrap();
        (child.wait().unwrap(), err)
    }

    #[test]
    fn runs_with_exactly_the_given_environment_and_reports_the_status() {
        let (status, err) = sh("tr '\\0' '\\n' < /proc/$$/environ >&2; exit 3", |s| {
            s.env("B", "2").env("A", "1").env("A", "one");
        });
        assert_eq!(status.code(), Some(3));
        assert_eq!(err, "A=one\nB=2\nPATH=/usr/bin:/bin\n");
    }

    #[test]
    fn stdin_and_stdout_are_null_and_the_child_leads_its_own_group() {
        // A pipeline: the shell's own descriptors are never redirected meanwhile.
        let script = "{ readlink /proc/$$/fd/0 /proc/$$/fd/1; \
                      echo \"$$ $(cut -d' ' -f5 /proc/$$/stat)\"; } | cat >&2";
        let (status, err) = sh(script, |_| {});
        assert!(status.success(), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(&lines[..2], ["/dev/null", "/dev/null"]);
        let ids: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(ids[0], ids[1], "{err}");
    }

    #[test]
    fn the_signal_mask_is_empty_and_sigpipe_not_ignored() {
        // Blocked here, SIGUSR2 must not stay blocked in the child.
        // SAFETY: a signal set of our own, for this test thread only.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        // awk executed directly (a shell changes its own mask while it waits).
        let mut spec = Spec::new("awk");
        spec.args([
            "/^Sig(Blk|Ign)/ { print > \"/dev/stderr\" }",
            "/proc/self/status",
        ])
        .env("PATH", "/usr/bin:/bin");
        let mut child = spec.spawn().unwrap();
        let mut err = String::new();
        child.stderr.read_to_string(&mut err).unwrap();
        assert!(child.wait().unwrap().success(), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines[0], "SigBlk:\t0000000000000000");
        // Rust ignores SIGPIPE here; the child gets the default.
        let ign = u64::from_str_radix(lines[1].trim_start_matches("SigIgn:\t"), 16).unwrap();
        assert_eq!(ign & (1 << (libc::SIGPIPE - 1)), 0, "{err}");
    }

    #[test]
    fn limits_memory_files_and_directory_are_in_place() {
        let script = "grep -E '^Max (core file|file) size' /proc/$$/limits | tr -s ' ' | sed 's/ $//' >&2; \
                      cat /dev/fd/10 >&2; pwd >&2";
        let (status, err) = sh(script, |s| {
            s.rlimit(Limit::Core, 0)
                .rlimit(Limit::FileSize, 1 << 20)
                .memfd(c"varsmith-test", b"filter\n".as_slice(), 10)
                .cwd("/usr");
        });
        assert!(status.success(), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "Max file size 1048576 1048576 bytes",
                "Max core file size 0 0 bytes",
                "filter",
                "/usr"
            ]
        );
    }

    #[test]
    fn a_missing_program_is_an_error_and_leaves_no_child() {
        let e = Spec::new("/nonexistent/program").spawn().err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = Spec::new("no-such-program-here").spawn().err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_bare_name_is_found_on_the_childs_path() {
        let mut spec = Spec::new("sh");
        spec.args(["-c", "exit 4"]).env("PATH", "/usr/bin:/bin");
        assert_eq!(spec.spawn().unwrap().wait().unwrap().code(), Some(4));
    }

    #[test]
    fn as_root_the_child_drops_to_the_given_ids_without_groups() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let (status, err) = sh("grep -E '^(Uid|Gid|Groups)' /proc/self/status >&2", |s| {
            s.drop_to(0x7FFF_F001, 0x7FFF_F002);
        });
        assert!(status.success(), "{err}");
        let fields: Vec<String> = err
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(
            fields,
            [
                "Uid: 2147479553 2147479553 2147479553 2147479553",
                "Gid: 2147479554 2147479554 2147479554 2147479554",
                "Groups:"
            ]
        );
    }
}
