//! Prompt answers, gathered before any script runs: `--prompt GEN.NAME=VALUE|@FILE`,
//! `--prompts-file FILE` (YAML `{GEN: {NAME: value}}`), `VARSMITH_PROMPT_<GEN>_<NAME>`, a
//! persisted previous answer, and last the terminal (hidden prompts without echo, asked twice).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use zeroize::Zeroizing;

use super::signals::TtyGuard;
use crate::secret::SecretBytes;

use crate::UsageError;
use crate::workspace::{Generator, PromptType};

/// Answers by prompt name.
pub type Answers = crate::secret::Files;

/// Where non-interactive answers come from.
#[derive(Default)]
pub struct Sources {
    /// (generator, prompt) -> answer, from `--prompt` and `--prompts-file`.
    given: IndexMap<(String, String), SecretBytes>,
    /// (generator, prompt) -> where it was given (`--prompt g.p`, `--prompts-file F: g.p`).
    origins: IndexMap<(String, String), String>,
}

impl Sources {
    /// Parses `--prompt` arguments and the optional prompts file.
    pub fn new(args: &[String], file: Option<&Path>) -> Result<Sources, UsageError> {
        let mut given = IndexMap::new();
        let mut origins = IndexMap::new();
        if let Some(path) = file {
            let text =
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    UsageError::new(format!("--prompts-file {}: {e}", path.display()))
                })?);
            crate::workspace::bounds::check_yaml(&text)
                .map_err(|e| UsageError::new(format!("--prompts-file {}: {e}", path.display())))?;
            let map: IndexMap<String, IndexMap<String, String>> = yaml_serde::from_str(&text)
                .map_err(|_| {
                    UsageError::new(format!(
                        "--prompts-file {}: expected a YAML mapping {{GENERATOR: {{PROMPT: value}}}}",
                        path.display()
                    ))
                })?;
            for (g, prompts) in map {
                for (p, v) in prompts {
                    let at = format!("--prompts-file {}: {g}.{p}", path.display());
                    origins.insert((g.clone(), p.clone()), at);
                    given.insert((g.clone(), p), SecretBytes::new(v.into_bytes()));
                }
            }
        }
        for arg in args {
            let (key, value) = arg.split_once('=').ok_or_else(|| {
                UsageError::new(format!(
                    "--prompt {}: expected GEN.NAME=VALUE or GEN.NAME=@FILE",
                    arg.split('=').next().unwrap_or("")
                ))
            })?;
            // Generator names may hold dots (`wifi.home`): GEN/NAME, else split at the last dot.
            let (g, p) = key
                .split_once('/')
                .or_else(|| key.rsplit_once('.'))
                .ok_or_else(|| {
                    UsageError::new(format!("--prompt {key}: expected GEN.NAME=… or GEN/NAME=…"))
                })?;
            let bytes = if let Some(f) = value.strip_prefix('@') {
                SecretBytes::new(
                    std::fs::read(PathBuf::from(f))
                        .map_err(|e| UsageError::new(format!("--prompt {key}=@{f}: {e}")))?,
                )
            } else {
                SecretBytes::copy_from(value.as_bytes())
            };
            origins.insert((g.to_string(), p.to_string()), format!("--prompt {key}"));
            given.insert((g.to_string(), p.to_string()), bytes);
        }
        Ok(Sources { given, origins })
    }

    /// Every (generator, prompt) given on the command line or in the prompts file, with
    /// where it was given (for errors about entries that name no prompt).
    pub fn given(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.origins
            .iter()
            .map(|((g, p), at)| (g.as_str(), p.as_str(), at.as_str()))
    }

    /// Where the answer for (generator, prompt) was given (`--prompt G.P`, the prompts file),
    /// `None` for the environment.
    pub fn origin(&self, generator: &str, prompt: &str) -> Option<String> {
        self.origins
            .get(&(generator.to_string(), prompt.to_string()))
            .cloned()
    }

    /// A non-interactive answer for (generator, prompt), if any.
    pub fn lookup(&self, generator: &str, prompt: &str) -> Option<SecretBytes> {
        if let Some(v) = self.given.get(&(generator.to_string(), prompt.to_string())) {
            return Some(v.clone());
        }
        std::env::var_os(env_name(generator, prompt))
            .map(|v| SecretBytes::new(v.into_encoded_bytes()))
    }
}

/// `VARSMITH_PROMPT_<GEN>_<NAME>`, upper-cased, other characters as `_`.
pub fn env_name(generator: &str, prompt: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    format!("VARSMITH_PROMPT_{}_{}", clean(generator), clean(prompt))
}

/// The terminal with echo turned off until dropped (restored on a signal too).
struct NoEcho {
    fd: std::os::fd::RawFd,
    saved: libc::termios,
    _guard: TtyGuard,
}

impl NoEcho {
    fn new(tty: &std::fs::File) -> std::io::Result<NoEcho> {
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
fn read_line(tty: &mut std::fs::File) -> Result<SecretBytes, String> {
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
fn read_all(tty: &mut std::fs::File) -> Result<SecretBytes, String> {
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
fn shown(question: &str) -> String {
    super::capture::escape_controls(question)
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

/// The question for prompt `p`: `WHO: [GROUP] LABEL: DESCRIPTION (HELPER TEXT)`, with the
/// parts clan's `display` does not set left out.
fn question(who: &str, p: &crate::workspace::Prompt) -> String {
    let mut q = format!("{who}: ");
    if let Some(d) = &p.display {
        if let Some(g) = &d.group {
            q.push_str(&format!("[{g}] "));
        }
        if let Some(l) = d.label.as_ref().filter(|l| **l != p.description) {
            q.push_str(&format!("{l}: "));
        }
    }
    q.push_str(&p.description);
    if let Some(h) = p.display.as_ref().and_then(|d| d.helper_text.as_ref()) {
        q.push_str(&format!(" ({h})"));
    }
    q
}

/// Whether an empty answer to `p` is refused: clan's `display.required` (true unless set
/// false, when `display` is given; a prompt without `display` accepts an empty answer).
pub(crate) fn required(p: &crate::workspace::Prompt) -> bool {
    p.display.as_ref().is_some_and(|d| d.required)
}

/// Asks one prompt on the terminal (`/dev/tty`). `None` when there is no terminal. Hidden
/// prompts (`hidden`, `multiline-hidden`) are read with echo off; `hidden` is asked twice
/// (again while the answers differ, see [`ask_hidden_confirmed`]).
pub fn ask_terminal(who: &str, name: &str, g: &Generator) -> Option<Result<Answers, String>> {
    let p = g.prompts.get(name)?;
    let mut tty = open_tty()?;
    // Escaping is idempotent (its output holds no control), so ask_hidden_confirmed may redo it.
    let question = shown(&question(who, p));
    let ask = |tty: &mut std::fs::File| -> Result<SecretBytes, String> {
        match p.kind {
            PromptType::Line => {
                let _ = write!(tty, "{question}: ");
                read_line(tty)
            }
            PromptType::Hidden => ask_hidden_confirmed(tty, who, name, &question),
            PromptType::Multiline => {
                let _ = writeln!(tty, "{question} (end with Ctrl-D):");
                read_all(tty)
            }
            PromptType::MultilineHidden => {
                let _no_echo = NoEcho::new(tty).map_err(|e| e.to_string())?;
                let _ = writeln!(tty, "{question} (hidden; end with Ctrl-D):");
                let a = read_all(tty);
                let _ = writeln!(tty);
                a
            }
        }
    };
    // A required prompt (`display.required`) is asked again after an empty answer, at most
    // HIDDEN_TRIES times in all.
    let answer = (|| -> Result<SecretBytes, String> {
        for left in (0..HIDDEN_TRIES).rev() {
            let a = ask(&mut tty)?;
            if !required(p) || !a.is_empty() {
                return Ok(a);
            }
            if left > 0 {
                let _ = writeln!(tty, "an answer is required ({left} tries left)");
            }
        }
        Err(format!(
            "{who}: prompt {name} is required (display.required) and the answer was empty {HIDDEN_TRIES} times"
        ))
    })();
    Some(answer.map(|a| {
        let mut m = IndexMap::new();
        m.insert(name.to_string(), a);
        m
    }))
}
