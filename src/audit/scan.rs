//! The multi-pattern matcher and the search of one file or stream.
//!
//! Automaton choice (measurements in `docs/crates.md` §4.8): up to
//! [`AHO_CORASICK_MAX_PATTERNS`] patterns, `aho-corasick`; above, the double-array
//! Aho-Corasick of `daachorse`, which keeps a small, cache-friendly automaton for hundreds or
//! thousands of random patterns. Either runs behind the [`Sampler`] prefilter, which hands
//! it only the few windows that can hold a match. (Measured here: an overlapping
//! aho-corasick search, which cannot use its Teddy prefilter, ran at ~0.3 GiB/s on its own
//! with 9 patterns; behind the sampler both automatons run at the speed of reading.)
//!
//! Files up to [`MMAP_THRESHOLD`] bytes are read through one reusable buffer in chunks of
//! [`CHUNK_LEN`] bytes that overlap by the longest pattern length minus one, so a match across a
//! chunk boundary is found exactly once. Bigger files are memory-mapped and searched in one go
//! (falling back to the chunked read when mapping fails).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use daachorse::DoubleArrayAhoCorasick;
use zeroize::Zeroize;

use super::sample::Sampler;
use super::{Error, PatternSet};

/// Pattern count up to which aho-corasick is used; daachorse above.
pub const AHO_CORASICK_MAX_PATTERNS: usize = 64;
/// Files bigger than this are memory-mapped.
pub const MMAP_THRESHOLD: u64 = 16 << 20;
/// Bytes read per chunk.
pub const CHUNK_LEN: usize = 256 << 10;
/// Bytes of a mapped file searched before their pages are released.
pub const MAP_WINDOW: usize = 8 << 20;
/// Alignment of released ranges: a multiple of every page size in use (4, 16, 64 KiB).
const RELEASE_ALIGN: usize = 64 << 10;

enum Engine {
    Empty,
    Aho(AhoCorasick),
    Daac(DoubleArrayAhoCorasick<u32>),
}

impl Engine {
    /// Every occurrence in `hay`, overlapping ones included.
    fn find(&self, hay: &[u8], mut emit: impl FnMut(usize, usize, usize)) {
        match self {
            Engine::Empty => {}
            Engine::Aho(ac) => {
                for m in ac.find_overlapping_iter(hay) {
                    emit(m.pattern().as_usize(), m.start(), m.end());
                }
            }
            Engine::Daac(d) => {
                for m in d.find_overlapping_iter(hay) {
                    emit(m.value() as usize, m.start(), m.end());
                }
            }
        }
    }
}

/// A compiled pattern set, shared by all scanning threads.
pub struct Matcher {
    engine: Engine,
    sampler: Option<Sampler>,
    set: PatternSet,
    max_len: usize,
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
    /// Compiles `set` with the automaton that suits its size, behind the sampling prefilter.
    pub fn new(set: PatternSet) -> Result<Matcher, Error> {
        Matcher::with_sampling(set, true)
    }

    /// Compiles `set`; `sampling` puts the [`Sampler`] prefilter in front of the automaton
    /// (off: the automaton reads every byte, for comparison).
    pub fn with_sampling(set: PatternSet, sampling: bool) -> Result<Matcher, Error> {
        let engine = if set.is_empty() {
            Engine::Empty
        } else if set.len() <= AHO_CORASICK_MAX_PATTERNS {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(set.patterns().iter().map(|p| p.as_slice()))
                .map_err(|e| Error::Matcher(e.to_string()))?;
            Engine::Aho(ac)
        } else {
            let values = set
                .patterns()
                .iter()
                .enumerate()
                .map(|(i, p)| u32::try_from(i).map(|v| (p.as_slice(), v)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Matcher(e.to_string()))?;
            let daac = daachorse::DoubleArrayAhoCorasickBuilder::new()
                .match_kind(daachorse::MatchKind::Standard)
                .build_with_values(values)
                .map_err(|e| Error::Matcher(e.to_string()))?;
            Engine::Daac(daac)
        };
        let sampler = if sampling {
            Sampler::new(set.patterns().iter().map(|p| p.as_slice()))
        } else {
            None
        };
        let max_len = set.max_len();
        Ok(Matcher {
            engine,
            sampler,
            set,
            max_len,
        })
    }

    /// The engine's name: `none`, `aho-corasick` or `daachorse`, with `+sampling` when the
    /// sampling prefilter is in front.
    pub fn engine_name(&self) -> &'static str {
        match (&self.engine, self.sampler.is_some()) {
            (Engine::Empty, _) => "none",
            (Engine::Aho(_), false) => "aho-corasick",
            (Engine::Aho(_), true) => "aho-corasick+sampling",
            (Engine::Daac(_), false) => "daachorse",
            (Engine::Daac(_), true) => "daachorse+sampling",
        }
    }

    /// The patterns and what they stand for.
    pub fn pattern_set(&self) -> &PatternSet {
        &self.set
    }

    /// Length of the longest pattern.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Calls `emit(pattern, start, end)` for every occurrence of every pattern in `hay`,
    /// overlapping ones included.
    pub fn find(&self, hay: &[u8], mut emit: impl FnMut(usize, usize, usize)) {
        match &self.sampler {
            None => self.engine.find(hay, emit),
            Some(sampler) => sampler.candidates(hay, self.max_len, |from, to, _, last_start| {
                self.engine.find(&hay[from..to], |pattern, start, end| {
                    if from + start <= last_start {
                        emit(pattern, from + start, from + end);
                    }
                })
            }),
        }
    }

    /// Searches a stream, reading through `buf` (reused across calls) in overlapping chunks.
    /// Calls `emit(pattern, offset)` with stream offsets; returns the number of bytes read.
    pub fn find_in_reader(
        &self,
        reader: &mut impl Read,
        buf: &mut Vec<u8>,
        mut emit: impl FnMut(usize, u64),
    ) -> io::Result<u64> {
        let keep = self.max_len.saturating_sub(1);
        if buf.len() < CHUNK_LEN + keep {
            buf.resize(CHUNK_LEN + keep, 0);
        }
        let mut carried = 0usize;
        let mut base = 0u64;
        let mut total = 0u64;
        loop {
            let n = read_full(reader, &mut buf[carried..carried + CHUNK_LEN])?;
            total += n as u64;
            let filled = carried + n;
            if n > 0 {
                self.find(&buf[..filled], |pattern, start, end| {
                    // Matches ending inside the carried bytes were found in the previous chunk.
                    if end > carried {
                        emit(pattern, base + start as u64);
                    }
                });
            }
            if n < CHUNK_LEN {
                return Ok(total);
            }
            let k = keep.min(filled);
            buf.copy_within(filled - k..filled, 0);
            base += (filled - k) as u64;
            carried = k;
        }
    }

    /// Searches the file at `path` of size `len` (from its metadata), using `buf` for reads.
    /// Calls `emit(pattern, offset)`; returns the number of bytes searched.
    pub fn find_in_file(
        &self,
        path: &Path,
        len: u64,
        buf: &mut Vec<u8>,
        mut emit: impl FnMut(usize, u64),
    ) -> io::Result<u64> {
        let mut file = File::open(path)?;
        if len > MMAP_THRESHOLD {
            // SAFETY: the map is read-only and dropped before returning. If another process
            // truncates the file meanwhile, reads past the end fault (SIGBUS); store paths are
            // immutable, and for other files that is the documented risk of mmap, as in ripgrep.
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                self.find_in_map(&map, &mut emit);
                return Ok(map.len() as u64);
            }
        }
        self.find_in_reader(&mut file, buf, emit)
    }
}

impl Matcher {
    /// Searches a mapped file in windows of [`MAP_WINDOW`] bytes overlapping by the longest
    /// pattern length minus one, dropping the pages of each searched window from the mapping
    /// (`MADV_DONTNEED`), so the resident set stays at about one window per thread instead of
    /// the whole file.
    fn find_in_map(&self, map: &memmap2::Mmap, emit: &mut impl FnMut(usize, u64)) {
        let _ = map.advise(memmap2::Advice::Sequential);
        let keep = self.max_len.saturating_sub(1);
        let len = map.len();
        let mut pos = 0usize;
        let mut released = 0usize;
        while pos < len {
            let from = pos.saturating_sub(keep);
            let to = len.min(pos + MAP_WINDOW);
            self.find(&map[from..to], |pattern, start, end| {
                // Matches ending at or before `pos` were reported by the previous window.
                if from + end > pos {
                    emit(pattern, (from + start) as u64);
                }
            });
            let release_to = to.saturating_sub(keep) & !(RELEASE_ALIGN - 1);
            if release_to > released {
                // SAFETY: a read-only, file-backed mapping: MADV_DONTNEED only drops the pages
                // from this mapping (a later access would fault them in again from the file);
                // the range is below the next window and never read again.
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        released,
                        release_to - released,
                    )
                };
                released = release_to;
            }
            pos = to;
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Zeroizes a scan buffer (it may hold a leaked value read back from disk).
pub fn wipe(buf: &mut Vec<u8>) {
    buf.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Secret;
    use zeroize::Zeroizing;

    fn matcher(n: usize) -> (Matcher, Vec<Vec<u8>>) {
        let values: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("secret-value-{i:04}-xyz").into_bytes())
            .collect();
        let secrets: Vec<Secret> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Secret::new(format!("h/g/{i}"), Zeroizing::new(v.clone())))
            .collect();
        (Matcher::new(PatternSet::new(&secrets)).unwrap(), values)
    }

    #[test]
    fn engine_follows_pattern_count() {
        assert_eq!(matcher(1).0.engine_name(), "aho-corasick+sampling");
        assert_eq!(matcher(20).0.engine_name(), "daachorse+sampling");
        assert_eq!(matcher(0).0.engine_name(), "none");
    }

    /// The sampling prefilter finds exactly what the plain automaton finds.
    #[test]
    fn sampling_matches_plain_automaton() {
        // Rounds alternate between few patterns (aho-corasick) and many (daachorse).
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..30 {
            let n = if round % 4 < 2 {
                rng.gen_range(1..8)
            } else {
                rng.gen_range(14..40)
            };
            let secrets: Vec<Secret> = (0..n)
                .map(|i| {
                    // Even rounds: 4-byte grams (shortest < 12), odd rounds: 8-byte grams.
                    let len = rng.gen_range(if round % 2 == 0 { 8 } else { 12 }..50);
                    let v: Vec<u8> = (0..len).map(|_| rng.gen_range(b'a'..=b'h')).collect();
                    Secret::new(format!("h/g/{i}"), Zeroizing::new(v))
                })
                .collect();
            let sampled = Matcher::with_sampling(PatternSet::new(&secrets), true).unwrap();
            let plain = Matcher::with_sampling(PatternSet::new(&secrets), false).unwrap();
            assert!(sampled.engine_name().ends_with("+sampling"));
            let mut hay: Vec<u8> = (0..rng.gen_range(0..5000))
                .map(|_| rng.gen_range(b'a'..=b'h'))
                .collect();
            for _ in 0..20 {
                let p = &sampled.pattern_set().patterns()
                    [rng.gen_range(0..sampled.pattern_set().len())];
                if hay.len() > p.len() {
                    let at = rng.gen_range(0..=hay.len() - p.len());
                    hay[at..at + p.len()].copy_from_slice(p);
                }
            }
            let collect = |m: &Matcher| {
                let mut v = Vec::new();
                m.find(&hay, |p, s, e| v.push((p, s, e)));
                v.sort();
                v
            };
            let want = collect(&plain);
            assert!(round > 0 || !want.is_empty() || hay.len() < 50);
            assert_eq!(collect(&sampled), want, "round {round}");
        }
    }

    #[test]
    fn mapped_files_find_matches_across_windows_once() {
        let (m, values) = matcher(20);
        let v = &values[3];
        let len = (MMAP_THRESHOLD as usize) + MAP_WINDOW + 1000;
        let mut data = vec![b'.'; len];
        let mut want = Vec::new();
        for at in [
            0,
            MAP_WINDOW - 5,
            2 * MAP_WINDOW - v.len(),
            2 * MAP_WINDOW,
            len - v.len(),
        ] {
            data[at..at + v.len()].copy_from_slice(v);
            want.push(at as u64);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, &data).unwrap();
        let mut got = Vec::new();
        let n = m
            .find_in_file(&path, len as u64, &mut Vec::new(), |p, off| {
                if m.pattern_set().patterns()[p].as_slice() == v.as_slice() {
                    got.push(off);
                }
            })
            .unwrap();
        assert_eq!(n, len as u64);
        assert_eq!(got, want);
    }

    #[test]
    fn chunk_boundaries_find_each_match_once() {
        for n in [1, 20] {
            let (m, values) = matcher(n);
            let v = &values[0];
            // Place the value across every position around the first chunk boundary.
            for shift in 0..v.len() + 2 {
                let pos = CHUNK_LEN - v.len() + shift;
                let mut data = vec![b'.'; CHUNK_LEN * 3];
                data[pos..pos + v.len()].copy_from_slice(v);
                let tail = 2 * CHUNK_LEN + 5;
                data[tail..tail + v.len()].copy_from_slice(v);
                let mut buf = Vec::new();
                let mut raw_hits = Vec::new();
                let read = m
                    .find_in_reader(&mut data.as_slice(), &mut buf, |p, off| {
                        if m.pattern_set().patterns()[p].as_slice() == v.as_slice() {
                            raw_hits.push(off);
                        }
                    })
                    .unwrap();
                assert_eq!(read, data.len() as u64);
                assert_eq!(
                    raw_hits,
                    vec![pos as u64, tail as u64],
                    "n={n} shift={shift}"
                );
            }
        }
    }
}
