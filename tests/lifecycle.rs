//! Secret lifecycle: rotation across machines, prompts from every source, SIGINT/SIGTERM
//! cleanup, and crash safety under SIGKILL at random moments.

use crate::util::common::*;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  m1:
    generators: [openssh, tls-cert, base, derived]
  m2:
    generators: [openssh, tls-cert, base, derived]
  m3:
    generators: [openssh, tls-cert, base]
";

fn tools() -> bool {
    require("sops") && require("bwrap") && require("age") && require("openssl")
}

fn fleet() -> Ws {
    let ws = Ws::new(FLEET);
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/s\n  echo \"public-$machine\" > $out/pub\n",
    );
    ws.generator(
        "derived",
        "dependencies: [base]\nfiles:\n  d: {}\nscript: |\n  sha256sum < $in/base/s | cut -d' ' -f1 > $out/d\n",
    );
    ws
}

/// `check` found nothing but pending host key rotations (a warning: exit 0, one `rotation`
/// line each), or nothing at all (no rotation happened, e.g. a run killed before it began).
fn assert_clean_but_rotating(o: &std::process::Output, what: &str) {
    let out = stdout(o);
    assert_eq!(o.status.code(), Some(0), "{what}: {out}");
    assert!(
        out.lines()
            .all(|l| l.contains(": rotation: host key rotated")),
        "{what}: {out}"
    );
}

fn run_id(ws: &Ws, rel: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.root().join(rel)).expect("manifest"))
            .expect("json");
    v["run"].as_str().expect("run").to_string()
}

fn sops_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "yaml")
                && p.to_string_lossy().contains("/secrets/")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                out.push(p);
            }
        }
    }
    walk(&root.join("sops"), &mut out);
    out
}

#[test]
fn rotating_shared_ca_reissues_every_cert() {
    if !tools() {
        return;
    }
    let ws = fleet();
    assert!(ws.run(&["generate"]).status.success());
    let before: Vec<String> = ["m1", "m2", "m3"]
        .iter()
        .map(|m| run_id(&ws, &format!("sops/machines/{m}/state/tls-cert.json")))
        .collect();
    let base_before = run_id(&ws, "sops/machines/m1/state/base.json");
    let o = ws.run(&["generate", "--regenerate", "-g", "tls-ca", "m1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (i, m) in ["m1", "m2", "m3"].iter().enumerate() {
        assert_ne!(
            before[i],
            run_id(&ws, &format!("sops/machines/{m}/state/tls-cert.json")),
            "{m} cert not re-issued"
        );
        // The new cert verifies against the new CA.
        let ca = ws.root().join("sops/shared/facts/tls-ca/ca.crt");
        let cert = ws
            .root()
            .join(format!("sops/machines/{m}/facts/tls-cert/cert.crt"));
        let v = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&ca)
            .arg(&cert)
            .output()
            .unwrap();
        assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    }
    assert_eq!(base_before, run_id(&ws, "sops/machines/m1/state/base.json"));
    assert_eq!(ws.run(&["check"]).status.code(), Some(0));
    // A dependency changed by hand: check names every dependent older than it.
    let o = ws.run_stdin(&["set", "m1", "tls-ca/ca.key"], b"not a key");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = ws.run(&["check"]);
    let text = stdout(&o);
    for m in ["m1", "m2", "m3"] {
        assert!(
            text.contains(&format!(
                "{m}/tls-cert: stale: older than its dependency shared/tls-ca"
            )),
            "{text}"
        );
    }
}

#[test]
fn prompts_from_every_source_and_persist() {
    if !tools() {
        return;
    }
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, p]\n");
    ws.generator(
        "p",
        "prompts:\n  user: { type: line }\n  pw: { type: hidden, persist: true }\n  note: { type: multiline }\nfiles:\n  out: {}\nscript: |\n  cat $prompts/user $prompts/pw $prompts/note > $out/out\n",
    );
    // No terminal, no values: every missing prompt is named, exit 2, nothing written.
    let before = ws.snapshot();
    let o = ws
        .command(&["generate"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for p in ["user", "pw", "note", "VARSMITH_PROMPT_P_PW"] {
        assert!(err.contains(p), "{err}");
    }
    assert_eq!(before, ws.snapshot());
    let pwfile = ws.root().join("pw.txt");
    std::fs::write(&pwfile, "s3cret-pw").unwrap();
    let pf = ws.root().join("prompts.yaml");
    std::fs::write(&pf, "p:\n  note: \"line1\\nline2\"\n").unwrap();
    let o = ws
        .command(&[
            "generate",
            "--prompt",
            &format!("p.pw=@{}", pwfile.display()),
            "--prompts-file",
            pf.to_str().unwrap(),
        ])
        .env("VARSMITH_PROMPT_P_USER", "bob")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("s3cret-pw"));
    let got = ws.run(&["get", "m1", "p/out"]).stdout;
    assert_eq!(got, b"bobs3cret-pwline1\nline2");
    assert_eq!(ws.run(&["get", "m1", "p/pw"]).stdout, b"s3cret-pw");
    // Persisted: regenerating reuses the stored answer without asking.
    let o = ws
        .command(&[
            "generate",
            "--regenerate",
            "-g",
            "p",
            "--prompts-file",
            pf.to_str().unwrap(),
        ])
        .env("VARSMITH_PROMPT_P_USER", "carol")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ws.run(&["get", "m1", "p/out"]).stdout,
        b"carols3cret-pwline1\nline2"
    );
}

fn signal_cleans_up(sig: i32) {
    if !tools() {
        return;
    }
    let ws =
        Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, slow]\n");
    ws.generator(
        "slow",
        "files:\n  s: {}\nscript: |\n  echo partial > $out/s\n  sleep 30\n",
    );
    let mut child = ws
        .command(&["generate"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Wait until the slow generator's run directory holds its partial secret.
    loop {
        let dirs = ws.leftover_run_dirs();
        if dirs
            .iter()
            .any(|d| ws.runtime.path().join(d).join("out/s").exists())
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "slow generator never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the script was not killed"
    );
    assert!(
        ws.leftover_run_dirs().is_empty(),
        "left behind: {:?}",
        ws.leftover_run_dirs()
    );
    assert!(
        !ws.root()
            .join("sops/machines/m1/secrets/slow.yaml")
            .exists()
    );
}

#[test]
fn sigint_removes_temporary_directories() {
    signal_cleans_up(libc::SIGINT);
}

#[test]
fn sigterm_removes_temporary_directories() {
    signal_cleans_up(libc::SIGTERM);
}

/// Which renames of a full `--regenerate --jobs 1` the crash test kills at: every one of the
/// first few (inside the first generators' commits), then every fourth.
fn kill_points() -> impl Iterator<Item = u64> {
    (1..=6).chain((10..).step_by(4))
}

#[test]
fn sigkill_between_any_two_renames_never_tears_a_file() {
    if !tools() {
        return;
    }
    let ws = fleet();
    assert!(ws.run(&["generate"]).status.success());
    let mut verified: std::collections::HashMap<PathBuf, Vec<u8>> = Default::default();
    let (mut kills, mut torn_seen) = (0, 0);
    for n in kill_points() {
        // A deterministic fault point: the n-th rename of this run kills the process.
        let o = ws
            .command(&[
                "generate",
                "--regenerate",
                "--rotate-host-key",
                "--jobs",
                "1",
            ])
            .env("VARSMITH_FAULT", format!("commit.rename:{n}:kill"))
            .output()
            .unwrap();
        if o.status.success() {
            // Fewer than n renames: every point before was visited.
            break;
        }
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(libc::SIGKILL),
            "rename {n}: {}",
            stderr(&o)
        );
        kills += 1;
        // Every sops file is a whole version: the real sops decrypts it and verifies its MAC.
        for f in sops_files(ws.root()) {
            let bytes = std::fs::read(&f).unwrap();
            if verified.get(&f) == Some(&bytes) {
                continue;
            }
            let o = sops_decrypt(&f, &ws.key);
            assert!(
                o.status.success(),
                "rename {n}: {} does not decrypt: {}",
                f.display(),
                stderr(&o)
            );
            verified.insert(f, bytes);
        }
        let o = ws.run(&["check"]);
        if stdout(&o).contains(": torn") {
            torn_seen += 1;
            assert_eq!(o.status.code(), Some(1), "rename {n}");
        }
        // A rerun converges to a clean check, leaving no plaintext and no temp file.
        let o = ws.run(&["generate"]);
        assert!(
            o.status.success(),
            "rename {n}: rerun failed: {}",
            stderr(&o)
        );
        let o = ws.run(&["check"]);
        assert_clean_but_rotating(&o, &format!("rename {n}"));
        assert!(
            ws.leftover_run_dirs().is_empty(),
            "rename {n}: {:?}",
            ws.leftover_run_dirs()
        );
        let temps = std::fs::read_dir(ws.root().join("sops/.tmp"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(".varsmith-tmp-")
                    })
                    .count()
            })
            .unwrap_or(0);
        // The killed run's temps are swept by the rerun.
        assert_eq!(temps, 0, "rename {n}: temp files left");
    }
    eprintln!(
        "{kills} kills between renames, {torn_seen} left a torn generator that check flagged and generate repaired"
    );
    assert!(kills >= 8, "the fault point was reached only {kills} times");
    // The second rename of the first commit (a host key: secrets, fact, key.json, manifest)
    // always lands inside a commit.
    assert!(torn_seen >= 1, "no kill landed inside a commit");
}

#[test]
fn rotating_a_host_key_rewraps_that_machines_secrets() {
    if !tools() {
        return;
    }
    let ws = fleet();
    assert!(ws.run(&["generate"]).status.success());
    let old_key = ws
        .run(&["get", "m1", "openssh/ssh_host_ed25519_key"])
        .stdout;
    let base_run = run_id(&ws, "sops/machines/m1/state/base.json");
    let o = ws.run(&["generate", "--regenerate", "-g", "openssh", "m1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = ws.run(&[
        "generate",
        "--regenerate",
        "-g",
        "openssh",
        "--rotate-host-key",
        "m1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let new_key = ws
        .run(&["get", "m1", "openssh/ssh_host_ed25519_key"])
        .stdout;
    assert_ne!(old_key, new_key);
    // base was not regenerated, only re-wrapped for the new host key.
    assert_eq!(base_run, run_id(&ws, "sops/machines/m1/state/base.json"));
    let to_age = |k: &[u8]| {
        varsmith::keys::ssh_to_age::private_to_age(std::str::from_utf8(k).unwrap()).unwrap()
    };
    let f = ws.root().join("sops/machines/m1/secrets/base.yaml");
    // Until the new key is on the host (push-keys, tests/remote_rotation.rs), both decrypt.
    for key in [&new_key, &old_key] {
        let kf = ws.root().join("host.agekey");
        std::fs::write(&kf, format!("{}\n", to_age(key).as_str())).unwrap();
        assert!(sops_decrypt(&f, &kf).status.success());
    }
    let o = ws.run(&["check"]);
    assert!(stdout(&o).contains("m1/openssh: rotation: host key rotated, not yet on the host"));
    assert_clean_but_rotating(&o, "after the rotation");
}

#[test]
fn an_admin_generates_the_machines_they_can() {
    if !tools() {
        return;
    }
    let ws = Ws::new(
        "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, base, derived]\n",
    );
    ws.generator(
        "base",
        "files:\n  s: {}\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/s\n",
    );
    ws.generator(
        "derived",
        "dependencies: [base]\nfiles:\n  d: {}\nscript: |\n  sha256sum < $in/base/s > $out/d\n",
    );
    assert!(ws.run(&["generate"]).status.success());
    // Bob joins and a machine is added; nothing was re-encrypted for him yet.
    let bob_key = ws.root().join("bob.agekey");
    let bob = varsmith::keys::keygen::append_admin_key(&bob_key).unwrap();
    std::fs::write(
        ws.root().join("varsmith.yaml"),
        format!("admins:\n  alice: {}\n  bob: {bob}\nmachines:\n  m1:\n    generators: [openssh, base, derived]\n  m2:\n    generators: [openssh, base, derived]\n", ws.recipient),
    )
    .unwrap();
    let before = std::fs::read(ws.root().join("sops/machines/m1/secrets/base.yaml")).unwrap();
    let o = ws
        .command(&["generate", "m2"])
        .env("SOPS_AGE_KEY_FILE", &bob_key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        sops_decrypt(
            &ws.root().join("sops/machines/m2/secrets/derived.yaml"),
            &bob_key
        )
        .status
        .success()
    );
    assert_eq!(
        before,
        std::fs::read(ws.root().join("sops/machines/m1/secrets/base.yaml")).unwrap()
    );
    // For m1 bob cannot re-wrap what he cannot read: a clear failure naming the file.
    let o = ws
        .command(&["rekey", "m1"])
        .env("SOPS_AGE_KEY_FILE", &bob_key)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("sops/machines/m1/secrets/"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn terminal_prompts_and_progress_on_a_tty() {
    if !(tools() && require("script")) {
        return;
    }
    let ws = Ws::new(
        "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, p]\n  m2:\n    generators: [openssh]\n",
    );
    ws.generator(
        "p",
        "prompts:\n  pw: { type: hidden, description: root password }\nfiles:\n  out: {}\nscript: |\n  cp $prompts/pw $out/out\n",
    );
    // `script` gives varsmith a terminal; the hidden prompt is asked twice there.
    let cmdline = format!(
        "{} -C {} generate",
        env!("CARGO_BIN_EXE_varsmith"),
        ws.root().display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmdline, "/dev/null"])
        .env("SOPS_AGE_KEY_FILE", &ws.key)
        .env("XDG_RUNTIME_DIR", ws.runtime.path())
        .env("HOME", ws.root().join("home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // Answer only once each question is on the screen (typed-ahead input would be echoed
    // before the prompt turns echo off, as on a real terminal).
    let mut out = child.stdout.take().unwrap();
    let screen_buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let buf = screen_buf.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        })
    };
    let wait_for = |needle: &str| {
        let start = Instant::now();
        while !String::from_utf8_lossy(&screen_buf.lock().unwrap()).contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "never saw {needle:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    {
        use std::io::Write;
        wait_for("root password: ");
        stdin.write_all(b"tty-s3cret\n").unwrap();
        wait_for("(again): ");
        stdin.write_all(b"tty-s3cret\n").unwrap();
    }
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let o = std::process::Output {
        status,
        stdout: screen_buf.lock().unwrap().clone(),
        stderr: Vec::new(),
    };
    let screen = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{screen}");
    assert!(screen.contains("root password"), "{screen}");
    assert!(
        !screen.contains("tty-s3cret"),
        "the hidden answer was echoed"
    );
    assert!(
        screen.contains("machines") && screen.contains("running"),
        "no progress line: {screen}"
    );
    assert_eq!(ws.run(&["get", "m1", "p/out"]).stdout, b"tty-s3cret");
}
