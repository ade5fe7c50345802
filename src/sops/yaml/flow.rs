//! Flow collections (`[a, b]`, `{k: v}`) on one gathered string.

use std::collections::HashSet;

use super::anchors::Anchors;
use super::resolve::{Resolved, resolve_plain};
use super::scalar::{fold_single, quoted_end, unescape_double};
use crate::sops::limits::MAX_DEPTH;
use crate::sops::tree::{Bytes, Map, Value};

/// A flow collection parser over one gathered string.
///
/// `depth` starts at the nesting depth of the block collection holding the flow value; each
/// `[` or `{` adds one, and going past [`MAX_DEPTH`] is an error (never a stack overflow).
pub(super) struct Flow<'b> {
    pub(super) s: &'b str,
    pub(super) b: &'b [u8],
    pub(super) i: usize,
    pub(super) depth: usize,
}

impl Flow<'_> {
    pub(super) fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n') {
            self.i += 1;
        }
    }
    pub(super) fn value(&mut self, p: &mut Anchors) -> std::result::Result<Value, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'[') | Some(b'{') => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
                }
                let v = if self.b[self.i] == b'[' {
                    self.seq(p)
                } else {
                    self.map(p)
                };
                self.depth -= 1;
                v
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
                p.resolve(&name)
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

    fn seq(&mut self, p: &mut Anchors) -> std::result::Result<Value, String> {
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

    fn map(&mut self, p: &mut Anchors) -> std::result::Result<Value, String> {
        self.i += 1;
        let mut m = Map::default();
        let mut seen = HashSet::new();
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
            if !seen.insert(key.clone()) {
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
    fn scalar(&mut self, key: bool) -> std::result::Result<String, String> {
        let rest = self.s.get(self.i..).ok_or("not UTF-8")?;
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
