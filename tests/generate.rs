//! `generate`, `check`, `get`, `set`, `rekey` end to end with real bubblewrap, sops and age.

use crate::util::common::*;

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  m1:
    generators: [openssh, base, derived, tls-cert, password]
  m2:
    generators: [openssh, base, derived, tls-cert]
";

fn fleet() -> Option<Ws> {
    if !(require("sops") && require("bwrap") && require("age")) {
        return None;
    }
    let ws = Ws::new(FLEET);
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/s\n  echo \"public-$machine\" > $out/pub\n",
    );
    ws.generator(
        "derived",
        "dependencies: [base]\nfiles:\n  d: {}\n  seen: { secret: false }\nscript: |\n  sha256sum < $in/base/s | cut -d' ' -f1 > $out/d\n  cat $in/base/pub > $out/seen\n",
    );
    Some(ws)
}

fn manifest_run(ws: &Ws, owner: &str, g: &str) -> String {
    let p = if owner == "shared" {
        ws.root().join(format!("sops/shared/state/{g}.json"))
    } else {
        ws.root()
            .join(format!("sops/machines/{owner}/state/{g}.json"))
    };
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    v["run"].as_str().unwrap().to_string()
}

fn get(ws: &Ws, host: &str, var: &str) -> Vec<u8> {
    let o = ws.run(&["get", host, var]);
    assert!(o.status.success(), "get {host} {var}: {}", stderr(&o));
    o.stdout
}

#[test]
fn generate_end_to_end() {
    let Some(ws) = fleet() else { return };
    let out = ws.run(&["generate", "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let root = ws.root();

    // Secrets decrypt with the real sops and the admin key.
    let f = root.join("sops/machines/m1/secrets/base.yaml");
    let o = sops_decrypt(&f, &ws.key);
    assert!(o.status.success(), "sops decrypt: {}", stderr(&o));
    let plain: serde_json::Value = yaml_serde::from_slice(&o.stdout).unwrap();
    let s = plain["s"].as_str().unwrap().to_string();
    assert_eq!(s.len(), 32);
    assert_eq!(get(&ws, "m1", "base/s"), s.as_bytes());

    // ... and with the host's ssh-to-age key derived from its generated SSH host key.
    let host_key = get(&ws, "m1", "openssh/ssh_host_ed25519_key");
    let age_key =
        varsmith::keys::ssh_to_age::private_to_age(std::str::from_utf8(&host_key).unwrap())
            .unwrap();
    let kf = root.join("host.agekey");
    std::fs::write(&kf, format!("{}\n", age_key.as_str())).unwrap();
    let o = sops_decrypt(&f, &kf);
    assert!(o.status.success(), "host key decrypt: {}", stderr(&o));
    // The host key's own file is encrypted to the host too.
    let o = sops_decrypt(&root.join("sops/machines/m1/secrets/openssh.yaml"), &kf);
    assert!(o.status.success());
    // But not m2's secrets.
    let o = sops_decrypt(&root.join("sops/machines/m2/secrets/base.yaml"), &kf);
    assert!(!o.status.success());
    // The shared CA key is admins-only; the shared file lives once.
    assert!(root.join("sops/shared/secrets/admin/tls-ca.yaml").exists());
    assert!(root.join("sops/shared/facts/tls-ca/ca.crt").exists());
    // password: deploy false → admins-only file.
    let o = sops_decrypt(
        &root.join("sops/machines/m1/secrets/admin/password.yaml"),
        &kf,
    );
    assert!(
        !o.status.success(),
        "host must not read deploy:false secrets"
    );
    assert!(get(&ws, "m1", "password/password-hash").starts_with(b"$6$"));

    // The dependent saw its dependency's output in $in.
    let d = get(&ws, "m1", "derived/d");
    let expect = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(s.as_bytes()))
    };
    assert_eq!(String::from_utf8_lossy(&d).trim(), expect);
    assert_eq!(get(&ws, "m2", "derived/seen"), b"public-m2\n");

    // key.json holds the host's ssh-to-age recipient; .sops.yaml exists.
    let kj = std::fs::read_to_string(root.join("sops/machines/m1/key.json")).unwrap();
    assert!(kj.contains("\"age1"));
    assert!(root.join(".sops.yaml").exists());

    // The generated .sops.yaml matches: the real `sops updatekeys` finds nothing to change.
    let o = std::process::Command::new("sops")
        .args(["updatekeys", "-y", "sops/machines/m1/secrets/base.yaml"])
        .current_dir(root)
        .env("SOPS_AGE_KEY_FILE", &ws.key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already up to date") || stdout(&o).contains("already up to date"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );

    // check is clean.
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // A second generate changes no file (bytes and mtimes).
    let before = ws.snapshot();
    let o = ws.run(&["generate"]);
    assert!(o.status.success());
    assert_eq!(before, ws.snapshot(), "second generate wrote something");
    let plan = ws.run(&["generate", "--plan"]);
    assert!(stdout(&plan).contains("nothing to do"));
}

#[test]
fn script_edit_reruns_it_and_dependents_only() {
    let Some(ws) = fleet() else { return };
    assert!(ws.run(&["generate"]).status.success());
    let runs = |ws: &Ws| {
        [
            ("m1", "openssh"),
            ("m1", "base"),
            ("m1", "derived"),
            ("m2", "base"),
            ("m2", "derived"),
            ("shared", "tls-ca"),
            ("m1", "tls-cert"),
        ]
        .map(|(o, g)| manifest_run(ws, o, g))
    };
    let r0 = runs(&ws);
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nvalidation: { v: 2 }\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/s\n  echo \"public2-$machine\" > $out/pub\n",
    );
    let o = ws.run(&["check", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("changed"));
    let plan = stdout(&ws.run(&["generate", "--plan"]));
    assert!(plan.contains("m1/base: definition changed"), "{plan}");
    assert!(plan.contains("m1/derived"), "{plan}");
    assert!(!plan.contains("openssh"), "{plan}");
    assert!(ws.run(&["generate"]).status.success());
    let r1 = runs(&ws);
    assert_eq!(r0[0], r1[0], "openssh must not rerun");
    assert_ne!(r0[1], r1[1]);
    assert_ne!(r0[2], r1[2]);
    assert_ne!(r0[3], r1[3]);
    assert_ne!(r0[4], r1[4]);
    assert_eq!(r0[5], r1[5], "tls-ca must not rerun");
    assert_eq!(r0[6], r1[6], "tls-cert must not rerun");
    assert_eq!(get(&ws, "m2", "derived/seen"), b"public2-m2\n");
    // Editing only validation also reruns.
    std::fs::write(
        ws.root().join("generators/derived.yaml"),
        std::fs::read_to_string(ws.root().join("generators/derived.yaml")).unwrap()
            + "validation: { v: 2 }\n",
    )
    .unwrap();
    let plan = stdout(&ws.run(&["generate", "--plan"]));
    assert!(
        plan.contains("m1/derived: definition changed") && !plan.contains("base"),
        "{plan}"
    );
}

#[test]
fn torn_generator_is_detected_and_repaired() {
    let Some(ws) = fleet() else { return };
    assert!(ws.run(&["generate"]).status.success());
    let secrets = ws.root().join("sops/machines/m1/secrets/base.yaml");
    let old = std::fs::read(&secrets).unwrap();
    assert!(
        ws.run(&["generate", "--regenerate", "-g", "base", "m1"])
            .status
            .success()
    );
    // Simulate a crash between writes: the old secrets file with the new facts and manifest.
    std::fs::write(&secrets, &old).unwrap();
    let o = ws.run(&["check", "m1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("m1/base: torn"), "{}", stdout(&o));
    assert!(ws.run(&["generate", "m1"]).status.success());
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn set_get_list() {
    let Some(ws) = fleet() else { return };
    assert!(ws.run(&["generate"]).status.success());
    let o = ws.run_stdin(&["set", "--raw", "m1", "base/s"], b"\x00\xffbinary\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(get(&ws, "m1", "base/s"), b"\x00\xffbinary\n");
    // Without --raw exactly one trailing newline is removed.
    let o = ws.run_stdin(&["set", "m1", "base/s"], b"\x00\xffbinary\n\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(get(&ws, "m1", "base/s"), b"\x00\xffbinary\n");
    let o = ws.run(&["list", "m1"]);
    assert!(stdout(&o).contains("base/s\tsecret"));
    // derived is now older than base.
    let o = ws.run(&["check", "m1"]);
    assert!(stdout(&o).contains("m1/derived: stale"), "{}", stdout(&o));
    let o = ws.run(&["get", "m1", "base/nope"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn rekey_after_admin_change_and_extra_recipient() {
    let Some(ws) = fleet() else { return };
    assert!(ws.run(&["generate"]).status.success());
    let bob_key = ws.root().join("bob.agekey");
    let bob = varsmith::keys::keygen::append_admin_key(&bob_key).unwrap();
    assert!(ws.run(&["admin", "add", "bob", &bob]).status.success());
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(&bob));
    let f = ws.root().join("sops/machines/m2/secrets/base.yaml");
    let before = get(&ws, "m2", "base/s");
    let o = ws.run(&["rekey"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ws.run(&["check"]).status.code(), Some(0));
    let o = sops_decrypt(&f, &bob_key);
    assert!(
        o.status.success(),
        "bob decrypts after rekey: {}",
        stderr(&o)
    );
    assert_eq!(get(&ws, "m2", "base/s"), before);
    // Remove alice: after rekey her key no longer opens the file.
    assert!(ws.run(&["admin", "remove", "alice"]).status.success());
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.root())
        .args(["rekey"])
        .env("SOPS_AGE_KEY_FILE", &bob_key)
        .env("HOME", ws.root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !sops_decrypt(&f, &ws.key).status.success(),
        "removed admin still decrypts"
    );
    // Someone adds their own key with the real sops: check flags the extra recipient.
    let eve = varsmith::keys::keygen::append_admin_key(&ws.root().join("eve.agekey")).unwrap();
    let o = std::process::Command::new("sops")
        .args(["rotate", "-i", "--add-age", &eve])
        .arg(&f)
        .env("SOPS_AGE_KEY_FILE", &bob_key)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sops rotate: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.root())
        .args(["check", "m2"])
        .env("SOPS_AGE_KEY_FILE", &bob_key)
        .env("HOME", ws.root())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("unexpected extra recipient") && stdout(&o).contains(&eve),
        "{}",
        stdout(&o)
    );
}

#[test]
fn failing_generator_stores_nothing_and_others_continue() {
    let Some(ws) = fleet() else { return };
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nscript: |\n  echo partial > $out/s\n  exit 3\n",
    );
    let o = ws.run(&["generate"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("FAILED m1/base") && err.contains("skipped m1/derived"),
        "{err}"
    );
    assert!(
        !ws.root()
            .join("sops/machines/m1/secrets/base.yaml")
            .exists()
    );
    assert!(!ws.root().join("sops/machines/m1/facts/base").exists());
    assert!(
        ws.root()
            .join("sops/machines/m1/secrets/tls-cert.yaml")
            .exists()
    );
}

#[test]
fn new_files_are_staged_intent_to_add_in_git() {
    let Some(ws) = fleet() else { return };
    if !require("git") {
        return;
    }
    let git = |args: &[&str]| git_in(ws.root(), args);
    git(&["init", "-q"]);
    assert!(ws.run(&["generate", "m1"]).status.success());
    let st = stdout(&git(&["status", "--porcelain"]));
    assert!(st.contains(" A sops/machines/m1/secrets/base.yaml"), "{st}");
    assert!(st.contains(" A sops/machines/m1/facts/base/pub"), "{st}");
    // Nothing is committed without --commit.
    assert!(!git(&["rev-parse", "HEAD"]).status.success());
    git(&["config", "user.email", "t@example.org"]);
    git(&["config", "user.name", "t"]);
    assert!(ws.run(&["generate", "--commit"]).status.success());
    let log = stdout(&git(&["show", "--stat", "--format=%s", "HEAD"]));
    assert!(
        log.contains("varsmith generate") && log.contains("sops/machines/m2/secrets/base.yaml"),
        "{log}"
    );
}

/// A staging that failed (git's index locked by another process) is owed to the next run: a
/// `generate` with nothing to run stages what the failed one wrote.
#[test]
fn a_failed_staging_is_done_by_the_next_generate() {
    let Some(ws) = fleet() else { return };
    if !require("git") {
        return;
    }
    let git = |args: &[&str]| git_in(ws.root(), args);
    git(&["init", "-q"]);
    let lock = ws.root().join(".git/index.lock");
    std::fs::write(&lock, b"").unwrap();
    let o = ws.run(&["generate", "m1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("index.lock"), "{}", stderr(&o));
    assert!(
        ws.root()
            .join("sops/machines/m1/secrets/base.yaml")
            .exists()
    );
    let st = stdout(&git(&["status", "--porcelain", "--untracked-files=all"]));
    assert!(st.contains("?? sops/machines/m1/secrets/base.yaml"), "{st}");
    std::fs::remove_file(&lock).unwrap();
    let o = ws.run(&["generate", "m1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = stdout(&git(&["status", "--porcelain", "--untracked-files=all"]));
    assert!(st.contains(" A sops/machines/m1/secrets/base.yaml"), "{st}");
    assert!(st.contains(" A sops/machines/m1/facts/base/pub"), "{st}");
    // Nothing of varsmith's is left untracked, and its lock and temp files are ignored.
    assert!(
        !st.contains("?? sops/") && !st.contains("?? .sops.yaml") && !st.contains("A sops/.tmp"),
        "{st}"
    );
    let o = ws.run(&["generate", "m1"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `git ARGS` run in `dir`.
fn git_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}
