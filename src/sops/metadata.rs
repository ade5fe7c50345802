//! The `sops` metadata block: reading it from a tree and writing it in 3.11 struct order.

use super::error::{Error, Result};
use super::rules::CryptRule;
use super::tree::{Key, Map, Value};

/// The sops version written into new files.
pub(crate) const VERSION: &str = "3.11.0";

/// One age master key: the recipient string and its armored `enc` blob.
#[derive(Debug, Clone, PartialEq)]
pub struct AgeKey {
    /// The recipient, verbatim (`age1…` or an `ssh-…` line).
    pub recipient: String,
    /// The armored age file wrapping the data key.
    pub enc: String,
}

/// The parts of the metadata varsmith understands.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// age keys of the (single) key group.
    pub age: Vec<AgeKey>,
    /// `lastmodified` as written.
    pub lastmodified: String,
    /// The encrypted MAC.
    pub mac: String,
    /// The crypt rule.
    pub rule: CryptRule,
    /// True for the binary store, which writes no rule.
    pub rule_implicit: bool,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
    /// `version`.
    pub version: String,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(b) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
        Value::Time(t) => Some(t.clone()),
        Value::Float(f) => Some(super::gofmt::format_float_f(*f)),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn age_list(v: Option<&Value>, origin: &str) -> Result<Vec<AgeKey>> {
    let mut out = Vec::new();
    if let Some(Value::Seq(items)) = v {
        for it in items {
            let Value::Map(m) = it else {
                return Err(Error::malformed(
                    origin,
                    "sops.age entries must be mappings",
                ));
            };
            let recipient = m.get("recipient").and_then(text).unwrap_or_default();
            let enc = m.get("enc").and_then(text).unwrap_or_default();
            out.push(AgeKey { recipient, enc });
        }
    }
    Ok(out)
}

impl Metadata {
    /// Reads the metadata mapping.
    pub fn from_value(v: &Value, origin: &str) -> Result<Metadata> {
        let Value::Map(m) = v else {
            return Err(Error::malformed(
                origin,
                "the sops metadata is not a mapping",
            ));
        };
        let mut age = age_list(m.get("age"), origin)?;
        let flat_keys = ["kms", "gcp_kms", "azure_kv", "hc_vault", "pgp", "hckms"]
            .iter()
            .any(|k| matches!(m.get(k), Some(Value::Seq(s)) if !s.is_empty()));
        if age.is_empty()
            && !flat_keys
            && let Some(Value::Seq(groups)) = m.get("key_groups")
        {
            if groups.len() > 1 {
                return Err(Error::malformed(
                    origin,
                    "Shamir key groups (more than one key group) are not supported",
                ));
            }
            if let Some(Value::Map(g)) = groups.first() {
                age = age_list(g.get("age"), origin)?;
            }
        }
        let lastmodified = m
            .get("lastmodified")
            .and_then(text)
            .ok_or_else(|| Error::malformed(origin, "sops metadata has no lastmodified"))?;
        let mac = m.get("mac").and_then(text).unwrap_or_default();
        let mut rule = None;
        for k in CryptRule::KEYS {
            if let Some(val) = m.get(k).and_then(text).filter(|s| !s.is_empty()) {
                if rule.is_some() {
                    return Err(Error::malformed(
                        origin,
                        "more than one crypt rule in metadata",
                    ));
                }
                let r = CryptRule::from_entry(k, &val)
                    .and_then(|r| r.ok())
                    .ok_or_else(|| Error::malformed(origin, format!("invalid {k} in metadata")))?;
                rule = Some(r);
            }
        }
        let mac_only_encrypted = match m.get("mac_only_encrypted") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s.as_slice() == b"true",
            _ => false,
        };
        Ok(Metadata {
            age,
            lastmodified,
            mac,
            rule_implicit: rule.is_none(),
            rule: rule.unwrap_or_default(),
            mac_only_encrypted,
            version: m.get("version").and_then(text).unwrap_or_default(),
        })
    }

    /// The metadata as a tree value, in sops 3.11 struct order.
    pub(crate) fn to_value(&self) -> Value {
        let mut m = Map::default();
        if !self.age.is_empty() {
            let list = self
                .age
                .iter()
                .map(|a| {
                    let mut e = Map::default();
                    e.push("recipient", Value::str(&a.recipient));
                    e.push("enc", Value::str(&a.enc));
                    Value::Map(e)
                })
                .collect();
            m.push("age", Value::Seq(list));
        }
        m.push("lastmodified", Value::str(&self.lastmodified));
        m.push("mac", Value::str(&self.mac));
        if !self.rule_implicit
            && let Some((k, v)) = self.rule.metadata_entry()
        {
            m.push(k, Value::str(&v));
        }
        if self.mac_only_encrypted {
            m.push("mac_only_encrypted", Value::Bool(true));
        }
        m.push("version", Value::str(&self.version));
        Value::Map(m)
    }
}

/// Removes and returns the first top-level `sops` item of a document.
pub(crate) fn take_sops(doc: &mut Map) -> Option<Value> {
    let i = doc
        .0
        .iter()
        .position(|(k, _)| matches!(k, Key::Str(s) if s == "sops"))?;
    Some(doc.0.remove(i).1)
}
