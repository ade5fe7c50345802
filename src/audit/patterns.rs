//! Expanding secret values into the byte patterns a leak usually takes.
//!
//! For every secret long enough to search (see [`MIN_SECRET_LEN`]) the set holds:
//!
//! * the raw bytes, and their string-escaped form when it differs (a value with `"`, `\`,
//!   newlines or tabs, e.g. a PEM key, appears escaped in `.drv` files and JSON);
//! * lower- and upper-case hex;
//! * base64, standard and URL-safe alphabet, at the three byte alignments. For alignment `k`
//!   the value is encoded after `k` filler bytes and only the characters that depend on the
//!   value alone are kept: `[ceil(4k/3), 4 * floor((len + k) / 3))`. The pattern therefore
//!   matches whatever surrounds the value in the encoded text, padding included.
//!
//! A trailing newline (`\n`, `\r\n`) is stripped before expanding: generators often write
//! `echo value > $out/file`, while Nix code often strips it (`lib.fileContents`). The
//! stripped value is a prefix of the full one, and so are its hex and (full-group) base64
//! encodings, so both forms are found.
//!
//! Identical patterns are stored once with every (secret, encoding) they stand for; within one
//! secret only the first encoding in the order above is kept (so a value whose hex has no
//! letters is reported as `hex`, not also as `HEX`).

use std::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{MIN_SECRET_LEN, Secret};

/// How a secret appears in a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The value's own bytes.
    Raw,
    /// The value inside a double-quoted string with C-style escapes (`\"`, `\\`, `\n`, `\r`,
    /// `\t`): how it appears in a `.drv` file (ATerm), in JSON, and in a Nix string literal.
    /// Only searched when it differs from the raw bytes.
    Escaped,
    /// Lower-case hex.
    HexLower,
    /// Upper-case hex.
    HexUpper,
    /// Base64 at a byte alignment (0, 1 or 2 bytes before the value in the encoded stream).
    Base64 {
        /// URL-safe alphabet (`-_`) instead of the standard one (`+/`).
        url: bool,
        /// Number of bytes before the value within its 3-byte group.
        alignment: u8,
    },
}

impl Encoding {
    /// The encoding's name without the alignment: `raw`, `hex`, `HEX`, `base64`, `base64-url`.
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Escaped => "escaped",
            Encoding::HexLower => "hex",
            Encoding::HexUpper => "HEX",
            Encoding::Base64 { url: false, .. } => "base64",
            Encoding::Base64 { url: true, .. } => "base64-url",
        }
    }

    /// The base64 alignment, if this is a base64 encoding.
    pub fn alignment(&self) -> Option<u8> {
        match self {
            Encoding::Base64 { alignment, .. } => Some(*alignment),
            _ => None,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.alignment() {
            Some(a) => write!(f, "{}, alignment {a}", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

/// What one pattern stands for: a secret (index into [`PatternSet::labels`]) in an encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index of the secret's label in [`PatternSet::labels`].
    pub secret: usize,
    /// The encoding this pattern is.
    pub encoding: Encoding,
}

/// The expanded, deduplicated patterns of a list of secrets.
#[derive(Default)]
pub struct PatternSet {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    origins: Vec<Vec<Origin>>,
    labels: Vec<String>,
    skipped: Vec<String>,
}

impl fmt::Debug for PatternSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatternSet")
            .field("patterns", &self.patterns.len())
            .field("secrets", &self.labels.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The encodings every searchable secret is expanded into, in reporting priority order.
pub const ENCODINGS: [Encoding; 10] = [
    Encoding::Raw,
    Encoding::Escaped,
    Encoding::HexLower,
    Encoding::HexUpper,
    Encoding::Base64 {
        url: false,
        alignment: 0,
    },
    Encoding::Base64 {
        url: false,
        alignment: 1,
    },
    Encoding::Base64 {
        url: false,
        alignment: 2,
    },
    Encoding::Base64 {
        url: true,
        alignment: 0,
    },
    Encoding::Base64 {
        url: true,
        alignment: 1,
    },
    Encoding::Base64 {
        url: true,
        alignment: 2,
    },
];

impl PatternSet {
    /// Expands `secrets` (see the module docs). Secrets shorter than [`MIN_SECRET_LEN`] after
    /// stripping a trailing newline are recorded in [`PatternSet::skipped`].
    pub fn new(secrets: &[Secret]) -> PatternSet {
        let mut candidates: Vec<(Zeroizing<Vec<u8>>, Origin)> = Vec::new();
        let mut labels = Vec::new();
        let mut skipped = Vec::new();
        for secret in secrets {
            let value = strip_newline(&secret.value);
            if value.len() < MIN_SECRET_LEN {
                skipped.push(secret.label.clone());
                continue;
            }
            let index = labels.len();
            labels.push(secret.label.clone());
            for encoding in ENCODINGS {
                if encoding == Encoding::Escaped && !needs_escaping(value) {
                    continue;
                }
                candidates.push((
                    encode(value, encoding),
                    Origin {
                        secret: index,
                        encoding,
                    },
                ));
            }
        }
        // Stable sort: equal patterns keep the generation order (secret, then ENCODINGS order).
        candidates.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut origins: Vec<Vec<Origin>> = Vec::new();
        for (bytes, origin) in candidates {
            match (patterns.last(), origins.last_mut()) {
                (Some(last), Some(list)) if last.as_slice() == bytes.as_slice() => {
                    if !list.iter().any(|o| o.secret == origin.secret) {
                        list.push(origin);
                    }
                }
                _ => {
                    patterns.push(bytes);
                    origins.push(vec![origin]);
                }
            }
        }
        PatternSet {
            patterns,
            origins,
            labels,
            skipped,
        }
    }

    /// The unique patterns. Never print them.
    pub fn patterns(&self) -> &[Zeroizing<Vec<u8>>] {
        &self.patterns
    }

    /// What pattern `index` stands for.
    pub fn origins(&self, index: usize) -> &[Origin] {
        self.origins.get(index).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Labels of the searched secrets, indexed by [`Origin::secret`].
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Labels of the secrets too short to search.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Number of unique patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when there is nothing to search.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Length of the longest pattern (0 when empty).
    pub fn max_len(&self) -> usize {
        self.patterns.iter().map(|p| p.len()).max().unwrap_or(0)
    }

    /// Length of the shortest pattern (0 when empty).
    pub fn min_len(&self) -> usize {
        self.patterns.iter().map(|p| p.len()).min().unwrap_or(0)
    }
}

/// True when the escaped form differs from the raw bytes.
fn needs_escaping(value: &[u8]) -> bool {
    value
        .iter()
        .any(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'\t'))
}

/// The value without trailing `\n` / `\r\n` line endings.
fn strip_newline(value: &[u8]) -> &[u8] {
    let mut end = value.len();
    while end > 0 && matches!(value[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &value[..end]
}

/// One encoding of `value` as a search pattern.
pub fn encode(value: &[u8], encoding: Encoding) -> Zeroizing<Vec<u8>> {
    match encoding {
        Encoding::Raw => Zeroizing::new(value.to_vec()),
        Encoding::Escaped => {
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
        Encoding::HexLower => hex_encode(value, b"0123456789abcdef"),
        Encoding::HexUpper => hex_encode(value, b"0123456789ABCDEF"),
        Encoding::Base64 { url, alignment } => {
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
    }
}

fn hex_encode(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for b in value {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 15)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(label: &str, v: &[u8]) -> Secret {
        Secret::new(label, Zeroizing::new(v.to_vec()))
    }

    fn b64(engine: &base64::engine::GeneralPurpose, data: &[u8]) -> Vec<u8> {
        engine.encode(data).into_bytes()
    }

    #[test]
    fn every_alignment_and_alphabet_is_found_in_encoded_text() {
        let value = b"s3cr\xfb\xff\xbet-value-\xfe\xfd\xfc?>".to_vec();
        let set = PatternSet::new(&[secret("m/g/f", &value)]);
        assert!(set.skipped().is_empty());
        for (url, engine) in [
            (false, &base64::engine::general_purpose::STANDARD),
            (true, &base64::engine::general_purpose::URL_SAFE_NO_PAD),
        ] {
            for prefix_len in 0..6 {
                for suffix_len in 0..4 {
                    let mut data = vec![b'x'; prefix_len];
                    data.extend_from_slice(&value);
                    data.extend(std::iter::repeat_n(b'y', suffix_len));
                    let text = b64(engine, &data);
                    let alignment = (prefix_len % 3) as u8;
                    let want = Encoding::Base64 { url, alignment };
                    let found = (0..set.len()).any(|i| {
                        set.origins(i).iter().any(|o| o.encoding == want)
                            && text
                                .windows(set.patterns()[i].len())
                                .any(|w| w == set.patterns()[i].as_slice())
                    });
                    assert!(found, "url={url} prefix={prefix_len} suffix={suffix_len}");
                }
            }
        }
    }

    #[test]
    fn hex_and_raw_patterns() {
        let set = PatternSet::new(&[secret("m/g/f", b"Abcdefgh\xff\n")]);
        let find = |enc: Encoding| {
            (0..set.len())
                .find(|&i| set.origins(i).iter().any(|o| o.encoding == enc))
                .map(|i| set.patterns()[i].to_vec())
        };
        assert_eq!(find(Encoding::Raw).unwrap(), b"Abcdefgh\xff");
        assert_eq!(find(Encoding::HexLower).unwrap(), b"4162636465666768ff");
        assert_eq!(find(Encoding::HexUpper).unwrap(), b"4162636465666768FF");
    }

    #[test]
    fn escaped_form_only_when_it_differs() {
        let set = PatternSet::new(&[
            secret(
                "a/b/pem",
                b"-----BEGIN KEY-----\nab\"c\\d\n-----END KEY-----\n",
            ),
            secret("a/b/plain", b"plainvalue"),
        ]);
        let escaped: Vec<&[u8]> = (0..set.len())
            .filter(|&i| {
                set.origins(i)
                    .iter()
                    .any(|o| o.encoding == Encoding::Escaped)
            })
            .map(|i| set.patterns()[i].as_slice())
            .collect();
        assert_eq!(
            escaped,
            [b"-----BEGIN KEY-----\\nab\\\"c\\\\d\\n-----END KEY-----".as_slice()]
        );
    }

    #[test]
    fn short_values_are_skipped_not_searched() {
        let set = PatternSet::new(&[
            secret("a/b/short", b"1234567\n"),
            secret("a/b/ok", b"12345678"),
        ]);
        assert_eq!(set.skipped(), ["a/b/short".to_string()]);
        assert_eq!(set.labels(), ["a/b/ok".to_string()]);
        assert!(set.min_len() >= MIN_SECRET_LEN);
    }

    #[test]
    fn duplicates_are_merged() {
        // Digits only: lower and upper hex coincide; no '+' or '/' in base64 of this value.
        let set = PatternSet::new(&[secret("a/b/c", b"12345678"), secret("x/y/z", b"12345678")]);
        let hex = b"3132333435363738";
        let i = set
            .patterns()
            .iter()
            .position(|p| p.as_slice() == hex)
            .unwrap();
        assert_eq!(set.origins(i).len(), 2);
        assert!(
            set.origins(i)
                .iter()
                .all(|o| o.encoding == Encoding::HexLower)
        );
    }
}
