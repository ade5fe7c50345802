//! Tree walks: encrypt or decrypt every leaf the crypt rule selects, computing the MAC.

use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use super::crypto::{self, IvStash, OpenError, Sealer};
use super::error::{Error, Result};
use super::rules::CryptRule;
use super::tree::{Bytes, Key, Map, Tree, Value};

/// How the walk treats leaves.
enum Mode<'a> {
    Encrypt(Box<Sealer>),
    /// Decrypt with the key, recording each value's IV in the stash.
    Decrypt(&'a [u8; 32], IvStash),
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
/// Fails only when `unencrypted_comment_regex` matches an encrypted comment (sops refuses
/// that too: the comment could never be decrypted).
pub(crate) fn encrypt_tree(
    tree: &mut Tree,
    key: &[u8; 32],
    rule: &CryptRule,
    mac_only: bool,
    origin: &str,
) -> Result<String> {
    encrypt_tree_reusing(tree, key, IvStash::default(), rule, mac_only, origin)
}

/// [`encrypt_tree`], reusing the IVs of `stash` for unchanged values (edit, set, rotate).
pub(crate) fn encrypt_tree_reusing(
    tree: &mut Tree,
    key: &[u8; 32],
    stash: IvStash,
    rule: &CryptRule,
    mac_only: bool,
    origin: &str,
) -> Result<String> {
    let sealer = Box::new(Sealer::with_stash(key, stash));
    let mut w = Walker::new(Mode::Encrypt(sealer), rule, mac_only, origin);
    for b in &mut tree.branches {
        w.map(b)?;
    }
    Ok(w.finish())
}

/// Decrypts the tree in place with `key`; returns the recomputed MAC.
pub(crate) fn decrypt_tree(
    tree: &mut Tree,
    key: &[u8; 32],
    rule: &CryptRule,
    mac_only: bool,
    origin: &str,
) -> Result<String> {
    decrypt_tree_stashing(tree, key, rule, mac_only, origin).map(|(mac, _)| mac)
}

/// [`decrypt_tree`], also returning the IV of every decrypted value.
pub(crate) fn decrypt_tree_stashing(
    tree: &mut Tree,
    key: &[u8; 32],
    rule: &CryptRule,
    mac_only: bool,
    origin: &str,
) -> Result<(String, IvStash)> {
    let mut w = Walker::new(
        Mode::Decrypt(key, IvStash::default()),
        rule,
        mac_only,
        origin,
    );
    for b in &mut tree.branches {
        w.map(b)?;
    }
    let stash = match std::mem::replace(&mut w.mode, Mode::HashOnly) {
        Mode::Decrypt(_, s) => s,
        _ => IvStash::default(),
    };
    Ok((w.finish(), stash))
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

    fn should(&self, is_comment: bool) -> bool {
        self.rule
            .should_encrypt_item(&self.path, &self.comments, is_comment)
    }

    fn where_(&self) -> String {
        if self.path.is_empty() {
            "a top-level comment".to_string()
        } else {
            format!("key {:?}", self.path.join("."))
        }
    }

    /// Pushes a comment onto the innermost comment list (before deciding about it, as sops).
    fn note_comment(&mut self, text: &str) {
        if let Some(l) = self.comments.last_mut() {
            l.push(text.to_string());
        }
    }

    fn clear_comments(&mut self) {
        if let Some(l) = self.comments.last_mut() {
            l.clear();
        }
    }

    fn map(&mut self, m: &mut Map) -> Result<()> {
        self.comments.push(Vec::new());
        let r = self.map_items(m);
        self.comments.pop();
        r
    }

    fn map_items(&mut self, m: &mut Map) -> Result<()> {
        for (k, v) in &mut m.0 {
            match k {
                Key::Comment(text) => {
                    self.note_comment(text);
                    *text = self.comment(text)?;
                }
                Key::Str(name) => {
                    self.path.push(name.clone());
                    let r = self.value(v);
                    self.path.pop();
                    r?;
                    self.clear_comments();
                }
            }
        }
        Ok(())
    }

    /// A mapping comment (already on the comment stack); returns the text to store.
    fn comment(&mut self, text: &str) -> Result<String> {
        let enc = self.should(true);
        match &self.mode {
            Mode::Encrypt(s) if enc && !text.is_empty() => {
                let sealed = s.seal(text.as_bytes(), &aad(&self.path), "comment");
                self.check_comment_regex(&sealed)?;
                Ok(sealed)
            }
            Mode::Decrypt(key, _) if enc => Ok(open_comment(key, text, &self.path)),
            _ => Ok(text.to_string()),
        }
    }

    /// sops' safety check: an encrypted comment matching `unencrypted_comment_regex` would
    /// be read back as plaintext and never decrypted.
    fn check_comment_regex(&self, sealed: &str) -> Result<()> {
        match self.rule {
            CryptRule::UnencryptedCommentRegex(r) if r.is_match(sealed.as_bytes()) => {
                Err(Error::malformed(
                    self.origin,
                    format!(
                        "an encrypted comment matches unencrypted_comment_regex {:?}; make sure \
                         the regex cannot match an encrypted comment (ENC[AES256_GCM,...])",
                        r.as_str()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn value(&mut self, v: &mut Value) -> Result<()> {
        match v {
            Value::Map(m) => self.map(m),
            Value::Seq(items) => {
                self.comments.push(Vec::new());
                let r = self.seq_items(items);
                self.comments.pop();
                r
            }
            Value::Null => Ok(()),
            _ => self.leaf(v),
        }
    }

    fn seq_items(&mut self, items: &mut [Value]) -> Result<()> {
        for it in items.iter_mut() {
            let is_comment = matches!(it, Value::Comment(_));
            if let Value::Comment(c) = it {
                let c = c.clone();
                self.note_comment(&c);
            }
            self.value(it)?;
            if !is_comment {
                self.clear_comments();
            }
        }
        Ok(())
    }

    fn leaf(&mut self, v: &mut Value) -> Result<()> {
        let enc = self.should(matches!(v, Value::Comment(_)));
        match &self.mode {
            Mode::HashOnly => {
                if !matches!(v, Value::Comment(_)) && (enc || !self.mac_only) {
                    self.hasher.update(&*v.to_bytes());
                }
                Ok(())
            }
            Mode::Encrypt(_) => self.encrypt_leaf(v, enc),
            Mode::Decrypt(..) => self.decrypt_leaf(v, enc),
        }
    }

    fn encrypt_leaf(&mut self, v: &mut Value, enc: bool) -> Result<()> {
        let Mode::Encrypt(sealer) = &self.mode else {
            return Ok(());
        };
        if let Value::Comment(c) = v {
            if enc && !c.is_empty() {
                let s = sealer.seal(c.as_bytes(), &aad(&self.path), "comment");
                self.check_comment_regex(&s)?;
                *v = Value::str(&s);
            }
            return Ok(());
        }
        let bytes = v.to_bytes();
        let empty = matches!(v, Value::Str(b) if b.as_slice().is_empty());
        if enc && !empty {
            let s = sealer.seal(&bytes, &aad(&self.path), v.type_tag());
            *v = Value::str(&s);
        }
        if enc || !self.mac_only {
            self.hasher.update(&*bytes);
        }
        Ok(())
    }

    fn decrypt_leaf(&mut self, v: &mut Value, enc: bool) -> Result<()> {
        if !enc {
            if !matches!(v, Value::Comment(_)) && !self.mac_only {
                self.hasher.update(&*v.to_bytes());
            }
            return Ok(());
        }
        let s = match v {
            Value::Str(b) => b.clone(),
            Value::Comment(c) => {
                if let Mode::Decrypt(key, _) = &self.mode {
                    *c = open_comment(key, c, &self.path);
                }
                return Ok(());
            }
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
        let nv = self.open_value(s.as_slice())?;
        if !matches!(nv, Value::Comment(_)) {
            self.hasher.update(&*nv.to_bytes());
        }
        *v = nv;
        Ok(())
    }

    /// Decrypts one `ENC[...]` value at the current path and records its IV.
    fn open_value(&mut self, s: &[u8]) -> Result<Value> {
        let a = aad(&self.path);
        let malformed = |why: &str| {
            Error::malformed(
                self.origin,
                format!("{}: malformed encrypted value ({why})", self.where_()),
            )
        };
        let parts = crypto::parse_enc(s).map_err(|e| match e {
            OpenError::Malformed(why) => malformed(why),
            OpenError::Auth => malformed("unreadable"),
        })?;
        let Mode::Decrypt(key, _) = &self.mode else {
            return Err(malformed("not decrypting"));
        };
        let (pt, typ) = crypto::open_parts(key, &parts, &a).map_err(|_| {
            Error::decrypt(
                self.origin,
                format!(
                    "{}: could not decrypt value (authentication failed: edited, moved, or wrong data key)",
                    self.where_()
                ),
            )
        })?;
        if let Mode::Decrypt(_, stash) = &mut self.mode {
            stash.record(&pt, &a, &typ, &parts.iv);
        }
        typed(pt, &typ).ok_or_else(|| {
            Error::malformed(
                self.origin,
                format!(
                    "{}: cannot parse decrypted value of type {typ:?}",
                    self.where_()
                ),
            )
        })
    }
}

/// Decrypts an encrypted comment (`#ENC[...]`), trying its own AAD and then those of the
/// enclosing mappings: go-yaml can read a trailing comment back one level deeper than it
/// was written (sops then prints it still encrypted). A comment that does not decrypt, or
/// was never encrypted, stays as it is, as in sops. Comments are not covered by the MAC.
fn open_comment(key: &[u8; 32], text: &str, path: &[String]) -> String {
    if !crypto::is_enc(text.as_bytes()) {
        return text.to_string();
    }
    (0..=path.len())
        .rev()
        .find_map(|n| crypto::open(key, text.as_bytes(), &aad(&path[..n])).ok())
        .map(|(pt, _)| String::from_utf8_lossy(&pt).into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// Parses decrypted plaintext by its `type:` tag (Go semantics).
pub(crate) fn typed(pt: Zeroizing<Vec<u8>>, typ: &str) -> Option<Value> {
    let s = || std::str::from_utf8(&pt).ok();
    Some(match typ {
        "str" | "bytes" => Value::Str(Bytes::from_zeroizing(pt.clone())),
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
