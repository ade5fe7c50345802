//! Reading a clan workspace as clan-core writes it (`clan_cli/vars/secret_modules/sops.py`,
//! `public_modules/in_repo.py`, `clan_cli/secrets/`):
//!
//! ```text
//! vars/per-machine/<machine>/<generator>/<file>/secret   sops file, binary format (JSON, `data`)
//! vars/per-machine/<machine>/<generator>/<file>/value    a public file's raw bytes
//! vars/per-machine/<machine>/<generator>/<file>/{machines,users,groups}/…   symlinks granting access (ignored)
//! vars/shared/<generator>/<file>/{secret,value}
//! sops/machines/<machine>/key.json                        {"publickey": "age1…", "type": "age"} (or a list)
//! ```
//!
//! Nothing here follows a symlink: the access symlinks are skipped, and a `secret` or `value`
//! that is a symlink is an error naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::UsageError;
use crate::store::Owner;

/// Where one clan var's content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A sops file (binary store) holding the value under `data`.
    Secret(PathBuf),
    /// The raw value.
    Value(PathBuf),
}

/// Every var of a clan workspace, and the machines' age recipients.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    /// (owner, generator) -> file name -> where its content is.
    pub vars: BTreeMap<(Owner, String), BTreeMap<String, Source>>,
    /// machine -> the age recipients of `sops/machines/<machine>/key.json`.
    pub machine_keys: BTreeMap<String, Vec<String>>,
}

fn usage(path: &Path, msg: impl std::fmt::Display) -> UsageError {
    UsageError::new(format!("{}: {msg}", path.display()))
}

/// Sub-directories of `dir` (sorted; symlinks and files skipped); empty when `dir` is missing.
fn subdirs(dir: &Path) -> Result<Vec<String>, UsageError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(usage(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| usage(dir, e))?;
        let ft = e.file_type().map_err(|err| usage(&e.path(), err))?;
        if ft.is_dir() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// The `secret` or `value` of one file directory (`None` when it has neither).
fn source_of(dir: &Path) -> Result<Option<Source>, UsageError> {
    for (name, make) in [
        ("secret", Source::Secret as fn(PathBuf) -> Source),
        ("value", Source::Value),
    ] {
        let p = dir.join(name);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_file() => return Ok(Some(make(p))),
            Ok(_) => return Err(usage(&p, "not a regular file")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(usage(&p, e)),
        }
    }
    Ok(None)
}

/// The generators under `base` (`vars/per-machine/<m>` or `vars/shared`) into `tree`.
fn scan_owner(tree: &mut Tree, owner: Owner, base: &Path) -> Result<(), UsageError> {
    for g in subdirs(base)? {
        let mut files = BTreeMap::new();
        for f in subdirs(&base.join(&g))? {
            if let Some(s) = source_of(&base.join(&g).join(&f))? {
                files.insert(f, s);
            }
        }
        if !files.is_empty() {
            tree.vars.insert((owner.clone(), g), files);
        }
    }
    Ok(())
}

/// Reads a clan `key.json`: one `{"publickey", "type"}` object or a list of them; only age
/// keys count.
pub(crate) fn read_key_json(path: &Path) -> Result<Vec<String>, UsageError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        publickey: String,
        #[serde(rename = "type", default)]
        kind: Option<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum KeyJson {
        One(Entry),
        Many(Vec<Entry>),
    }
    let bytes = std::fs::read(path).map_err(|e| usage(path, e))?;
    let parsed: KeyJson = serde_json::from_slice(&bytes).map_err(|e| {
        usage(
            path,
            format!("expected {{\"publickey\": \"age1…\", \"type\": \"age\"}}: {e}"),
        )
    })?;
    let entries = match parsed {
        KeyJson::One(e) => vec![e],
        KeyJson::Many(v) => v,
    };
    let mut out = Vec::new();
    for e in entries {
        if e.kind.as_deref().unwrap_or("age") != "age" {
            continue;
        }
        crate::keys::validate_recipient(&e.publickey).map_err(|err| usage(path, err))?;
        out.push(e.publickey);
    }
    Ok(out)
}

/// Reads the clan workspace at `dir`; an error when it has no `vars/` directory.
pub(crate) fn scan(dir: &Path) -> Result<Tree, UsageError> {
    let vars = dir.join("vars");
    if !vars.is_dir() {
        return Err(usage(
            dir,
            "not a clan workspace: no vars/ directory (give the clan flake's directory)",
        ));
    }
    let mut tree = Tree::default();
    let per_machine = vars.join("per-machine");
    for m in subdirs(&per_machine)? {
        scan_owner(&mut tree, Owner::Machine(m.clone()), &per_machine.join(&m))?;
    }
    scan_owner(&mut tree, Owner::Shared, &vars.join("shared"))?;
    let machines = dir.join("sops/machines");
    for m in subdirs(&machines)? {
        let kj = machines.join(&m).join("key.json");
        if kj.is_file() {
            tree.machine_keys.insert(m, read_key_json(&kj)?);
        }
    }
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_layout_and_both_key_json_shapes() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        let f = r.join("vars/per-machine/m1/gen/pw");
        std::fs::create_dir_all(f.join("machines")).unwrap();
        std::fs::write(f.join("secret"), "{}").unwrap();
        std::os::unix::fs::symlink("../../x", f.join("machines/m1")).unwrap();
        let v = r.join("vars/shared/net/id");
        std::fs::create_dir_all(&v).unwrap();
        std::fs::write(v.join("value"), "abc").unwrap();
        let k = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        std::fs::create_dir_all(r.join("sops/machines/m1")).unwrap();
        std::fs::write(
            r.join("sops/machines/m1/key.json"),
            format!("{{\"publickey\": \"{k}\", \"type\": \"age\"}}"),
        )
        .unwrap();
        std::fs::create_dir_all(r.join("sops/machines/m2")).unwrap();
        std::fs::write(
            r.join("sops/machines/m2/key.json"),
            format!("[{{\"publickey\": \"{k}\", \"type\": \"age\"}}]"),
        )
        .unwrap();
        let t = scan(r).unwrap();
        assert_eq!(t.vars.len(), 2);
        let m1 = &t.vars[&(Owner::Machine("m1".into()), "gen".into())];
        assert_eq!(m1["pw"], Source::Secret(f.join("secret")));
        let sh = &t.vars[&(Owner::Shared, "net".into())];
        assert_eq!(sh["id"], Source::Value(v.join("value")));
        assert_eq!(t.machine_keys["m1"], vec![k.to_string()]);
        assert_eq!(t.machine_keys["m2"], vec![k.to_string()]);
        assert!(scan(&r.join("vars")).is_err());
    }
}
