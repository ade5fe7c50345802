//! A sampling prefilter in front of the automaton: look at one position in `step`, verify
//! only around the few that may start a match.
//!
//! Every pattern is at least `m` bytes long ([`super::MIN_SECRET_LEN`] guarantees `m >= 8`).
//! Take `q`-byte grams (`q` = 8 when `m >= 12`, else 4) and `step = min(m - q + 1, 16)`. An
//! occurrence `[p, p + len)` contains exactly one sample position `i` (a multiple of `step`)
//! with `p <= i < p + step`, and the gram at `i` is the pattern's gram at offset `i - p`, fully
//! inside the pattern. So indexing every pattern's grams at offsets `0..step` in a bitset
//! (hashed, like a one-hash Bloom filter) and testing the gram at every `step`-th position
//! finds every occurrence; a set bit triggers the automaton on the window that can hold an
//! occurrence starting in `(i - step, i]`. The start ranges of consecutive samples are
//! disjoint, so nothing is reported twice.
//!
//! The bitset is sized at 64 bits per indexed gram (about 1.5 % of random grams pass), so the
//! automaton runs on a few percent of the bytes; the rest costs one load, one multiply and one
//! bit test per `step` bytes.

use zeroize::Zeroizing;

/// Largest sampling step.
const MAX_STEP: usize = 16;
/// Multiplicative hash constant (2^64 / golden ratio).
const HASH_K: u64 = 0x9E37_79B9_7F4A_7C15;

/// The sampling prefilter.
pub struct Sampler {
    q: usize,
    step: usize,
    mask: u64,
    shift: u32,
    bits: Zeroizing<Vec<u64>>,
}

impl Sampler {
    /// Builds the prefilter for `patterns`, or `None` when a pattern is too short for it.
    pub fn new<'a>(patterns: impl Iterator<Item = &'a [u8]> + Clone) -> Option<Sampler> {
        let m = patterns.clone().map(<[u8]>::len).min()?;
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
        };
        for p in patterns {
            for o in 0..step {
                let h = s.hash(load(p, o) & mask);
                s.bits[h >> 6] |= 1 << (h & 63);
            }
        }
        Some(s)
    }

    fn hash(&self, gram: u64) -> usize {
        (gram.wrapping_mul(HASH_K) >> self.shift) as usize
    }

    /// Calls `verify(window_start, window_end, first_start, last_start)` for each sample
    /// position that may be covered by an occurrence: the automaton must run on
    /// `hay[window_start..window_end]` and keep the matches starting in
    /// `first_start..=last_start`. `max_len` is the longest pattern length.
    pub fn candidates(
        &self,
        hay: &[u8],
        max_len: usize,
        mut verify: impl FnMut(usize, usize, usize, usize),
    ) {
        let n = hay.len();
        if n < self.q {
            return;
        }
        let last = n - self.q;
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
                let first = i.saturating_sub(self.step - 1);
                verify(first, (i + max_len).min(n), first, i);
            }
            i += self.step;
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
