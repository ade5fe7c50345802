//! Tree operations behind `decrypt --extract`, `set` and `unset` (sops' `Truncate`, `Set`
//! and `Unset` on the first document). Errors name the path, never a value.

use super::Format;
use super::error::{Error, Result};
use super::path::{Step, display};
use super::tree::{Key, Map, Tree, Value};

fn not_found(origin: &str, path: &[Step], upto: usize) -> Error {
    Error::NotFound {
        origin: origin.to_string(),
        msg: format!(
            "component {} not found",
            display(&path[..(upto + 1).min(path.len())])
        ),
    }
}

fn first_doc(tree: &mut Tree) -> &mut Map {
    if tree.branches.is_empty() {
        tree.branches.push(Map::default());
    }
    &mut tree.branches[0]
}

/// The value at `path` in the first document.
pub(crate) fn extract<'t>(tree: &'t Tree, path: &[Step], origin: &str) -> Result<&'t Value> {
    let doc = tree
        .branches
        .first()
        .ok_or_else(|| not_found(origin, path, 0))?;
    let mut cur: Option<&Value> = None;
    for (i, step) in path.iter().enumerate() {
        let next = match (step, cur) {
            (Step::Key(k), None) => doc.get(k),
            (Step::Key(k), Some(Value::Map(m))) => m.get(k),
            (Step::Index(n), Some(Value::Seq(items))) => items
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .nth(*n),
            _ => None,
        };
        cur = Some(next.ok_or_else(|| not_found(origin, path, i))?);
    }
    cur.ok_or_else(|| not_found(origin, path, 0))
}

/// What `--extract` prints for a value: a string's raw bytes; a mapping as a plaintext
/// file of `format`; anything else as the format writes one value.
pub(crate) fn emit_extracted(v: &Value, format: Format, origin: &str) -> Result<Vec<u8>> {
    match v {
        Value::Str(b) => Ok(b.as_slice().to_vec()),
        Value::Map(m) => super::store::emit_plain(
            &Tree {
                branches: vec![m.clone()],
            },
            format,
            origin,
        ),
        other => Ok(match format {
            Format::Json | Format::Binary => super::json::emit_value(other),
            _ => super::yaml::emit::emit_value(other),
        }),
    }
}

/// Sets `path` to `value`, creating mappings (and appending list items) along the way.
pub(crate) fn set(tree: &mut Tree, path: &[Step], value: Value) -> Result<()> {
    let doc = first_doc(tree);
    let Some((Step::Key(k0), rest)) = path.split_first() else {
        return Err(Error::InvalidPath {
            msg: "a path must start with a key".into(),
        });
    };
    let slot = map_slot(doc, k0);
    set_in(slot, rest, value);
    Ok(())
}

fn map_slot<'m>(m: &'m mut Map, k: &str) -> &'m mut Value {
    let i = match m
        .0
        .iter()
        .position(|(key, _)| matches!(key, Key::Str(s) if s == k))
    {
        Some(i) => i,
        None => {
            m.push(k, Value::Null);
            m.0.len() - 1
        }
    };
    &mut m.0[i].1
}

fn set_in(slot: &mut Value, rest: &[Step], value: Value) {
    let Some((step, tail)) = rest.split_first() else {
        *slot = value;
        return;
    };
    match step {
        Step::Key(k) => {
            if !matches!(slot, Value::Map(_)) {
                *slot = Value::Map(Map::default());
            }
            if let Value::Map(m) = slot {
                set_in(map_slot(m, k), tail, value);
            }
        }
        Step::Index(n) => {
            if !matches!(slot, Value::Seq(_)) {
                *slot = Value::Seq(Vec::new());
            }
            if let Value::Seq(items) = slot {
                let pos = items
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !matches!(v, Value::Comment(_)))
                    .nth(*n)
                    .map(|(i, _)| i);
                match pos {
                    Some(i) => set_in(&mut items[i], tail, value),
                    None => {
                        items.push(Value::Null);
                        let last = items.len() - 1;
                        set_in(&mut items[last], tail, value);
                    }
                }
            }
        }
    }
}

/// Removes the item at `path`; a missing component is an error.
pub(crate) fn unset(tree: &mut Tree, path: &[Step], origin: &str) -> Result<()> {
    let doc = first_doc(tree);
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| not_found(origin, path, 0))?;
    let mut cur: Option<&mut Value> = None;
    let mut root = Some(doc);
    for (i, step) in parents.iter().enumerate() {
        let next = match (step, cur.take(), root.take()) {
            (Step::Key(k), None, Some(m)) => get_mut(m, k),
            (Step::Key(k), Some(Value::Map(m)), _) => get_mut(m, k),
            (Step::Index(n), Some(Value::Seq(items)), _) => items
                .iter_mut()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .nth(*n),
            _ => None,
        };
        cur = Some(next.ok_or_else(|| not_found(origin, path, i))?);
    }
    let n = path.len() - 1;
    let removed = match (last, cur, root) {
        (Step::Key(k), None, Some(m)) | (Step::Key(k), Some(Value::Map(m)), _) => remove_key(m, k),
        (Step::Index(i), Some(Value::Seq(items)), _) => {
            let pos = items
                .iter()
                .enumerate()
                .filter(|(_, v)| !matches!(v, Value::Comment(_)))
                .nth(*i)
                .map(|(p, _)| p);
            pos.map(|p| {
                items.remove(p);
            })
            .is_some()
        }
        _ => false,
    };
    if removed {
        Ok(())
    } else {
        Err(not_found(origin, path, n))
    }
}

fn get_mut<'m>(m: &'m mut Map, k: &str) -> Option<&'m mut Value> {
    m.0.iter_mut().find_map(|(key, v)| match key {
        Key::Str(s) if s == k => Some(v),
        _ => None,
    })
}

fn remove_key(m: &mut Map, k: &str) -> bool {
    match m
        .0
        .iter()
        .position(|(key, _)| matches!(key, Key::Str(s) if s == k))
    {
        Some(i) => {
            m.0.remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sops::path::parse;

    fn tree(y: &str) -> Tree {
        Tree {
            branches: crate::sops::yaml::parse(y.as_bytes(), "t").unwrap(),
        }
    }

    #[test]
    fn extract_set_unset() {
        let mut t = tree("a:\n  b: [1, x]\n");
        let v = extract(&t, &parse(r#"["a"]["b"][1]"#).unwrap(), "t").unwrap();
        assert_eq!(v, &Value::str("x"));
        assert!(extract(&t, &[], "t").is_err());
        set(&mut t, &parse(r#"["n"]["m"][3]"#).unwrap(), Value::Int(7)).unwrap();
        assert_eq!(
            extract(&t, &parse(r#"["n"]["m"][0]"#).unwrap(), "t").unwrap(),
            &Value::Int(7)
        );
        assert!(set(&mut t, &[], Value::Null).is_err());
        unset(&mut t, &parse(r#"["a"]["b"][0]"#).unwrap(), "t").unwrap();
        let e = unset(&mut t, &parse(r#"["a"]["zz"]"#).unwrap(), "t").unwrap_err();
        assert_eq!(e.to_string(), "t: component ['a']['zz'] not found");
        assert!(unset(&mut t, &[], "t").is_err());
    }
}
