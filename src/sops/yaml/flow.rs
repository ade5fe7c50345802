//! Flow collections (`[a, b]`, `{k: v}`) on one gathered string.

use super::parse::Anchors;
use super::resolve::{Resolved, resolve_plain};
use super::scalar::{fold_single, quoted_end, unescape_double};
use crate::sops::tree::{Bytes, Map, Value};

/// A flow collection parser over one gathered string.
pub(super) struct Flow<'b> {
    pub(super) b: &'b [u8],
    pub(super) i: usize,
}

impl Flow<'_> {
    pub(super) fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n') {
            self.i += 1;
        }
    }
    pub(super) fn value(&mut self, p: &Anchors) -> std::result::Result<Value, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Seq(items));
                    }
                    items.push(self.value(p)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err("expected ',' or ']' in flow sequence".into()),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::default();
                loop {
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Map(m));
                    }
                    let quoted = matches!(self.b.get(self.i), Some(b'"' | b'\''));
                    let k = self.scalar(true)?;
                    let key = if quoted {
                        k
                    } else {
                        match resolve_plain(&k) {
                            Resolved::Value(Value::Str(_)) | Resolved::Merge => k,
                            _ => {
                                return Err(format!(
                                    "mapping key {k:?} is not a string; sops requires string keys"
                                ));
                            }
                        }
                    };
                    self.ws();
                    let v = if self.b.get(self.i) == Some(&b':') {
                        self.i += 1;
                        self.ws();
                        if matches!(self.b.get(self.i), Some(b',' | b'}')) {
                            Value::Null
                        } else {
                            self.value(p)?
                        }
                    } else {
                        Value::Null
                    };
                    if m.get(&key).is_some() {
                        return Err(format!("mapping key {key:?} already defined"));
                    }
                    m.push(&key, v);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err("expected ',' or '}' in flow mapping".into()),
                    }
                }
            }
            Some(b'"') | Some(b'\'') => Ok(Value::Str(Bytes::from_text(&self.scalar(false)?))),
            Some(b'*') => {
                self.i += 1;
                let st = self.i;
                while self.i < self.b.len() && !matches!(self.b[self.i], b',' | b']' | b'}' | b' ')
                {
                    self.i += 1;
                }
                let name = String::from_utf8_lossy(&self.b[st..self.i]).into_owned();
                p.get(&name)
                    .cloned()
                    .ok_or_else(|| format!("unknown alias *{name}"))
            }
            Some(_) => {
                let s = self.scalar(false)?;
                match resolve_plain(&s) {
                    Resolved::Value(v) => Ok(v),
                    Resolved::Merge => Ok(Value::str(&s)),
                    Resolved::Uint => Err("integer out of the signed 64-bit range".into()),
                }
            }
            None => Err("unterminated flow collection".into()),
        }
    }
    fn scalar(&mut self, key: bool) -> std::result::Result<String, String> {
        let rest = std::str::from_utf8(&self.b[self.i..]).map_err(|_| "not UTF-8")?;
        if let Some(&q) = self.b.get(self.i).filter(|c| **c == b'"' || **c == b'\'') {
            let end = quoted_end(rest, q).ok_or("unterminated quoted scalar")?;
            let body = &rest[1..end];
            let v = if q == b'"' {
                unescape_double(body)?
            } else {
                fold_single(body)
            };
            self.i += end + 1;
            return String::from_utf8(v).map_err(|_| "not UTF-8".into());
        }
        let st = self.i;
        while self.i < self.b.len() {
            let c = self.b[self.i];
            if matches!(c, b',' | b']' | b'}' | b'[' | b'{') {
                break;
            }
            if c == b':'
                && (key
                    || matches!(
                        self.b.get(self.i + 1),
                        Some(b' ' | b',' | b'}' | b']') | None
                    ))
                && matches!(
                    self.b.get(self.i + 1),
                    Some(b' ' | b',' | b'}' | b']' | b'\n') | None
                )
            {
                break;
            }
            self.i += 1;
        }
        Ok(String::from_utf8_lossy(&self.b[st..self.i])
            .trim()
            .to_string())
    }
}
