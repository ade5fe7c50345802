//! The fidelity classes of issue 10, each against the real sops 3.11 in both directions:
//! a file sops encrypts must decrypt with varsmith to exactly what sops prints, and a file
//! varsmith encrypts must decrypt with sops (and varsmith) to that same plaintext.

use crate::util::sops::*;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Env {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    key: PathBuf,
    rcpt: String,
}

fn env() -> Option<Env> {
    if !require("sops") {
        return None;
    }
    let key = fixture("admin.agekey");
    Some(Env {
        dir: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
        rcpt: recipient_of(&key),
        key,
    })
}

impl Env {
    fn write(&self, name: &str, b: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, b).unwrap();
        p
    }
    fn sops(&self) -> Command {
        let mut c = clean("sops", self.home.path());
        c.env("SOPS_AGE_KEY_FILE", &self.key)
            .current_dir(self.dir.path());
        c
    }
    fn vs(&self) -> Command {
        let mut c = varsmith(self.home.path());
        c.env("SOPS_AGE_KEY_FILE", &self.key)
            .current_dir(self.dir.path());
        c
    }
    /// `encrypt` with `tool`, `--age` unless the directory has a `.sops.yaml`.
    fn encrypt(&self, mut c: Command, file: &Path) -> std::process::Output {
        c.arg("encrypt");
        if !self.dir.path().join(".sops.yaml").exists() {
            c.args(["--age", &self.rcpt]);
        }
        c.arg(file).output().unwrap()
    }
    fn decrypt(&self, mut c: Command, file: &Path) -> Vec<u8> {
        ok(c.arg("decrypt").arg(file).output().unwrap(), "decrypt")
    }
}

fn vs_sops(e: &Env) -> Command {
    let mut c = e.vs();
    c.arg("sops");
    c
}

/// Encrypts `plain` (as `name`) with both tools and decrypts each result with both; all
/// four plaintexts must equal what sops prints for its own file. Returns (sops file,
/// varsmith file, plaintext).
fn both_ways(e: &Env, name: &str, plain: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let src = e.write(name, plain);
    let by_sops = ok(e.encrypt(e.sops(), &src), &format!("{name}: sops encrypt"));
    let by_vs = ok(
        e.encrypt(vs_sops(e), &src),
        &format!("{name}: varsmith encrypt"),
    );
    let (ext, stem) = (
        Path::new(name).extension().unwrap().to_str().unwrap(),
        Path::new(name).file_stem().unwrap().to_str().unwrap(),
    );
    let fs = e.write(&format!("{stem}.by-sops.{ext}"), &by_sops);
    let fv = e.write(&format!("{stem}.by-vs.{ext}"), &by_vs);
    let want = e.decrypt(e.sops(), &fs);
    for (what, got) in [
        ("varsmith decrypts sops' file", e.decrypt(vs_sops(e), &fs)),
        ("sops decrypts varsmith's file", e.decrypt(e.sops(), &fv)),
        ("varsmith decrypts its own file", e.decrypt(vs_sops(e), &fv)),
    ] {
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{name}: {what}"
        );
    }
    (by_sops, by_vs, want)
}

fn extract(e: &Env, file: &[u8], name: &str, path: &str) -> Vec<u8> {
    let f = e.write(name, file);
    let mut c = vs_sops(e);
    ok(
        c.args(["decrypt", "--extract", path])
            .arg(&f)
            .output()
            .unwrap(),
        "extract",
    )
}

#[test]
fn block_scalars_on_an_unterminated_last_line_keep_their_value() {
    let Some(e) = env() else { return };
    for (i, (plain, value)) in [
        ("a: |\n  x", "x"),
        ("a: |+\n  x", "x"),
        ("a: >\n  x\n  y", "x y"),
        ("a: |\n  x\n  y", "x\ny"),
        ("a: |\n  x\n  ", "x\n"),
        ("a: |+\n  x\n\n", "x\n\n"),
        ("a: |-\n  x", "x"),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, by_vs, _) = both_ways(&e, &format!("blk{i}.yaml"), plain.as_bytes());
        let got = extract(&e, &by_vs, &format!("blk{i}.check.yaml"), "[\"a\"]");
        assert_eq!(
            String::from_utf8_lossy(&got),
            value,
            "{plain:?}: the secret changed"
        );
    }
}

const UCR: &str = "# sops:nocrypt\na: 1\nb: 2\n# other comment\nlist:\n  # sops:nocrypt\n  - x\n  - y\n  # tail\nc: 3\n";

#[test]
fn unencrypted_comment_regex_keeps_matching_comments_and_decrypts_both_ways() {
    let Some(e) = env() else { return };
    e.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {}\n    unencrypted_comment_regex: \"sops:nocrypt\"\n",
            e.rcpt
        )
        .as_bytes(),
    );
    let (by_sops, by_vs, _) = both_ways(&e, "ucr.yaml", UCR.as_bytes());
    let lines = |b: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(b)
            .lines()
            .take_while(|l| !l.starts_with("sops:"))
            .map(|l| {
                // Compare structure: ENC values differ by IV.
                match l.find("ENC[") {
                    Some(i) => format!("{}ENC", &l[..i]),
                    None => l.to_string(),
                }
            })
            .collect()
    };
    assert_eq!(
        lines(&by_vs),
        lines(&by_sops),
        "same plaintext/encrypted layout as sops"
    );
    assert!(String::from_utf8_lossy(&by_vs).contains("\n    # sops:nocrypt\n    - x\n"));
}

#[test]
fn unencrypted_comment_regex_matching_encrypted_comments_is_refused_like_sops() {
    let Some(e) = env() else { return };
    e.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {}\n    unencrypted_comment_regex: \"A\"\n",
            e.rcpt
        )
        .as_bytes(),
    );
    let src = e.write("ucr.yaml", b"# hello\na: 1\n");
    let s = e.encrypt(e.sops(), &src);
    assert_eq!(s.status.code(), Some(23), "sops refuses");
    let v = e.encrypt(vs_sops(&e), &src);
    let stderr = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unencrypted_comment_regex") && stderr.contains("ucr.yaml"));
    assert!(v.stdout.is_empty());
}

#[test]
fn merge_keys_decrypt_whoever_wrote_the_file() {
    let Some(e) = env() else { return };
    let (_, by_vs, want) = both_ways(
        &e,
        "merge.yaml",
        b"base: &b\n  x: 1\n  y: two\nderived:\n  <<: *b\n  y: three\n",
    );
    assert!(String::from_utf8_lossy(&want).contains("!!merge <<:"));
    assert!(String::from_utf8_lossy(&by_vs).contains("    !!merge <<:\n"));
}

#[test]
fn top_level_flow_mappings_are_accepted_and_comment_only_files_refused() {
    let Some(e) = env() else { return };
    both_ways(&e, "flow.yaml", br#"{"a": 2, "b": {"c": [1, "x"]}}"#);
    both_ways(&e, "empty.yaml", b"{}\n");
    let src = e.write("comments.yaml", b"# only a comment\n# and another\n");
    assert_eq!(e.encrypt(e.sops(), &src).status.code(), Some(2));
    let v = e.encrypt(vs_sops(&e), &src);
    assert_eq!(v.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&v.stderr).contains("comments.yaml"));
}

#[test]
fn multiline_strings_with_tabs_are_literal_blocks_as_in_sops() {
    let Some(e) = env() else { return };
    let (_, _, want) = both_ways(&e, "tab.yaml", b"a: \"x\\ty\\nz\"\nb: \"one\\ttab\"\n");
    assert_eq!(
        String::from_utf8_lossy(&want),
        "a: |-\n    x\ty\n    z\nb: \"one\\ttab\"\n"
    );
}

#[test]
fn trailing_comments_land_where_go_yaml_puts_them() {
    let Some(e) = env() else { return };
    for (i, plain) in [
        "a:\n  b: 1\n  # after b\nc: 2\n",
        "a:\n  b: 1\n# col0\nc: 2\n",
        "a:\n  b:\n    x: 1\n    # deep\n  # mid\n# top\nc: 2\n",
        "a:\n  b:\n    x: 1\n  # after map in map\nc: 2\n",
        "a:\n  b:\n    - 1\n  # after seq in map\nc: 2\n",
        "a:\n  b:\n    - 1\n   # 3 spaces\nc: 2\n",
        "a:\n  b:\n    - 1\n  # head of d\n  d: 3\n",
        "a:\n  - x: 1\n  # after map in seq\nc: 2\n",
        "a:\n  - - 1\n  # nested seq\nc: 2\n",
        "l:\n  - a: 1\n    # in item\n  - b\n  # after list\nc: 1\n",
        "a:\n  b: 1\n  # trailing at end\n",
        "a: 1 # inline\nb:\n  c: 2 # inl2\n",
    ]
    .into_iter()
    .enumerate()
    {
        let (_, _, want) = both_ways(&e, &format!("cm{i}.yaml"), plain.as_bytes());
        assert!(
            !String::from_utf8_lossy(&want).contains("ENC["),
            "{plain:?}"
        );
    }
}

#[test]
fn ini_and_non_age_creation_rules_are_clear_errors() {
    let Some(e) = env() else { return };
    let ini = e.write("app.ini", b"[sec]\nkey = value\n");
    let v = e.encrypt(vs_sops(&e), &ini);
    let stderr = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("app.ini") && stderr.contains("INI"),
        "{stderr}"
    );
    assert!(v.stdout.is_empty());
    e.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {}\n    pgp: FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4\n",
            e.rcpt
        )
        .as_bytes(),
    );
    let src = e.write("s.yaml", b"a: 1\n");
    let v = e.encrypt(vs_sops(&e), &src);
    let stderr = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(".sops.yaml") && stderr.contains("pgp"),
        "{stderr}"
    );
}

#[test]
fn stores_indent_settings_are_applied_like_sops() {
    let Some(e) = env() else { return };
    e.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {}\nstores:\n  yaml:\n    indent: 2\n  json:\n    indent: 2\n",
            e.rcpt
        )
        .as_bytes(),
    );
    let shape = |b: &[u8]| -> String {
        String::from_utf8_lossy(b)
            .lines()
            .map(|l| match l.find("ENC[").or_else(|| l.find("\"ENC[")) {
                Some(i) => format!("{}ENC", &l[..i]),
                None => l.to_string(),
            })
            .filter(|l| !l.contains("lastmodified") && !l.trim_start().starts_with("mac"))
            .take_while(|l| !l.contains("age"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (s, v, want) = both_ways(&e, "ind.yaml", b"a:\n  b: [1, 2]\n  c: x\n");
    assert_eq!(shape(&v), shape(&s));
    assert!(String::from_utf8_lossy(&want).starts_with("a:\n  b:\n    - 1\n"));
    let (s, v, want) = both_ways(&e, "ind.json", br#"{"a": {"b": [1, 2]}}"#);
    assert_eq!(shape(&v), shape(&s));
    assert!(String::from_utf8_lossy(&want).starts_with("{\n  \"a\": {\n    \"b\": [\n"));
}

#[test]
fn sops_age_recipients_is_read_like_sops() {
    let Some(e) = env() else { return };
    let src = e.write("r.yaml", b"a: secret\n");
    let mut c = vs_sops(&e);
    c.env("SOPS_AGE_RECIPIENTS", &e.rcpt);
    let out = ok(c.arg("encrypt").arg(&src).output().unwrap(), "encrypt");
    assert!(String::from_utf8_lossy(&out).contains(&e.rcpt));
    let f = e.write("r.enc.yaml", &out);
    assert_eq!(e.decrypt(e.sops(), &f), b"a: secret\n");
}

/// A comment at the very end of a file, indented under a nested list: go-yaml reads it
/// back one level deeper than it was written, so sops prints its own file's comment still
/// encrypted. varsmith writes the same bytes and reads both files' comment back.
#[test]
fn a_trailing_comment_at_the_end_of_the_file_is_read_back_by_varsmith() {
    let Some(e) = env() else { return };
    let src = e.write("eof.yaml", b"a:\n  b:\n    - 1\n  # end of file\n");
    for by_sops in [true, false] {
        let c = if by_sops { e.sops() } else { vs_sops(&e) };
        let enc = ok(e.encrypt(c, &src), "encrypt");
        let f = e.write(&format!("eof.{}.yaml", by_sops as u8), &enc);
        let got = e.decrypt(vs_sops(&e), &f);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "a:\n    b:\n        - 1\n        # end of file\n",
            "by_sops={by_sops}"
        );
    }
}
