//! Issue 19, the audit's side: the exemption for upstream example keys (a store path's
//! `docs/`, `examples/`, `*.md`) never covers one of the workspace's own keys.

use crate::util::common::*;

use std::path::Path;

/// The `AGE-SECRET-KEY-1…` line of an age key file.
fn secret_line(key_file: &Path) -> String {
    std::fs::read_to_string(key_file)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .expect("an age secret key")
        .to_string()
}

/// A store with one store path whose `docs/keys.txt` holds `key`.
fn store_with_doc_key(dir: &Path, name: &str, key: &str) -> std::path::PathBuf {
    let store = dir.join("store");
    let docs = store
        .join(format!("0123456789abcdfghijklmnpqrsvwxy{name}-source"))
        .join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("keys.txt"), format!("# example\n{key}\n")).unwrap();
    store
}

#[test]
fn the_admin_key_under_docs_is_counted() {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines: {}\n");
    let own = secret_line(&ws.key);
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_doc_key(dir.path(), "z", &own);
    let o = ws.run(&["audit", "--store", store.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    assert!(out.contains("one of this workspace's keys"), "{out}");
    assert!(!out.contains("listed, not counted"), "{out}");
    assert!(!out.contains(&own) && !stderr(&o).contains(&own));
}

#[test]
fn an_unrelated_example_key_under_docs_is_still_excused() {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines: {}\n");
    let other = tempfile::tempdir().unwrap();
    let other_key = other.path().join("other.agekey");
    varsmith::keys::keygen::append_admin_key(&other_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_doc_key(dir.path(), "y", &secret_line(&other_key));
    let o = ws.run(&["audit", "--store", store.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.contains("listed, not counted"), "{out}");
}
