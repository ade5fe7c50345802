//! Issue 22, gates: `nix flake check` (with `varsmith.lib.flakeCheck`), `varsmith check` and
//! `varsmith check --json`, all without keys, find the same problems on the same broken
//! workspaces: a tampered sops file, an admin added but not re-keyed, an orphan machine tree,
//! a removed generator's leftover state and facts, a darwin machine with missing vars, and a
//! stale shared generator. The example fleet (4 NixOS, 4 nix-darwin machines) is generated
//! once; each scenario breaks it, is checked by all three, and is undone with git.
//!
//! Needs real Nix and the offline kit (tests/common_nix): skipped with the reason outside CI
//! when missing, a failure in CI.

use std::path::Path;
use std::process::Command;

use crate::util::nix::{Fleet, Kit, Run, git, run};
use serde_json::Value;

/// A valid age recipient nobody in the test holds the key of.
const BOB: &str = "age1wqpj236clhpuxcv77ua76s5lplvjxywf4zlye7y2trhfkztm9unqdn53dz";

/// varsmith in the workspace without any identity (`SOPS_AGE_KEY_FILE` empty, a HOME with no
/// keys.txt): what CI runs.
fn keyless(f: &Fleet, args: &[&str]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C")
        .arg(&f.ws)
        .args(args)
        .env("SOPS_AGE_KEY_FILE", "")
        .env_remove("SOPS_AGE_KEY")
        .env("XDG_RUNTIME_DIR", f.runtime.path())
        .env("HOME", f.tmp.path().join("home"))
        .env("VARSMITH_NIX_FLAGS", f.kit.flags());
    run(c)
}

fn repo(f: &Fleet) -> &Path {
    f.ws.parent().unwrap().parent().unwrap()
}

/// What each gate said about one workspace.
struct Verdicts {
    text: Run,
    json: Value,
    json_ok: bool,
    nix: Run,
}

fn verdicts(f: &Fleet) -> Verdicts {
    git(repo(f), &["add", "-A"]);
    let text = keyless(f, &["check", "--verbose"]);
    let j = keyless(f, &["check", "--json"]);
    let json = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}: {}", j.stdout));
    let nix = f.flake_check();
    Verdicts {
        text,
        json,
        json_ok: j.ok,
        nix,
    }
}

/// Every token appears in all three verdicts, and all three fail.
fn agree(name: &str, v: &Verdicts, tokens: &[&str]) {
    assert!(!v.text.ok, "{name}: check passed:\n{}", v.text.stderr);
    assert!(!v.json_ok, "{name}: check --json passed");
    assert!(
        !v.nix.ok,
        "{name}: nix flake check passed:\n{}",
        v.nix.stderr
    );
    let json = v.json["findings"].to_string();
    for t in tokens {
        assert!(
            v.text.stdout.contains(t),
            "{name}: check lacks {t:?}:\n{}",
            v.text.stdout
        );
        assert!(
            json.contains(t),
            "{name}: check --json lacks {t:?}:\n{json}"
        );
        assert!(
            v.nix.stderr.contains(t),
            "{name}: nix flake check lacks {t:?}:\n{}",
            v.nix.stderr
        );
    }
}

fn undo(f: &Fleet) {
    git(repo(f), &["reset", "-q", "--hard"]);
    git(repo(f), &["clean", "-fdq"]);
}

fn write(f: &Fleet, rel: &str, bytes: &[u8]) {
    let p = f.ws.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// One base64 character of the first encrypted value flipped: the structure stays valid, so
/// only the recorded SHA-256 (or a MAC, with a key) can tell.
fn tamper(f: &Fleet, rel: &str) {
    let text = String::from_utf8(f.read(rel)).unwrap();
    let at = text
        .find("ENC[AES256_GCM,data:")
        .expect("an encrypted value")
        + 20;
    let c = text.as_bytes()[at];
    let flipped = if c == b'A' { 'B' } else { 'A' };
    let mut out = text.clone();
    out.replace_range(at..at + 1, &flipped.to_string());
    write(f, rel, out.as_bytes());
}

#[test]
fn nix_flake_check_and_check_agree_on_broken_workspaces() {
    let Some(kit) = Kit::find() else { return };
    let f = Fleet::new(kit);
    f.generate(&["--all"]);
    // rekey writes the admins mirror the module reads (and records every file).
    let r = f.varsmith(&["rekey"]);
    assert!(r.ok, "rekey: {}", r.stderr);
    assert!(f.ws.join("varsmith.admins.json").is_file());
    git(repo(&f), &["add", "-A"]);
    git(repo(&f), &["commit", "-qm", "generated"]);

    let v = verdicts(&f);
    assert!(v.text.ok, "clean check: {}{}", v.text.stdout, v.text.stderr);
    assert!(v.json_ok && v.json["findings"].as_array().unwrap().is_empty());
    assert!(v.nix.ok, "clean nix flake check: {}", v.nix.stderr);

    let tampered = "sops/machines/cinnabar/secrets/password.yaml";
    tamper(&f, tampered);
    agree(
        "tampered",
        &verdicts(&f),
        &[tampered, "modified outside varsmith"],
    );
    // With the admin key the MAC decides: the tampered value fails it.
    let r = f.varsmith(&["check"]);
    assert!(!r.ok && r.stdout.contains("mac"), "{}", r.stdout);
    assert!(!r.stderr.contains("does not open them"), "{}", r.stderr);
    undo(&f);

    let r = f.varsmith(&["admin", "add", "bob", BOB]);
    assert!(r.ok, "admin add: {}", r.stderr);
    let v = verdicts(&f);
    // `nix flake check` stops at the first failing output (here any machine's assertions):
    // every machine's message names bob's recipient.
    agree("missing recipient", &v, &[BOB, "missing"]);
    // Without --verbose, one line for all files lacking bob.
    let grouped = keyless(&f, &["check"]);
    let lines = grouped.stdout.lines().filter(|l| l.contains(BOB)).count();
    assert!(
        lines < v.text.stdout.lines().filter(|l| l.contains(BOB)).count(),
        "{}",
        grouped.stdout
    );
    assert!(grouped.stdout.contains("files ("), "{}", grouped.stdout);
    undo(&f);

    write(&f, "sops/machines/ghost/key.json", b"[]\n");
    agree("orphan", &verdicts(&f), &["sops/machines/ghost/"]);
    undo(&f);

    write(&f, "sops/machines/cinnabar/state/retired.json", b"{}\n");
    write(&f, "sops/machines/cinnabar/facts/retired/pub", b"x\n");
    agree(
        "leftover generator",
        &verdicts(&f),
        &[
            "sops/machines/cinnabar/state/retired.json",
            "no longer declares generator retired",
        ],
    );
    undo(&f);

    std::fs::remove_file(f.ws.join("sops/machines/stibnite/state/openssh.json")).unwrap();
    agree(
        "darwin missing vars",
        &verdicts(&f),
        &["stibnite", "openssh", "never generated"],
    );
    undo(&f);

    let state = "sops/shared/state/global-identity.json";
    let mut man: Value = serde_json::from_slice(&f.read(state)).unwrap();
    // clan staleness (manifest format 2): the recorded shape (files, secret/deploy) differs.
    man["shape"] = Value::String("0".repeat(64));
    write(&f, state, &serde_json::to_vec_pretty(&man).unwrap());
    agree(
        "stale shared generator",
        &verdicts(&f),
        &["global-identity", "definition changed"],
    );
    undo(&f);
}

/// `varsmith rekey` records a file changed outside varsmith only once an identity verified it;
/// `varsmith sops set` through varsmith records the new hash itself.
#[test]
fn rekey_and_sops_verbs_record_the_new_hash() {
    let Some(kit) = Kit::find() else { return };
    let f = Fleet::new(kit);
    f.generate(&["cinnabar"]);
    let rel = "sops/machines/cinnabar/secrets/password.yaml";
    let r = keyless(&f, &["check", "cinnabar"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);

    // A tampered file: rekey refuses to record it.
    let good = f.read(rel);
    tamper(&f, rel);
    let r = f.varsmith(&["rekey", "cinnabar"]);
    assert!(!r.ok, "rekey recorded a tampered file: {}", r.stderr);
    assert!(r.stderr.contains(rel), "{}", r.stderr);
    write(&f, rel, &good);

    // Edited with varsmith's sops: recorded, keyless check stays clean.
    let file = f.ws.join(rel);
    let r = f.varsmith(&[
        "sops",
        "set",
        file.to_str().unwrap(),
        "[\"password-hash\"]",
        "\"$6$x\"",
    ]);
    assert!(r.ok, "sops set: {}", r.stderr);
    let r = keyless(&f, &["check", "cinnabar"]);
    assert!(r.ok, "after sops set: {}{}", r.stdout, r.stderr);

    // Rotated outside varsmith's reach (a copy outside the workspace, rotated, copied back):
    // valid, but not what varsmith recorded.
    let out = f.tmp.path().join("outside/password.yaml");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, f.read(rel)).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.args(["sops", "rotate", "--in-place"])
        .arg(&out)
        .current_dir(out.parent().unwrap())
        .env("SOPS_AGE_KEY_FILE", &f.key)
        .env("HOME", f.tmp.path().join("home"));
    let r = run(c);
    assert!(r.ok, "sops rotate: {}", r.stderr);
    write(&f, rel, &std::fs::read(&out).unwrap());
    let r = keyless(&f, &["check", "cinnabar"]);
    assert!(
        !r.ok && r.stdout.contains("modified outside varsmith"),
        "{}",
        r.stdout
    );
    let r = f.varsmith(&["check", "cinnabar"]);
    assert!(
        r.ok,
        "with the key the MAC decides: {}{}",
        r.stdout, r.stderr
    );
    let r = f.varsmith(&["rekey", "cinnabar"]);
    assert!(r.ok, "rekey: {}", r.stderr);
    let r = keyless(&f, &["check", "cinnabar"]);
    assert!(r.ok, "after rekey: {}{}", r.stdout, r.stderr);
}
