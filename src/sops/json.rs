//! JSON store: an order- and duplicate-preserving parser and Go-compatible emitter
//! (`json.Indent` with a tab, Go string escaping, 3.11 number handling).

use super::error::{Error, Result};
use super::gofmt::format_float_json;
use super::limits::MAX_DEPTH;
use super::tree::{Bytes, Key, Map, Value};

struct P<'a> {
    b: &'a [u8],
    i: usize,
    origin: &'a str,
}

impl<'a> P<'a> {
    fn err(&self, msg: &str) -> Error {
        let line = self.b[..self.i.min(self.b.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        Error::malformed(self.origin, format!("invalid JSON at line {line}: {msg}"))
    }
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }
    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth >= MAX_DEPTH {
            return Err(self.err(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        match self.peek() {
            Some(b'{') => Ok(Value::Map(self.object(depth)?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Seq(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Seq(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Value::Str(Bytes::new(self.string()?))),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(c) if c == b'-' || c.is_ascii_digit() => {
                let st = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                let s =
                    std::str::from_utf8(&self.b[st..self.i]).map_err(|_| self.err("bad number"))?;
                let f: f64 = s.parse().map_err(|_| self.err("bad number"))?;
                Ok(Value::Float(f))
            }
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end of input")),
        }
    }
    fn word(&mut self, w: &str, v: Value) -> Result<Value> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }
    fn object(&mut self, depth: usize) -> Result<Map> {
        self.expect(b'{')?;
        let mut m = Map::default();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(m);
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let k = self.string()?;
            let k = String::from_utf8(k).map_err(|_| self.err("key is not UTF-8"))?;
            self.expect(b':')?;
            let v = self.value(depth + 1)?;
            m.0.push((Key::Str(k), v));
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(m);
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
    fn hex4(&mut self) -> Result<u32> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("bad \\u escape"))?;
        let s = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<Vec<u8>> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self
                .b
                .get(self.i)
                .ok_or_else(|| self.err("unterminated string"))?;
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = *self
                        .b
                        .get(self.i)
                        .ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.b.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    self.i = save;
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                c if c < 0x20 => return Err(self.err("control character in string")),
                c => out.push(c),
            }
        }
    }
}

/// Parses a JSON document; the top level must be an object.
pub(crate) fn parse(b: &[u8], origin: &str) -> Result<Map> {
    let mut p = P { b, i: 0, origin };
    match p.peek() {
        Some(b'{') => {}
        Some(b'[') => {
            return Err(Error::malformed(
                origin,
                "the top level must be a JSON object, found an array",
            ));
        }
        None => return Err(Error::malformed(origin, "empty JSON file")),
        _ => {
            return Err(Error::malformed(
                origin,
                "the top level must be a JSON object",
            ));
        }
    }
    let m = p.object(0)?;
    if p.peek().is_some() {
        return Err(p.err("trailing data after the top-level object"));
    }
    Ok(m)
}

/// Parses one JSON value of any type (the value argument of `sops set`). Numbers are floats,
/// as in sops 3.11's JSON handling.
pub(crate) fn parse_value(b: &[u8], origin: &str) -> Result<Value> {
    let mut p = P { b, i: 0, origin };
    let v = p.value(0)?;
    if p.peek().is_some() {
        return Err(p.err("trailing data after the value"));
    }
    Ok(v)
}

/// Writes `s` as a Go `encoding/json` string (HTML-safe escaping, invalid UTF-8 → U+FFFD).
pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(s);
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.extend_from_slice(format!("\\u{:04x}", ch as u32).as_bytes())
            }
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

struct Out<'u> {
    buf: Vec<u8>,
    unit: &'u str,
}

impl Out<'_> {
    fn push(&mut self, c: u8) {
        self.buf.push(c);
    }
    fn extend_from_slice(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }
}

fn indent(out: &mut Out, n: usize) {
    out.buf.push(b'\n');
    for _ in 0..n {
        out.buf.extend_from_slice(out.unit.as_bytes());
    }
}

fn write_value(out: &mut Out, v: &Value, depth: usize) {
    match v {
        Value::Map(m) => emit_map(out, m, depth),
        Value::Seq(items) => {
            let items: Vec<&Value> = items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            if items.is_empty() {
                out.extend_from_slice(b"[]");
                return;
            }
            out.push(b'[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, depth + 1);
                write_value(out, it, depth + 1);
            }
            indent(out, depth);
            out.push(b']');
        }
        Value::Str(b) => write_string(&mut out.buf, b.as_slice()),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => out.extend_from_slice(format_float_json(*f).as_bytes()),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Time(t) => write_string(&mut out.buf, t.as_bytes()),
        Value::Null | Value::Comment(_) => out.extend_from_slice(b"null"),
    }
}

fn emit_map(out: &mut Out, m: &Map, depth: usize) {
    let items: Vec<(&String, &Value)> =
        m.0.iter()
            .filter_map(|(k, v)| match k {
                Key::Str(s) => Some((s, v)),
                Key::Comment(_) => None,
            })
            .collect();
    if items.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    out.push(b'{');
    for (i, (k, v)) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        indent(out, depth + 1);
        write_string(&mut out.buf, k.as_bytes());
        out.extend_from_slice(b": ");
        write_value(out, v, depth + 1);
    }
    indent(out, depth);
    out.push(b'}');
}

/// Emits a top-level object as sops does (tab indent, trailing newline).
pub(crate) fn emit(m: &Map) -> Vec<u8> {
    emit_indented(m, "\t")
}

/// Emits a top-level object with `unit` as one level of indentation (`json.Indent`).
pub(crate) fn emit_indented(m: &Map, unit: &str) -> Vec<u8> {
    let mut out = Out {
        buf: Vec::new(),
        unit,
    };
    emit_map(&mut out, m, 0);
    out.buf.push(b'\n');
    out.buf
}

/// Emits one value as sops' JSON store writes a single value (tab indent, no newline).
pub(crate) fn emit_value(v: &Value) -> Vec<u8> {
    let mut out = Out {
        buf: Vec::new(),
        unit: "\t",
    };
    emit_value_at(&mut out, v);
    out.buf
}

fn emit_value_at(out: &mut Out, v: &Value) {
    write_value(out, v, 0)
}
