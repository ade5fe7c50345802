//! dotenv store: `KEY=value` lines, `#` comments, metadata flattened into `sops_…` lines.

use super::error::{Error, Result};
use super::limits::MAX_DEPTH;
use super::tree::{Bytes, Key, Map, Value};

fn unescape_nl(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'n') {
            out.push(b'\n');
            i += 2;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Parses dotenv bytes into a flat mapping (empty lines dropped, comments kept).
pub(crate) fn parse(b: &[u8], origin: &str) -> Result<Map> {
    let mut m = Map::default();
    for (n, line) in b.split(|&c| c == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix(b"#") {
            m.0.push((
                Key::Comment(String::from_utf8_lossy(c).into_owned()),
                Value::Null,
            ));
            continue;
        }
        let eq = line.iter().position(|&c| c == b'=').ok_or_else(|| {
            Error::malformed(
                origin,
                format!("invalid dotenv input line {} (no '=')", n + 1),
            )
        })?;
        let k = String::from_utf8(line[..eq].to_vec())
            .map_err(|_| Error::malformed(origin, format!("line {}: key is not UTF-8", n + 1)))?;
        m.0.push((
            Key::Str(k),
            Value::Str(Bytes::new(unescape_nl(&line[eq + 1..]))),
        ));
    }
    Ok(m)
}

fn escape_nl(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        if c == b'\n' {
            out.extend_from_slice(b"\\n");
        } else {
            out.push(c);
        }
    }
}

fn scalar_text(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Str(b) => Some(b.as_slice().to_vec()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        Value::Float(f) => Some(super::gofmt::format_float_g(*f).into_bytes()),
        Value::Bool(b) => Some(b.to_string().into_bytes()),
        Value::Time(t) => Some(t.clone().into_bytes()),
        _ => None,
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Vec<u8>)>) {
    match v {
        Value::Map(m) => {
            for (k, v) in &m.0 {
                if let Key::Str(k) = k {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}__map_{k}")
                    };
                    flatten(&p, v, out);
                }
            }
        }
        Value::Seq(items) => {
            for (i, it) in items.iter().enumerate() {
                flatten(&format!("{prefix}__list_{i}"), it, out);
            }
        }
        Value::Null | Value::Comment(_) => {}
        leaf => {
            if let Some(t) = scalar_text(leaf) {
                out.push((prefix.to_string(), t));
            }
        }
    }
}

/// Emits the data lines, then (if given) the flattened, sorted `sops_…` metadata lines.
pub(crate) fn emit(m: &Map, metadata: Option<&Value>, origin: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (k, v) in &m.0 {
        match k {
            Key::Comment(c) => {
                out.push(b'#');
                out.extend_from_slice(c.as_bytes());
                out.push(b'\n');
            }
            Key::Str(k) => {
                let t = scalar_text(v).or(match v {
                    Value::Null => Some(Vec::new()),
                    _ => None,
                });
                let t = t.ok_or_else(|| {
                    Error::malformed(
                        origin,
                        format!("key {k:?}: dotenv cannot hold nested values"),
                    )
                })?;
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                escape_nl(&mut out, &t);
                out.push(b'\n');
            }
        }
    }
    if let Some(md) = metadata {
        let mut flat = Vec::new();
        flatten("", md, &mut flat);
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in flat {
            out.extend_from_slice(b"sops_");
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            escape_nl(&mut out, &v);
            out.push(b'\n');
        }
    }
    Ok(out)
}

/// Splits `sops_…` lines off a parsed dotenv map and rebuilds the nested metadata value.
/// A flattened key nesting deeper than [`MAX_DEPTH`] levels (`__map_`/`__list_` parts) is
/// refused; a `__list_N` index may not exceed the number of metadata lines.
pub(crate) fn take_metadata(m: &mut Map, origin: &str) -> Result<Option<Value>> {
    let mut md = Map::default();
    let mut found = false;
    let mut flat = Vec::new();
    m.0.retain(|(k, v)| {
        if let Key::Str(k) = k
            && let Some(rest) = k.strip_prefix("sops_")
        {
            found = true;
            flat.push((rest.to_string(), v.clone()));
            return false;
        }
        true
    });
    let max_index = flat.len();
    for (path, v) in flat {
        if path.split("__").count() > MAX_DEPTH {
            return Err(Error::malformed(
                origin,
                format!("a sops_ metadata key nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        if path
            .split("__")
            .filter_map(|p| p.strip_prefix("list_")?.parse::<usize>().ok())
            .any(|i| i > max_index)
        {
            return Err(Error::malformed(
                origin,
                "a sops_ metadata key has an out-of-range __list_ index",
            ));
        }
        insert_flat(&mut md, &path, v);
    }
    Ok(found.then_some(Value::Map(md)))
}

/// Inserts `a__list_0__map_b` = v into nested maps/lists.
fn insert_flat(root: &mut Map, path: &str, v: Value) {
    let mut parts = path.split("__");
    let Some(first) = parts.next() else { return };
    let rest: Vec<&str> = parts.collect();
    let slot = match root
        .0
        .iter()
        .position(|(k, _)| matches!(k, Key::Str(s) if s == first))
    {
        Some(i) => &mut root.0[i].1,
        None => {
            root.push(first, Value::Null);
            let n = root.0.len() - 1;
            &mut root.0[n].1
        }
    };
    insert_in(slot, &rest, v);
}

fn insert_in(slot: &mut Value, rest: &[&str], v: Value) {
    let Some((head, tail)) = rest.split_first() else {
        *slot = v;
        return;
    };
    if let Some(idx) = head
        .strip_prefix("list_")
        .and_then(|i| i.parse::<usize>().ok())
    {
        if !matches!(slot, Value::Seq(_)) {
            *slot = Value::Seq(Vec::new());
        }
        if let Value::Seq(items) = slot {
            while items.len() <= idx {
                items.push(Value::Null);
            }
            insert_in(&mut items[idx], tail, v);
        }
    } else if let Some(key) = head.strip_prefix("map_") {
        if !matches!(slot, Value::Map(_)) {
            *slot = Value::Map(Map::default());
        }
        if let Value::Map(m) = slot {
            let i = match m
                .0
                .iter()
                .position(|(k, _)| matches!(k, Key::Str(s) if s == key))
            {
                Some(i) => i,
                None => {
                    m.push(key, Value::Null);
                    m.0.len() - 1
                }
            };
            insert_in(&mut m.0[i].1, tail, v);
        }
    }
}
