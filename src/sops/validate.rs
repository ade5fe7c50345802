//! Checking a sops file without decrypting it ([`structure`]): every encrypted value is a
//! well-formed `ENC[AES256_GCM,…]` (known type, base64 fields, a 32-byte IV, a 16-byte tag),
//! every value the crypt rule encrypts is one, and the metadata is complete (each `sops.age`
//! recipient parses and its `enc` is an armored age file with a header, `lastmodified` is
//! RFC 3339, `mac` is itself an `ENC` value, `version` is set). With identities, [`verify`]
//! also unwraps the data key and checks every value and the MAC, as `sops decrypt` does.
//!
//! Problems are returned as text naming the key path, never a value.

use super::crypto::{self, OpenError};
use super::error::Error;
use super::metadata::Metadata;
use super::rules::CryptRule;
use super::store;
use super::tree::{Key, Map, Value};
use super::{Format, api, gofmt};
use crate::keys::Identities;

/// The `type:` tokens sops writes.
const TYPES: [&str; 7] = ["str", "int", "float", "bool", "bytes", "comment", "time"];

/// IV length sops writes (a non-96-bit GCM nonce).
const IV_LEN: usize = 32;

/// Every structural problem of `file` (empty when it is a well-formed sops file). `origin`
/// names the file in the messages.
pub(crate) fn structure(file: &[u8], format: Format, origin: &str) -> Vec<String> {
    let p = match store::parse(file, format, origin) {
        Ok(p) => p,
        Err(e) => return vec![e.to_string()],
    };
    let Some(raw) = p.metadata.as_ref() else {
        return vec![format!("{origin}: no sops metadata (not a sops file)")];
    };
    let md = match Metadata::from_value(raw, origin) {
        Ok(md) => md,
        Err(e) => return vec![e.to_string()],
    };
    let mut out = metadata_problems(&md, origin);
    let mut w = Walk {
        rule: &md.rule,
        origin,
        path: Vec::new(),
        comments: Vec::new(),
        out: &mut out,
    };
    for b in &p.tree.branches {
        w.map(b);
    }
    out
}

/// What [`verify`] found.
#[derive(Debug)]
pub(crate) enum Verified {
    /// The data key unwrapped, every value opened and the MAC matched.
    Ok,
    /// None of the identities unwraps the data key: nothing could be verified.
    NoIdentity,
}

/// Decrypts `file` in memory (plaintext is dropped zeroized) and checks every value and the
/// MAC. A decryption or MAC failure is an `Err` naming the file.
pub(crate) fn verify(
    file: &[u8],
    format: Format,
    ids: &Identities,
    origin: &str,
) -> Result<Verified, Error> {
    match api::decrypt(file, format, ids, origin) {
        Ok(_) => Ok(Verified::Ok),
        Err(Error::NoIdentity { .. }) => Ok(Verified::NoIdentity),
        Err(e) => Err(e),
    }
}

fn metadata_problems(md: &Metadata, origin: &str) -> Vec<String> {
    let mut out = Vec::new();
    if md.age.is_empty() {
        out.push(format!("{origin}: sops.age lists no recipient"));
    }
    for (i, a) in md.age.iter().enumerate() {
        let r = a.recipient.trim();
        if let Some(why) = recipient_problem(r) {
            out.push(format!("{origin}: sops.age[{i}].recipient: {why}"));
        }
        let reader = age::armor::ArmoredReader::new(a.enc.as_bytes());
        if let Err(e) = age::Decryptor::new(reader) {
            out.push(format!(
                "{origin}: sops.age[{i}].enc (for {r}) is not an armored age file: {e}"
            ));
        }
    }
    if gofmt::rfc3339_seconds(&md.lastmodified).is_none() {
        out.push(format!(
            "{origin}: sops.lastmodified is not an RFC 3339 time"
        ));
    }
    if md.mac.is_empty() {
        out.push(format!("{origin}: sops.mac is missing or empty"));
    } else if let Some(why) = enc_problem(md.mac.as_bytes(), Some("str")) {
        out.push(format!("{origin}: sops.mac is malformed ({why})"));
    }
    if md.version.trim().is_empty() {
        out.push(format!("{origin}: sops.version is missing"));
    }
    out
}

/// The bech32 data alphabet.
const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// What is wrong with one recipient string, if anything. A plugin recipient
/// (`age1<plugin>1<data>`) is checked for its syntax only: checking a file must not need the
/// plugin installed.
fn recipient_problem(r: &str) -> Option<String> {
    if let Some(rest) = r.strip_prefix("age1")
        && let Some((name, data)) = rest.rsplit_once('1')
        && !name.is_empty()
    {
        let name_ok = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        let data_ok = data.len() >= 6 && data.chars().all(|c| BECH32.contains(c));
        return (!name_ok || !data_ok)
            .then(|| format!("{r:?} is not a valid age plugin recipient"));
    }
    crate::keys::parse_recipient(r).err().map(|e| e.to_string())
}

/// What is wrong with one `ENC[...]` string, if anything; `want` is the required type.
fn enc_problem(s: &[u8], want: Option<&str>) -> Option<String> {
    let parts = match crypto::parse_enc(s) {
        Ok(p) => p,
        Err(OpenError::Malformed(why)) => return Some(why.to_string()),
        Err(OpenError::Auth) => return Some("unreadable".into()),
    };
    if parts.iv.len() != IV_LEN {
        return Some(format!("IV is {} bytes, not {IV_LEN}", parts.iv.len()));
    }
    if !TYPES.contains(&parts.typ.as_str()) {
        return Some(format!("unknown type {:?}", parts.typ));
    }
    match want {
        Some(t) if parts.typ != t => Some(format!("type is {:?}, not {t:?}", parts.typ)),
        _ => None,
    }
}

/// The walk over the tree, tracking the path and comments as the encrypting walk does.
struct Walk<'a> {
    rule: &'a CryptRule,
    origin: &'a str,
    path: Vec<String>,
    comments: Vec<Vec<String>>,
    out: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn where_(&self) -> String {
        if self.path.is_empty() {
            "a top-level comment".to_string()
        } else {
            format!("key {:?}", self.path.join("."))
        }
    }

    fn problem(&mut self, why: String) {
        let msg = format!("{}: {}: {why}", self.origin, self.where_());
        self.out.push(msg);
    }

    fn map(&mut self, m: &Map) {
        self.comments.push(Vec::new());
        for (k, v) in &m.0 {
            match k {
                Key::Comment(text) => {
                    if let Some(l) = self.comments.last_mut() {
                        l.push(text.clone());
                    }
                    self.comment(text);
                }
                Key::Str(name) => {
                    self.path.push(name.clone());
                    self.value(v);
                    self.path.pop();
                    if let Some(l) = self.comments.last_mut() {
                        l.clear();
                    }
                }
            }
        }
        self.comments.pop();
    }

    fn comment(&mut self, text: &str) {
        if crypto::is_enc(text.as_bytes())
            && let Some(why) = enc_problem(text.as_bytes(), Some("comment"))
        {
            self.problem(format!("malformed encrypted comment ({why})"));
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Map(m) => self.map(m),
            Value::Seq(items) => {
                self.comments.push(Vec::new());
                for it in items {
                    let is_comment = matches!(it, Value::Comment(_));
                    if let (Value::Comment(c), Some(l)) = (it, self.comments.last_mut()) {
                        l.push(c.clone());
                    }
                    self.value(it);
                    if !is_comment && let Some(l) = self.comments.last_mut() {
                        l.clear();
                    }
                }
                self.comments.pop();
            }
            // sops leaves null unencrypted (nothing to seal).
            Value::Null => {}
            Value::Comment(c) => self.comment(c),
            leaf => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, v: &Value) {
        let enc = self
            .rule
            .should_encrypt_item(&self.path, &self.comments, false);
        match v {
            Value::Str(b) if b.as_slice().is_empty() => {}
            Value::Str(b) if crypto::is_enc(b.as_slice()) => {
                if let Some(why) = enc_problem(b.as_slice(), None) {
                    self.problem(format!("malformed encrypted value ({why})"));
                }
            }
            _ if enc => self.problem(format!(
                "expected an encrypted value, found a plaintext {} (not an ENC[AES256_GCM,…] value)",
                v.type_tag()
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let r = age::x25519::Identity::generate().to_public().to_string();
        super::super::encrypt_flat_yaml(&[("a".into(), b"x".as_slice())], &[r]).unwrap()
    }

    #[test]
    fn recipients_are_checked_without_plugins() {
        let x = age::x25519::Identity::generate().to_public().to_string();
        assert_eq!(recipient_problem(&x), None);
        let plugin = "age1test1qurswpc8qurswpc8qurswpc8qurswpc8qurswpc8qurswpc8qurskdqe4q";
        assert_eq!(recipient_problem(plugin), None);
        assert!(recipient_problem("age1test1QQQ!").is_some());
        assert!(recipient_problem(&x[..x.len() - 1]).is_some());
        assert!(recipient_problem("pgp:1234").is_some());
    }

    #[test]
    fn a_fresh_file_is_clean() {
        assert!(structure(&sample(), Format::Yaml, "f").is_empty());
    }

    #[test]
    fn truncated_iv_and_bad_type_are_named() {
        let text = String::from_utf8(sample()).unwrap();
        let line = text.lines().find(|l| l.starts_with("a: ENC[")).unwrap();
        let bad = line.replace(",type:str]", ",type:blob]");
        let p = structure(
            text.replacen(line, &bad, 1).as_bytes(),
            Format::Yaml,
            "secrets.yaml",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("secrets.yaml: key \"a\""), "{p:?}");
        assert!(p[0].contains("unknown type"), "{p:?}");
        let plain = text.replace(line, "a: hello");
        let p = structure(plain.as_bytes(), Format::Yaml, "f");
        assert!(p[0].contains("plaintext"), "{p:?}");
    }
}

#[cfg(test)]
mod vectors {
    use super::*;

    /// The interop vectors written by the real sops and by varsmith are well-formed.
    #[test]
    fn real_sops_vectors_have_no_structural_problem() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in ["sops/by-sops", "sops/by-varsmith", "tests/fixtures/sops"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if dir.starts_with("tests") && !name.starts_with("enc.") {
                    continue;
                }
                let bytes = std::fs::read(&p).unwrap();
                let origin = p.display().to_string();
                let problems = structure(&bytes, Format::from_path(&p), &origin);
                assert!(problems.is_empty(), "{problems:?}");
            }
        }
    }
}
