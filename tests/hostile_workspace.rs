//! A workspace from a pull request or a clone cannot turn varsmith against its admin (issue
//! 19): definition files that are symlinks to key files are refused and no message quotes a
//! key; a planted `rotation.json` adds no recipient; `.sops.yaml` drift is a finding, and a
//! sops-nix repository's own rules and files stay byte for byte (issue 21 item 8); the
//! workspace lock is private and a writer gives up after a bounded wait. Through the binary,
//! with real sops, age and bubblewrap.

use crate::util::common::*;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  m1:
    generators: [openssh, token]
";

const TOKEN: &str =
    "files:\n  t: {}\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/t\n";

fn tools() -> bool {
    require("sops") && require("bwrap") && require("age") && require("ssh-keygen")
}

fn generated() -> Ws {
    let ws = Ws::new(FLEET);
    ws.generator("token", TOKEN);
    let o = ws.run(&["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    ws
}

fn all_output(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

/// A fresh age identity file outside any workspace; returns (dir, file, recipient, secret).
fn age_key() -> (tempfile::TempDir, PathBuf, String, String) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("keys.txt");
    let r = varsmith::keys::keygen::append_admin_key(&f).unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    (d, f, r, secret)
}

/// A whole OpenSSH private key (file, its base64 body lines).
fn ssh_key(dir: &Path) -> (PathBuf, Vec<String>) {
    let f = dir.join("id_ed25519");
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(o.status.success());
    let body = std::fs::read_to_string(&f)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect();
    (f, body)
}

/// Runs check, check --json, list and generate; each exits 2 naming `shown` with `what`, and
/// none prints any of `secrets`.
fn refused_everywhere(ws: &Ws, shown: &str, what: &str, secrets: &[String]) {
    for args in [
        vec!["check"],
        vec!["check", "--json"],
        vec!["list", "m1"],
        vec!["list", "m1", "--json"],
        vec!["generate"],
    ] {
        let o = ws.run(&args);
        let all = all_output(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {all}");
        assert!(all.contains(shown), "{args:?} names {shown}: {all}");
        assert!(all.contains(what), "{args:?} says {what}: {all}");
        for s in secrets {
            let piece = &s[s.len().saturating_sub(24)..];
            assert!(!all.contains(piece), "{args:?} printed key text: {all}");
        }
    }
}

#[test]
fn symlinked_definitions_are_refused_and_no_key_is_printed() {
    if !tools() {
        return;
    }
    let (_kd, keys, _r, secret) = age_key();
    let (ssh, body) = ssh_key(_kd.path());
    let secrets: Vec<String> = std::iter::once(secret.clone()).chain(body).collect();
    for target in [&keys, &ssh] {
        for rel in [
            "generators/zz.yaml",
            "machines/m1/generators/token.yaml",
            "varsmith.yaml",
        ] {
            let ws = generated();
            let p = ws.root().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let _ = std::fs::remove_file(&p);
            std::os::unix::fs::symlink(target, &p).unwrap();
            refused_everywhere(&ws, rel, "symlink", &secrets);
        }
    }
    // A symlinked directory on the way is refused the same way.
    let ws = generated();
    let real = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&keys, real.path().join("zz.yaml")).unwrap();
    std::fs::write(real.path().join("token.yaml"), TOKEN).unwrap();
    std::fs::remove_dir_all(ws.root().join("generators")).unwrap();
    std::os::unix::fs::symlink(real.path(), ws.root().join("generators")).unwrap();
    refused_everywhere(&ws, "generators", "symlink", &secrets);
}

#[test]
fn a_key_pasted_into_a_wrong_typed_field_is_not_quoted() {
    if !tools() {
        return;
    }
    let (kd, _keys, _r, secret) = age_key();
    let (ssh, body) = ssh_key(kd.path());
    let pem = std::fs::read_to_string(&ssh).unwrap();
    let block: String = pem.lines().map(|l| format!("  {l}\n")).collect();
    let secrets: Vec<String> = std::iter::once(secret.clone()).chain(body).collect();
    let cases = [
        format!("files: {secret:?}\nscript: x\n"),
        format!("files:\n  t: {{}}\nscript: x\n{secret}: 1\n"),
        format!("files:\n  t: {{}}\nscript: x\ndependencies: {secret}\n"),
        format!("files: |\n{block}script: x\n"),
    ];
    for text in &cases {
        let ws = generated();
        ws.generator("bad", text);
        refused_everywhere(&ws, "generators/bad.yaml", "", &secrets);
    }
    let ws = generated();
    let inv = std::fs::read_to_string(ws.root().join("varsmith.yaml")).unwrap();
    std::fs::write(
        ws.root().join("varsmith.yaml"),
        format!("{inv}deploy: {secret:?}\n"),
    )
    .unwrap();
    refused_everywhere(&ws, "varsmith.yaml", "", &secrets);
}

/// The real sops with the age identity file `key`.
fn sops_decrypt_with(file: &Path, key: &Path) -> Output {
    Command::new("sops")
        .arg("decrypt")
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

/// The real sops, decrypting with the age key ssh-to-age derives from an OpenSSH host key.
fn sops_with_host_key(file: &Path, ssh_key: &Path) -> Output {
    let pem = std::fs::read_to_string(ssh_key).unwrap();
    let age = varsmith::keys::ssh_to_age::private_to_age(&pem).unwrap();
    Command::new("sops")
        .arg("decrypt")
        .arg(file)
        .env("SOPS_AGE_KEY", age.as_str())
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

fn secrets_files(ws: &Ws) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in ["sops/machines/m1/secrets", "sops/machines/m1/secrets/admin"] {
        if let Ok(rd) = std::fs::read_dir(ws.root().join(d)) {
            out.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    out.sort();
    out
}

#[test]
fn a_planted_rotation_record_adds_no_recipient() {
    if !tools() {
        return;
    }
    let ws = generated();
    let (_ad, attacker_key, attacker, _s) = age_key();
    let record = ws.root().join("sops/machines/m1/rotation.json");
    std::fs::write(
        &record,
        format!("{{\"old\": [\"{attacker}\"], \"started\": \"2026-01-01T00:00:00Z\"}}\n"),
    )
    .unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        all_output(&o)
            .contains("rotation record names a recipient this workspace never recorded for m1"),
        "{}",
        all_output(&o)
    );
    assert!(
        !all_output(&o).contains("run `varsmith rekey`"),
        "{}",
        all_output(&o)
    );
    // rekey and generate never encrypt to it.
    let o = ws.run(&["rekey"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let o = ws.run(&["generate", "--regenerate", "-g", "token"]);
    assert!(o.status.success(), "{}", all_output(&o));
    // Nor does the planted record excuse replacing the host key.
    let o = ws.run(&["generate", "--regenerate", "-g", "openssh"]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    assert!(stderr(&o).contains("--rotate-host-key"), "{}", stderr(&o));
    for f in secrets_files(&ws) {
        let o = sops_decrypt_with(&f, &attacker_key);
        assert!(
            !o.status.success(),
            "{}: the attacker decrypts it",
            f.display()
        );
        assert!(sops_decrypt_with(&f, &ws.key).status.success());
    }
    let cfg = std::fs::read_to_string(ws.root().join(".sops.yaml")).unwrap();
    assert!(!cfg.contains(&attacker), "{cfg}");
    std::fs::remove_file(&record).unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
}

/// The attacker plants the record *and* the machine state that used to vouch for it: the
/// state's MAC (keyed by the host key file's sops data key) does not verify, so the old
/// recipient is never one; `check` with a key names the record, without one it says the
/// rotation is unverified.
#[test]
fn a_planted_record_and_state_add_no_recipient() {
    if !tools() {
        return;
    }
    let ws = generated();
    let (_ad, attacker_key, attacker, _s) = age_key();
    let base = ws.root().join("sops/machines/m1");
    std::fs::write(
        base.join("rotation.json"),
        format!("{{\"old\": [\"{attacker}\"], \"started\": \"2026-01-01T00:00:00Z\"}}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(base.join("state")).unwrap();
    let forged = format!(
        "{{\"recipients\": [\"{attacker}\"], \"mac\": \"{}\"}}\n",
        "ab".repeat(32)
    );
    std::fs::write(base.join("state/.rotation-recorded.json"), forged).unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        all_output(&o)
            .contains("rotation record names a recipient this workspace never recorded for m1"),
        "{}",
        all_output(&o)
    );
    // Without an identity nothing can be verified: reported, not trusted.
    let o = ws
        .command(&["check"])
        .env_remove("SOPS_AGE_KEY_FILE")
        .output()
        .unwrap();
    assert!(
        all_output(&o).contains("host key rotation not verified"),
        "{}",
        all_output(&o)
    );
    let o = ws.run(&["rekey"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let o = ws.run(&["generate", "--regenerate", "-g", "token"]);
    assert!(o.status.success(), "{}", all_output(&o));
    for f in secrets_files(&ws) {
        let o = sops_decrypt_with(&f, &attacker_key);
        assert!(
            !o.status.success(),
            "{}: the attacker decrypts it",
            f.display()
        );
    }
    let cfg = std::fs::read_to_string(ws.root().join(".sops.yaml")).unwrap();
    assert!(!cfg.contains(&attacker), "{cfg}");
    // Nor does it excuse replacing the host key.
    let o = ws.run(&["generate", "--regenerate", "-g", "openssh"]);
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    // A genuine rotation on top seals only the host's real old recipient.
    let o = ws.run(&[
        "generate",
        "--regenerate",
        "-g",
        "openssh",
        "--rotate-host-key",
    ]);
    assert!(o.status.success(), "{}", all_output(&o));
    let state = std::fs::read_to_string(base.join("state/.rotation-recorded.json")).unwrap();
    assert!(!state.contains(&attacker), "{state}");
    for f in secrets_files(&ws) {
        assert!(!sops_decrypt_with(&f, &attacker_key).status.success());
    }
}

#[test]
fn a_genuine_rotation_still_keeps_the_old_host_key() {
    if !tools() {
        return;
    }
    let ws = generated();
    let old = ws.root().join("old_host_key");
    let o = ws.run(&["get", "m1", "openssh/ssh_host_ed25519_key"]);
    assert!(o.status.success());
    std::fs::write(&old, &o.stdout).unwrap();
    let o = ws.run(&[
        "generate",
        "--regenerate",
        "-g",
        "openssh",
        "--rotate-host-key",
    ]);
    assert!(o.status.success(), "{}", all_output(&o));
    let o = ws.run(&["generate", "--regenerate", "-g", "token"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let token = ws.root().join("sops/machines/m1/secrets/token.yaml");
    let o = sops_with_host_key(&token, &old);
    assert!(o.status.success(), "{}", all_output(&o));
    // A pending rotation is a warning (deploying is its next step), not a failure.
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(
        stdout(&o).contains("host key rotated, not yet on the host"),
        "{}",
        stdout(&o)
    );
    assert!(
        !all_output(&o).contains("never recorded"),
        "{}",
        all_output(&o)
    );
}

/// Inserts `line` (a YAML list item of recipients) after the first `- age:` of varsmith's block.
fn add_recipient(cfg: &Path, recipient: &str) {
    let text = std::fs::read_to_string(cfg).unwrap();
    let mut out = String::new();
    let mut done = false;
    for l in text.split_inclusive('\n') {
        out.push_str(l);
        if !done && l.trim_start() == "- age:\n" {
            let indent = l.len() - l.trim_start().len() + 4;
            out.push_str(&format!("{}- '{recipient}'\n", " ".repeat(indent)));
            done = true;
        }
    }
    assert!(done);
    std::fs::write(cfg, out).unwrap();
}

#[test]
fn an_edited_sops_yaml_is_a_finding_and_rekey_restores_it() {
    if !tools() {
        return;
    }
    let ws = generated();
    let cfg = ws.root().join(".sops.yaml");
    let good = std::fs::read(&cfg).unwrap();
    let (_d, _k, attacker, _s) = age_key();
    add_recipient(&cfg, &attacker);
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(stdout(&o).contains("extra recipient"), "{}", stdout(&o));
    assert!(stdout(&o).contains(&attacker), "{}", stdout(&o));
    let o = ws.run(&["check", "--json"]);
    assert!(stdout(&o).contains("sops-config"), "{}", stdout(&o));
    assert!(ws.run(&["rekey"]).status.success());
    assert_eq!(std::fs::read(&cfg).unwrap(), good);
    assert_eq!(ws.run(&["check"]).status.code(), Some(0));
    // A user rule before the block that takes varsmith's files is a finding too.
    let text = String::from_utf8(good.clone()).unwrap().replacen(
        "creation_rules:\n",
        &format!("creation_rules:\n  - key_groups:\n      - age: ['{attacker}']\n"),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        stdout(&o).contains("before varsmith's block"),
        "{}",
        stdout(&o)
    );
}

/// Recipients sops recorded in `file` (its `recipient:` lines).
fn recipients_in(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- recipient: "))
        .map(|r| r.trim().to_string())
        .collect()
}

#[test]
fn a_sops_nix_repo_keeps_its_rules_and_files() {
    if !tools() {
        return;
    }
    let ws = Ws::new(FLEET);
    ws.generator("token", TOKEN);
    let (_d, user_key, user, _s) = age_key();
    let head = format!(
        "# my sops-nix repo\nkeys:\n  - &me {user}\ncreation_rules:\n  # mine, first\n  - path_regex: ^secrets/[^/]+\\.yaml$\n    key_groups:\n    - age:\n      - *me\n"
    );
    let tail = "  # mine, after varsmith's\n  - path_regex: ^other/.*\n    key_groups:\n    - age:\n      - *me\n";
    let cfg = ws.root().join(".sops.yaml");
    std::fs::write(
        &cfg,
        format!(
            "{head}  {}\n  {}\n{tail}",
            "# BEGIN varsmith rules: generated from varsmith.yaml by generate and rekey; edit the inventory, not these lines",
            "# END varsmith rules"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(ws.root().join("secrets")).unwrap();
    let common = ws.root().join("secrets/common.yaml");
    std::fs::write(&common, "db: hunter2\n").unwrap();
    let o = Command::new("sops")
        .args(["encrypt", "-i", "secrets/common.yaml"])
        .current_dir(ws.root())
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", all_output(&o));
    let common_bytes = std::fs::read(&common).unwrap();
    assert!(ws.run(&["generate"]).status.success());
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.starts_with(&head), "{text}");
    assert!(text.ends_with(tail), "{text}");
    assert!(text.contains("^sops/machines/m1/secrets/[^/]+"), "{text}");
    assert_eq!(std::fs::read(&common).unwrap(), common_bytes);
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert!(
        ws.run(&["generate", "--regenerate", "-g", "token"])
            .status
            .success()
    );
    let again = std::fs::read_to_string(&cfg).unwrap();
    assert!(again.starts_with(&head) && again.ends_with(tail), "{again}");
    // Real sops: the user's rule for the user's files, varsmith's for varsmith's.
    let mine = ws.root().join("secrets/new.yaml");
    std::fs::write(&mine, "x: 1\n").unwrap();
    let theirs = ws.root().join("sops/machines/m1/secrets/byhand.yaml");
    std::fs::write(&theirs, "x: 1\n").unwrap();
    for f in ["secrets/new.yaml", "sops/machines/m1/secrets/byhand.yaml"] {
        let o = Command::new("sops")
            .args(["encrypt", "-i", f])
            .current_dir(ws.root())
            .env("HOME", "/nonexistent")
            .output()
            .unwrap();
        assert!(o.status.success(), "{f}: {}", all_output(&o));
    }
    assert_eq!(recipients_in(&mine), vec![user.clone()]);
    assert!(sops_decrypt_with(&mine, &user_key).status.success());
    let got = recipients_in(&theirs);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&ws.recipient), "{got:?}");
    assert!(!got.contains(&user), "{got:?}");
}

#[test]
fn a_legacy_varsmith_sops_yaml_migrates_without_loss() {
    if !tools() {
        return;
    }
    let ws = generated();
    let cfg = ws.root().join(".sops.yaml");
    let (_d, _k, user, _s) = age_key();
    let legacy = format!(
        "# Generated by varsmith from varsmith.yaml; regenerated on generate and rekey.\n# Edit the inventory, not this file.\ncreation_rules:\n  - path_regex: '^sops/machines/m1/secrets/[^/]+\\.yaml$'\n    key_groups:\n      - age:\n          - 'age1old'\n  - path_regex: '^secrets/.*'\n    key_groups:\n      - age:\n          - '{user}'\n"
    );
    std::fs::write(&cfg, &legacy).unwrap();
    assert!(ws.run(&["rekey"]).status.success());
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(!text.contains("age1old"), "{text}");
    assert!(
        text.ends_with(&format!(
            "  - path_regex: '^secrets/.*'\n    key_groups:\n      - age:\n          - '{user}'\n"
        )),
        "{text}"
    );
    assert_eq!(ws.run(&["check"]).status.code(), Some(0), "{text}");
}

#[test]
fn a_held_lock_times_out_and_the_lock_file_is_private() {
    if !tools() || !require("flock") {
        return;
    }
    let ws = generated();
    let lock = ws.root().join("sops/.tmp/lock");
    // An older varsmith made it 0644: the next writer narrows it.
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut holder = Command::new("flock")
        .arg("-s")
        .arg(&lock)
        .args(["sh", "-c", "echo ready; exec cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let o = ws.run(&[
        "--lock-timeout",
        "0.3",
        "generate",
        "--regenerate",
        "-g",
        "token",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("gave up waiting for the workspace lock"),
        "{err}"
    );
    assert!(err.contains("held by pid"), "{err}");
    let o = ws
        .command(&["rekey"])
        .env("VARSMITH_LOCK_TIMEOUT", "0.2")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("VARSMITH_LOCK_TIMEOUT"),
        "{}",
        stderr(&o)
    );
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let mode = std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        ws.run(&["generate", "--regenerate", "-g", "token"])
            .status
            .success()
    );
    // Another local user who can reach the workspace cannot open the lock to hold it.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && require("setpriv") {
        for d in [
            ws.root(),
            &ws.root().join("sops"),
            &ws.root().join("sops/.tmp"),
        ] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let o = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "flock",
                "-n",
                "-s",
            ])
            .arg(&lock)
            .arg("true")
            .output()
            .unwrap();
        assert!(!o.status.success(), "nobody took the lock");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
