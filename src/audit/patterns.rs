//! Expanding secret values into the byte patterns a leak usually takes, plus the markers of
//! private key material ([`super::keys`]).
//!
//! For every secret long enough to search (see [`MIN_SECRET_LEN`]) the set holds:
//!
//! * the raw bytes; their string-escaped form when it differs (a value with `"`, `\`,
//!   newlines or tabs, e.g. a PEM key, appears escaped in `.drv` files and JSON); and, for a
//!   value with bare `\n`, the same with `\r\n` line endings (`crlf`);
//! * lower- and upper-case hex;
//! * base64, standard and URL-safe alphabet, at the three byte alignments. For alignment `k`
//!   the value is encoded after `k` filler bytes and only the characters that depend on the
//!   value alone are kept: `[ceil(4k/3), 4 * floor((len + k) / 3))`. The pattern therefore
//!   matches whatever surrounds the value in the encoded text, padding included;
//! * UTF-16LE and UTF-16BE (values that are valid UTF-8);
//! * each line of a multi-line value on its own (`line N`; see [`encode::lines`] for which
//!   lines qualify), so a PEM body re-wrapped or embedded line by line is found;
//! * standard base64 wrapped at 64 columns or more (PEM, MIME at 76) with `\n` or `\r\n`:
//!   fixed fragments of each base64 pattern ([`encode::wrapped_fragments`]), each confirmed at a
//!   hit by matching the whole base64 text around it with line breaks skipped
//!   ([`Check::Wrapped`]). Only reported when a line break really falls inside the text
//!   (otherwise the plain `base64` pattern reports it).
//!
//! A trailing newline (`\n`, `\r\n`) is stripped before expanding: generators often write
//! `echo value > $out/file`, while Nix code often strips it (`lib.fileContents`). The
//! stripped value is a prefix of the full one, and so are its hex and (full-group) base64
//! encodings, so both forms are found.
//!
//! Identical patterns are stored once with every (source, encoding) they stand for; within
//! one source only the first encoding in the order above is kept (so a value whose hex has no
//! letters is reported as `hex`, not also as `HEX`).

use std::fmt;

use zeroize::Zeroizing;

use super::encode;
use super::keys::{self, KeyKind};
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
    /// The value with `\r\n` line endings (only for values with bare `\n`).
    Crlf,
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
    /// Standard base64 broken into lines (of 64 columns or more).
    Base64Wrapped {
        /// Number of bytes before the value within its 3-byte group.
        alignment: u8,
    },
    /// UTF-16 text.
    Utf16 {
        /// Big endian instead of little endian.
        big_endian: bool,
    },
    /// One line of a multi-line value.
    Line {
        /// The line's 1-based number in the value.
        line: u16,
    },
}

impl Encoding {
    /// The encoding's name without details: `raw`, `escaped`, `crlf`, `hex`, `HEX`, `base64`,
    /// `base64-url`, `base64-wrapped`, `utf-16le`, `utf-16be`, `line`.
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Escaped => "escaped",
            Encoding::Crlf => "crlf",
            Encoding::HexLower => "hex",
            Encoding::HexUpper => "HEX",
            Encoding::Base64 { url: false, .. } => "base64",
            Encoding::Base64 { url: true, .. } => "base64-url",
            Encoding::Base64Wrapped { .. } => "base64-wrapped",
            Encoding::Utf16 { big_endian: false } => "utf-16le",
            Encoding::Utf16 { big_endian: true } => "utf-16be",
            Encoding::Line { .. } => "line",
        }
    }

    /// The base64 alignment, if this is a base64 encoding.
    pub fn alignment(&self) -> Option<u8> {
        match self {
            Encoding::Base64 { alignment, .. } | Encoding::Base64Wrapped { alignment } => {
                Some(*alignment)
            }
            _ => None,
        }
    }

    /// The line number, if this is one line of a multi-line value.
    pub fn line(&self) -> Option<u16> {
        match self {
            Encoding::Line { line } => Some(*line),
            _ => None,
        }
    }

    /// True for the encodings of the whole value (all but [`Encoding::Line`]).
    pub(crate) fn is_whole(&self) -> bool {
        self.line().is_none()
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.alignment(), self.line()) {
            (Some(a), _) => write!(f, "{}, alignment {a}", self.name()),
            (_, Some(n)) => write!(f, "line {n}"),
            _ => f.write_str(self.name()),
        }
    }
}

/// What a pattern is searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A known secret: index into [`PatternSet::labels`].
    Secret(usize),
    /// Private key material of any origin.
    Key(KeyKind),
}

/// What must hold around a hit before it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing: the pattern is the whole finding.
    None,
    /// The pattern is the fragment at `at` of the wrapped base64 text
    /// [`PatternSet::wrapped`]`[full]`, which must match around it with line breaks skipped.
    Wrapped {
        /// Index into [`PatternSet::wrapped`].
        full: u32,
        /// Offset of the fragment in the full text.
        at: u32,
    },
    /// A key marker, confirmed by [`keys::confirm`] on the text around it.
    Key {
        /// `None`: raw bytes; `Some(big_endian)`: UTF-16.
        utf16: Option<bool>,
    },
}

/// What one pattern stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The secret or key kind.
    pub source: Source,
    /// The encoding this pattern is.
    pub encoding: Encoding,
    /// The check a hit must pass.
    pub check: Check,
}

/// The expanded, deduplicated patterns of a list of secrets and the key markers.
#[derive(Default)]
pub struct PatternSet {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    origins: Vec<Vec<Origin>>,
    wrapped: Vec<Zeroizing<Vec<u8>>>,
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

/// The whole-value encodings every searchable secret is expanded into, in reporting
/// priority order (lines and wrapped base64 come after them).
pub(crate) const ENCODINGS: [Encoding; 13] = [
    Encoding::Raw,
    Encoding::Escaped,
    Encoding::Crlf,
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
    Encoding::Utf16 { big_endian: false },
    Encoding::Utf16 { big_endian: true },
];

type Candidate = (Zeroizing<Vec<u8>>, Origin);

/// Collects the candidate patterns before deduplication.
#[derive(Default)]
struct Expander {
    candidates: Vec<Candidate>,
    wrapped: Vec<Zeroizing<Vec<u8>>>,
}

impl Expander {
    fn push(&mut self, bytes: Zeroizing<Vec<u8>>, source: Source, encoding: Encoding) {
        let check = Check::None;
        self.candidates.push((
            bytes,
            Origin {
                source,
                encoding,
                check,
            },
        ));
    }

    fn secret(&mut self, index: usize, value: &[u8]) {
        let source = Source::Secret(index);
        for encoding in ENCODINGS {
            if let Some(bytes) = encode_whole(value, encoding) {
                self.push(bytes, source, encoding);
            }
        }
        for (line, bytes) in encode::lines(value) {
            let bytes = Zeroizing::new(bytes.to_vec());
            self.push(bytes, source, Encoding::Line { line });
        }
        for alignment in 0..3 {
            let full = encode::base64_inner(value, false, alignment);
            self.wrapped_base64(full, source, alignment);
        }
    }

    fn wrapped_base64(&mut self, full: Zeroizing<Vec<u8>>, source: Source, alignment: u8) {
        let fragments = encode::wrapped_fragments(full.len());
        let Ok(index) = u32::try_from(self.wrapped.len()) else {
            return;
        };
        for (at, len) in fragments {
            let Ok(at32) = u32::try_from(at) else {
                continue;
            };
            let origin = Origin {
                source,
                encoding: Encoding::Base64Wrapped { alignment },
                check: Check::Wrapped {
                    full: index,
                    at: at32,
                },
            };
            let bytes = Zeroizing::new(full[at..at + len].to_vec());
            self.candidates.push((bytes, origin));
        }
        self.wrapped.push(full);
    }

    fn key_markers(&mut self) {
        for (kind, marker) in keys::MARKERS {
            let source = Source::Key(kind);
            let variants = [
                (Some(Zeroizing::new(marker.to_vec())), None, Encoding::Raw),
                (
                    encode::utf16(marker, false),
                    Some(false),
                    Encoding::Utf16 { big_endian: false },
                ),
                (
                    encode::utf16(marker, true),
                    Some(true),
                    Encoding::Utf16 { big_endian: true },
                ),
            ];
            for (bytes, utf16, encoding) in variants {
                if let Some(bytes) = bytes {
                    let check = Check::Key { utf16 };
                    let origin = Origin {
                        source,
                        encoding,
                        check,
                    };
                    self.candidates.push((bytes, origin));
                }
            }
        }
        for (kind, marker) in keys::BASE64_MARKERS {
            for alignment in 0..3 {
                let bytes = encode::base64_inner(marker, false, alignment);
                let encoding = Encoding::Base64 {
                    url: false,
                    alignment,
                };
                self.push(bytes, Source::Key(kind), encoding);
            }
        }
    }
}

impl PatternSet {
    /// Expands `secrets` and adds the key markers (see the module docs). Secrets shorter
    /// than [`MIN_SECRET_LEN`] after stripping a trailing newline are recorded in
    /// [`PatternSet::skipped`].
    pub fn new(secrets: &[Secret]) -> PatternSet {
        PatternSet::build(secrets, true)
    }

    /// Like [`PatternSet::new`]; `keys: false` leaves the key markers out.
    pub fn build(secrets: &[Secret], keys: bool) -> PatternSet {
        let mut ex = Expander::default();
        let mut labels = Vec::new();
        let mut skipped = Vec::new();
        for secret in secrets {
            let value = strip_newline(&secret.value);
            if value.len() < MIN_SECRET_LEN {
                skipped.push(secret.label.clone());
                continue;
            }
            ex.secret(labels.len(), value);
            labels.push(secret.label.clone());
        }
        if keys {
            ex.key_markers();
        }
        let (patterns, origins) = dedup(ex.candidates);
        PatternSet {
            patterns,
            origins,
            wrapped: ex.wrapped,
            labels,
            skipped,
        }
    }

    /// The unique patterns. Never print them.
    pub(crate) fn patterns(&self) -> &[Zeroizing<Vec<u8>>] {
        &self.patterns
    }

    /// What pattern `index` stands for.
    pub(crate) fn origins(&self, index: usize) -> &[Origin] {
        self.origins.get(index).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The full base64 texts that `Check::Wrapped` refers to. Never print them.
    pub fn wrapped(&self, index: u32) -> Option<&[u8]> {
        let index = usize::try_from(index).ok()?;
        self.wrapped.get(index).map(|w| w.as_slice())
    }

    /// Length of the longest [`PatternSet::wrapped`] text (0 when none).
    pub(crate) fn max_wrapped_len(&self) -> usize {
        self.wrapped.iter().map(|w| w.len()).max().unwrap_or(0)
    }

    /// True when every origin of pattern `index` is a key marker with a check: such patterns
    /// are searched by the SIMD marker searcher instead of the automaton.
    pub(crate) fn is_marker(&self, index: usize) -> bool {
        let origins = self.origins(index);
        !origins.is_empty() && origins.iter().all(|o| matches!(o.check, Check::Key { .. }))
    }

    /// Labels of the searched secrets, indexed by `Source::Secret`.
    pub(crate) fn labels(&self) -> &[String] {
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
    pub(crate) fn max_len(&self) -> usize {
        self.patterns.iter().map(|p| p.len()).max().unwrap_or(0)
    }

    /// Length of the shortest pattern (0 when empty).
    #[cfg(test)]
    pub(crate) fn min_len(&self) -> usize {
        self.patterns.iter().map(|p| p.len()).min().unwrap_or(0)
    }
}

/// Sorts candidates by bytes and merges equal ones; within one source the first candidate
/// (generation order) wins.
fn dedup(mut candidates: Vec<Candidate>) -> (Vec<Zeroizing<Vec<u8>>>, Vec<Vec<Origin>>) {
    // Stable sort: equal patterns keep the generation order (source, then encoding order).
    candidates.sort_by(|a, b| a.0.as_slice().cmp(b.0.as_slice()));
    let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut origins: Vec<Vec<Origin>> = Vec::new();
    for (bytes, origin) in candidates {
        match (patterns.last(), origins.last_mut()) {
            (Some(last), Some(list)) if last.as_slice() == bytes.as_slice() => {
                if !list.iter().any(|o| o.source == origin.source) {
                    list.push(origin);
                }
            }
            _ => {
                patterns.push(bytes);
                origins.push(vec![origin]);
            }
        }
    }
    (patterns, origins)
}

/// The value without trailing `\n` / `\r\n` line endings.
fn strip_newline(value: &[u8]) -> &[u8] {
    let mut end = value.len();
    while end > 0 && matches!(value[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &value[..end]
}

/// One whole-value encoding of `value` as a search pattern, or `None` when it does not apply
/// (`escaped` equal to raw, no bare newline for `crlf`, not UTF-8 for UTF-16, and lines and
/// wrapped base64, which are not whole-value patterns).
pub(crate) fn encode_whole(value: &[u8], encoding: Encoding) -> Option<Zeroizing<Vec<u8>>> {
    match encoding {
        Encoding::Raw => Some(Zeroizing::new(value.to_vec())),
        Encoding::Escaped => encode::needs_escaping(value).then(|| encode::escaped(value)),
        Encoding::Crlf => encode::crlf(value),
        Encoding::HexLower => Some(encode::hex(value, b"0123456789abcdef")),
        Encoding::HexUpper => Some(encode::hex(value, b"0123456789ABCDEF")),
        Encoding::Base64 { url, alignment } => Some(encode::base64_inner(value, url, alignment)),
        Encoding::Utf16 { big_endian } => encode::utf16(value, big_endian),
        Encoding::Base64Wrapped { .. } | Encoding::Line { .. } => None,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn secret(label: &str, v: &[u8]) -> Secret {
        Secret::new(label, Zeroizing::new(v.to_vec()))
    }

    /// Every whole-value encoding's pattern is found in the text it describes, and the key
    /// markers are there with their checks.
    #[test]
    fn new_encodings_and_markers() {
        let value = b"line-one-of-the-secret\nline-two-of-the-secret\n";
        let set = PatternSet::new(&[secret("m/g/pem", value)]);
        let has = |bytes: &[u8], enc: Encoding| {
            (0..set.len()).any(|i| {
                set.patterns()[i].as_slice() == bytes
                    && set.origins(i).iter().any(|o| o.encoding == enc)
            })
        };
        let crlf = b"line-one-of-the-secret\r\nline-two-of-the-secret";
        assert!(has(crlf, Encoding::Crlf));
        assert!(has(b"line-two-of-the-secret", Encoding::Line { line: 2 }));
        let le: Vec<u8> = value[..22].iter().flat_map(|&b| [b, 0]).collect();
        assert!((0..set.len()).any(|i| {
            set.patterns()[i].starts_with(&le)
                && set.origins(i)[0].encoding == Encoding::Utf16 { big_endian: false }
        }));
        let markers = (0..set.len()).filter(|&i| set.is_marker(i)).count();
        assert_eq!(markers, 9);
        assert!((0..set.len()).any(|i| {
            set.origins(i)
                .iter()
                .any(|o| matches!(o.check, Check::Wrapped { .. }))
        }));
    }

    fn b64(engine: &base64::engine::GeneralPurpose, data: &[u8]) -> Vec<u8> {
        engine.encode(data).into_bytes()
    }

    #[test]
    fn every_alignment_and_alphabet_is_found_in_encoded_text() {
        let value = b"s3cr\xfb\xff\xbet-value-\xfe\xfd\xfc?>".to_vec();
        let set = PatternSet::build(&[secret("m/g/f", &value)], false);
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
        let set = PatternSet::build(&[secret("m/g/f", b"Abcdefgh\xff\n")], false);
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
        let set = PatternSet::build(
            &[
                secret(
                    "a/b/pem",
                    b"-----BEGIN KEY-----\nab\"c\\d\n-----END KEY-----\n",
                ),
                secret("a/b/plain", b"plainvalue"),
            ],
            false,
        );
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
        let set = PatternSet::build(
            &[secret("a/b/c", b"12345678"), secret("x/y/z", b"12345678")],
            false,
        );
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
