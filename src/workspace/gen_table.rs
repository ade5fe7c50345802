//! The flake cache entry's table of generator definitions: each distinct definition stored
//! once, the configurations naming it by its index.
//!
//! A fleet's configurations import the same modules, so 1000 machines declaring 10 generators
//! hold about 10 distinct definitions, not 10,000: the entry shrinks by as much, reading it
//! parses each definition once, and the machines share one [`NixGenerator`] (`Arc`) per
//! definition.
//!
//! How: a configuration's `generators` field ([`NixMachine`](super::nix::NixMachine),
//! [`NixHome`](super::nix::NixHome)) is (de)serialized through [`self`]. While
//! [`write`] or [`read`] runs on this thread, it is a map of names to indices into the table;
//! otherwise (`nix eval`'s output, tests) a map of names to whole definitions.
//!
//! Invariant: a configuration read back names the very definitions it was written with
//! (equal by their JSON text); an index outside the table is an error, so a damaged entry is
//! evaluated again rather than used.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::nix::NixGenerator;

/// A configuration's generators: name to definition.
pub(crate) type Generators = IndexMap<String, Arc<NixGenerator>>;

/// The table in use on this thread.
enum Active {
    /// Being written: the definitions met so far, by their JSON text.
    Writing {
        defs: Vec<Arc<NixGenerator>>,
        index: HashMap<String, usize>,
    },
    /// Being read.
    Reading(Vec<Arc<NixGenerator>>),
}

thread_local! {
    static ACTIVE: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// Clears the thread's table when dropped (also on a panic).
struct Reset;

impl Drop for Reset {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.borrow_mut().take());
    }
}

/// Runs `f` (serializing configurations) with an empty table; returns its result and the
/// table it filled, in index order.
pub(crate) fn write<T>(f: impl FnOnce() -> T) -> (T, Vec<Arc<NixGenerator>>) {
    ACTIVE.with(|a| {
        *a.borrow_mut() = Some(Active::Writing {
            defs: Vec::new(),
            index: HashMap::new(),
        })
    });
    let reset = Reset;
    let out = f();
    let table = match ACTIVE.with(|a| a.borrow_mut().take()) {
        Some(Active::Writing { defs, .. }) => defs,
        _ => Vec::new(),
    };
    drop(reset);
    (out, table)
}

/// Runs `f` (deserializing configurations) with `table` in use.
pub(crate) fn read<T>(table: Vec<Arc<NixGenerator>>, f: impl FnOnce() -> T) -> T {
    ACTIVE.with(|a| *a.borrow_mut() = Some(Active::Reading(table)));
    let _reset = Reset;
    f()
}

/// `serialize_with` of a `generators` field.
pub(crate) fn serialize<S: Serializer>(gens: &Generators, s: S) -> Result<S::Ok, S::Error> {
    let indices = ACTIVE.with(|a| -> Result<Option<IndexMap<&str, usize>>, S::Error> {
        let mut a = a.borrow_mut();
        let Some(Active::Writing { defs, index }) = a.as_mut() else {
            return Ok(None);
        };
        let mut out = IndexMap::with_capacity(gens.len());
        for (name, g) in gens {
            let text = serde_json::to_string(&**g).map_err(S::Error::custom)?;
            let i = *index.entry(text).or_insert_with(|| {
                defs.push(Arc::clone(g));
                defs.len() - 1
            });
            out.insert(name.as_str(), i);
        }
        Ok(Some(out))
    })?;
    match indices {
        Some(indices) => indices.serialize(s),
        None => gens.serialize(s),
    }
}

/// `deserialize_with` of a `generators` field.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Generators, D::Error> {
    let reading = ACTIVE.with(|a| matches!(*a.borrow(), Some(Active::Reading(_))));
    if !reading {
        return Generators::deserialize(d);
    }
    let indices = IndexMap::<String, usize>::deserialize(d)?;
    ACTIVE.with(|a| {
        let a = a.borrow();
        let Some(Active::Reading(table)) = a.as_ref() else {
            return Err(D::Error::custom("no generator table"));
        };
        indices
            .into_iter()
            .map(|(name, i)| match table.get(i) {
                Some(g) => Ok((name, Arc::clone(g))),
                None => Err(D::Error::custom(format!(
                    "generator {name}: index {i} outside the table of {}",
                    table.len()
                ))),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Config {
        #[serde(with = "super")]
        generators: Generators,
    }

    fn def(script: &str) -> Arc<NixGenerator> {
        Arc::new(
            serde_json::from_value(serde_json::json!({ "share": false, "dependencies": [],
                "validation": null, "script": script, "runtimeInputs": [], "files": {},
                "prompts": {} }))
            .expect("a definition"),
        )
    }

    #[test]
    fn equal_definitions_are_stored_once_and_read_back_shared() {
        let configs: Vec<Config> = (0..3)
            .map(|i| Config {
                generators: [
                    ("a".to_string(), def("echo a")),
                    ("b".into(), def(&format!("echo {}", i % 2))),
                ]
                .into_iter()
                .collect(),
            })
            .collect();
        let (text, table) = write(|| serde_json::to_string(&configs));
        let text = text.expect("serialized");
        assert_eq!(table.len(), 3, "echo a, echo 0, echo 1");
        assert_eq!(
            text,
            r#"[{"generators":{"a":0,"b":1}},{"generators":{"a":0,"b":2}},{"generators":{"a":0,"b":1}}]"#
        );
        let back: Vec<Config> = read(table, || serde_json::from_str(&text)).expect("read");
        assert!(Arc::ptr_eq(
            &back[0].generators["a"],
            &back[2].generators["a"]
        ));
        assert_eq!(back[1].generators["b"].script, "echo 1");
        // Outside `read`, indices are not definitions; outside `write`, definitions are whole.
        assert!(serde_json::from_str::<Vec<Config>>(&text).is_err());
        let whole = serde_json::to_string(&configs[0]).expect("serialized");
        assert!(whole.contains("\"script\":\"echo a\""));
    }

    #[test]
    fn an_index_outside_the_table_is_an_error() {
        let r: Result<Config, _> = read(vec![def("x")], || {
            serde_json::from_str(r#"{"generators":{"a":1}}"#)
        });
        let e = r.err().expect("an error").to_string();
        assert!(
            e.contains("generator a: index 1 outside the table of 1"),
            "{e}"
        );
    }
}
