//! The memory-hard hash of ZeroTier type-0 identities (ZeroTierOne `node/Identity.cpp`,
//! `_computeMemoryHardHash`), its proof-of-work criterion and the address it yields.
//!
//! 1. `digest = SHA-512(public key)` (the 64-byte combined public key).
//! 2. Salsa20/20 keyed with `digest[0..32]`, nonce `digest[32..40]`, counter from 0. A 2 MiB
//!    buffer, zeroed, is filled 64 bytes at a time, each block being the previous one encrypted
//!    with the next keystream block (block 0: the first keystream block itself).
//! 3. Then for each pair of 8-byte words `(a, b)` of the buffer, in order: `i1 = be64(a) % 8`,
//!    `i2 = be64(b) % 262144`; the buffer's word `i2` and the digest's word `i1` are swapped, and
//!    the digest is encrypted in place with the next 64 bytes of the same keystream.
//!
//! The words are read as big-endian numbers (`Utils::ntoh`) only to pick indices; the swap moves
//! bytes, so the result is the same on every platform. The buffer is derived from the public
//! key alone: nothing here is secret.
//!
//! It is a crate of its own (used by varsmith's `zerotier` module, which holds its test
//! vectors) only so that debug builds, which optimise dependencies, hash in milliseconds.

use salsa20::Salsa20;
use salsa20::cipher::{KeyIvInit, StreamCipher};
use sha2::{Digest, Sha512};

/// Size of the work buffer (`ZT_IDENTITY_GEN_MEMORY`): 2 MiB.
pub const GEN_MEMORY: usize = 2_097_152;

/// An identity is valid only if the first byte of its hash is below this
/// (`ZT_IDENTITY_GEN_HASHCASH_FIRST_BYTE_LESS_THAN`): on average 1 key in 15 passes.
pub const FIRST_BYTE_LESS_THAN: u8 = 17;

/// A reusable 2 MiB work buffer (allocating it is a noticeable part of one hash).
pub struct WorkBuffer(Box<[u8]>);

impl Default for WorkBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkBuffer {
    /// A zeroed buffer of [`GEN_MEMORY`] bytes.
    pub fn new() -> Self {
        WorkBuffer(vec![0u8; GEN_MEMORY].into_boxed_slice())
    }
}

/// The memory-hard hash of a 64-byte combined public key.
pub fn memory_hard_hash(public: &[u8; 64], work: &mut WorkBuffer) -> [u8; 64] {
    let mut digest: [u8; 64] = Sha512::digest(public).into();
    let mut s20 = Salsa20::new(digest[0..32].into(), digest[32..40].into());
    let genmem = &mut work.0[..];
    genmem.fill(0);
    s20.apply_keystream(&mut genmem[0..64]);
    for i in (64..GEN_MEMORY).step_by(64) {
        genmem.copy_within(i - 64..i, i);
        s20.apply_keystream(&mut genmem[i..i + 64]);
    }
    const WORDS: u64 = (GEN_MEMORY / 8) as u64;
    for pair in 0..GEN_MEMORY / 16 {
        let at = pair * 16;
        let idx1 = (be64(&genmem[at..at + 8]) % 8) as usize * 8;
        let idx2 = (be64(&genmem[at + 8..at + 16]) % WORDS) as usize * 8;
        let mut tmp = [0u8; 8];
        tmp.copy_from_slice(&genmem[idx2..idx2 + 8]);
        genmem[idx2..idx2 + 8].copy_from_slice(&digest[idx1..idx1 + 8]);
        digest[idx1..idx1 + 8].copy_from_slice(&tmp);
        s20.apply_keystream(&mut digest);
    }
    digest
}

fn be64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_be_bytes(w)
}

/// Does this hash satisfy the proof of work?
pub fn meets_criterion(digest: &[u8; 64]) -> bool {
    digest[0] < FIRST_BYTE_LESS_THAN
}

/// The address a hash gives: its last 5 bytes (`ZT_ADDRESS_LENGTH`), big-endian.
pub fn address_of(digest: &[u8; 64]) -> u64 {
    digest[59..64]
        .iter()
        .fold(0u64, |a, &b| (a << 8) | u64::from(b))
}
