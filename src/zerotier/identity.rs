//! Type-0 ZeroTier identities (ZeroTierOne `node/Identity.cpp`, `node/C25519.hpp`).
//!
//! * The public key is 64 bytes: the X25519 public key, then the Ed25519 one. The private key
//!   is 64 bytes: the X25519 secret, then the Ed25519 seed (its public key is the standard
//!   RFC 8032 derivation: SHA-512 of the seed, clamped, times the base point).
//! * Generation (`C25519::generateSatisfying`, `Identity::generate`): a random private key; the
//!   Ed25519 half stays fixed while the X25519 secret is stepped (its 64-bit words 1 and 2
//!   incremented and decremented) until the memory-hard hash of the public key meets the
//!   criterion; the address is the hash's last 5 bytes, and a reserved address starts over.
//! * Text: `address:0:public-hex`, with `:private-hex` appended for the secret form.
//! * [`Identity::validate`] is `locallyValidate` (address not reserved, criterion met, address
//!   equal to the hash's) plus, when the private key is present, that both private halves give
//!   the public halves.

use rand::RngCore;
use zeroize::Zeroizing;

use super::Error;
use super::address::Address;
use super::hash::{self, WorkBuffer};
use crate::secret::SecretBytes;

/// Length of the combined public key (`ZT_C25519_PUBLIC_KEY_LEN`).
pub(super) const PUBLIC_LEN: usize = 64;
/// Length of the combined private key (`ZT_C25519_PRIVATE_KEY_LEN`).
pub(super) const PRIVATE_LEN: usize = 64;

/// A type-0 identity: an address, the combined public key and maybe the private key.
///
/// The private key lives in a zeroizing buffer and is never shown by `Debug`.
#[derive(Clone)]
pub(crate) struct Identity {
    address: Address,
    public: [u8; PUBLIC_LEN],
    private: Option<Zeroizing<[u8; PRIVATE_LEN]>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("address", &self.address)
            .field("public", &hex::encode(self.public))
            .field("private", &self.private.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The public key of a combined private key: X25519 of the first half, Ed25519 of the second.
fn public_of(private: &[u8; PRIVATE_LEN]) -> [u8; PUBLIC_LEN] {
    let mut public = [0u8; PUBLIC_LEN];
    public[..32].copy_from_slice(&x25519_public(private));
    public[32..].copy_from_slice(&ed25519_public(private));
    public
}

fn x25519_public(private: &[u8; PRIVATE_LEN]) -> [u8; 32] {
    let mut half = Zeroizing::new([0u8; 32]);
    half.copy_from_slice(&private[..32]);
    let secret = x25519_dalek::StaticSecret::from(*half);
    x25519_dalek::PublicKey::from(&secret).to_bytes()
}

fn ed25519_public(private: &[u8; PRIVATE_LEN]) -> [u8; 32] {
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&private[32..]);
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes()
}

/// Steps the X25519 secret as `generateSatisfying` does: 64-bit word 1 incremented, word 2
/// decremented (little-endian words, so the sequence is the same on every platform).
fn step(private: &mut [u8; PRIVATE_LEN]) {
    let word = |p: &[u8; PRIVATE_LEN], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&p[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    let w1 = word(private, 1).wrapping_add(1);
    let w2 = word(private, 2).wrapping_sub(1);
    private[8..16].copy_from_slice(&w1.to_le_bytes());
    private[16..24].copy_from_slice(&w2.to_le_bytes());
}

impl Identity {
    /// Generates a new identity from the operating system's random source. Takes one
    /// memory-hard hash per candidate key (about 15 on average).
    pub(crate) fn generate() -> Identity {
        let mut work = WorkBuffer::new();
        let mut private = Zeroizing::new([0u8; PRIVATE_LEN]);
        loop {
            rand::rngs::OsRng.fill_bytes(&mut private[..]);
            let ed = ed25519_public(&private);
            loop {
                step(&mut private);
                let mut public = [0u8; PUBLIC_LEN];
                public[..32].copy_from_slice(&x25519_public(&private));
                public[32..].copy_from_slice(&ed);
                let digest = hash::memory_hard_hash(&public, &mut work);
                if !hash::meets_criterion(&digest) {
                    continue;
                }
                let address = Address::new(hash::address_of(&digest)).expect("40 bits");
                if address.is_reserved() {
                    break;
                }
                return Identity {
                    address,
                    public,
                    private: Some(private),
                };
            }
        }
    }

    /// Parses `address:0:public` or `address:0:public:private` (hex of either case; trailing
    /// whitespace, e.g. a final newline, is ignored). Only the format is checked here; see
    /// [`Identity::validate`]. Errors never show the private key.
    pub(crate) fn parse(text: &str) -> Result<Identity, Error> {
        let fields: Vec<&str> = text.trim_end().split(':').collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(Error::Parse(format!(
                "a ZeroTier identity is address:0:public[:private], not {} field(s) separated by ':'",
                fields.len()
            )));
        }
        let address = Address::parse(fields[0])?;
        match fields[1] {
            "0" => {}
            "1" => {
                return Err(Error::Parse(
                    "type 1 (P-384) identities are not supported, only type 0".into(),
                ));
            }
            _ => return Err(Error::Parse("the identity type (field 2) must be 0".into())),
        }
        let public = decode::<PUBLIC_LEN>(fields[2], "the public key")?;
        let private = match fields.get(3) {
            Some(f) => Some(decode_private(f)?),
            None => None,
        };
        Ok(Identity {
            address,
            public,
            private,
        })
    }

    /// The node address.
    pub(crate) fn address(&self) -> Address {
        self.address
    }

    /// Whether the private key is present.
    pub(crate) fn has_private(&self) -> bool {
        self.private.is_some()
    }

    /// `address:0:public-hex`.
    pub(crate) fn public_text(&self) -> String {
        format!("{}:0:{}", self.address, hex::encode(self.public))
    }

    /// `address:0:public-hex:private-hex`, in a zeroizing buffer; `None` without a private key.
    pub(crate) fn secret_text(&self) -> Option<SecretBytes> {
        let private = self.private.as_ref()?;
        let public = self.public_text();
        let mut out = Zeroizing::new(vec![0u8; public.len() + 1 + PRIVATE_LEN * 2]);
        out[..public.len()].copy_from_slice(public.as_bytes());
        out[public.len()] = b':';
        hex::encode_to_slice(&private[..], &mut out[public.len() + 1..]).ok()?;
        Some(SecretBytes::from(out))
    }

    /// `locallyValidate`, plus the private halves against the public ones when present.
    /// Returns why the identity is invalid.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.address.is_reserved() {
            return Err(invalid(format!("address {} is reserved", self.address)));
        }
        let digest = hash::memory_hard_hash(&self.public, &mut WorkBuffer::new());
        if !hash::meets_criterion(&digest) {
            return Err(invalid(format!(
                "the public key fails the proof of work (hash byte 0 is {}, must be below {})",
                digest[0],
                hash::FIRST_BYTE_LESS_THAN
            )));
        }
        let derived = hash::address_of(&digest);
        if derived != self.address.value() {
            return Err(invalid(format!(
                "address {} does not belong to this public key (its hash gives {derived:010x})",
                self.address
            )));
        }
        if let Some(private) = &self.private {
            let public = public_of(private);
            if public[..32] != self.public[..32] {
                return Err(invalid(
                    "the private X25519 key does not match the public key".into(),
                ));
            }
            if public[32..] != self.public[32..] {
                return Err(invalid(
                    "the private Ed25519 key does not match the public key".into(),
                ));
            }
        }
        Ok(())
    }
}

fn invalid(reason: String) -> Error {
    Error::Invalid(reason)
}

/// The private key's 128 hex digits, decoded straight into a zeroizing buffer.
fn decode_private(s: &str) -> Result<Zeroizing<[u8; PRIVATE_LEN]>, Error> {
    let mut out = Zeroizing::new([0u8; PRIVATE_LEN]);
    if s.len() != PRIVATE_LEN * 2 || hex::decode_to_slice(s, &mut out[..]).is_err() {
        return Err(Error::Parse(format!(
            "the private key is {} hex digits",
            PRIVATE_LEN * 2
        )));
    }
    Ok(out)
}

/// Exactly `N` bytes of hex.
fn decode<const N: usize>(s: &str, what: &str) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    if s.len() != N * 2 {
        return Err(Error::Parse(format!(
            "{what} is {} hex digits, not {}",
            N * 2,
            s.len()
        )));
    }
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| Error::Parse(format!("{what} is not hexadecimal")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `KNOWN_GOOD_IDENTITY` and `KNOWN_BAD_IDENTITY` of ZeroTierOne's `selftest.cpp`
    /// (github.com/zerotier/ZeroTierOne, selftest.cpp): the bad one is the good one with its
    /// address's first digit changed.
    pub(crate) const KNOWN_GOOD: &str = "8e4df28b72:0:ac3d46abe0c21f3cfe7a6c8d6a85cfcffcb82fbd55af6a4d6350657c68200843fa2e16f9418bbd9702cae365f2af5fb4c420908b803a681d4daef6114d78a2d7:bd8dd6e4ce7022d2f812797a80c6ee8ad180dc4ebf301dec8b06d1be08832bddd63a2f1cfa7b2c504474c75bdc8898ba476ef92e8e2d0509f8441985171ff16e";
    pub(crate) const KNOWN_BAD: &str = "9e4df28b72:0:ac3d46abe0c21f3cfe7a6c8d6a85cfcffcb82fbd55af6a4d6350657c68200843fa2e16f9418bbd9702cae365f2af5fb4c420908b803a681d4daef6114d78a2d7:bd8dd6e4ce7022d2f812797a80c6ee8ad180dc4ebf301dec8b06d1be08832bddd63a2f1cfa7b2c504474c75bdc8898ba476ef92e8e2d0509f8441985171ff16e";

    #[test]
    fn known_good_identity_validates_and_round_trips() {
        let id = Identity::parse(KNOWN_GOOD).unwrap();
        id.validate()
            .expect("selftest's known-good identity is valid");
        assert_eq!(id.address().to_string(), "8e4df28b72");
        assert_eq!(id.secret_text().unwrap().as_bytes(), KNOWN_GOOD.as_bytes());
        assert_eq!(id.public_text(), KNOWN_GOOD[..141]);
        let public = Identity::parse(&id.public_text()).unwrap();
        public.validate().expect("the public half validates alone");
        assert!(!public.has_private() && public.secret_text().is_none());
    }

    #[test]
    fn known_bad_identity_fails_on_its_address() {
        let err = Identity::parse(KNOWN_BAD).unwrap().validate().unwrap_err();
        assert!(
            err.to_string().contains("its hash gives 8e4df28b72"),
            "{err}"
        );
    }

    /// The first of selftest.cpp's `C25519_TEST_VECTORS` (pub1, priv1): ZeroTier's derivation of
    /// the combined public key from the combined private key.
    #[test]
    fn key_derivation_matches_zerotier_c25519_vector() {
        let private: [u8; 64] = hex::decode(
            "e5f37bd40ec9dc775086dcf42ebcdb27f073d45873c44b718b3cc54fa87ca484\
             d9962373b40316bf1ea12dd8c48ae78210dac9e5459b01dc73a6c917a815316d",
        )
        .unwrap()
        .try_into()
        .unwrap();
        assert_eq!(
            hex::encode(public_of(&private)),
            "a1fc7ab46ddf7dcfe7ec75e5fadd11cbcc37f8845d1c924e098965fcd8e95a30\
             dae486a335b4190cbc7bcb3eb94cbd16e83d132bc9c339eaf142e76f69789ab7"
        );
    }

    #[test]
    fn a_wrong_private_key_is_caught() {
        let mut text = KNOWN_GOOD.to_string();
        let last = text.pop().unwrap();
        text.push(if last == '0' { '1' } else { '0' });
        let err = Identity::parse(&text).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("Ed25519"), "{err}");
        // A flipped X25519 digit.
        let mut b = KNOWN_GOOD.as_bytes().to_vec();
        b[142] = if b[142] == b'0' { b'1' } else { b'0' };
        let err = Identity::parse(std::str::from_utf8(&b).unwrap())
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("X25519"), "{err}");
    }

    #[test]
    fn malformed_text_is_a_parse_error_without_the_secret() {
        for bad in [
            "",
            "8e4df28b72:0",
            "8e4df28b72:1:00",
            "8e4df28b72:2:00",
            "8e4df28b7:0:ac3d",
            &KNOWN_GOOD.replace(":0:", ":0::"),
            &format!("{KNOWN_GOOD}:00"),
            &KNOWN_GOOD[..KNOWN_GOOD.len() - 2],
            &KNOWN_GOOD.replace("bd8dd6", "zz8dd6"),
        ] {
            let err = Identity::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Parse(_)), "{bad:?}: {err}");
            assert!(!err.to_string().contains("bd8dd6e4"), "{err}");
        }
        assert!(Identity::parse(&format!("{KNOWN_GOOD}\n")).is_ok());
        assert!(Identity::parse(&KNOWN_GOOD.to_uppercase()).is_ok());
    }

    #[test]
    fn generated_identities_validate() {
        for _ in 0..2 {
            let id = Identity::generate();
            id.validate().expect("a generated identity is valid");
            assert!(!id.address().is_reserved());
            let text = id.secret_text().unwrap();
            let back = Identity::parse(std::str::from_utf8(&text).unwrap()).unwrap();
            assert_eq!(back.public_text(), id.public_text());
        }
    }

    #[test]
    fn step_changes_only_the_x25519_half() {
        let mut p = [0u8; 64];
        step(&mut p);
        assert_eq!(p[8], 1);
        assert_eq!(&p[16..24], &[0xff; 8]);
        assert_eq!(&p[32..], &[0u8; 32]);
    }
}
