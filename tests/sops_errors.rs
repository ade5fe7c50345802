//! Bad input through the `varsmith` binary: sops' exit code for the failure (checked
//! against the real sops where they must agree: 25 value, 51 MAC, 128 no identity, 203
//! already encrypted; 2 for input that does not parse), stderr names the file and never
//! shows a plaintext, and nothing is written.

use crate::util::sops::*;
use std::path::Path;

const SECRET: &str = "hunter2-very-secret";

struct Case {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    good: Vec<u8>,
}

fn setup() -> Case {
    let a = fixture("admin.agekey");
    let r = recipient_of(&a);
    let good = varsmith::sops::encrypt_flat_yaml(
        &[
            ("password".into(), SECRET.as_bytes()),
            ("other".into(), b"another-secret-value".as_slice()),
        ],
        &[r],
    )
    .unwrap();
    Case {
        dir: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
        good,
    }
}

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::to_string)
        .collect()
}

fn flip_in(line: &str, after: &str) -> String {
    let i = line.find(after).unwrap() + after.len();
    let mut b = line.as_bytes().to_vec();
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// Runs `varsmith sops decrypt` on `content` and checks the failure.
fn expect_decrypt_failure(c: &Case, name: &str, content: &[u8], code: i32, key: Option<&Path>) {
    let f = c.dir.path().join(name);
    std::fs::write(&f, content).unwrap();
    let mut cmd = varsmith(c.home.path());
    let admin = fixture("admin.agekey");
    cmd.env("SOPS_AGE_KEY_FILE", key.unwrap_or(&admin));
    let out = cmd.args(["sops", "decrypt"]).arg(&f).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{name}: stderr {stderr}");
    assert!(
        stderr.contains(name),
        "{name}: stderr must name the file: {stderr}"
    );
    assert!(
        !stderr.contains(SECRET) && !stderr.contains("another-secret"),
        "{name}: leaked plaintext"
    );
    assert!(
        out.stdout.is_empty(),
        "{name}: nothing may be written to stdout"
    );
    assert_eq!(
        std::fs::read(&f).unwrap(),
        content,
        "{name}: file must be untouched"
    );
    if code != 2 && require("sops") {
        let out = sops_decrypt(c.home.path(), key.unwrap_or(&admin), &[], &f);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: real sops exits differently"
        );
    }
}

#[test]
fn value_edited_fails_with_25() {
    let c = setup();
    let l: Vec<String> = lines(&c.good)
        .into_iter()
        .map(|l| {
            if l.starts_with("password:") {
                flip_in(&l, "data:")
            } else {
                l
            }
        })
        .collect();
    expect_decrypt_failure(
        &c,
        "edited.yaml",
        (l.join("\n") + "\n").as_bytes(),
        25,
        None,
    );
}

#[test]
fn mac_edited_fails_with_51() {
    let c = setup();
    let l: Vec<String> = lines(&c.good)
        .into_iter()
        .map(|l| {
            if l.trim_start().starts_with("mac:") {
                flip_in(&l, "data:")
            } else {
                l
            }
        })
        .collect();
    expect_decrypt_failure(&c, "mac.yaml", (l.join("\n") + "\n").as_bytes(), 51, None);
}

#[test]
fn values_swapped_between_keys_fail_with_25() {
    let c = setup();
    let mut l = lines(&c.good);
    let a = l.iter().position(|x| x.starts_with("password:")).unwrap();
    let b = l.iter().position(|x| x.starts_with("other:")).unwrap();
    let va = l[a]["password:".len()..].to_string();
    let vb = l[b]["other:".len()..].to_string();
    l[a] = format!("password:{vb}");
    l[b] = format!("other:{va}");
    expect_decrypt_failure(
        &c,
        "swapped.yaml",
        (l.join("\n") + "\n").as_bytes(),
        25,
        None,
    );
}

#[test]
fn truncated_file_fails_with_2() {
    let c = setup();
    for cut in [c.good.len() / 3, c.good.len() / 2, c.good.len() - 200] {
        expect_decrypt_failure(&c, "truncated.yaml", &c.good[..cut], 2, None);
    }
}

#[test]
fn no_matching_identity_fails_with_128() {
    let c = setup();
    expect_decrypt_failure(&c, "noid.yaml", &c.good, 128, Some(&fixture("host.agekey")));
}

#[test]
fn malformed_enc_string_fails_with_2() {
    let c = setup();
    let s = String::from_utf8(c.good.clone())
        .unwrap()
        .replacen(",iv:", ",iv=", 1);
    expect_decrypt_failure(&c, "malformed.yaml", s.as_bytes(), 2, None);
}

#[test]
fn plaintext_where_encrypted_expected_fails_with_2() {
    let c = setup();
    let l: Vec<String> = lines(&c.good)
        .into_iter()
        .map(|l| {
            if l.starts_with("password:") {
                "password: 12".to_string()
            } else {
                l
            }
        })
        .collect();
    expect_decrypt_failure(&c, "notenc.yaml", (l.join("\n") + "\n").as_bytes(), 2, None);
}

fn expect_encrypt_failure(name: &str, content: &[u8], code: i32, in_place: bool) {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let f = dir.path().join(name);
    std::fs::write(&f, content).unwrap();
    let r = recipient_of(&fixture("admin.agekey"));
    let mut cmd = varsmith(home.path());
    cmd.args(["sops", "encrypt", "--age", &r]);
    if in_place {
        cmd.arg("--in-place");
    }
    let out = cmd.arg(&f).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{name}: {stderr}");
    assert!(
        stderr.contains(name),
        "{name}: stderr must name the file: {stderr}"
    );
    assert!(!stderr.contains(SECRET), "{name}: leaked plaintext");
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read(&f).unwrap(),
        content,
        "{name}: file must be untouched"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no stray files"
    );
}

#[test]
fn non_string_map_key_fails_with_2() {
    expect_encrypt_failure("intkey.yaml", format!("1: {SECRET}\n").as_bytes(), 2, true);
    expect_encrypt_failure(
        "boolkey.yaml",
        format!("a: b\ntrue: {SECRET}\n").as_bytes(),
        2,
        false,
    );
}

#[test]
fn top_level_list_fails_with_2() {
    expect_encrypt_failure(
        "list.yaml",
        format!("- {SECRET}\n- b\n").as_bytes(),
        2,
        true,
    );
    expect_encrypt_failure("list.json", format!("[\"{SECRET}\"]\n").as_bytes(), 2, true);
}

#[test]
fn unparseable_input_fails_with_2() {
    expect_encrypt_failure(
        "bad.json",
        format!("{{\"a\": \"{SECRET}\"").as_bytes(),
        2,
        true,
    );
    expect_encrypt_failure("bad.yaml", format!("a: \"{SECRET}\n").as_bytes(), 2, true);
    expect_encrypt_failure(
        "dup.yaml",
        format!("a: {SECRET}\na: x\n").as_bytes(),
        2,
        true,
    );
    expect_encrypt_failure("bad.env", format!("NOEQUALS{SECRET}\n").as_bytes(), 2, true);
}

#[test]
fn already_encrypted_input_is_refused() {
    let c = setup();
    expect_encrypt_failure("again.yaml", &c.good, 203, true);
}
