//! The multi-pattern matcher: one compiled [`PatternSet`], shared by all scanning threads,
//! searching one buffer at a time (streams and files are in [`super::stream`]).
//!
//! Engine choice, for the patterns of the secrets and the base64 key markers:
//!
//! * up to [`PACKED_MAX_PATTERNS`] patterns: aho-corasick's packed (SIMD, Teddy) searcher in
//!   leftmost-first, non-overlapping mode as the prefilter. At each hit every pattern is
//!   compared at that position (overlaps and patterns sharing a prefix are confirmed there),
//!   and the search resumes one byte later, so every occurrence is found exactly once;
//! * above: the [`Sampler`]: one 8-byte gram per up to 16 bytes, filtered by a hashed bitset
//!   and verified by direct comparison with the patterns indexed under it. No automaton is
//!   built: with 1000 secrets (16,000 patterns) the daachorse automaton it replaces took
//!   ~100 MiB and 0.6 s to build, the sampler a few MiB and milliseconds.
//!
//! Without prefilters (for comparison and tests): an overlapping aho-corasick automaton up
//! to [`PACKED_MAX_PATTERNS`] patterns, daachorse above.
//!
//! The short key markers that need a check (`AGE-SECRET-KEY-1`, `PRIVATE KEY-----`,
//! `PrivateKey`, raw and UTF-16) have their own packed searcher, so they do not shorten the
//! sampler's step; when all patterns together fit one packed searcher, they share it (one
//! pass instead of two).
//!
//! Searches are by *owned range*: [`Matcher::search`] reports the occurrences that start in
//! `owned`, reading the bytes around it (up to the longest pattern and the check
//! [`Context`]) from the rest of the buffer. Consecutive windows of a stream own disjoint
//! ranges, so each occurrence is reported once however the stream is cut.

use std::ops::Range;

use aho_corasick::packed;
use aho_corasick::{AhoCorasick, MatchKind};
use daachorse::DoubleArrayAhoCorasick;

use super::confirm::{self, Context};
use super::sample::Sampler;
use super::{Error, PatternSet};

/// Pattern count up to which the packed (Teddy) searcher is the engine; daachorse above.
pub(crate) const PACKED_MAX_PATTERNS: usize = 64;

/// One confirmed occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    /// Index of the pattern in the [`PatternSet`].
    pub pattern: usize,
    /// Index of the origin within `PatternSet::origins` of the pattern.
    pub origin: usize,
    /// Where the finding starts, relative to the searched buffer (or stream).
    pub offset: u64,
}

/// A packed searcher and the set's pattern index of each of its patterns.
struct Packed {
    searcher: packed::Searcher,
    ids: Vec<usize>,
}

impl Packed {
    fn build(set: &PatternSet, ids: Vec<usize>) -> Result<Packed, Error> {
        let mut config = packed::Config::new();
        config.match_kind(packed::MatchKind::LeftmostFirst);
        let mut builder = config.builder();
        for &i in &ids {
            builder.add(set.patterns()[i].as_slice());
        }
        let searcher = builder
            .build()
            .ok_or_else(|| Error::Matcher("packed searcher unavailable".into()))?;
        Ok(Packed { searcher, ids })
    }

    /// Calls `emit(pattern, start)` for every occurrence starting in `starts`.
    fn find(&self, set: &PatternSet, hay: &[u8], starts: Range<usize>, emit: &mut Emit<'_>) {
        let mut pos = starts.start;
        while pos < starts.end {
            let span = aho_corasick::Span::from(pos..hay.len());
            let Some(m) = self.searcher.find_in(hay, span) else {
                return;
            };
            let at = m.start();
            if at >= starts.end {
                return;
            }
            for &i in &self.ids {
                let p = set.patterns()[i].as_slice();
                if hay[at..].starts_with(p) {
                    emit(i, at, at + p.len());
                }
            }
            pos = at + 1;
        }
    }
}

type Emit<'a> = dyn FnMut(usize, usize, usize) + 'a;

enum Engine {
    Empty,
    Packed(Packed),
    Sampler(Sampler),
    Aho(AhoCorasick, Vec<usize>),
    Daac(DoubleArrayAhoCorasick<u32>),
}

impl Engine {
    fn build(set: &PatternSet, ids: Vec<usize>, prefilter: bool) -> Result<Engine, Error> {
        let err = |e: String| Error::Matcher(e);
        if ids.is_empty() {
            return Ok(Engine::Empty);
        }
        if ids.len() <= PACKED_MAX_PATTERNS && prefilter {
            return Packed::build(set, ids).map(Engine::Packed);
        }
        if prefilter {
            let patterns = ids.iter().map(|&i| (i, set.patterns()[i].as_slice()));
            if let Some(s) = Sampler::new(patterns) {
                return Ok(Engine::Sampler(s));
            }
        }
        if ids.len() <= PACKED_MAX_PATTERNS {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(ids.iter().map(|&i| set.patterns()[i].as_slice()))
                .map_err(|e| err(e.to_string()))?;
            return Ok(Engine::Aho(ac, ids));
        }
        let values = ids
            .iter()
            .map(|&i| u32::try_from(i).map(|v| (set.patterns()[i].as_slice(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        let daac = daachorse::DoubleArrayAhoCorasickBuilder::new()
            .match_kind(daachorse::MatchKind::Standard)
            .build_with_values(values)
            .map_err(|e| err(e.to_string()))?;
        Ok(Engine::Daac(daac))
    }

    /// Every occurrence in `hay` (overlapping ones included) starting at or before
    /// `last_start`, as `emit(pattern, start, end)`.
    fn find(&self, set: &PatternSet, hay: &[u8], last_start: usize, emit: &mut Emit<'_>) {
        match self {
            Engine::Empty => {}
            Engine::Packed(p) => p.find(set, hay, 0..last_start.saturating_add(1), emit),
            Engine::Sampler(s) => {
                s.find(hay, last_start, |i| set.patterns()[i].as_slice(), emit);
            }
            Engine::Aho(ac, ids) => {
                for m in ac.find_overlapping_iter(hay) {
                    if m.start() <= last_start {
                        emit(ids[m.pattern().as_usize()], m.start(), m.end());
                    }
                }
            }
            Engine::Daac(d) => {
                for m in d.find_overlapping_iter(hay) {
                    if m.start() <= last_start {
                        emit(m.value() as usize, m.start(), m.end());
                    }
                }
            }
        }
    }
}

/// A compiled pattern set, shared by all scanning threads.
pub struct Matcher {
    engine: Engine,
    markers: Option<Packed>,
    set: PatternSet,
    max_len: usize,
    context: Context,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("engine", &self.engine_name())
            .field("set", &self.set)
            .finish()
    }
}

impl Matcher {
    /// Compiles `set` with the engine that suits its size.
    pub fn new(set: PatternSet) -> Result<Matcher, Error> {
        Matcher::with_sampling(set, true)
    }

    /// Compiles `set`; `prefilter: false` runs a plain overlapping automaton over every byte
    /// (no Teddy, no sampler), for comparison.
    pub(crate) fn with_sampling(set: PatternSet, prefilter: bool) -> Result<Matcher, Error> {
        let (mut markers, mut main): (Vec<usize>, Vec<usize>) =
            (0..set.len()).partition(|&i| set.is_marker(i));
        if prefilter && main.len() + markers.len() <= PACKED_MAX_PATTERNS {
            // Few patterns: one packed pass over everything instead of two.
            main.append(&mut markers);
            main.sort_unstable();
        }
        let engine = Engine::build(&set, main, prefilter)?;
        let markers = if markers.is_empty() {
            None
        } else {
            Some(Packed::build(&set, markers)?)
        };
        Ok(Matcher {
            engine,
            markers,
            max_len: set.max_len(),
            context: Context::of(&set),
            set,
        })
    }

    /// The engine's name: `none`, `teddy`, `sampling`, `aho-corasick` or `daachorse`, with
    /// `+markers` when key markers are searched (`markers` alone without other patterns).
    pub(crate) fn engine_name(&self) -> &'static str {
        let markers = self.markers.is_some();
        match (&self.engine, markers) {
            (Engine::Empty, false) => "none",
            (Engine::Empty, true) => "markers",
            (Engine::Packed(_), false) => "teddy",
            (Engine::Packed(_), true) => "teddy+markers",
            (Engine::Sampler(_), false) => "sampling",
            (Engine::Sampler(_), true) => "sampling+markers",
            (Engine::Aho(..), false) => "aho-corasick",
            (Engine::Aho(..), true) => "aho-corasick+markers",
            (Engine::Daac(_), false) => "daachorse",
            (Engine::Daac(_), true) => "daachorse+markers",
        }
    }

    /// The patterns and what they stand for.
    pub(crate) fn pattern_set(&self) -> &PatternSet {
        &self.set
    }

    /// The context the checks read around a hit.
    pub(crate) fn context(&self) -> Context {
        self.context
    }

    /// Bytes a stream window must keep after its owned range so that every occurrence
    /// starting in it, and its check, can be read: the longest pattern and the forward
    /// context.
    pub fn tail(&self) -> usize {
        self.max_len.saturating_sub(1) + self.context.fwd
    }

    /// Calls `emit` for every confirmed occurrence in `hay`.
    pub fn find(&self, hay: &[u8], mut emit: impl FnMut(Hit)) {
        self.search(hay, 0..hay.len(), &mut emit);
    }

    /// Calls `emit` for every confirmed occurrence whose pattern starts in `owned`, reading
    /// context from the rest of `hay`. Offsets are relative to `hay`.
    pub(crate) fn search(&self, hay: &[u8], owned: Range<usize>, emit: &mut dyn FnMut(Hit)) {
        let owned = owned.start.min(hay.len())..owned.end.min(hay.len());
        if owned.is_empty() {
            return;
        }
        let mut raw = |pattern: usize, start: usize, end: usize| {
            for (origin, o) in self.set.origins(pattern).iter().enumerate() {
                if let Some(at) = confirm::confirm(&self.set, o, hay, start, end) {
                    emit(Hit {
                        pattern,
                        origin,
                        offset: at as u64,
                    });
                }
            }
        };
        if let Some(m) = &self.markers {
            m.find(&self.set, hay, owned.clone(), &mut raw);
        }
        let to = hay.len().min(owned.end + self.max_len.saturating_sub(1));
        let from = owned.start;
        let sub = &hay[from..to];
        let last = owned.end - from - 1;
        let mut shifted = |p: usize, s: usize, e: usize| raw(p, from + s, from + e);
        self.engine.find(&self.set, sub, last, &mut shifted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Secret;
    use zeroize::Zeroizing;

    fn secrets(n: usize) -> Vec<Secret> {
        (0..n)
            .map(|i| {
                let v = format!("secret-value-{i:04}-xyz").into_bytes();
                Secret::new(format!("h/g/{i}"), Zeroizing::new(v))
            })
            .collect()
    }

    #[test]
    fn engine_follows_pattern_count() {
        let m = |n| Matcher::new(PatternSet::build(&secrets(n), false)).unwrap();
        assert_eq!(m(1).engine_name(), "teddy");
        assert_eq!(m(20).engine_name(), "sampling");
        assert_eq!(m(0).engine_name(), "none");
        let with_keys = Matcher::new(PatternSet::new(&secrets(0))).unwrap();
        assert_eq!(with_keys.engine_name(), "teddy");
        let with_keys = Matcher::new(PatternSet::new(&secrets(20))).unwrap();
        assert_eq!(with_keys.engine_name(), "sampling+markers");
    }

    /// The prefilters (Teddy, sampler) find exactly what the plain overlapping automaton
    /// finds, whatever the owned range.
    #[test]
    fn prefilters_match_plain_automaton() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..30 {
            // Rounds alternate between few patterns (Teddy) and many (sampler).
            let n = if round % 4 < 2 {
                rng.gen_range(1..3)
            } else {
                rng.gen_range(8..30)
            };
            let secrets: Vec<Secret> = (0..n)
                .map(|i| {
                    let len = rng.gen_range(if round % 2 == 0 { 8 } else { 12 }..50);
                    let v: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..=b'h')).collect();
                    Secret::new(format!("h/g/{i}"), Zeroizing::new(v))
                })
                .collect();
            let fast = Matcher::with_sampling(PatternSet::build(&secrets, false), true).unwrap();
            let plain = Matcher::with_sampling(PatternSet::build(&secrets, false), false).unwrap();
            let mut hay: Vec<u8> = (0..rng.gen_range(0..5000))
                .map(|_| rng.gen_range(b'a'..=b'h'))
                .collect();
            for _ in 0..20 {
                let set = fast.pattern_set();
                let p = &set.patterns()[rng.gen_range(0..set.len())];
                if hay.len() > p.len() {
                    let at = rng.gen_range(0..=hay.len() - p.len());
                    hay[at..at + p.len()].copy_from_slice(p);
                }
            }
            let cut = rng.gen_range(0..=hay.len());
            let collect = |m: &Matcher, split: bool| {
                let mut v = Vec::new();
                if split {
                    m.search(&hay, 0..cut, &mut |h| v.push(h));
                    m.search(&hay, cut..hay.len(), &mut |h| v.push(h));
                } else {
                    m.find(&hay, |h| v.push(h));
                }
                v.sort();
                v
            };
            let want = collect(&plain, false);
            assert_eq!(collect(&fast, false), want, "round {round}");
            assert_eq!(collect(&fast, true), want, "round {round} split at {cut}");
        }
    }

    #[test]
    fn key_markers_are_confirmed() {
        let m = Matcher::new(PatternSet::new(&[])).unwrap();
        let body = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE";
        let text = format!("# key\nAGE-SECRET-KEY-1{body}\nAGE-SECRET-KEY-1 in docs\n");
        let mut kinds = Vec::new();
        m.find(text.as_bytes(), |h| {
            let o = m.pattern_set().origins(h.pattern)[h.origin];
            kinds.push((o.source, h.offset));
        });
        assert_eq!(
            kinds,
            [(
                crate::audit::patterns::Source::Key(crate::audit::KeyKind::Age),
                6
            )]
        );
        let utf16: Vec<u8> = "x\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        // The UTF-16LE marker matches too, one byte later: the report keeps the even one.
        let mut offsets = Vec::new();
        m.find(&utf16, |h| offsets.push(h.offset));
        assert_eq!(offsets, [4, 5]);
    }
}
