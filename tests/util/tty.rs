//! A real terminal for tests: `script` (util-linux) runs a command on a fresh pty, and the
//! test answers each question only once it is on the screen (typed-ahead input would be
//! echoed before a hidden prompt turns echo off, as on a real terminal). Waiting is on a
//! condition variable that the screen reader signals, never on a sleep; the deadline only
//! turns a hang into a failure.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a question may take to appear before the test fails (a hang guard, not timing).
const DEADLINE: Duration = Duration::from_secs(120);

/// What the pty showed, and whether it has closed (the command ended).
#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    closed: bool,
}

/// A command running on a pty.
pub struct Tty {
    child: Child,
    stdin: Option<ChildStdin>,
    screen: Arc<(Mutex<Screen>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Tty {
    /// Runs `cmdline` (a shell command line) on a pty; `env` is applied to `script` and so
    /// to the command.
    pub fn spawn(cmdline: &str, env: &[(&str, &std::ffi::OsStr)], remove: &[&str]) -> Tty {
        let mut c = Command::new("script");
        c.args(["-qec", cmdline, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        for k in remove {
            c.env_remove(k);
        }
        let mut child = c.spawn().expect("spawn script");
        let mut out = child.stdout.take().expect("stdout");
        let screen = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let s = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                let n = match out.read(&mut chunk) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let (buf, cv) = &*s;
                {
                    let mut g = buf.lock().unwrap();
                    g.bytes.extend_from_slice(&chunk[..n]);
                    g.closed = n == 0;
                }
                cv.notify_all();
                if n == 0 {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        Tty {
            child,
            stdin,
            screen,
            reader: Some(reader),
        }
    }

    /// Waits until `needle` is on the screen `count` times (fails at once if the command
    /// ends first).
    pub fn wait_for(&self, needle: &str, count: usize) {
        let (buf, cv) = &*self.screen;
        let start = Instant::now();
        let mut g = buf.lock().unwrap();
        while String::from_utf8_lossy(&g.bytes).matches(needle).count() < count {
            let left = DEADLINE.checked_sub(start.elapsed()).filter(|_| !g.closed);
            let Some(left) = left else {
                panic!(
                    "never saw {needle:?} {count} times; screen:\n{}",
                    String::from_utf8_lossy(&g.bytes)
                )
            };
            g = cv.wait_timeout(g, left).unwrap().0;
        }
    }

    /// Types `text` (with its newline, if any).
    pub fn type_text(&mut self, text: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text).expect("type");
        stdin.flush().expect("flush");
    }

    /// Waits for the command to end; returns its status and everything the screen showed.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        drop(self.stdin.take());
        if let Some(r) = self.reader.take() {
            r.join().expect("reader");
        }
        let screen = String::from_utf8_lossy(&self.screen.0.lock().unwrap().bytes).into_owned();
        (status, screen)
    }
}
