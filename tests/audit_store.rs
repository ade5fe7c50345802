//! Store audit against a real nix store (Debian `nix-bin`, single-user as root, sandbox off,
//! plain `builtins.derivation` with `/bin/sh` as builder), plus walk behaviour on a private
//! store directory (`.links` skipped, hard links reported for every path).
//!
//! The secret is random per run and never appears in a derivation (the builders read it from
//! a temporary file), so only this run's two output paths can hold it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::Rng;
use rand::distributions::Alphanumeric;
use varsmith::audit::{self, AuditOptions, Encoding, Location, Report, Secret};
use zeroize::Zeroizing;

fn random_secret() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// True when nix can build here. In CI (`CI=true`) a missing nix is a failure, else a skip.
fn nix_available() -> bool {
    let ok = Command::new("nix-build")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !crate::util::ci::in_ci(),
            "nix-build is missing (CI=true: the test script installs nix-bin)"
        );
        crate::util::ci::skipped(
            "nix-build not found; install nix-bin to run the store audit tests",
        );
    }
    ok
}

fn nix_build(expr: &Path, attr: &str) -> PathBuf {
    let out = Command::new("nix-build")
        .args(["--option", "sandbox", "false"])
        .args(["--option", "substituters", ""])
        .arg("--no-out-link")
        .arg(expr)
        .args(["-A", attr])
        .output()
        .expect("run nix-build");
    assert!(
        out.status.success(),
        "nix-build -A {attr} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

struct Built {
    _dir: tempfile::TempDir,
    secret: String,
    raw: PathBuf,
    b64: PathBuf,
    clean: PathBuf,
}

fn build_derivations() -> Built {
    let dir = tempfile::Builder::new()
        .prefix("varsmith-audit-")
        .tempdir()
        .unwrap();
    let secret = random_secret();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, &secret).unwrap();
    let nonce = random_secret();
    let s = secret_file.display();
    // The secret's path is a string, not a nix path: nothing is copied into the store.
    let expr = format!(
        r#"let
  mk = name: cmd: builtins.derivation {{
    inherit name;
    nonce = "{nonce}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" cmd ];
  }};
in {{
  raw = mk "vs-audit-raw" "{{ printf 'password='; /bin/cat {s}; echo; }} > $out";
  b64 = mk "vs-audit-b64" "{{ printf 'x'; /bin/cat {s}; }} | /usr/bin/base64 -w0 > $out";
  clean = mk "vs-audit-clean" "/bin/mkdir $out; echo nothing to see > $out/file";
}}
"#
    );
    let expr_file = dir.path().join("leaks.nix");
    std::fs::write(&expr_file, expr).unwrap();
    let raw = nix_build(&expr_file, "raw");
    let b64 = nix_build(&expr_file, "b64");
    let clean = nix_build(&expr_file, "clean");
    Built {
        _dir: dir,
        secret,
        raw,
        b64,
        clean,
    }
}

fn secrets(value: &str) -> Vec<Secret> {
    vec![
        Secret::new(
            "cinnabar/password/password",
            Zeroizing::new(value.as_bytes().to_vec()),
        ),
        Secret::new("cinnabar/pin/pin", Zeroizing::new(b"1234\n".to_vec())),
    ]
}

fn store_paths(report: &Report) -> BTreeSet<(PathBuf, String)> {
    report
        .findings
        .iter()
        .map(|f| match &f.location {
            Location::Store { store_path, .. } => (store_path.clone(), f.encoding.to_string()),
            other => panic!("unexpected location {other:?}"),
        })
        .collect()
}

fn assert_no_secret(report: &Report, secret: &str) {
    let mut human = Vec::new();
    report.write_human(&mut human).unwrap();
    let human = String::from_utf8(human).unwrap();
    let json = report.to_json().to_string();
    for text in [&human, &json] {
        assert!(!text.contains(secret), "secret printed");
        assert!(!text.contains(&secret[4..20]), "part of the secret printed");
    }
}

#[test]
fn real_store_finds_exactly_the_two_leaky_paths() {
    if !nix_available() {
        return;
    }
    let built = build_derivations();
    let secrets = secrets(&built.secret);

    let report = audit::run(
        &secrets,
        &AuditOptions {
            store: Some(PathBuf::from("/nix/store")),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    let want: BTreeSet<(PathBuf, String)> = [
        (built.raw.clone(), Encoding::Raw.to_string()),
        (
            built.b64.clone(),
            Encoding::Base64 {
                url: false,
                alignment: 1,
            }
            .to_string(),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(store_paths(&report), want);
    assert_eq!(report.findings.len(), 2, "{:?}", report.findings);
    let raw = report
        .findings
        .iter()
        .find(|f| f.encoding == Encoding::Raw)
        .unwrap();
    assert_eq!(raw.offset, "password=".len() as u64);
    assert_eq!(raw.var, "cinnabar/password/password");
    assert_eq!(report.skipped_short, ["cinnabar/pin/pin".to_string()]);
    assert!(!report.is_clean());
    assert_no_secret(&report, &built.secret);

    // The closure of the clean path is clean; the closure of a leaky one is not.
    let clean = audit::run(
        &secrets,
        &AuditOptions {
            closure: vec![built.clean.clone()],
            ..AuditOptions::default()
        },
    )
    .unwrap();
    assert!(clean.is_clean(), "{:?}", clean.findings);
    assert_eq!(clean.files, 1);
    let leaky = audit::run(
        &secrets,
        &AuditOptions {
            closure: vec![built.b64.clone()],
            ..AuditOptions::default()
        },
    )
    .unwrap();
    assert_eq!(leaky.findings.len(), 1);
    assert_no_secret(&leaky, &built.secret);

    // The same through the binary.
    let dir = tempfile::tempdir().unwrap();
    let secrets_file = dir.path().join("secrets");
    std::fs::write(
        &secrets_file,
        format!(
            "cinnabar/password/password={}\n",
            hex::encode(built.secret.as_bytes())
        ),
    )
    .unwrap();
    let cli = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_varsmith"))
            .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets_file)
            .arg("audit")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains(&built.secret), "secret printed");
        (out.status.code(), stdout)
    };
    let (code, stdout) = cli(&[]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "LEAK {} offset 9: cinnabar/password/password (raw)",
            built.raw.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "LEAK {} offset 2: cinnabar/password/password (base64, alignment 1)",
            built.b64.display()
        )),
        "{stdout}"
    );
    assert_eq!(stdout.matches("LEAK ").count(), 2, "{stdout}");
    let (code, stdout) = cli(&["--closure".as_ref(), built.clean.as_os_str()]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("clean"), "{stdout}");
}

#[test]
fn private_store_skips_links_and_names_every_hard_link() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let secret = random_secret();
    let a = store.join("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-leaky-a");
    let b = store.join("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-leaky-b");
    let links = store.join(".links");
    for d in [&a, &b, &links] {
        std::fs::create_dir_all(d.join("etc")).unwrap();
    }
    let hex = hex::encode_upper(secret.as_bytes());
    std::fs::write(a.join("etc/conf"), format!("key = {hex}\n")).unwrap();
    std::fs::hard_link(a.join("etc/conf"), b.join("etc/conf")).unwrap();
    std::fs::hard_link(a.join("etc/conf"), links.join("0abc")).unwrap();
    // A file only in .links is never searched.
    std::fs::write(links.join("only"), &secret).unwrap();
    std::os::unix::fs::symlink("/nonexistent", b.join("dangling")).unwrap();

    let report = audit::run(
        &secrets(&secret),
        &AuditOptions {
            store: Some(store.clone()),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    let got = store_paths(&report);
    let want: BTreeSet<_> = [(a, "HEX".to_string()), (b, "HEX".to_string())]
        .into_iter()
        .collect();
    assert_eq!(got, want);
    assert!(report.findings.iter().all(|f| f.offset == 6));
    assert_eq!(report.files, 1, "one inode searched once");
    assert_no_secret(&report, &secret);
}

#[test]
fn occurrences_beyond_the_cap_are_counted_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let sp = store.join("cccccccccccccccccccccccccccccccc-log");
    std::fs::create_dir_all(&sp).unwrap();
    let secret = random_secret();
    let line = format!("{secret}\n");
    std::fs::write(sp.join("log"), line.repeat(1005)).unwrap();
    let report = audit::run(
        &secrets(&secret),
        &AuditOptions {
            store: Some(store),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.findings.len(), 1000);
    assert_eq!(report.truncated.len(), 1);
    assert_eq!(report.truncated[0].1, 5);
    assert_no_secret(&report, &secret);
}

/// A value with a quote and a newline interpolated into a derivation lands in the `.drv`
/// file string-escaped (ATerm): the `escaped` encoding finds it.
#[test]
fn real_drv_holds_escaped_value() {
    if !nix_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (random_secret(), random_secret());
    let value = format!("{a}\"quoted\"\n{b}");
    let nix_literal = format!("{a}\\\"quoted\\\"\\n{b}");
    let expr = dir.path().join("drv.nix");
    std::fs::write(
        &expr,
        format!(
            r#"builtins.derivation {{
  name = "vs-audit-drv";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo > $out" ];
  password = "{nix_literal}";
}}
"#
        ),
    )
    .unwrap();
    let out = Command::new("nix-instantiate").arg(&expr).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drv = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let report = audit::run(
        &[Secret::new(
            "cinnabar/app/password",
            Zeroizing::new(value.into_bytes()),
        )],
        &AuditOptions {
            closure: vec![drv.clone()],
            ..AuditOptions::default()
        },
    )
    .unwrap();
    let got = store_paths(&report);
    assert_eq!(
        got,
        [(drv, "escaped".to_string())].into_iter().collect(),
        "{:?}",
        report.findings
    );
    assert_no_secret(&report, &a);
}
