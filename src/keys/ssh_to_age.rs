//! The ssh-to-age conversion (Mic92/ssh-to-age): an OpenSSH ed25519 key pair becomes an age
//! X25519 identity and recipient, so a host decrypts with its SSH host key, as sops-nix does.

use bech32::{Bech32, Hrp};
use curve25519_dalek::edwards::CompressedEdwardsY;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::Error;

/// Converts an OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`) to `age1…`.
pub fn public_to_age(line: &str) -> Result<String, Error> {
    let key = ssh_key::PublicKey::from_openssh(line.trim())
        .map_err(|e| Error::Ssh(format!("not an OpenSSH public key: {e}")))?;
    let ed = key
        .key_data()
        .ed25519()
        .ok_or_else(|| Error::Ssh("only ed25519 keys are supported".into()))?;
    ed25519_public_to_age(&ed.0)
}

/// Converts a raw 32-byte ed25519 public key to `age1…`.
pub(crate) fn ed25519_public_to_age(pk: &[u8; 32]) -> Result<String, Error> {
    let point = CompressedEdwardsY(*pk)
        .decompress()
        .ok_or_else(|| Error::Ssh("invalid ed25519 public key point".into()))?;
    let u = point.to_montgomery().to_bytes();
    let hrp = Hrp::parse("age").map_err(|e| Error::Ssh(e.to_string()))?;
    bech32::encode::<Bech32>(hrp, &u).map_err(|e| Error::Ssh(e.to_string()))
}

/// Converts an unencrypted OpenSSH ed25519 private key (PEM text) to `AGE-SECRET-KEY-1…`.
pub fn private_to_age(pem: &str) -> Result<Zeroizing<String>, Error> {
    let key = ssh_key::PrivateKey::from_openssh(pem.trim())
        .map_err(|e| Error::Ssh(format!("not an OpenSSH private key: {e}")))?;
    if key.is_encrypted() {
        return Err(Error::Ssh(
            "passphrase-protected ssh keys are not supported".into(),
        ));
    }
    let pair = key
        .key_data()
        .ed25519()
        .ok_or_else(|| Error::Ssh("only ed25519 keys are supported".into()))?;
    seed_to_age(pair.private.as_ref())
}

/// Converts a 32-byte ed25519 seed to `AGE-SECRET-KEY-1…` (SHA-512 of the seed, first half,
/// unclamped, bech32 upper-case).
pub(crate) fn seed_to_age(seed: &[u8; 32]) -> Result<Zeroizing<String>, Error> {
    let digest = Zeroizing::new(Sha512::digest(seed));
    let scalar = Zeroizing::new(<[u8; 32]>::try_from(&digest[..32]).expect("64-byte digest"));
    let hrp = Hrp::parse("age-secret-key-").map_err(|e| Error::Ssh(e.to_string()))?;
    let s = Zeroizing::new(
        bech32::encode::<Bech32>(hrp, scalar.as_ref()).map_err(|e| Error::Ssh(e.to_string()))?,
    );
    Ok(Zeroizing::new(s.to_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIC92_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji";

    #[test]
    fn mic92_vector() {
        assert_eq!(
            public_to_age(MIC92_PUB).unwrap(),
            "age17044m9wgakla6pzftf4srtl3h5mcsr85jysgt5fg23zpnta8sfdqhzn452"
        );
    }

    #[test]
    fn fixture_vector() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ssh-to-age");
        let pem = std::fs::read_to_string(format!("{dir}/id_ed25519")).unwrap();
        let publine = std::fs::read_to_string(format!("{dir}/id_ed25519.pub")).unwrap();
        let want_sk = std::fs::read_to_string(format!("{dir}/expected.agekey")).unwrap();
        let want_pk = std::fs::read_to_string(format!("{dir}/expected.recipient")).unwrap();
        assert_eq!(private_to_age(&pem).unwrap().as_str(), want_sk.trim());
        assert_eq!(public_to_age(&publine).unwrap(), want_pk.trim());
    }

    #[test]
    fn rejects_non_ed25519() {
        assert!(public_to_age("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC").is_err());
        assert!(private_to_age("garbage").is_err());
    }
}
