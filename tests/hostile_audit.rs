//! Issue 19, the audit's side: the exemption for upstream example keys (a store path's
//! `docs/`, `examples/`, `*.md`) never covers one of the workspace's own keys; nested
//! compression, tar and zip members and legacy `.lzma` are opened (built with the real CLIs),
//! and decompression bombs are bounded and make the audit fail closed.

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

/// Runs `sh -c script` in `dir`; panics with its stderr on failure.
fn sh(dir: &Path, script: &str) {
    let o = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {}", stderr(&o));
}

/// `varsmith audit --store store` searching for `secret` (as var `web/db/password`), with
/// extra environment.
fn audit_store(store: &Path, secret: &str, env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.txt");
    let line = format!("web/db/password={}\n", hex::encode(secret));
    std::fs::write(&secrets, line).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_varsmith"));
    cmd.env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
        .args(["audit", "--store"])
        .arg(store);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn random_secret() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

fn nested_tools() -> bool {
    ["gzip", "xz", "bzip2", "tar", "zip", "lzma"]
        .iter()
        .all(|t| require(t))
}

#[test]
fn nested_compression_and_archive_members_are_opened() {
    if !nested_tools() {
        return;
    }
    let secret = random_secret();
    let dir = tempfile::tempdir().unwrap();
    let sp = dir
        .path()
        .join("store/0123456789abcdfghijklmnpqrsvwxyz-nested");
    std::fs::create_dir_all(sp.join("src")).unwrap();
    let mut text: String = (0..40)
        .map(|i| format!("filler line {i} of a config\n"))
        .collect();
    text.push_str(&format!("password={secret}\n"));
    std::fs::write(sp.join("src/t.txt"), &text).unwrap();
    sh(
        &sp,
        "gzip -c src/t.txt | gzip -c > twice.gz
         bzip2 -c src/t.txt | xz -c > bz-in.xz
         gzip -c src/t.txt > src/inner.gz && tar czf bundle.tgz -C src inner.gz
         zip -q -j bundle.zip src/t.txt
         lzma -c src/t.txt > legacy.lzma
         rm -r src",
    );
    let o = audit_store(&dir.path().join("store"), &secret, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    for (file, how) in [
        ("twice.gz", "raw in gzip in gzip"),
        ("bz-in.xz", "raw in bzip2 in xz"),
        ("bundle.tgz", "raw in gzip in tar member inner.gz in gzip"),
        ("bundle.zip", "raw in deflate in zip member t.txt"),
        ("legacy.lzma", "raw in lzma"),
    ] {
        let want = format!("LEAK {}/{file} offset ", sp.display());
        let line = out.lines().find(|l| l.starts_with(&want));
        let line = line.unwrap_or_else(|| panic!("no leak in {file}:\n{out}"));
        assert!(
            line.ends_with(&format!("web/db/password ({how})")),
            "{line}"
        );
    }
    assert!(!out.contains("could not fully scan"), "{out}");
    assert!(!out.contains(&secret) && !stderr(&o).contains(&secret));
}

#[test]
fn decompression_bombs_are_bounded_and_fail_closed() {
    if !nested_tools() {
        return;
    }
    let secret = random_secret();
    let dir = tempfile::tempdir().unwrap();
    let deep = dir
        .path()
        .join("deep/0123456789abcdfghijklmnpqrsvwxyz-deep");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("x"), "nothing to see here, just text\n").unwrap();
    // Eight nested gzip layers: more than the six opened.
    sh(
        &deep,
        "for i in 1 2 3 4 5 6 7 8; do gzip -c x > y && mv y x; done; mv x deep.gz",
    );
    let o = audit_store(&dir.path().join("deep"), &secret, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    let want = format!(
        "not covered: {}/deep.gz: could not fully scan: more than 6 nested layers",
        deep.display()
    );
    assert!(out.contains(&want), "{out}");
    assert!(out.contains("not clean: the audit is partial"), "{out}");

    // A high ratio: 64 MiB of zeros inside a tar inside gzip, against a 4 MiB budget.
    let big = dir.path().join("big/0123456789abcdfghijklmnpqrsvwxyz-big");
    std::fs::create_dir_all(&big).unwrap();
    sh(
        &big,
        "head -c 67108864 /dev/zero > zeros && tar cf - zeros | gzip -1 > bomb.tgz && rm zeros",
    );
    let limit = ("VARSMITH_AUDIT_MAX_DECOMPRESSED", "4194304");
    let o = audit_store(&dir.path().join("big"), &secret, &[limit]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{}", stderr(&o));
    let want = format!(
        "not covered: {}/bomb.tgz: could not fully scan: over 4194304 decoded bytes, the rest was not searched",
        big.display()
    );
    assert!(out.contains(&want), "{out}");
    assert!(!out.contains("clean: no leak found"), "{out}");
}
