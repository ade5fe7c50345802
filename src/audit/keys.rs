//! Private key material of any origin: markers searched next to the secrets, and the checks
//! that confirm a marker hit really starts a key.
//!
//! | kind | marker | confirmed by |
//! |---|---|---|
//! | age | `AGE-SECRET-KEY-1` | 58 upper-case Bech32 characters follow |
//! | PEM / OpenSSH | `PRIVATE KEY-----` | `-----BEGIN ` and an upper-case label precede it on its line |
//! | WireGuard | `PrivateKey` | `=` (spaces around allowed) and 43 base64 characters and `=` follow |
//!
//! The markers are searched raw and in UTF-16LE/BE (decoded back to ASCII for the check), and
//! compressed files are searched after decompression like everything else. Whole PEM
//! headers (`-----BEGIN OPENSSH PRIVATE KEY-----`, …) and the age marker are also searched
//! in standard base64 at the three alignments; those long markers need no check. Hits report
//! where the key starts, never its bytes.

use std::fmt;

/// A kind of private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// `AGE-SECRET-KEY-1…`.
    Age,
    /// A PEM private key block (`-----BEGIN … PRIVATE KEY-----`), OpenSSH keys included.
    Pem,
    /// A WireGuard private key after `PrivateKey =`.
    WireGuard,
}

impl KeyKind {
    /// Name used in reports: `age`, `pem`, `wireguard`.
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Age => "age",
            KeyKind::Pem => "pem",
            KeyKind::WireGuard => "wireguard",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Age => "age secret key",
            KeyKind::Pem => "PEM/OpenSSH private key block",
            KeyKind::WireGuard => "WireGuard private key",
        })
    }
}

/// Markers that need a check, with their kind.
pub(crate) const MARKERS: [(KeyKind, &[u8]); 3] = [
    (KeyKind::Age, b"AGE-SECRET-KEY-1"),
    (KeyKind::Pem, b"PRIVATE KEY-----"),
    (KeyKind::WireGuard, b"PrivateKey"),
];

/// Long markers searched in base64 (no check needed).
pub(crate) const BASE64_MARKERS: [(KeyKind, &[u8]); 7] = [
    (KeyKind::Age, b"AGE-SECRET-KEY-1"),
    (KeyKind::Pem, b"-----BEGIN OPENSSH PRIVATE KEY-----"),
    (KeyKind::Pem, b"-----BEGIN PRIVATE KEY-----"),
    (KeyKind::Pem, b"-----BEGIN RSA PRIVATE KEY-----"),
    (KeyKind::Pem, b"-----BEGIN EC PRIVATE KEY-----"),
    (KeyKind::Pem, b"-----BEGIN DSA PRIVATE KEY-----"),
    (KeyKind::Pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----"),
];

/// Bytes of (ASCII) context a check reads before and after a marker.
pub(crate) const CONTEXT: usize = 72;

const BECH32: &[u8] = b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
const BEGIN: &[u8] = b"-----BEGIN ";

/// Checks a marker of `kind` found at `before.len()` in the ASCII text `before ++ marker ++
/// after`; returns how many bytes before the marker the key starts, or `None`.
pub(crate) fn confirm(kind: KeyKind, before: &[u8], after: &[u8]) -> Option<usize> {
    match kind {
        KeyKind::Age => {
            let body = after.get(..58)?;
            body.iter().all(|b| BECH32.contains(b)).then_some(0)
        }
        KeyKind::Pem => {
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let line = &before[line_start..];
            let at = line.windows(BEGIN.len()).rposition(|w| w == BEGIN)?;
            let label = &line[at + BEGIN.len()..];
            let ok = label
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b' ');
            ok.then_some(line.len() - at)
        }
        KeyKind::WireGuard => {
            let rest = skip_blanks(after);
            let rest = skip_blanks(rest.strip_prefix(b"=")?);
            let key = rest.get(..44)?;
            let b64 = |b: &u8| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/';
            (key[..43].iter().all(b64) && key[43] == b'=').then_some(0)
        }
    }
}

fn skip_blanks(data: &[u8]) -> &[u8] {
    let n = data
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    &data[n..]
}

/// The ASCII text of the UTF-16 code units in `data` (its length is even or the last byte is
/// ignored): low bytes for little endian, high bytes for big endian. A unit outside ASCII
/// becomes `0xff`, which no check accepts.
pub(crate) fn narrow(data: &[u8], big_endian: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2);
    for unit in data.chunks_exact(2) {
        let (lo, hi) = if big_endian {
            (unit[1], unit[0])
        } else {
            (unit[0], unit[1])
        };
        out.push(if hi != 0 || lo > 0x7f { 0xff } else { lo });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_key_needs_its_body() {
        let body = "QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
        assert_eq!(confirm(KeyKind::Age, b"", body.as_bytes()), Some(0));
        assert_eq!(confirm(KeyKind::Age, b"", b"..."), None);
    }

    #[test]
    fn pem_needs_begin_on_its_line() {
        assert_eq!(
            confirm(KeyKind::Pem, b"x\n-----BEGIN OPENSSH ", b"\n"),
            Some(19)
        );
        assert_eq!(confirm(KeyKind::Pem, b"-----END RSA ", b"\n"), None);
        assert_eq!(confirm(KeyKind::Pem, b"-----BEGIN rsa ", b"\n"), None);
    }

    #[test]
    fn wireguard_needs_a_key() {
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        assert_eq!(
            confirm(KeyKind::WireGuard, b"", format!(" = {key}").as_bytes()),
            Some(0)
        );
        assert_eq!(confirm(KeyKind::WireGuard, b"", b" = <your key>"), None);
        assert_eq!(confirm(KeyKind::WireGuard, b"", b"File = /run/k"), None);
    }

    #[test]
    fn narrow_marks_units_outside_ascii() {
        assert_eq!(narrow(b"a\0b\0\x01\x01c\0", false), b"ab\xffc");
        assert_eq!(narrow(b"\0a\0b", true), b"ab");
    }
}
