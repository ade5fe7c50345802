//! The value of `varsmith set HOST GEN/FILE`: on a terminal it is asked like a `hidden`
//! prompt (on `/dev/tty`, echo off, twice, again while the answers differ); from a pipe or a
//! file it is stdin, at most `max` bytes. Either way exactly one trailing newline (`\n`) is
//! removed unless `--raw` (what `echo`, `pass` and editors add is not part of the secret);
//! with `--raw` the bytes are stored as given.

use std::io::{IsTerminal, Read};

use crate::UsageError;
use crate::secret::SecretBytes;
use crate::tty;

/// Reads the value for file `file` of generator `who` (`machine/generator` or
/// `shared/generator`).
pub(crate) fn read_value(
    who: &str,
    file: &str,
    raw: bool,
    max: u64,
) -> Result<SecretBytes, UsageError> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        let mut tty = tty::open_tty()
            .ok_or_else(|| UsageError::new("stdin is a terminal but /dev/tty cannot be opened"))?;
        let question = format!("{who}: {file}");
        tty::ask_hidden_confirmed(&mut tty, who, file, &question).map_err(UsageError::new)?
    } else {
        let mut buf = Vec::with_capacity(64 * 1024);
        let read = stdin.lock().take(max + 1).read_to_end(&mut buf);
        let value = SecretBytes::new(buf);
        read.map_err(|e| UsageError::new(format!("{who}/{file}: reading stdin: {e}")))?;
        value
    };
    if value.len() as u64 > max {
        return Err(UsageError::new(format!(
            "{who}/{file}: the value is larger than {max} bytes"
        )));
    }
    Ok(if raw { value } else { strip_one_newline(value) })
}

/// `v` without one trailing `\n` (a `\r\n` loses only its `\n`: the rule is one byte).
fn strip_one_newline(v: SecretBytes) -> SecretBytes {
    match v.as_bytes().split_last() {
        Some((b'\n', rest)) => SecretBytes::copy_from(rest),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_newline() {
        let s = |b: &[u8]| strip_one_newline(SecretBytes::copy_from(b)).to_vec();
        assert_eq!(s(b"pw\n"), b"pw");
        assert_eq!(s(b"pw\n\n"), b"pw\n");
        assert_eq!(s(b"pw"), b"pw");
        assert_eq!(s(b""), b"");
    }
}
