//! The sops data model: documents of ordered mappings, sequences and typed leaves.
//!
//! Invariant: every leaf sops encrypts (strings, numbers, booleans, times, comments, and
//! comment keys) is redacted in `Debug` and overwritten with zeros when dropped; only mapping
//! keys (which sops never encrypts) and the tree's shape print.

use zeroize::{Zeroize, Zeroizing};

/// Raw bytes of a string leaf. Zeroized on drop; `Debug` never shows the content.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(Zeroizing<Vec<u8>>);

impl Bytes {
    /// Wraps bytes.
    pub fn new(v: Vec<u8>) -> Self {
        Bytes(Zeroizing::new(v))
    }
    /// Wraps bytes that are already zeroized on drop (no copy).
    pub(crate) fn from_zeroizing(v: Zeroizing<Vec<u8>>) -> Self {
        Bytes(v)
    }
    /// Copies a string.
    pub(crate) fn from_text(s: &str) -> Self {
        Bytes::new(s.as_bytes().to_vec())
    }
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0.len())
    }
}

/// A mapping key: a string, or a comment item (`# text`, text without the `#`). `Debug` shows a
/// string key but never a comment's text (sops encrypts comments).
#[derive(Clone, PartialEq)]
pub enum Key {
    /// An ordinary string key.
    Str(String),
    /// A comment line stored as a mapping item (its value is [`Value::Null`]).
    Comment(String),
}

/// An ordered mapping (duplicates allowed, as sops' JSON store keeps them).
#[derive(Clone, PartialEq, Default)]
pub struct Map(pub Vec<(Key, Value)>);

impl Map {
    /// The value of the first string key `k`.
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.iter().find_map(|(key, v)| match key {
            Key::Str(s) if s == k => Some(v),
            _ => None,
        })
    }
    /// Appends a string-keyed item.
    pub fn push(&mut self, k: &str, v: Value) {
        self.0.push((Key::Str(k.to_string()), v));
    }
}

/// One node of the tree. `Debug` shows the shape and each leaf's type, never a leaf's value;
/// leaves are zeroized on drop.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// An ordered mapping.
    Map(Map),
    /// A sequence (comments may appear as [`Value::Comment`] elements).
    Seq(Vec<Value>),
    /// A string (raw bytes; Go strings need not be UTF-8).
    Str(Bytes),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A YAML timestamp, held in Go `time.MarshalText` form (RFC 3339 with nanoseconds).
    Time(String),
    /// null / `~` / empty.
    Null,
    /// A comment element (inside sequences).
    Comment(String),
}

impl Value {
    /// A string leaf from text.
    pub fn str(s: &str) -> Value {
        Value::Str(Bytes::from_text(s))
    }
    /// The sops `type:` tag for a leaf.
    pub(crate) fn type_tag(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time",
            Value::Comment(_) => "comment",
            _ => "str",
        }
    }
    /// sops' `ToBytes`: the plaintext bytes that are encrypted and hashed into the MAC. The
    /// result (and every intermediate buffer) is zeroized on drop.
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        use std::io::Write;
        match self {
            Value::Str(b) => Zeroizing::new(b.as_slice().to_vec()),
            Value::Int(i) => {
                // Room for any i64: writing never reallocates (no unzeroized copy left behind).
                let mut out = Zeroizing::new(Vec::with_capacity(24));
                let _ = write!(out, "{i}");
                out
            }
            Value::Float(f) => Zeroizing::new(crate::sops::gofmt::format_float_f(*f).into_bytes()),
            Value::Bool(true) => Zeroizing::new(b"True".to_vec()),
            Value::Bool(false) => Zeroizing::new(b"False".to_vec()),
            Value::Time(t) => Zeroizing::new(t.as_bytes().to_vec()),
            Value::Comment(c) => Zeroizing::new(c.as_bytes().to_vec()),
            Value::Null | Value::Map(_) | Value::Seq(_) => Zeroizing::new(Vec::new()),
        }
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        match self {
            Value::Int(i) => i.zeroize(),
            Value::Float(f) => f.zeroize(),
            Value::Bool(b) => b.zeroize(),
            Value::Time(s) | Value::Comment(s) => s.zeroize(),
            Value::Map(_) | Value::Seq(_) | Value::Str(_) | Value::Null => {}
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        if let Key::Comment(c) = self {
            c.zeroize();
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Str(s) => f.debug_tuple("Str").field(s).finish(),
            Key::Comment(c) => write!(f, "Comment(<{} bytes redacted>)", c.len()),
        }
    }
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Map(m) => m.fmt(f),
            Value::Seq(items) => f.debug_list().entries(items.iter()).finish(),
            Value::Str(b) => b.fmt(f),
            Value::Null => f.write_str("Null"),
            leaf => write!(f, "{}(<redacted>)", leaf.type_tag()),
        }
    }
}

/// A parsed file: one mapping per document (only multi-document YAML has several).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    /// The documents, without their `sops` metadata item.
    pub branches: Vec<Map>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decrypted tree with one leaf of every type: `Debug` shows keys and types only.
    #[test]
    fn debug_never_shows_a_value() {
        let mut m = Map::default();
        m.push("s", Value::str("str-secret-7d1"));
        m.push("i", Value::Int(987_654_321));
        m.push("f", Value::Float(6.25125));
        m.push("b", Value::Bool(true));
        m.push("t", Value::Time("2031-05-06T07:08:09Z".into()));
        m.0.push((Key::Comment("comment-secret-x9".into()), Value::Null));
        m.push(
            "seq",
            Value::Seq(vec![
                Value::Comment("seq-comment-q2".into()),
                Value::Int(4242),
            ]),
        );
        let tree = Tree { branches: vec![m] };
        let shown = format!("{tree:?} {tree:#?}");
        for secret in [
            "str-secret",
            "987654321",
            "6.25",
            "true",
            "2031",
            "comment-secret",
            "seq-comment",
            "4242",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert!(
            shown.contains("\"seq\"") && shown.contains("int(<redacted>)"),
            "{shown}"
        );
    }
}
