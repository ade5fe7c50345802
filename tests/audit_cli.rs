//! `varsmith audit` end to end: the binary, its output formats and exit codes.
//!
//! Most tests pass the secrets through the hidden `VARSMITH_AUDIT_SECRETS_FILE` (`label=hex`
//! lines) so they do not depend on the sops module; `sops_workspace_end_to_end` uses a real
//! `sops`-encrypted file and the identity from `SOPS_AGE_KEY_FILE`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use rand::Rng;
use rand::distributions::Alphanumeric;

fn random_secret() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

fn varsmith() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    cmd.env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("VARSMITH_AUDIT_SECRETS_FILE");
    cmd
}

/// Writes a 0600 `label=hex` secrets file.
fn secrets_file(dir: &Path, entries: &[(&str, &str)]) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("secrets.txt");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    for (label, value) in entries {
        writeln!(f, "{label}={}", hex::encode(value)).unwrap();
    }
    path
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_secret_not_in(out: &Output, secret: &str) {
    let all = text(out);
    assert!(!all.contains(secret), "secret printed");
    assert!(!all.contains(&secret[8..24]), "part of the secret printed");
}

#[test]
fn store_leak_exits_1_and_names_path_offset_var_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let secret = random_secret();
    let store = dir.path().join("store");
    let sp = store.join("0123456789abcdfghijklmnpqrsvwxyz-leaky");
    std::fs::create_dir_all(sp.join("etc")).unwrap();
    let mut data = b"yy".to_vec();
    data.extend_from_slice(secret.as_bytes());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&data);
    std::fs::write(
        sp.join("etc/app.json"),
        format!("{{\"token\":\"{encoded}\"}}"),
    )
    .unwrap();
    let secrets = secrets_file(
        dir.path(),
        &[
            ("cinnabar/password/password", &secret),
            ("shared/pin/pin", "1234"),
        ],
    );

    let out = varsmith()
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
        .args(["audit", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Alignment 2 drops the first 3 characters of the value's encoding: offset 10 + 3.
    let line = format!(
        "LEAK {}/etc/app.json offset 13: cinnabar/password/password (base64",
        sp.display()
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert!(stdout.contains("alignment 2)"), "{stdout}");
    assert!(
        stdout.contains("skipped 1 vars shorter than 8 bytes"),
        "{stdout}"
    );
    assert_secret_not_in(&out, &secret);

    let out = varsmith()
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
        .args(["audit", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clean"], false);
    assert_eq!(v["counts"]["findings"], 1);
    assert_eq!(v["skipped"]["count"], 1);
    assert_eq!(v["findings"][0]["store_path"], sp.display().to_string());
    assert_eq!(v["findings"][0]["offset"], 13);
    assert_eq!(v["findings"][0]["alignment"], 2);
    assert_secret_not_in(&out, &secret);

    // A clean store exits 0.
    std::fs::remove_file(sp.join("etc/app.json")).unwrap();
    let out = varsmith()
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
        .args(["audit", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean"));
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.org"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn repo_finds_secret_in_history_and_plaintext_in_sops_file() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let secret = random_secret();
    std::fs::create_dir_all(ws.join("sops/machines/cinnabar/secrets")).unwrap();
    std::fs::write(ws.join("varsmith.yaml"), "machines:\n  cinnabar: {}\n").unwrap();
    std::fs::write(
        ws.join("sops/machines/cinnabar/secrets/password.yaml"),
        "password: ENC[AES256_GCM,data:AAAA,iv:BBBB,tag:CCCC,type:str]\n\
         api_token: not-encrypted-at-all\n\
         password_unencrypted: metadata\n\
         sops:\n  version: 3.11.0\n",
    )
    .unwrap();
    git(&ws, &["init", "-q"]);
    std::fs::write(
        ws.join("configuration.nix"),
        format!("{{ pw = \"{secret}\"; }}\n"),
    )
    .unwrap();
    git(&ws, &["add", "-A"]);
    git(&ws, &["commit", "-q", "-m", "oops"]);
    let leaky_commit = git(&ws, &["rev-parse", "HEAD"]);
    std::fs::write(
        ws.join("configuration.nix"),
        "{ pw = builtins.readFile /run/secrets/pw; }\n",
    )
    .unwrap();
    git(&ws, &["commit", "-q", "-am", "fix"]);
    let secrets = secrets_file(dir.path(), &[("cinnabar/password/password", &secret)]);

    let out = varsmith()
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
        .arg("-C")
        .arg(&ws)
        .args(["audit", "--repo", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_secret_not_in(&out, &secret);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{v:#}");
    assert_eq!(findings[0]["kind"], "git");
    assert_eq!(findings[0]["commit"], leaky_commit);
    assert_eq!(findings[0]["path"], "configuration.nix");
    assert_eq!(findings[0]["offset"], 8);
    assert_eq!(findings[0]["encoding"], "raw");
    let plaintext = v["plaintext"].as_array().unwrap();
    assert_eq!(plaintext.len(), 1, "{v:#}");
    assert_eq!(plaintext[0]["key"], "api_token");
    assert!(
        !text(&out).contains("not-encrypted-at-all"),
        "plaintext value printed"
    );

    let out = varsmith()
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
        .arg("-C")
        .arg(&ws)
        .args(["audit", "--repo"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "LEAK git {leaky_commit}:configuration.nix offset 8"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("PLAINTEXT sops/machines/cinnabar/secrets/password.yaml key api_token"),
        "{stdout}"
    );
}

fn tool(name: &str) -> bool {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(!crate::util::ci::in_ci(), "{name} is missing (CI=true)");
        crate::util::ci::skipped(&format!("{name} not found"));
    }
    ok
}

/// The whole path: a real `sops`-encrypted secret, decrypted with the identity from
/// `SOPS_AGE_KEY_FILE`, found in a store; a second machine's file encrypted to another key is
/// counted as not readable.
#[test]
fn sops_workspace_end_to_end() {
    if !tool("sops") || !tool("age-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let key = dir.path().join("admin.agekey");
    let other_key = dir.path().join("other.agekey");
    for k in [&key, &other_key] {
        let out = Command::new("age-keygen")
            .arg("-o")
            .arg(k)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let recipient = |k: &Path| {
        let out = Command::new("age-keygen")
            .arg("-y")
            .arg(k)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let secret = random_secret();
    std::fs::create_dir_all(&ws).unwrap();
    std::fs::write(
        ws.join("varsmith.yaml"),
        "machines:\n  cinnabar: {}\n  other: {}\n",
    )
    .unwrap();
    let encrypt = |host: &str, value: &str, to: &Path| {
        let secrets_dir = ws.join(format!("sops/machines/{host}/secrets"));
        std::fs::create_dir_all(&secrets_dir).unwrap();
        let plain = dir.path().join(format!("{host}.yaml"));
        std::fs::write(&plain, format!("password: {value}\n")).unwrap();
        let out = Command::new("sops")
            .args(["encrypt", "--age", &recipient(to)])
            .arg(&plain)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        std::fs::write(secrets_dir.join("password.yaml"), &out.stdout).unwrap();
        std::fs::remove_file(&plain).unwrap();
    };
    encrypt("cinnabar", &secret, &key);
    encrypt("other", &random_secret(), &other_key);

    let store = dir.path().join("store");
    let sp = store.join("0123456789abcdfghijklmnpqrsvwxyz-leaky");
    std::fs::create_dir_all(&sp).unwrap();
    std::fs::write(sp.join("config"), format!("password={secret}\n")).unwrap();

    let out = varsmith()
        .env("SOPS_AGE_KEY_FILE", &key)
        .arg("-C")
        .arg(&ws)
        .args(["audit", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_secret_not_in(&out, &secret);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["counts"]["findings"], 1, "{v:#}");
    assert_eq!(v["findings"][0]["var"], "cinnabar/password/password");
    assert_eq!(v["findings"][0]["offset"], 9);
    assert_eq!(v["counts"]["not_readable"], 1);

    // Without the leak, the undecryptable file still makes the audit not clean (fail
    // closed) unless partial results are allowed.
    std::fs::remove_file(sp.join("config")).unwrap();
    let audit = |extra: &[&str]| {
        let out = varsmith()
            .env("SOPS_AGE_KEY_FILE", &key)
            .arg("-C")
            .arg(&ws)
            .args(["audit", "--store"])
            .arg(&store)
            .args(extra)
            .output()
            .unwrap();
        assert_secret_not_in(&out, &secret);
        out
    };
    let out = audit(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not covered: sops file sops/machines/other/secrets/password.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("not clean: the audit is partial"),
        "{stdout}"
    );
    let out = audit(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clean"], false, "{v:#}");
    let out = audit(&["--allow-partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean (partial, allowed)"));
}

/// Unreadable files fail the audit closed: "not clean", exit 1, with what was not covered;
/// `--allow-partial` accepts them. As root (who reads any file) the binary runs as `nobody`
/// through `setpriv`; a truncated gzip file is not covered either.
#[test]
fn unreadable_files_make_the_audit_not_clean() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if root && !tool("setpriv") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = random_secret();
    let store = dir.path().join("store");
    let sp = store.join("0123456789abcdfghijklmnpqrsvwxyz-partial");
    std::fs::create_dir_all(&sp).unwrap();
    std::fs::write(sp.join("readable"), "nothing here\n").unwrap();
    std::fs::write(sp.join("locked"), format!("password={secret}\n")).unwrap();
    std::fs::set_permissions(sp.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    // A gzip header followed by garbage: searched raw, but not decompressed in full.
    std::fs::write(
        sp.join("broken.gz"),
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage",
    )
    .unwrap();
    let secrets = secrets_file(dir.path(), &[("cinnabar/password/password", &secret)]);
    for p in [dir.path(), store.as_path(), sp.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The build tree may not be reachable by nobody (a checkout under /root): run a copy.
    let bin = dir.path().join("varsmith-bin");
    std::fs::copy(env!("CARGO_BIN_EXE_varsmith"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let audit = |extra: &[&str]| {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin);
            c
        } else {
            varsmith()
        };
        let out = cmd
            .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets)
            .args(["audit", "--store"])
            .arg(&store)
            .args(extra)
            .output()
            .unwrap();
        assert_secret_not_in(&out, &secret);
        out
    };
    let out = audit(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let locked = format!("not covered: {}/locked: ", sp.display());
    assert!(stdout.contains(&locked), "{stdout}");
    let broken = stdout
        .lines()
        .find(|l| l.contains("broken.gz: could not fully scan: "));
    assert!(broken.is_some_and(|l| l.ends_with("(in gzip)")), "{stdout}");
    assert!(
        stdout.contains("not clean: the audit is partial"),
        "{stdout}"
    );

    let out = audit(&["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["clean"].as_bool(), v["complete"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(v["counts"]["errors"], 2, "{v:#}");
    assert_eq!(v["counts"]["findings"], 0);

    let out = audit(&["--allow-partial", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["clean"].as_bool(), v["complete"].as_bool()),
        (Some(true), Some(false))
    );
}
