//! `varsmith sops` verbs against the real sops 3.11: same output, same exit codes, and files
//! each tool can read after the other wrote them. `$EDITOR` is a small script.

use crate::util::sops::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const PLAIN: &str =
    "user: admin\npassword: hunter2\ndb:\n    port: 5432\n    hosts:\n        - a\n        - b\n";

struct Env {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    key: PathBuf,
}

fn env() -> Option<Env> {
    if !require("sops") {
        return None;
    }
    Some(Env {
        dir: tempfile::tempdir().unwrap(),
        home: tempfile::tempdir().unwrap(),
        key: fixture("admin.agekey"),
    })
}

impl Env {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, b: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, b).unwrap();
        p
    }
    fn tool(&self, sops: bool) -> Command {
        let mut c = if sops {
            clean("sops", self.home.path())
        } else {
            let mut c = varsmith(self.home.path());
            c.arg("sops");
            c
        };
        c.env("SOPS_AGE_KEY_FILE", &self.key)
            .current_dir(self.dir.path());
        c
    }
    fn run(&self, sops: bool, args: &[&str]) -> Output {
        self.tool(sops).args(args).output().unwrap()
    }
    /// A sops-encrypted copy of PLAIN named `name`.
    fn encrypted(&self, name: &str) -> PathBuf {
        let src = self.write(&format!("plain-{name}"), PLAIN.as_bytes());
        let r = recipient_of(&self.key);
        let out = ok(
            self.tool(true)
                .args(["encrypt", "--age", &r])
                .arg(&src)
                .output()
                .unwrap(),
            "sops encrypt",
        );
        self.write(name, &out)
    }
    fn decrypt_with_sops(&self, f: &Path) -> String {
        String::from_utf8(ok(
            self.tool(true).arg("decrypt").arg(f).output().unwrap(),
            "sops decrypt",
        ))
        .unwrap()
    }
    fn editor(&self, body: &str) -> PathBuf {
        let p = self.path("editor.sh");
        std::fs::write(&p, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }
}

fn s(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The lines of an encrypted YAML file that hold `key` (its ENC value).
fn enc_line(file: &Path, key: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{key}:")))
        .unwrap()
        .to_string()
}

#[test]
fn edit_saves_changes_and_keeps_unchanged_ciphertexts() {
    let Some(e) = env() else { return };
    let f = e.encrypted("e.yaml");
    let before_user = enc_line(&f, "user");
    let log = e.path("editor.log");
    let ed = e.editor(&format!(
        "stat -c %a \"$1\" > {log}\necho \"$#\" >> {log}\nsed -i 's/hunter2/correct-horse/' \"$1\"",
        log = log.display()
    ));
    // A private run-directory base (tmpfs), to see that nothing is left in it.
    let runtime = tempfile::tempdir_in("/dev/shm").unwrap();
    let out = e
        .tool(false)
        .env("EDITOR", &ed)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .arg("edit")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", s(&out));
    let dec = e.decrypt_with_sops(&f);
    assert_eq!(dec, PLAIN.replace("hunter2", "correct-horse"));
    assert_eq!(
        enc_line(&f, "user"),
        before_user,
        "unchanged value keeps its ciphertext"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log, "600\n1\n",
        "editor gets one path argument to a 0600 file"
    );
    let leftovers: Vec<_> = std::fs::read_dir(runtime.path())
        .unwrap()
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert!(leftovers.is_empty(), "plaintext left behind: {leftovers:?}");
}

#[test]
fn edit_unchanged_exits_200_like_sops() {
    let Some(e) = env() else { return };
    let ed = e.editor("true");
    for sops in [true, false] {
        let f = e.encrypted("u.yaml");
        let before = std::fs::read(&f).unwrap();
        let out = e
            .tool(sops)
            .env("EDITOR", &ed)
            .arg("edit")
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(200), "sops={sops}: {}", s(&out));
        assert_eq!(std::fs::read(&f).unwrap(), before);
    }
}

#[test]
fn edit_refuses_to_save_text_that_no_longer_parses() {
    let Some(e) = env() else { return };
    let f = e.encrypted("b.yaml");
    let before = std::fs::read(&f).unwrap();
    let ed = e.editor("printf 'a: [\\n' > \"$1\"");
    // sops loops forever asking to re-edit here; varsmith without a terminal stops.
    let mut c = e.tool(false);
    c.env("EDITOR", &ed).arg("edit").arg(&f);
    let (out, took) = run_guarded(c, b"", Duration::from_secs(60));
    eprintln!("broken edit refused in {took:?}");
    assert_eq!(out.status.code(), Some(2), "{}", s(&out));
    assert!(s(&out).contains("b.yaml"));
    assert_eq!(std::fs::read(&f).unwrap(), before, "original untouched");
    // A top-level `sops` key is refused too.
    let ed = e.editor("printf 'sops: 1\\n' >> \"$1\"");
    let out = e
        .tool(false)
        .env("EDITOR", &ed)
        .arg("edit")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(203), "{}", s(&out));
    assert_eq!(std::fs::read(&f).unwrap(), before);
}

#[test]
fn edit_without_an_editor_exits_201() {
    let Some(e) = env() else { return };
    let f = e.encrypted("n.yaml");
    let out = e
        .tool(false)
        .env_remove("EDITOR")
        .env_remove("SOPS_EDITOR")
        .env("PATH", e.dir.path())
        .arg("edit")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(201), "{}", s(&out));
    let ed = e.editor("exit 3");
    let out = e
        .tool(false)
        .env("EDITOR", &ed)
        .arg("edit")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a failing editor: {}", s(&out));
}

#[test]
fn set_and_unset_match_sops() {
    let Some(e) = env() else { return };
    let cases: &[&[&str]] = &[
        &["set", "F", r#"["password"]"#, r#""s3cret""#],
        &["set", "F", r#"["db"]["user"]"#, r#""dba""#],
        &[
            "set",
            "F",
            r#"["new"]["nested"]"#,
            r#"{"k": [1, true, null]}"#,
        ],
        &["set", "F", r#"["db"]["hosts"][1]"#, r#""c""#],
        &["set", "F", r#"["db"]["hosts"][5]"#, r#""appended""#],
        &["unset", "F", r#"["user"]"#],
        &["unset", "F", r#"["db"]["hosts"][0]"#],
        &["unset", "F", r#"["nope"]"#],
        &["set", "F", "password", r#""x""#],
        &["unset", "F", "user"],
        &["set", "F", r#"["a"]"#, "not-json"],
    ];
    for args in cases {
        let mut got = Vec::new();
        for sops in [true, false] {
            let f = e.encrypted(&format!("s{}.yaml", sops as u8));
            let user = enc_line(&f, "user");
            let fa = f.to_str().unwrap();
            let argv: Vec<&str> = args
                .iter()
                .map(|a| if *a == "F" { fa } else { a })
                .collect();
            let out = e.run(sops, &argv);
            let code = out.status.code();
            let plain = if code == Some(0) {
                e.decrypt_with_sops(&f)
            } else {
                String::new()
            };
            if code == Some(0) && !sops && !args.contains(&r#"["user"]"#) {
                assert_eq!(enc_line(&f, "user"), user, "{args:?}: unchanged ciphertext");
            }
            got.push((code, plain));
        }
        assert_eq!(got[1], got[0], "{args:?}: varsmith vs sops");
    }
}

#[test]
fn set_reads_the_value_from_stdin() {
    let Some(e) = env() else { return };
    let f = e.encrypted("st.yaml");
    let mut c = e.tool(false);
    c.args(["set", "--value-stdin"])
        .arg(&f)
        .arg(r#"["password"]"#);
    let (out, _) = run_guarded(c, br#""from-stdin""#, Duration::from_secs(60));
    assert!(out.status.success(), "{}", s(&out));
    assert!(e.decrypt_with_sops(&f).contains("password: from-stdin\n"));
}

#[test]
fn decrypt_extract_matches_sops() {
    let Some(e) = env() else { return };
    let f = e.encrypted("x.yaml");
    let fa = f.to_str().unwrap();
    for path in [
        r#"["password"]"#,
        r#"["db"]"#,
        r#"["db"]["port"]"#,
        r#"["db"]["hosts"][1]"#,
        r#"["db"]["hosts"]"#,
        r#"["missing"]"#,
        r#"["db"]["hosts"][9]"#,
        "db.port",
    ] {
        let a = e.run(true, &["decrypt", "--extract", path, fa]);
        let b = e.run(false, &["decrypt", "--extract", path, fa]);
        assert_eq!(b.status.code(), a.status.code(), "{path}: {}", s(&b));
        assert_eq!(
            String::from_utf8_lossy(&b.stdout),
            String::from_utf8_lossy(&a.stdout),
            "{path}"
        );
    }
}

#[test]
fn decrypt_stdin_output_and_in_place() {
    let Some(e) = env() else { return };
    let f = e.encrypted("io.yaml");
    let mut c = e.tool(false);
    c.args(["decrypt", "--input-type", "yaml"]);
    let (out, _) = run_guarded(c, &std::fs::read(&f).unwrap(), Duration::from_secs(60));
    assert_eq!(String::from_utf8_lossy(&ok(out, "stdin")), PLAIN);
    let o = e.path("out.yaml");
    let out = e.run(
        false,
        &[
            "decrypt",
            "--output",
            o.to_str().unwrap(),
            f.to_str().unwrap(),
        ],
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{}", s(&out));
    assert_eq!(std::fs::read_to_string(&o).unwrap(), PLAIN);
    assert_eq!(
        std::fs::metadata(&o).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = e.run(false, &["decrypt", "--in-place", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", s(&out));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), PLAIN);
}

#[test]
fn filestatus_matches_sops() {
    let Some(e) = env() else { return };
    let enc = e.encrypted("fs.yaml");
    let plain = e.write("fsp.yaml", PLAIN.as_bytes());
    for f in [&enc, &plain] {
        let a = e.run(true, &["filestatus", f.to_str().unwrap()]);
        let b = e.run(false, &["filestatus", f.to_str().unwrap()]);
        assert_eq!(b.status.code(), a.status.code());
        assert_eq!(b.stdout, a.stdout);
    }
}

#[test]
fn updatekeys_and_rotate_keep_the_plaintext_and_change_the_keys() {
    let Some(e) = env() else { return };
    let host = fixture("host.agekey");
    let (ra, rh) = (recipient_of(&e.key), recipient_of(&host));
    let f = e.encrypted("k.yaml");
    let mac = enc_line(&f, "mac");
    e.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {ra},{rh}\n").as_bytes(),
    );
    let out = e.run(false, &["updatekeys", "-y", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", s(&out));
    assert_eq!(enc_line(&f, "mac"), mac, "updatekeys keeps the MAC");
    let by_host = clean("sops", e.home.path())
        .env("SOPS_AGE_KEY_FILE", &host)
        .arg("decrypt")
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ok(by_host, "host decrypt")), PLAIN);
    let again = e.run(false, &["updatekeys", "-y", f.to_str().unwrap()]);
    assert!(s(&again).contains("already up to date"));

    let before = std::fs::read_to_string(&f).unwrap();
    let out = e.run(
        false,
        &["rotate", "--in-place", "--rm-age", &rh, f.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", s(&out));
    let after = std::fs::read_to_string(&f).unwrap();
    assert_ne!(
        enc_line(&f, "user"),
        before.lines().find(|l| l.starts_with("user:")).unwrap()
    );
    assert!(!after.contains(&rh), "removed recipient is gone");
    assert_eq!(e.decrypt_with_sops(&f), PLAIN);
}

#[test]
fn edit_of_a_new_file_starts_from_sops_example_and_uses_the_creation_rule() {
    let Some(e) = env() else { return };
    let r = recipient_of(&e.key);
    e.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {r}\n").as_bytes(),
    );
    for ext in ["yaml", "json", "env"] {
        let mut seen = Vec::new();
        for sops in [true, false] {
            let f = e.path(&format!("new-{}.{ext}", sops as u8));
            let copy = e.path(&format!("seen-{}.{ext}", sops as u8));
            let ed = e.editor(&format!("cat \"$1\" > {}", copy.display()));
            let out = e
                .tool(sops)
                .env("EDITOR", &ed)
                .arg("edit")
                .arg(&f)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(200),
                "{ext} sops={sops}: {}",
                s(&out)
            );
            assert!(!f.exists(), "an unchanged new file is not written");
            seen.push(std::fs::read(&copy).unwrap());
        }
        assert_eq!(seen[1], seen[0], "{ext}: same example text as sops");
    }
    let f = e.path("created.yaml");
    let ed = e.editor("printf 'token: abc\\n' > \"$1\"");
    let out = e
        .tool(false)
        .env("EDITOR", &ed)
        .arg("edit")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", s(&out));
    assert_eq!(e.decrypt_with_sops(&f), "token: abc\n");
}
