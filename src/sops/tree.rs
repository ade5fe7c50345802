//! The sops data model: documents of ordered mappings, sequences and typed leaves.

use zeroize::Zeroizing;

/// Raw bytes of a string leaf. Zeroized on drop; `Debug` never shows the content.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Zeroizing<Vec<u8>>);

impl Bytes {
    /// Wraps bytes.
    pub fn new(v: Vec<u8>) -> Self {
        Bytes(Zeroizing::new(v))
    }
    /// Copies a string.
    pub fn from_text(s: &str) -> Self {
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

/// A mapping key: a string, or a comment item (`# text`, text without the `#`).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// An ordinary string key.
    Str(String),
    /// A comment line stored as a mapping item (its value is [`Value::Null`]).
    Comment(String),
}

/// An ordered mapping (duplicates allowed, as sops' JSON store keeps them).
#[derive(Debug, Clone, PartialEq, Default)]
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

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
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
    pub fn type_tag(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time",
            Value::Comment(_) => "comment",
            _ => "str",
        }
    }
    /// sops' `ToBytes`: the plaintext bytes that are encrypted and hashed into the MAC.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match self {
            Value::Str(b) => b.as_slice().to_vec(),
            Value::Int(i) => i.to_string().into_bytes(),
            Value::Float(f) => crate::sops::gofmt::format_float_f(*f).into_bytes(),
            Value::Bool(true) => b"True".to_vec(),
            Value::Bool(false) => b"False".to_vec(),
            Value::Time(t) => t.as_bytes().to_vec(),
            Value::Comment(c) => c.as_bytes().to_vec(),
            Value::Null | Value::Map(_) | Value::Seq(_) => Vec::new(),
        })
    }
}

/// A parsed file: one mapping per document (only multi-document YAML has several).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tree {
    /// The documents, without their `sops` metadata item.
    pub branches: Vec<Map>,
}
