//! The sampling searcher for many patterns: look at one position in `step`, and verify the
//! few candidates a gram there stands for with a direct comparison. No automaton is built,
//! so memory and start-up stay small for thousands of patterns.
//!
//! Every pattern is at least `m` bytes long ([`super::MIN_SECRET_LEN`] guarantees `m >= 8`).
//! Take `q`-byte grams (`q` = 8 when `m >= 12`, else 4) and `step = min(m - q + 1, 16)`. An
//! occurrence `[p, p + len)` contains exactly one sample position `i` (a multiple of `step`)
//! with `p <= i < p + step`, and the gram at `i` is the pattern's gram at offset `o = i - p`,
//! fully inside the pattern. So an index of every pattern's grams at offsets `0..step` finds
//! every occurrence exactly once: at each sample position, look the gram up and compare each
//! `(pattern, o)` it is indexed under at `i - o`.
//!
//! Two levels keep the common case cheap: a bitset of hashed grams (64 bits per indexed
//! gram, so about 1.5 % of random grams pass; one load, one multiply and one bit test per
//! `step` bytes), then a sorted table of the exact grams (binary search) for the few that
//! pass. Both hold bytes of the patterns and are zeroized on drop.

use zeroize::{Zeroize, Zeroizing};

/// Largest sampling step.
const MAX_STEP: usize = 16;
/// Multiplicative hash constant (2^64 / golden ratio).
const HASH_K: u64 = 0x9E37_79B9_7F4A_7C15;

/// One indexed gram: pattern `pattern`'s bytes at `offset`.
#[derive(Clone, Copy, Default, Zeroize)]
struct Entry {
    gram: u64,
    pattern: u32,
    offset: u8,
}

/// The sampling searcher.
pub(crate) struct Sampler {
    q: usize,
    step: usize,
    mask: u64,
    shift: u32,
    bits: Zeroizing<Vec<u64>>,
    table: Zeroizing<Vec<Entry>>,
}

impl Sampler {
    /// Builds the searcher for `patterns` (`(id, bytes)`), or `None` when there is none, one
    /// is too short for it, or an id does not fit in `u32`.
    pub(crate) fn new<'a>(
        patterns: impl Iterator<Item = (usize, &'a [u8])> + Clone,
    ) -> Option<Sampler> {
        let m = patterns.clone().map(|(_, p)| p.len()).min()?;
        let q = if m >= 12 { 8 } else { 4 };
        if m < q {
            return None;
        }
        let step = (m - q + 1).min(MAX_STEP);
        let grams = patterns.clone().count() * step;
        let log2 = (grams * 64)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(12, 26);
        let mask = if q == 8 {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let mut s = Sampler {
            q,
            step,
            mask,
            shift: 64 - log2,
            bits: Zeroizing::new(vec![0u64; (1usize << log2) / 64]),
            table: Zeroizing::new(Vec::with_capacity(grams)),
        };
        for (id, p) in patterns {
            let pattern = u32::try_from(id).ok()?;
            for o in 0..step {
                let gram = load(p, o) & mask;
                let h = s.hash(gram);
                s.bits[h >> 6] |= 1 << (h & 63);
                let offset = u8::try_from(o).ok()?;
                s.table.push(Entry {
                    gram,
                    pattern,
                    offset,
                });
            }
        }
        s.table.sort_unstable_by_key(|e| e.gram);
        Some(s)
    }

    fn hash(&self, gram: u64) -> usize {
        (gram.wrapping_mul(HASH_K) >> self.shift) as usize
    }

    /// Calls `emit(id, start, end)` for every occurrence in `hay` of a pattern (looked up by
    /// id in `pattern`) starting at or before `last_start`.
    pub(crate) fn find<'p>(
        &self,
        hay: &[u8],
        last_start: usize,
        pattern: impl Fn(usize) -> &'p [u8],
        emit: &mut dyn FnMut(usize, usize, usize),
    ) {
        let n = hay.len();
        if n < self.q {
            return;
        }
        let last = (n - self.q).min(last_start + self.step - 1);
        let fast_end = n.saturating_sub(8);
        let mut i = 0;
        while i <= last {
            let gram = if i <= fast_end {
                // Unaligned 8-byte load; i + 8 <= n.
                let mut b = [0u8; 8];
                b.copy_from_slice(&hay[i..i + 8]);
                u64::from_le_bytes(b)
            } else {
                load(hay, i)
            } & self.mask;
            let h = self.hash(gram);
            if self.bits[h >> 6] & (1 << (h & 63)) != 0 {
                self.verify(hay, i, gram, last_start, &pattern, emit);
            }
            i += self.step;
        }
    }

    /// Compares every pattern indexed under `gram` at the start it implies for position `i`.
    fn verify<'p>(
        &self,
        hay: &[u8],
        i: usize,
        gram: u64,
        last_start: usize,
        pattern: &impl Fn(usize) -> &'p [u8],
        emit: &mut dyn FnMut(usize, usize, usize),
    ) {
        let from = self.table.partition_point(|e| e.gram < gram);
        for e in self.table[from..].iter().take_while(|e| e.gram == gram) {
            let Some(start) = i.checked_sub(usize::from(e.offset)) else {
                continue;
            };
            let id = e.pattern as usize;
            let p = pattern(id);
            if start <= last_start && hay.get(start..start + p.len()) == Some(p) {
                emit(id, start, start + p.len());
            }
        }
    }
}

/// Little-endian load of up to 8 bytes at `at`, zero-padded past the end.
fn load(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    let end = (at + 8).min(data.len());
    if at < end {
        b[..end - at].copy_from_slice(&data[at..end]);
    }
    u64::from_le_bytes(b)
}
