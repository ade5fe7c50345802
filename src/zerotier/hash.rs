//! The memory-hard hash, its criterion and the address it gives: the
//! `varsmith-zerotier-hash` crate (`crates/zerotier-hash`), checked here against ZeroTier's
//! own vectors.

pub(crate) use varsmith_zerotier_hash::{
    FIRST_BYTE_LESS_THAN, WorkBuffer, address_of, meets_criterion, memory_hard_hash,
};

#[cfg(test)]
mod tests {
    use salsa20::Salsa20;
    use salsa20::cipher::{KeyIvInit, StreamCipher};
    use sha2::{Digest, Sha512};

    use super::*;

    #[test]
    fn address_is_the_last_five_bytes_and_the_criterion_the_first() {
        let mut d = [0u8; 64];
        d[59..].copy_from_slice(&[0x8e, 0x4d, 0xf2, 0x8b, 0x72]);
        assert_eq!(address_of(&d), 0x8e4df28b72);
        assert!(meets_criterion(&d));
        d[0] = FIRST_BYTE_LESS_THAN;
        assert!(!meets_criterion(&d));
    }

    /// Salsa20/20 test vector 0 of ZeroTierOne's `selftest.cpp` (`s20TV0Key`, `s20TV0Iv`,
    /// `s20TV0Ks`): the cipher the hash is built on.
    #[test]
    fn salsa20_matches_zerotier_selftest_vector() {
        let key = hex::decode("0f62b5085bae0154a7fa4da0f34699ec3f92e5388bde3184d72a7dd02376c91c")
            .unwrap();
        let iv = hex::decode("288ff65dc42b92f9").unwrap();
        let mut ks = [0u8; 64];
        Salsa20::new(key[..].into(), iv[..].into()).apply_keystream(&mut ks);
        assert_eq!(
            hex::encode(ks),
            "5e5e71f90199340304abb22a37b6625bf883fb89ce3b21f54a10b81066ef87da\
             30b77699aa7379da595c77dd59542da208e5954f89e40eb7aa80a84a6176663f"
        );
    }

    /// SHA-512 test vector of `selftest.cpp` (`sha512TV0Input`, `sha512TV0Digest`).
    #[test]
    fn sha512_matches_zerotier_selftest_vector() {
        let d = Sha512::digest(b"supercalifragilisticexpealidocious");
        assert_eq!(
            hex::encode(d),
            "182a855969e5d3e6cbf60524adf288d1bbf25292812431f6d252f1dbc1cb44df\
             21573de1b06b6875959f3b6f87b11381d0bc792c433a13553ce084c29255311c"
        );
    }
}
