//! Questions on the controlling terminal (`/dev/tty`): one line with or without echo, a hidden
//! answer asked twice, input until Ctrl-D. Questions are shown with control characters escaped
//! and echo is restored on drop and on a signal. A leaf module (used by `run::prompts`, `keys`
//! and the CLI); answers are [`SecretBytes`].

use std::io::{Read, Write};

use crate::process::signals::TtyGuard;
use crate::secret::SecretBytes;

/// The terminal with echo turned off until dropped (restored on a signal too).
pub(crate) struct NoEcho {
    fd: std::os::fd::RawFd,
    saved: libc::termios,
    _guard: TtyGuard,
}

impl NoEcho {
    pub(crate) fn new(tty: &std::fs::File) -> std::io::Result<NoEcho> {
        use std::os::fd::AsRawFd;
        let fd = tty.as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr on an open terminal fd with a zeroed struct.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let saved = t;
        let guard = TtyGuard::register(fd, saved);
        t.c_lflag &= !(libc::ECHO | libc::ECHONL);
        t.c_lflag |= libc::ICANON;
        if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(NoEcho {
            fd,
            saved,
            _guard: guard,
        })
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        // SAFETY: restoring the attributes saved in new().
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved) };
    }
}

/// Reads one line (without its line ending) from the terminal.
pub(crate) fn read_line(tty: &mut std::fs::File) -> Result<SecretBytes, String> {
    let mut line = Vec::with_capacity(256);
    let mut b = [0u8; 1];
    loop {
        match tty.read(&mut b) {
            Ok(0) => break,
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => line.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                zeroize::Zeroize::zeroize(&mut line);
                return Err(e.to_string());
            }
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(SecretBytes::new(line))
}

/// Reads until end of input (Ctrl-D) from the terminal.
pub(crate) fn read_all(tty: &mut std::fs::File) -> Result<SecretBytes, String> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 4096]);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        match tty.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if out.len() + n > out.capacity() => {
                zeroize::Zeroize::zeroize(&mut out);
                return Err("answer longer than 64 KiB".into());
            }
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(SecretBytes::new(out))
}

/// How many times a `hidden` prompt is asked when its two answers differ (as clan does).
pub(crate) const HIDDEN_TRIES: usize = 3;

/// The controlling terminal, opened read-write; `None` when there is none (CI, a daemon).
pub(crate) fn open_tty() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// `question` as it may be shown on a terminal: every control character (escape sequences,
/// `\r`, line breaks, OSC/CSI introducers, DEL, C1) escaped as `\xNN`. Questions hold
/// definition-supplied text (prompt descriptions) that must not be able to erase the
/// `machine/generator:` prefix, set the title, write the clipboard or fake another prompt.
pub(crate) fn shown(question: &str) -> String {
    crate::term::escape_controls(question)
}

/// Asks `question` once on the terminal with echo off and returns the line (without its line
/// ending). `None` when there is no terminal.
pub(crate) fn ask_hidden_once(question: &str) -> Option<Result<SecretBytes, String>> {
    let question = shown(question);
    let mut tty = open_tty()?;
    Some((|| {
        let _no_echo = NoEcho::new(&tty).map_err(|e| e.to_string())?;
        let _ = write!(tty, "{question}: ");
        let a = read_line(&mut tty);
        let _ = writeln!(tty);
        a
    })())
}

/// Asks `question` once on the terminal with echo on. `None` when there is no terminal.
pub(crate) fn ask_line_once(question: &str) -> Option<Result<SecretBytes, String>> {
    let question = shown(question);
    let mut tty = open_tty()?;
    let _ = write!(tty, "{question}: ");
    Some(read_line(&mut tty))
}

/// Asks a `hidden` prompt: twice with echo off, and again while the two answers differ, at
/// most [`HIDDEN_TRIES`] times; then an error naming `who` (machine/generator) and `name`.
pub(crate) fn ask_hidden_confirmed(
    tty: &mut std::fs::File,
    who: &str,
    name: &str,
    question: &str,
) -> Result<SecretBytes, String> {
    let question = shown(question);
    let _no_echo = NoEcho::new(tty).map_err(|e| e.to_string())?;
    for left in (0..HIDDEN_TRIES).rev() {
        let _ = write!(tty, "{question}: ");
        let a = read_line(tty)?;
        let _ = write!(tty, "\n{question} (again): ");
        let b = read_line(tty)?;
        let _ = writeln!(tty);
        if a == b {
            return Ok(a);
        }
        if left > 0 {
            let _ = writeln!(tty, "answers differ, try again ({left} left)");
        }
    }
    Err(format!(
        "{who}: prompt {name}: the two answers differed {HIDDEN_TRIES} times"
    ))
}
