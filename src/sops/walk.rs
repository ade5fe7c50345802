//! Tree walks: encrypt or decrypt every leaf the crypt rule selects, computing the MAC.

use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use super::crypto::{self, OpenError, Sealer};
use super::error::{Error, Result};
use super::rules::CryptRule;
use super::tree::{Bytes, Key, Map, Tree, Value};

/// How the walk treats leaves.
enum Mode<'a> {
    Encrypt(Box<Sealer>),
    Decrypt(&'a [u8; 32]),
    /// Plaintext tree: only hash (for verification of an already-decrypted tree).
    HashOnly,
}

struct Walker<'a> {
    mode: Mode<'a>,
    rule: &'a CryptRule,
    mac_only: bool,
    hasher: Sha512,
    origin: &'a str,
    path: Vec<String>,
    comments: Vec<Vec<String>>,
}

fn aad(path: &[String]) -> Vec<u8> {
    let mut s = path.join(":");
    s.push(':');
    s.into_bytes()
}

fn new_hasher(mac_only: bool) -> Sha512 {
    let mut h = Sha512::new();
    if mac_only {
        h.update(Sha256::digest(b"sops"));
    }
    h
}

/// Encrypts the tree in place with `key`; returns the MAC (uppercase hex SHA-512).
pub fn encrypt_tree(tree: &mut Tree, key: &[u8; 32], rule: &CryptRule, mac_only: bool) -> String {
    let mut w = Walker::new(
        Mode::Encrypt(Box::new(Sealer::new(key))),
        rule,
        mac_only,
        "",
    );
    for b in &mut tree.branches {
        // Encryption of a well-formed tree cannot fail.
        let _ = w.map(b);
    }
    w.finish()
}

/// Decrypts the tree in place with `key`; returns the recomputed MAC.
pub fn decrypt_tree(
    tree: &mut Tree,
    key: &[u8; 32],
    rule: &CryptRule,
    mac_only: bool,
    origin: &str,
) -> Result<String> {
    let mut w = Walker::new(Mode::Decrypt(key), rule, mac_only, origin);
    for b in &mut tree.branches {
        w.map(b)?;
    }
    Ok(w.finish())
}

/// Computes the MAC of a plaintext tree (as encryption would).
pub fn plaintext_mac(tree: &Tree, rule: &CryptRule, mac_only: bool) -> String {
    let mut t = tree.clone();
    let mut w = Walker::new(Mode::HashOnly, rule, mac_only, "");
    for b in &mut t.branches {
        let _ = w.map(b);
    }
    w.finish()
}

impl<'a> Walker<'a> {
    fn new(mode: Mode<'a>, rule: &'a CryptRule, mac_only: bool, origin: &'a str) -> Self {
        Walker {
            mode,
            rule,
            mac_only,
            hasher: new_hasher(mac_only),
            origin,
            path: Vec::new(),
            comments: Vec::new(),
        }
    }

    fn finish(self) -> String {
        hex::encode_upper(self.hasher.finalize())
    }

    fn should(&self) -> bool {
        self.rule.should_encrypt(&self.path, &self.comments)
    }

    fn where_(&self) -> String {
        if self.path.is_empty() {
            "a top-level comment".to_string()
        } else {
            format!("key {:?}", self.path.join("."))
        }
    }

    fn map(&mut self, m: &mut Map) -> Result<()> {
        self.comments.push(Vec::new());
        for (k, v) in m.0.iter_mut() {
            match k {
                Key::Comment(text) => {
                    let plain = self.comment(text)?;
                    *text = plain.1;
                    if let Some(l) = self.comments.last_mut() {
                        l.push(plain.0);
                    }
                }
                Key::Str(name) => {
                    self.path.push(name.clone());
                    let r = self.value(v);
                    self.path.pop();
                    r?;
                    if let Some(l) = self.comments.last_mut() {
                        l.clear();
                    }
                }
            }
        }
        self.comments.pop();
        Ok(())
    }

    /// Handles a mapping comment; returns (plaintext, text to store).
    fn comment(&mut self, text: &str) -> Result<(String, String)> {
        let enc = self.should();
        match &self.mode {
            Mode::Encrypt(s) if enc && !text.is_empty() => {
                let a = aad(&self.path);
                Ok((text.to_string(), s.seal(text.as_bytes(), &a, "comment")))
            }
            Mode::Decrypt(key) if enc && crypto::is_enc(text.as_bytes()) => {
                // sops leaves comments that fail to decrypt as they are.
                match crypto::open(key, text.as_bytes(), &aad(&self.path)) {
                    Ok((pt, _)) => {
                        let s = String::from_utf8_lossy(&pt).into_owned();
                        Ok((s.clone(), s))
                    }
                    Err(_) => Ok((text.to_string(), text.to_string())),
                }
            }
            _ => Ok((text.to_string(), text.to_string())),
        }
    }

    fn value(&mut self, v: &mut Value) -> Result<()> {
        match v {
            Value::Map(m) => self.map(m),
            Value::Seq(items) => {
                self.comments.push(Vec::new());
                for it in items.iter_mut() {
                    let r = self.value(it);
                    if let Err(e) = r {
                        self.comments.pop();
                        return Err(e);
                    }
                    match it {
                        Value::Comment(c) => {
                            let c = c.clone();
                            if let Some(l) = self.comments.last_mut() {
                                l.push(c);
                            }
                        }
                        _ => {
                            if let Some(l) = self.comments.last_mut() {
                                l.clear();
                            }
                        }
                    }
                }
                self.comments.pop();
                Ok(())
            }
            Value::Null => Ok(()),
            _ => self.leaf(v),
        }
    }

    fn leaf(&mut self, v: &mut Value) -> Result<()> {
        let enc = self.should();
        match &self.mode {
            Mode::HashOnly => {
                if !matches!(v, Value::Comment(_)) && (enc || !self.mac_only) {
                    self.hasher.update(&*v.to_bytes());
                }
                Ok(())
            }
            Mode::Encrypt(sealer) => {
                if let Value::Comment(c) = v {
                    if enc && !c.is_empty() {
                        let s = sealer.seal(c.as_bytes(), &aad(&self.path), "comment");
                        *v = Value::str(&s);
                    }
                    return Ok(());
                }
                let bytes = v.to_bytes();
                if enc || !self.mac_only {
                    self.hasher.update(&*bytes);
                }
                let empty = matches!(v, Value::Str(b) if b.as_slice().is_empty());
                if enc && !empty {
                    let s = sealer.seal(&bytes, &aad(&self.path), v.type_tag());
                    *v = Value::str(&s);
                }
                Ok(())
            }
            Mode::Decrypt(key) => {
                if !enc {
                    if !matches!(v, Value::Comment(_)) && !self.mac_only {
                        self.hasher.update(&*v.to_bytes());
                    }
                    return Ok(());
                }
                let key: &[u8; 32] = key;
                let s = match v {
                    Value::Str(b) => b.clone(),
                    Value::Comment(_) => return Ok(()),
                    _ => {
                        return Err(Error::malformed(
                            self.origin,
                            format!(
                                "{}: expected an encrypted value (string), found a {}",
                                self.where_(),
                                v.type_tag()
                            ),
                        ));
                    }
                };
                if s.as_slice().is_empty() {
                    return Ok(());
                }
                let (pt, typ) = crypto::open(key, s.as_slice(), &aad(&self.path)).map_err(|e| match e {
                    OpenError::Malformed(why) => Error::malformed(
                        self.origin,
                        format!("{}: malformed encrypted value ({why})", self.where_()),
                    ),
                    OpenError::Auth => Error::decrypt(
                        self.origin,
                        format!(
                            "{}: could not decrypt value (authentication failed: edited, moved, or wrong data key)",
                            self.where_()
                        ),
                    ),
                })?;
                let nv = typed(pt, &typ).ok_or_else(|| {
                    Error::malformed(
                        self.origin,
                        format!(
                            "{}: cannot parse decrypted value of type {typ:?}",
                            self.where_()
                        ),
                    )
                })?;
                if !matches!(nv, Value::Comment(_)) {
                    self.hasher.update(&*nv.to_bytes());
                }
                *v = nv;
                Ok(())
            }
        }
    }
}

/// Parses decrypted plaintext by its `type:` tag (Go semantics).
pub fn typed(pt: Zeroizing<Vec<u8>>, typ: &str) -> Option<Value> {
    let s = || std::str::from_utf8(&pt).ok();
    Some(match typ {
        "str" | "bytes" => Value::Str(Bytes(pt.clone())),
        "int" => Value::Int(s()?.parse().ok()?),
        "float" => Value::Float(match s()? {
            "+Inf" | "Inf" | "inf" | "+inf" => f64::INFINITY,
            "-Inf" | "-inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            x => x.parse().ok()?,
        }),
        "bool" => Value::Bool(match s()? {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return None,
        }),
        "time" => Value::Time(super::gofmt::rfc3339_nano(s()?)?),
        "comment" => Value::Comment(String::from_utf8_lossy(&pt).into_owned()),
        _ => return None,
    })
}
