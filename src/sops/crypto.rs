//! AES-256-GCM `ENC[...]` values and the age wrapping of the data key.

use aes_gcm::AesGcm;
use aes_gcm::aead::consts::{U12, U32};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::keys::Identities;

/// Go's `base64.StdEncoding` as sops decodes with it: padded, but non-zero trailing bits
/// in the last character are accepted (Rust's default engine refuses them).
const B64_LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A 32-byte data key, zeroized on drop.
pub(crate) type DataKey = Zeroizing<[u8; 32]>;

/// A fresh random data key.
pub(crate) fn new_data_key() -> DataKey {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut k[..]);
    k
}

/// Why an `ENC[...]` value could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// Not in sops' `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` format (or bad base64).
    Malformed(&'static str),
    /// GCM authentication failed (wrong key, edited value, or value moved to another key).
    Auth,
}

/// The parts of an `ENC[...]` string.
pub(crate) struct EncParts {
    /// Ciphertext.
    pub data: Vec<u8>,
    /// IV (32 bytes from sops, 12 accepted).
    pub iv: Vec<u8>,
    /// 16-byte GCM tag.
    pub tag: Vec<u8>,
    /// The `type:` token.
    pub typ: String,
}

/// True when `s` looks like a sops encrypted value.
pub(crate) fn is_enc(s: &[u8]) -> bool {
    s.starts_with(b"ENC[AES256_GCM,")
}

/// Parses `ENC[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)]` like sops' regex.
pub(crate) fn parse_enc(s: &[u8]) -> Result<EncParts, OpenError> {
    let s = std::str::from_utf8(s).map_err(|_| OpenError::Malformed("not UTF-8"))?;
    let rest = s
        .strip_prefix("ENC[AES256_GCM,data:")
        .ok_or(OpenError::Malformed("does not match sops' data format"))?;
    let end = rest
        .rfind(']')
        .ok_or(OpenError::Malformed("does not match sops' data format"))?;
    let body = &rest[..end];
    let (data, rest) = body
        .split_once(",iv:")
        .ok_or(OpenError::Malformed("missing iv"))?;
    let (iv, rest) = rest
        .split_once(",tag:")
        .ok_or(OpenError::Malformed("missing tag"))?;
    let (tag, typ) = rest
        .split_once(",type:")
        .ok_or(OpenError::Malformed("missing type"))?;
    if data.is_empty() || iv.is_empty() || tag.is_empty() || typ.is_empty() {
        return Err(OpenError::Malformed("empty field"));
    }
    let dec = |x: &str| {
        B64_LENIENT
            .decode(x)
            .map_err(|_| OpenError::Malformed("bad base64"))
    };
    let parts = EncParts {
        data: dec(data)?,
        iv: dec(iv)?,
        tag: dec(tag)?,
        typ: typ.to_string(),
    };
    if parts.tag.len() != 16 {
        return Err(OpenError::Malformed("tag is not 16 bytes"));
    }
    if parts.iv.len() != 32 && parts.iv.len() != 12 {
        return Err(OpenError::Malformed("unsupported IV length"));
    }
    Ok(parts)
}

/// Decrypts an `ENC[...]` string; returns the plaintext and its type tag.
pub(crate) fn open(
    key: &[u8; 32],
    s: &[u8],
    aad: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, String), OpenError> {
    open_parts(key, &parse_enc(s)?, aad)
}

/// Decrypts parsed `ENC[...]` parts; returns the plaintext and its type tag.
pub(crate) fn open_parts(
    key: &[u8; 32],
    p: &EncParts,
    aad: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, String), OpenError> {
    let mut msg = Vec::with_capacity(p.data.len() + 16);
    msg.extend_from_slice(&p.data);
    msg.extend_from_slice(&p.tag);
    let payload = Payload { msg: &msg, aad };
    let pt = if p.iv.len() == 32 {
        let c = AesGcm::<Aes256, U32>::new(key.into());
        c.decrypt(p.iv.as_slice().into(), payload)
    } else {
        let c = AesGcm::<Aes256, U12>::new(key.into());
        c.decrypt(p.iv.as_slice().into(), payload)
    };
    let pt = Zeroizing::new(pt.map_err(|_| OpenError::Auth)?);
    Ok((pt, p.typ.clone()))
}

/// The IVs of the values decrypted from a file, keyed by (type, AAD, plaintext), like the
/// "stash" of sops' cipher: re-encrypting an unchanged value at the same place reuses its IV,
/// so with the same data key `edit` and `set` leave unchanged ciphertexts byte-identical.
/// Only a SHA-256 of each key is kept (no plaintext), and only 32-byte IVs.
#[derive(Default)]
pub(crate) struct IvStash(std::collections::HashMap<[u8; 32], [u8; 32]>);

impl IvStash {
    fn key(pt: &[u8], aad: &[u8], typ: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update((typ.len() as u64).to_le_bytes());
        h.update(typ.as_bytes());
        h.update((aad.len() as u64).to_le_bytes());
        h.update(aad);
        h.update(pt);
        h.finalize().into()
    }

    /// Remembers the IV `iv` of the value `pt` of type `typ` decrypted at `aad`.
    pub(crate) fn record(&mut self, pt: &[u8], aad: &[u8], typ: &str, iv: &[u8]) {
        if let Ok(iv) = <[u8; 32]>::try_from(iv) {
            self.0.insert(Self::key(pt, aad, typ), iv);
        }
    }

    fn get(&self, pt: &[u8], aad: &[u8], typ: &str) -> Option<[u8; 32]> {
        if self.0.is_empty() {
            return None;
        }
        self.0.get(&Self::key(pt, aad, typ)).copied()
    }
}

/// A reusable AES-256-GCM sealer for one data key (32-byte random IVs, or the stashed IV
/// of an unchanged value).
pub(crate) struct Sealer {
    cipher: AesGcm<Aes256, U32>,
    stash: IvStash,
}

impl Sealer {
    /// A sealer for `key`.
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Self::with_stash(key, IvStash::default())
    }

    /// A sealer for `key` that reuses the IVs in `stash` for unchanged values.
    pub(crate) fn with_stash(key: &[u8; 32], stash: IvStash) -> Self {
        Sealer {
            cipher: AesGcm::<Aes256, U32>::new(key.into()),
            stash,
        }
    }

    /// Encrypts `pt` with `aad` into `ENC[AES256_GCM,…,type:<typ>]`.
    pub(crate) fn seal(&self, pt: &[u8], aad: &[u8], typ: &str) -> String {
        let iv = self.stash.get(pt, aad, typ).unwrap_or_else(|| {
            let mut iv = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut iv);
            iv
        });
        // Encryption with a valid key and nonce size cannot fail.
        let mut ct = self
            .cipher
            .encrypt((&iv).into(), Payload { msg: pt, aad })
            .unwrap_or_default();
        let tag = ct.split_off(ct.len().saturating_sub(16));
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
            B64.encode(&ct),
            B64.encode(iv),
            B64.encode(&tag),
            typ
        )
    }
}

/// Wraps the data key for one recipient: an ASCII-armored age file, as sops writes `enc`.
pub(crate) fn wrap_key(key: &[u8; 32], recipient: &str) -> Result<String, crate::keys::Error> {
    use std::io::Write;
    let r = crate::keys::parse_recipient(recipient)?;
    let err = |e: String| crate::keys::Error::BadRecipient {
        recipient: recipient.to_string(),
        reason: e,
    };
    let enc = age::Encryptor::with_recipients(std::iter::once(r.as_ref() as &dyn age::Recipient))
        .map_err(|e| err(e.to_string()))?;
    let armor = age::armor::ArmoredWriter::wrap_output(Vec::new(), age::armor::Format::AsciiArmor)
        .map_err(|e| err(e.to_string()))?;
    let mut w = enc.wrap_output(armor).map_err(|e| err(e.to_string()))?;
    w.write_all(&key[..]).map_err(|e| err(e.to_string()))?;
    let out = w
        .finish()
        .and_then(|a| a.finish())
        .map_err(|e| err(e.to_string()))?;
    let mut s = String::from_utf8(out).map_err(|e| err(e.to_string()))?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

/// Unwraps a data key from one `enc` blob with any of `ids`.
pub(crate) fn unwrap_key(ids: &Identities, enc: &str) -> Option<DataKey> {
    let v = ids.unwrap_armored(enc.as_bytes())?;
    if v.len() != 32 {
        return None;
    }
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&v);
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kat_from_spec() {
        let key: [u8; 32] =
            hex::decode("65b837a1625b5e5f15092030cfe172bcd5d3275417925aebae479f9db4eebc23")
                .unwrap()
                .try_into()
                .unwrap();
        let s = b"ENC[AES256_GCM,data:QGzUl4k=,iv:nkf4skKUHlCThtHnfHWQe5gTEONhQFQLGiT+ZQ74bSE=,tag:tgj5rOXXvJQ0i8Vo13WNVg==,type:str]";
        let (pt, t) = open(&key, s, b"db:user:").unwrap();
        assert_eq!(&pt[..], b"admin");
        assert_eq!(t, "str");
        assert_eq!(open(&key, s, b"db:other:").unwrap_err(), OpenError::Auth);
        let sealed = Sealer::new(&key).seal(b"x\xff", b"a:", "str");
        assert_eq!(
            &open(&key, sealed.as_bytes(), b"a:").unwrap().0[..],
            b"x\xff"
        );
    }
}

#[cfg(test)]
mod iv12 {
    use super::*;

    #[test]
    fn accepts_12_byte_ivs_on_decrypt() {
        let key = [7u8; 32];
        let iv = [9u8; 12];
        let c = AesGcm::<Aes256, U12>::new((&key).into());
        let mut ct = c
            .encrypt(
                (&iv).into(),
                Payload {
                    msg: b"hello",
                    aad: b"k:",
                },
            )
            .unwrap();
        let tag = ct.split_off(ct.len() - 16);
        let s = format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
            B64.encode(&ct),
            B64.encode(iv),
            B64.encode(&tag)
        );
        assert_eq!(&open(&key, s.as_bytes(), b"k:").unwrap().0[..], b"hello");
    }
}
