//! Running the user's editor on a decrypted file, as `sops edit` does.
//!
//! The plaintext goes to a file of mode 0600 in a fresh private directory (mode 0700) made by
//! the same rule as `generate`'s plaintext directories (`crate::process::tmpfs`): on tmpfs
//! (`$XDG_RUNTIME_DIR`, else `/dev/shm`), never on a disk unless `VARSMITH_ALLOW_DISK_TMP=1`;
//! with no tmpfs the edit is refused before anything is written. The file is overwritten with
//! zeros and removed afterwards, whatever happens (also on SIGINT/SIGTERM, and swept by a later
//! run after SIGKILL). The editor is `$SOPS_EDITOR`, else `$EDITOR` (split like a shell word
//! list), else the first of `vim`, `nano`, `vi` on `PATH`; it gets the file's path as its last
//! argument, never any content, and an environment without key material (`child`).

use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::{Error, Result};

/// How an edit session ended.
pub(crate) enum Outcome<T> {
    /// The edited content was accepted by the validator.
    Changed(T),
    /// The editor left the bytes unchanged.
    Unchanged,
}

fn editor_err(msg: impl Into<String>) -> Error {
    Error::Editor {
        msg: msg.into(),
        missing: false,
    }
}

/// The editor command line (program and arguments).
fn editor_command() -> Result<Vec<String>> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return shlex::split(&v)
                .filter(|w| !w.is_empty())
                .ok_or_else(|| editor_err(format!("${var} cannot be split into words")));
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for cand in ["vim", "nano", "vi"] {
        if std::env::split_paths(&path).any(|d| d.join(cand).is_file()) {
            return Ok(vec![cand.to_string()]);
        }
    }
    Err(Error::Editor {
        msg: "no editor found: set $EDITOR (or $SOPS_EDITOR), or install vim, nano or vi".into(),
        missing: true,
    })
}

/// A private plaintext directory for the edited file, removed (file wiped first) on drop.
struct Scratch {
    /// Removed with its content when dropped (after the file is wiped).
    _dir: crate::process::tmpfs::PlaintextDir,
    file: PathBuf,
}

impl Scratch {
    fn new(ext: &str) -> Result<Scratch> {
        let dir = crate::process::tmpfs::PlaintextDir::new(None)
            .map_err(|e| editor_err(format!("refusing to write the plaintext for editing: {e}")))?;
        let name = if ext.is_empty() {
            "file".to_string()
        } else {
            format!("file.{ext}")
        };
        let file = dir.path().join(name);
        Ok(Scratch { _dir: dir, file })
    }

    fn write(&self, bytes: &[u8]) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.file)
            .map_err(|e| editor_err(format!("cannot write the temp file: {e}")))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| editor_err(format!("cannot write the temp file: {e}")))
    }

    fn read(&self, limit: u64) -> Result<Zeroizing<Vec<u8>>> {
        super::io::read_limited(&self.file, limit)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::metadata(&self.file)
            && let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&self.file)
        {
            let zeros = vec![0u8; usize::try_from(m.len()).unwrap_or(0).min(1 << 30)];
            let _ = f.write_all(&zeros).and_then(|_| f.sync_all());
        }
        let _ = std::fs::remove_file(&self.file);
    }
}

fn run_editor(cmd: &[String], file: &Path) -> Result<()> {
    let (prog, args) = cmd
        .split_first()
        .ok_or_else(|| editor_err("empty editor command"))?;
    let status = crate::child::command(prog)
        .args(args)
        .arg(file)
        .status()
        .map_err(|e| Error::Editor {
            msg: format!("could not run the editor {prog:?}: {e}"),
            missing: e.kind() == std::io::ErrorKind::NotFound,
        })?;
    if !status.success() {
        return Err(editor_err(format!(
            "the editor {prog:?} failed ({status}); the file is unchanged"
        )));
    }
    Ok(())
}

/// Lets the user edit `plain` (written with extension `ext`) until `validate` accepts the
/// result. When it refuses (the text no longer parses), on a terminal the user is asked
/// to press Enter to edit again; without one the edit is abandoned with that error, so a
/// script never hangs. Edited files above `limit` bytes are refused.
pub(crate) fn edit<T>(
    plain: &[u8],
    ext: &str,
    limit: u64,
    mut validate: impl FnMut(&[u8]) -> Result<T>,
) -> Result<Outcome<T>> {
    let cmd = editor_command()?;
    let scratch = Scratch::new(ext)?;
    scratch.write(plain)?;
    loop {
        run_editor(&cmd, &scratch.file)?;
        let edited = scratch.read(limit)?;
        if edited.as_slice() == plain {
            return Ok(Outcome::Unchanged);
        }
        match validate(&edited) {
            Ok(v) => return Ok(Outcome::Changed(v)),
            Err(e) if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
                eprintln!("error: {e}");
                eprintln!(
                    "The file does not parse. Press Enter to return to the editor, or Ctrl+C to exit."
                );
                let mut line = String::new();
                if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}
