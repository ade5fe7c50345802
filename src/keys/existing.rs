//! The age key a key file already holds, so `varsmith init` registers it instead of appending
//! a second one.

use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroizing;

use super::Error;

/// The recipient (`age1…`) of the first native age identity (`AGE-SECRET-KEY-1…` line) in
/// `path`, and how many such identities it holds; `None` when the file does not exist or holds
/// none. Comments, blank lines and plugin identities are passed over; a line that starts like
/// an age key but does not parse is an error (naming the file and line, never the key).
pub(crate) fn first_age_recipient(path: &Path) -> Result<Option<(String, usize)>, Error> {
    let text = match std::fs::read(path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_path_buf(),
                cause: source,
            });
        }
    };
    let text = std::str::from_utf8(&text).map_err(|_| Error::BadIdentity {
        origin: path.display().to_string(),
        reason: "not UTF-8 text".into(),
    })?;
    let mut first = None;
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if !line.starts_with("AGE-SECRET-KEY-1") {
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(|_| Error::BadIdentity {
            origin: format!("{}:{}", path.display(), n + 1),
            reason: "not a valid age identity".into(),
        })?;
        count += 1;
        if first.is_none() {
            first = Some(id.to_public().to_string());
        }
    }
    Ok(first.map(|r| (r, count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_key_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keys.txt");
        assert!(first_age_recipient(&f).unwrap().is_none());
        let r1 = crate::keys::keygen::append_admin_key(&f).unwrap();
        crate::keys::keygen::append_admin_key(&f).unwrap();
        assert_eq!(first_age_recipient(&f).unwrap(), Some((r1, 2)));
        std::fs::write(&f, "# only a comment\n").unwrap();
        assert!(first_age_recipient(&f).unwrap().is_none());
        std::fs::write(&f, "AGE-SECRET-KEY-1NOTAKEY\n").unwrap();
        let e = first_age_recipient(&f).unwrap_err().to_string();
        assert!(e.contains("keys.txt:1") && !e.contains("NOTAKEY"), "{e}");
    }
}
