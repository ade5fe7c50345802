//! The admin key of `varsmith init`: the key file's existing age key, or a new one.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

/// The recipient to register for the new workspace's admin: with `new_key`, or when `file`
/// holds no age key, a new key appended to `file` (never overwriting). Otherwise the first
/// existing key's recipient is reused; on a terminal the user is asked first (`[Y/n]`,
/// default yes; `n` appends a new key). Says on stderr which it did.
pub(super) fn admin_recipient(file: &Path, new_key: bool) -> anyhow::Result<String> {
    if !new_key && let Some((r, count)) = crate::keys::existing::first_age_recipient(file)? {
        let which = if count > 1 {
            format!("the first of its {count} age keys")
        } else {
            "its age key".to_string()
        };
        if ask_reuse(file, &r) != Some(false) {
            eprintln!(
                "using {which} from {} ({r}); pass --new-key to add a new one",
                file.display()
            );
            return Ok(r);
        }
    }
    let r = crate::keys::keygen::append_admin_key(file)?;
    eprintln!("added a new age key to {}", file.display());
    Ok(r)
}

/// On a terminal (stdin one, `/dev/tty` open): asks whether to reuse `recipient`. `None`
/// without a terminal or when the answer cannot be read.
fn ask_reuse(file: &Path, recipient: &str) -> Option<bool> {
    if !std::io::stdin().is_terminal() {
        return None;
    }
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    write!(
        tty,
        "{} already holds an age key ({recipient}). Use it? [Y/n] ",
        file.display()
    )
    .ok()?;
    tty.flush().ok()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 64 {
        match tty.read(&mut byte) {
            Ok(1) if byte[0] != b'\n' => line.push(byte[0]),
            Ok(1) => break,
            _ => return None,
        }
    }
    let answer = String::from_utf8_lossy(&line).trim().to_ascii_lowercase();
    Some(!matches!(answer.as_str(), "n" | "no"))
}
