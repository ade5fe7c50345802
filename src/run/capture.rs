//! Bounded capture of a child's stdout/stderr and their safe display.
//!
//! A script may print gigabytes: only the last [`TAIL_BYTES`] of each stream are kept (the
//! rest is read and dropped, so the child never blocks on a full pipe). What is shown of a
//! failing script's stderr has every known secret value replaced by `[redacted]` and control
//! characters escaped, so neither dependency secrets nor terminal escape sequences reach the
//! user's terminal or a CI log.

use std::io::Read;

use crate::secret::SecretBytes;
use crate::term::escape_controls;

/// Bytes kept of each stream (the tail).
pub(crate) const TAIL_BYTES: usize = 64 * 1024;

/// Lines of stderr shown in an error.
pub(crate) const SHOWN_LINES: usize = 20;

/// Secret values shorter than this are not redacted (they would match everywhere).
const MIN_REDACT: usize = 4;

/// The last `cap` bytes of a stream fed piece by piece (the rest is dropped, zeroed).
pub(crate) struct Tail {
    keep: Vec<u8>,
    cap: usize,
}

impl Tail {
    /// An empty tail keeping at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Tail {
        Tail {
            keep: Vec::with_capacity(cap.min(8192) * 2),
            cap,
        }
    }

    /// Appends `bytes`, dropping what falls out of the last `cap` bytes (in batches).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.keep.extend_from_slice(bytes);
        if self.keep.len() > 2 * self.cap {
            let cut = self.keep.len() - self.cap;
            zeroize::Zeroize::zeroize(&mut self.keep[..cut]);
            self.keep.drain(..cut);
        }
    }

    /// The last `cap` bytes.
    pub(crate) fn finish(mut self) -> SecretBytes {
        if self.keep.len() > self.cap {
            let cut = self.keep.len() - self.cap;
            self.keep.drain(..cut);
        }
        SecretBytes::new(self.keep)
    }
}

/// Reads `r` to the end, keeping the last `cap` bytes (the rest is read and dropped).
pub(crate) fn read_tail<R: Read>(mut r: R, cap: usize) -> SecretBytes {
    let mut tail = Tail::new(cap);
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 8192]);
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => tail.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    tail.finish()
}

/// [`read_tail`] on a new thread.
#[cfg(test)]
pub(crate) fn tail_reader<R: Read + Send + 'static>(
    r: R,
    cap: usize,
) -> std::thread::JoinHandle<SecretBytes> {
    std::thread::spawn(move || read_tail(r, cap))
}

/// The last [`SHOWN_LINES`] lines of `stderr`, secrets redacted and control characters
/// escaped, each line indented; empty when there is nothing to show.
pub(crate) fn shown_stderr(stderr: &[u8], secrets: &[&[u8]]) -> String {
    let redacted = redact(stderr, secrets);
    let text = String::from_utf8_lossy(&redacted);
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(SHOWN_LINES)..];
    if tail.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = tail.iter().map(|l| escape_controls(l)).collect();
    format!(":\n    {}", shown.join("\n    "))
}

/// Replaces every occurrence of each secret (and of each line of a multi-line secret) with
/// `[redacted]`.
pub(crate) fn redact(text: &[u8], secrets: &[&[u8]]) -> Vec<u8> {
    let mut needles: Vec<&[u8]> = Vec::new();
    for s in secrets {
        let t = s.strip_suffix(b"\n").unwrap_or(s);
        needles.push(t);
        needles.extend(
            t.split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l)),
        );
    }
    needles.retain(|n| n.len() >= MIN_REDACT);
    // Longest first, so a whole value is replaced before its lines.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    let mut out = text.to_vec();
    for n in needles {
        out = replace_all(&out, n, b"[redacted]");
    }
    out
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut last = 0;
    for i in memchr::memmem::find_iter(hay, needle) {
        if i < last {
            continue;
        }
        out.extend_from_slice(&hay[last..i]);
        out.extend_from_slice(with);
        last = i + needle.len();
    }
    out.extend_from_slice(&hay[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_values_and_their_lines_and_escapes_controls() {
        let secret = b"-----BEGIN KEY-----\nAAAASECRETLINE\n-----END KEY-----\n";
        let err = b"bad: AAAASECRETLINE here\n\x1b[31mred\x1b[0m\nkey=-----BEGIN KEY-----\n";
        let shown = shown_stderr(err, &[secret]);
        assert!(!shown.contains("AAAASECRETLINE"), "{shown}");
        assert!(!shown.contains('\x1b'), "{shown}");
        assert!(shown.contains("\\x1b[31mred"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn tail_keeps_the_end() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let kept = tail_reader(std::io::Cursor::new(data.clone()), 1000)
            .join()
            .unwrap();
        assert_eq!(&*kept, &data[data.len() - 1000..]);
    }
}
