//! Supervising one started script: its stderr read to its end (a bounded tail kept, see
//! `super::capture`), its exit reaped, both within the run's time limit, and a "still
//! running" line at every heartbeat interval when stderr is not a terminal.
//!
//! The run is over once every process holding the script's stderr closed it and the child
//! exited: a script that exits with its stderr still held open by a straggler is waited for
//! until the straggler closes it or the time limit kills the group. At the time limit the
//! child's process group is killed (SIGKILL), then its stderr is read to its end and the child
//! reaped.
//!
//! The calling thread does it all through `poll` on the stderr pipe and a pidfd of the child
//! (readable once it exited): no thread per run. Where the kernel has no pidfd (Linux < 5.3)
//! a thread per run reads stderr and reaps the child while the caller waits for it with the
//! time limit.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::capture;
use super::limits::Limits;
use super::spawn::{Child, Spec};
use crate::process::signals::ChildGuard;
use crate::secret::SecretBytes;

/// How the script ended.
pub(crate) enum Ended {
    /// It exited (or was killed by a signal other than the time limit's).
    Exited(std::process::ExitStatus),
    /// The time limit killed it.
    TimedOut,
}

/// Starts `cmd` and supervises it (see the module documentation).
pub(crate) fn supervise(
    cmd: &Spec,
    limits: &Limits,
    who: &str,
) -> Result<(Ended, SecretBytes), super::sandbox::Error> {
    let io = |what: &'static str| super::sandbox::io(who, what);
    let mut child = cmd.spawn().map_err(io("starting the script"))?;
    let _guard = ChildGuard::register(child.id());
    let Some(pidfd) = child.pidfd() else {
        return threaded(child, limits, who);
    };
    let mut tail = capture::Tail::new(capture::TAIL_BYTES);
    let done = watch(&child, &pidfd, &mut tail, limits.timeout, who);
    let ended = match done {
        Ok(()) => None,
        Err(Overdue) => {
            kill_group(&child);
            drain(&child.stderr, &mut tail);
            Some(Ended::TimedOut)
        }
    };
    let status = child.wait().map_err(io("waiting for the script"))?;
    Ok((ended.unwrap_or(Ended::Exited(status)), tail.finish()))
}

/// The time limit passed.
struct Overdue;

/// Reads `child`'s stderr into `tail` until its end and until `pidfd` shows the child exited,
/// within `timeout`, printing the heartbeat lines.
fn watch(
    child: &Child,
    pidfd: &OwnedFd,
    tail: &mut capture::Tail,
    timeout: Duration,
    who: &str,
) -> Result<(), Overdue> {
    let start = Instant::now();
    let deadline = start + timeout;
    let every = heartbeat_interval();
    let mut next_beat = every.map(|e| start + e);
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 8192]);
    let (mut open, mut exited) = (true, false);
    while open || !exited {
        let now = Instant::now();
        if now >= deadline {
            return Err(Overdue);
        }
        if let (Some(beat), Some(every)) = (next_beat, every)
            && now >= beat
        {
            eprintln!("still running: {who} {}s", start.elapsed().as_secs());
            next_beat = Some(beat + every);
            continue;
        }
        let wake = next_beat.map_or(deadline, |b| b.min(deadline));
        // Rounded up: waking early would only loop.
        let ms = wake
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000);
        let mut fds = [
            libc::pollfd {
                fd: if open { child.stderr.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if exited { -1 } else { pidfd.as_raw_fd() },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two pollfd entries of ours (a negative fd is skipped).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, i32::try_from(ms).unwrap_or(i32::MAX)) };
        if n < 0 {
            // EINTR, or a transient ENOMEM (the descriptors are valid): poll again; the
            // deadline above still bounds the loop.
            continue;
        }
        if fds[0].revents != 0 {
            match (&child.stderr).read(&mut buf) {
                Ok(0) => open = false,
                Ok(n) => tail.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // As `capture::read_tail`: a read error ends the stream.
                Err(_) => open = false,
            }
        }
        if fds[1].revents != 0 {
            exited = true;
        }
    }
    Ok(())
}

/// Reads the rest of `stderr` into `tail` (blocking until every holder closed it).
fn drain(stderr: &std::fs::File, tail: &mut capture::Tail) {
    let rest = capture::read_tail(stderr, capture::TAIL_BYTES);
    tail.push(rest.as_bytes());
}

fn kill_group(child: &Child) {
    // SAFETY: killing the process group of the child we spawned in its own group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
}

/// Without pidfds: a thread reads stderr to its end, then reaps the child, while this one
/// waits for it with the time limit and the heartbeat.
fn threaded(
    mut child: Child,
    limits: &Limits,
    who: &str,
) -> Result<(Ended, SecretBytes), super::sandbox::Error> {
    let io = |what: &'static str| super::sandbox::io(who, what);
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let stderr = capture::read_tail(&child.stderr, capture::TAIL_BYTES);
        let r = child.wait();
        let _ = tx.send(());
        (r, stderr)
    });
    let ended = match wait_with_heartbeat(&rx, limits.timeout, who) {
        Ok(()) => None,
        Err(_) => {
            // SAFETY: killing the process group of the child we spawned in its own group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            Some(Ended::TimedOut)
        }
    };
    let (status, stderr) = waiter
        .join()
        .map_err(|_| io("waiting for the script")(std::io::Error::other("waiter panicked")))?;
    let status = status.map_err(io("waiting for the script"))?;
    Ok((ended.unwrap_or(Ended::Exited(status)), stderr))
}

/// Seconds between "still running" lines for a script that runs long when stderr is not a
/// terminal (CI logs; a terminal has the progress line): 30, or `VARSMITH_HEARTBEAT_SECS`
/// (tests use 1). `None` on a terminal.
fn heartbeat_interval() -> Option<Duration> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        return None;
    }
    let secs = std::env::var("VARSMITH_HEARTBEAT_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(30);
    Some(Duration::from_secs(secs))
}

/// Waits for the script's end until `timeout`, printing `still running: WHO Ns` on stderr at
/// every heartbeat interval; `Err` when the time limit passed.
fn wait_with_heartbeat(
    rx: &mpsc::Receiver<()>,
    timeout: Duration,
    who: &str,
) -> Result<(), mpsc::RecvTimeoutError> {
    let start = Instant::now();
    let Some(every) = heartbeat_interval() else {
        return rx.recv_timeout(timeout);
    };
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        match rx.recv_timeout(left.min(every)) {
            Ok(()) => return Ok(()),
            Err(mpsc::RecvTimeoutError::Timeout) if start.elapsed() < timeout => {
                eprintln!("still running: {who} {}s", start.elapsed().as_secs());
            }
            Err(e) => return Err(e),
        }
    }
}
