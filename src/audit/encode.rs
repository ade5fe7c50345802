//! The byte-level encodings a value is expanded into (see [`super::patterns`] for which are
//! searched and why). Pure functions: every output is a [`Zeroizing`] buffer.

use base64::Engine as _;
use zeroize::Zeroizing;

/// The value inside a double-quoted string with C-style escapes (`\"`, `\\`, `\n`, `\r`, `\t`).
pub(crate) fn escaped(value: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() + 8));
    for &b in value {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
    out
}

/// True when [`escaped`] differs from the raw bytes.
pub(crate) fn needs_escaping(value: &[u8]) -> bool {
    value
        .iter()
        .any(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'\t'))
}

/// The value with every bare `\n` turned into `\r\n`, or `None` when it has no bare `\n`.
pub(crate) fn crlf(value: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let bare = |i: usize| value[i] == b'\n' && (i == 0 || value[i - 1] != b'\r');
    if !(0..value.len()).any(bare) {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() + 16));
    for (i, &b) in value.iter().enumerate() {
        if bare(i) {
            out.push(b'\r');
        }
        out.push(b);
    }
    Some(out)
}

/// Hex with the given digit alphabet.
pub(crate) fn hex(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for b in value {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 15)]);
    }
    out
}

/// The base64 characters that depend on `value` alone when it follows `alignment` (0–2) bytes
/// of its 3-byte group: `[ceil(4k/3), 4 * floor((len + k) / 3))` of the encoding of `k`
/// filler bytes and the value. They match whatever surrounds the value, padding included.
pub(crate) fn base64_inner(value: &[u8], url: bool, alignment: u8) -> Zeroizing<Vec<u8>> {
    let k = usize::from(alignment % 3);
    let mut input = Zeroizing::new(Vec::with_capacity(value.len() + k));
    input.resize(k, 0);
    input.extend_from_slice(value);
    let engine = if url {
        &base64::engine::general_purpose::URL_SAFE
    } else {
        &base64::engine::general_purpose::STANDARD
    };
    let mut encoded = Zeroizing::new(String::new());
    engine.encode_string(input.as_slice(), &mut encoded);
    let start = (4 * k).div_ceil(3);
    let end = 4 * (input.len() / 3);
    Zeroizing::new(encoded.as_bytes()[start..end.max(start)].to_vec())
}

/// UTF-16 (little or big endian) of a UTF-8 value, or `None` when it is not valid UTF-8.
pub(crate) fn utf16(value: &[u8], big_endian: bool) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::str::from_utf8(value).ok()?;
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for unit in text.encode_utf16() {
        let bytes = if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        };
        out.extend_from_slice(&bytes);
    }
    Some(out)
}

/// Shortest line of a multi-line value that is searched on its own.
pub(crate) const MIN_LINE_LEN: usize = 16;
/// Fewest distinct bytes a line needs to be searched on its own (drops `====…` rulers).
const MIN_LINE_DISTINCT: usize = 8;

/// The lines of a multi-line value worth searching on their own, with their 1-based number:
/// at least [`MIN_LINE_LEN`] bytes without the line ending, not PEM armour (`-----BEGIN …`),
/// not the constant first body line of OpenSSH keys (base64 of `openssh-key-v1` and the
/// cipher names, the same in every unencrypted key), and varied enough. Empty for a
/// single-line value.
pub(crate) fn lines(value: &[u8]) -> Vec<(u16, &[u8])> {
    let parts: Vec<&[u8]> = value.split(|&b| b == b'\n').collect();
    if parts.iter().filter(|p| !p.is_empty()).count() < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let line = part.strip_suffix(b"\r").unwrap_or(part);
        let Ok(number) = u16::try_from(i + 1) else {
            break;
        };
        if line.len() < MIN_LINE_LEN
            || line.starts_with(b"-----")
            || line.starts_with(b"b3BlbnNzaC1rZXktdjE")
            || distinct_bytes(line) < MIN_LINE_DISTINCT
        {
            continue;
        }
        out.push((number, line));
    }
    out
}

fn distinct_bytes(data: &[u8]) -> usize {
    let mut seen = [false; 256];
    for &b in data {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|&&s| s).count()
}

/// Narrowest line width base64 is wrapped at that [`wrapped_fragments`] covers (PEM, `openssl
/// base64`: 64; MIME: 76).
pub(crate) const MIN_WRAP_WIDTH: usize = 64;
/// Shortest fragment searched for wrapped base64.
pub(crate) const MIN_FRAGMENT_LEN: usize = 12;

/// Fixed fragments of a base64 text `full` of which at least one appears unbroken in any
/// wrapping of it at [`MIN_WRAP_WIDTH`] columns or more, as `(offset in full, length)`.
///
/// Fragments have length `c = min(ceil(len / 2), MIN_WRAP_WIDTH / 2)` and sit at offsets
/// `0, c, 2c, …` plus one ending at `len`. With one line break inside the text, the longer of
/// the two pieces is a prefix or suffix of at least `c` bytes and holds the first or last
/// fragment; with more, every inner line is a run of at least `2c - 1` bytes and holds an
/// aligned fragment. Empty when `c` would be under [`MIN_FRAGMENT_LEN`].
pub(crate) fn wrapped_fragments(full_len: usize) -> Vec<(usize, usize)> {
    let c = full_len.div_ceil(2).min(MIN_WRAP_WIDTH / 2);
    if c < MIN_FRAGMENT_LEN {
        return Vec::new();
    }
    let mut out: Vec<(usize, usize)> = (0..)
        .map(|i| i * c)
        .take_while(|&at| at + c <= full_len)
        .map(|at| (at, c))
        .collect();
    if out.last().is_some_and(|&(at, _)| at + c != full_len) {
        out.push((full_len - c, c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_only_when_bare_newlines() {
        assert!(crlf(b"no newline").is_none());
        assert!(crlf(b"a\r\nb").is_none());
        assert_eq!(crlf(b"a\nb\r\nc\n").unwrap().as_slice(), b"a\r\nb\r\nc\r\n");
    }

    #[test]
    fn utf16_both_orders() {
        assert_eq!(utf16(b"ab", false).unwrap().as_slice(), b"a\0b\0");
        assert_eq!(utf16(b"ab", true).unwrap().as_slice(), b"\0a\0b");
        assert!(utf16(b"\xff", false).is_none());
    }

    #[test]
    fn lines_skip_armour_and_short_lines() {
        let pem = b"-----BEGIN KEY-----\nMIIBVgIBADANBgkqhkiG9w0B\nshort\n-----END KEY-----\n";
        let got = lines(pem);
        assert_eq!(got, vec![(2, b"MIIBVgIBADANBgkqhkiG9w0B".as_slice())]);
        assert!(lines(b"one line only, long enough\n").is_empty());
    }

    /// Every wrapping of a text at every column offset keeps one fragment unbroken.
    #[test]
    fn fragments_survive_every_wrapping() {
        for len in [24, 25, 40, 63, 64, 65, 100, 200] {
            let frags = wrapped_fragments(len);
            assert!(!frags.is_empty());
            for width in [64, 76] {
                for col in 0..width {
                    // Runs of the text between line breaks, as ranges of the text.
                    let mut runs = Vec::new();
                    let mut at = 0;
                    let mut room = width - col;
                    while at < len {
                        let end = (at + room).min(len);
                        runs.push((at, end));
                        at = end;
                        room = width;
                    }
                    let ok = frags
                        .iter()
                        .any(|&(f, c)| runs.iter().any(|&(s, e)| s <= f && f + c <= e));
                    assert!(ok, "len {len} width {width} col {col}");
                }
            }
        }
    }
}
