//! Hostile input to every sops parser (YAML, JSON, dotenv, `.sops.yaml`): nesting 100,000
//! deep, alias bombs, huge flow lists, oversized files. Each run must end by itself with exit
//! 2 and an error naming the file: no stack overflow, abort, hang or unbounded allocation.
//! The 60 s guard only detects hangs; the elapsed times are printed (`--nocapture`).

use crate::util::sops::*;
use std::path::Path;
use std::time::Duration;

const GUARD: Duration = Duration::from_secs(60);
const DEEP: usize = 100_000;

fn recipient() -> String {
    recipient_of(&fixture("admin.agekey"))
}

/// `varsmith sops encrypt` of `name` holding `content`; asserts exit 2 naming the file.
fn expect_refused(name: &str, content: &[u8], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap();
    let mut cmd = varsmith(home.path());
    cmd.args(["sops", "encrypt", "--age", &recipient()])
        .arg(&file);
    let (out, took) = run_guarded(cmd, b"", GUARD);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{what}: exit {:?} in {took:?}", out.status.code());
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(
        stderr.contains(name),
        "{what}: error does not name the file: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{what}: wrote output");
}

fn nested_flow(open: &str, close: &str, n: usize) -> String {
    format!("a: {}1{}\n", open.repeat(n), close.repeat(n))
}

#[test]
fn yaml_nesting_100000_deep_is_refused() {
    expect_refused(
        "seq.yaml",
        nested_flow("[", "]", DEEP).as_bytes(),
        "yaml flow seqs",
    );
    let maps = format!("a: {}1{}\n", "{b: ".repeat(DEEP), "}".repeat(DEEP));
    expect_refused("map.yaml", maps.as_bytes(), "yaml flow maps");
    let block = format!("a:\n{}x\n", "- ".repeat(DEEP));
    expect_refused("block.yaml", block.as_bytes(), "yaml block seqs");
    let top = format!("{}{}\n", "{a: ".repeat(DEEP), "}".repeat(DEEP));
    expect_refused("top.yaml", top.as_bytes(), "yaml top-level flow maps");
}

/// A "billion laughs": 10 levels, each an anchored list of 10 aliases of the one before.
fn alias_bomb() -> String {
    let mut s = String::from("l0: &l0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        s.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    s
}

#[test]
fn yaml_alias_bomb_is_refused() {
    expect_refused("bomb.yaml", alias_bomb().as_bytes(), "yaml alias bomb");
    // The same bomb in block style.
    let mut s = String::from("l0: &l0\n  - lol\n  - lol\n");
    for i in 1..12 {
        s.push_str(&format!("l{i}: &l{i}\n"));
        for _ in 0..10 {
            s.push_str(&format!("  - *l{}\n", i - 1));
        }
    }
    expect_refused("bomb2.yaml", s.as_bytes(), "yaml block alias bomb");
}

#[test]
fn json_nesting_100000_deep_is_refused() {
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(DEEP), "]".repeat(DEEP));
    expect_refused("deep.json", deep.as_bytes(), "json arrays");
    let maps = format!("{}1{}", "{\"a\": ".repeat(DEEP), "}".repeat(DEEP));
    expect_refused("maps.json", maps.as_bytes(), "json objects");
}

#[test]
fn dotenv_metadata_nesting_100000_deep_is_refused() {
    // dotenv is flat; its only nesting is the flattened sops_ metadata keys.
    let deep = format!("A=1\nsops_x{}=1\n", "__map_k".repeat(DEEP));
    expect_refused("deep.env", deep.as_bytes(), "dotenv __map_ nesting");
    let wide = b"A=1\nsops_x__list_999999999999=1\n";
    expect_refused("wide.env", wide, "dotenv huge __list_ index");
}

/// `.sops.yaml` is read by the same YAML parser; its errors name the config file.
fn expect_config_refused(config: &[u8], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".sops.yaml"), config).unwrap();
    std::fs::write(dir.path().join("s.yaml"), b"a: 1\n").unwrap();
    let mut cmd = varsmith(home.path());
    cmd.current_dir(dir.path())
        .args(["sops", "encrypt", "s.yaml"]);
    let (out, took) = run_guarded(cmd, b"", GUARD);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{what}: exit {:?} in {took:?}", out.status.code());
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(stderr.contains(".sops.yaml"), "{what}: {stderr}");
}

#[test]
fn sops_yaml_config_nesting_and_alias_bomb_are_refused() {
    let deep = format!(
        "creation_rules:\n  - age: {}\n    x: {}1{}\n",
        recipient(),
        "[".repeat(DEEP),
        "]".repeat(DEEP)
    );
    expect_config_refused(deep.as_bytes(), "config nesting");
    let bomb = format!(
        "{}creation_rules:\n  - age: {}\n",
        alias_bomb(),
        recipient()
    );
    expect_config_refused(bomb.as_bytes(), "config alias bomb");
}

#[test]
fn input_over_the_size_cap_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.yaml");
    std::fs::write(&file, "a: 1\n".repeat(10_000)).unwrap();
    for verb in ["encrypt", "decrypt"] {
        let mut cmd = varsmith(home.path());
        cmd.env("VARSMITH_SOPS_MAX_INPUT", "4096")
            .args(["sops", verb])
            .arg(&file);
        if verb == "encrypt" {
            cmd.args(["--age", &recipient()]);
        }
        let (out, _) = run_guarded(cmd, b"", GUARD);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {stderr}");
        assert!(
            stderr.contains("big.yaml") && stderr.contains("larger than 4096"),
            "{stderr}"
        );
    }
    // stdin too.
    let mut cmd = varsmith(home.path());
    cmd.env("VARSMITH_SOPS_MAX_INPUT", "4096")
        .args(["sops", "decrypt", "--input-type", "yaml"]);
    let (out, _) = run_guarded(cmd, "a: 1\n".repeat(10_000).as_bytes(), GUARD);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("<stdin>"));
}

/// A long multi-line flow list and a long multi-line quoted string are read in linear
/// time: the guard catches a quadratic rescan (100,000 lines would take minutes).
#[test]
fn long_multiline_flow_and_quoted_scalars_parse() {
    let n = 100_000;
    let mut y = String::from("list: [\n");
    for i in 0..n {
        y.push_str(&format!("  v{i},\n"));
    }
    y.push_str("]\nq: \"");
    for i in 0..n {
        y.push_str(&format!("w{i}\n  "));
    }
    y.push_str("end\"\n");
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.yaml");
    std::fs::write(&file, &y).unwrap();
    let mut cmd = varsmith(home.path());
    cmd.args(["sops", "encrypt", "--age", &recipient()])
        .arg(&file);
    let (out, took) = run_guarded(cmd, b"", GUARD);
    eprintln!("100,000-line flow list + quoted scalar: encrypted in {took:?}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enc = dir.path().join("long.enc.yaml");
    std::fs::write(&enc, &out.stdout).unwrap();
    let plain = ok(
        vs_decrypt(home.path(), &fixture("admin.agekey"), &enc),
        "decrypt",
    );
    assert!(plain.starts_with(b"list:\n    - v0\n"));
    let _ = Path::new("");
}
