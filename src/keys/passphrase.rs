//! Passphrase-protected age identity files (`age -p` of an identity file, binary or armored):
//! the passphrase is asked on the terminal with echo off, the file is decrypted in memory
//! (zeroized buffers) and its content parsed as an identity file. With no terminal this is an
//! error naming the file, never a wait on stdin.

use std::io::Read;

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use super::Error;
use crate::tty;

/// True when `bytes` is an age-encrypted file (binary or ASCII-armored).
pub(crate) fn is_encrypted(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    bytes.starts_with(b"age-encryption.org/v1\n")
        || start.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// Decrypts a passphrase-protected identity file, asking its passphrase on the terminal.
/// An age file that is encrypted to a key rather than a passphrase is an error, as with age.
pub(crate) fn decrypt(bytes: &[u8], origin: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bad = |reason: String| Error::BadIdentity {
        origin: origin.to_string(),
        reason,
    };
    let reader = age::armor::ArmoredReader::new(bytes);
    let dec = age::Decryptor::new(reader).map_err(|e| bad(format!("not an age file: {e}")))?;
    if !dec.is_scrypt() {
        return Err(bad(
            "an age file encrypted to a key, not to a passphrase, is not an identity".into(),
        ));
    }
    let question = format!("Enter passphrase for identity file {origin}");
    let pass = match tty::ask_hidden_once(&question) {
        None => {
            return Err(bad(
                "passphrase-protected identity, and no terminal to ask the passphrase on".into(),
            ));
        }
        Some(Err(e)) => return Err(bad(format!("reading the passphrase: {e}"))),
        Some(Ok(p)) => p,
    };
    let text = String::from_utf8(pass.to_vec())
        .map_err(|_| bad("the passphrase is not UTF-8 text".into()))?;
    let id = age::scrypt::Identity::new(SecretString::from(text));
    let mut r = dec
        .decrypt(std::iter::once(&id as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => {
                bad("wrong passphrase".into())
            }
            e => bad(e.to_string()),
        })?;
    // The plaintext is shorter than the ciphertext: no reallocation leaves a copy behind.
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    r.read_to_end(&mut out)
        .map_err(|e| bad(format!("decrypting: {e}")))?;
    if is_encrypted(&out) {
        return Err(bad("an identity file encrypted twice".into()));
    }
    Ok(out)
}
