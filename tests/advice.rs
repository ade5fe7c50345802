//! Issue 22: checks and hints that tell the truth, on YAML workspaces with real bubblewrap,
//! sops and age: tamper evidence without keys (recorded SHA-256), leftover generator outputs,
//! the summary's real reason, grouped findings, advice that works, plans that see broken
//! files, summaries that never contradict a failure, heartbeats of long runs, `machine
//! remove`'s rotation advice, `-C DIR man`.

use crate::util::common::*;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  m1:
    generators: [openssh, base, shared-one]
  m2:
    generators: [openssh, base, shared-one]
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
        "shared-one",
        "share: true\nfiles:\n  k: {}\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/k\n",
    );
    let o = ws.run(&["generate", "--all"]);
    assert!(o.status.success(), "generate: {}", stderr(&o));
    Some(ws)
}

/// `varsmith check` without any identity.
fn keyless(ws: &Ws, args: &[&str]) -> std::process::Output {
    let mut c = ws.command(args);
    c.env("SOPS_AGE_KEY_FILE", "");
    c.output().expect("varsmith")
}

fn tamper(ws: &Ws, rel: &str) {
    let p = ws.root().join(rel);
    let text = std::fs::read_to_string(&p).unwrap();
    let at = text
        .find("ENC[AES256_GCM,data:")
        .expect("an encrypted value")
        + 20;
    let c = text.as_bytes()[at];
    let mut out = text.clone();
    out.replace_range(at..at + 1, if c == b'A' { "B" } else { "A" });
    std::fs::write(p, out).unwrap();
}

/// Item 2 and 5: a tampered file is a keyless finding; with a key the MAC decides, and the
/// summary does not blame the key for a file it opens.
#[test]
fn tampered_file_is_found_without_keys() {
    let Some(ws) = fleet() else { return };
    let o = keyless(&ws, &["check"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let rel = "sops/machines/m1/secrets/base.yaml";
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.root().join("sops/machines/m1/state/base.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["files"][rel]["recipients"].as_array().unwrap().len(),
        2,
        "host and admin recorded: {state}"
    );
    tamper(&ws, rel);
    let o = keyless(&ws, &["check"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("{rel}: modified outside varsmith"))
            && out.contains("then `varsmith rekey` records it"),
        "{out}"
    );
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("mac"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("modified outside"), "{}", stdout(&o));
    assert!(
        !stderr(&o).contains("does not open them")
            && stderr(&o).contains("1 files failed verification"),
        "{}",
        stderr(&o)
    );
    // rekey does not record a file whose MAC fails.
    let o = ws.run(&["rekey"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(rel), "{}", stderr(&o));
}

/// Item 4: a removed generator's state and facts are findings.
#[test]
fn leftover_generator_outputs_are_findings() {
    let Some(ws) = fleet() else { return };
    let inv = std::fs::read_to_string(ws.root().join("varsmith.yaml")).unwrap();
    let inv = inv.replacen(
        "generators: [openssh, base, shared-one]",
        "generators: [openssh, shared-one]",
        1,
    );
    std::fs::write(ws.root().join("varsmith.yaml"), inv).unwrap();
    let o = keyless(&ws, &["check", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().into(),
                f["detail"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        kinds.iter().any(|(k, d)| k == "leftover"
            && d.contains("sops/machines/m1/state/base.json")
            && d.contains("sops/machines/m1/facts/base/")),
        "{kinds:?}"
    );
}

/// Items 10 and 6: after `admin add`, one line for all files lacking the admin, with advice
/// naming who can open them; `--verbose` lists every file.
#[test]
fn admin_add_findings_are_grouped_with_working_advice() {
    let Some(ws) = fleet() else { return };
    let bob = "age1wqpj236clhpuxcv77ua76s5lplvjxywf4zlye7y2trhfkztm9unqdn53dz";
    let o = ws.run(&["admin", "add", "bob", bob]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mirror: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.root().join("varsmith.admins.json")).unwrap())
            .unwrap();
    assert_eq!(mirror["admins"]["bob"], bob);
    let o = keyless(&ws, &["check"]);
    let out = stdout(&o);
    // One line for the files; `.sops.yaml`'s rules lacking bob are one more finding.
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(bob) && !l.contains("sops-config"))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.contains(bob) && l.contains("sops-config"))
            .count(),
        1,
        "{out}"
    );
    assert!(
        lines[0].contains("files (") && lines[0].contains("`--verbose` lists them"),
        "{out}"
    );
    let o = keyless(&ws, &["check", "--verbose"]);
    let out = stdout(&o);
    assert!(
        out.lines().filter(|l| l.contains(bob)).count() >= 3,
        "{out}"
    );
    assert!(
        out.contains("with the key of one who can open it (host m1, admin alice)")
            && out.contains("`varsmith generate --regenerate -g base m1`"),
        "{out}"
    );
    let o = ws.run(&["rekey"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keyless(&ws, &["check"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

/// Item 3: the plan shows broken files with their action; never "nothing to do" then.
#[test]
fn plan_shows_broken_files() {
    let Some(ws) = fleet() else { return };
    let o = ws.run(&["generate", "--plan", "--all"]);
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    let rel = "sops/machines/m2/secrets/base.yaml";
    tamper(&ws, rel);
    let o = ws.run(&["generate", "--plan", "--all"]);
    let out = stdout(&o);
    assert!(!out.contains("nothing to do"), "{out}");
    assert!(
        out.contains(&format!("{rel}: modified: left as it is"))
            && out.contains("`varsmith generate --regenerate -g base m2` replaces it"),
        "{out}"
    );
    let o = ws.run(&["generate", "--plan", "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["broken"][0]["file"], rel, "{v}");
}

/// Item 10: `machine remove` names the shared secrets the machine could read.
#[test]
fn machine_remove_suggests_rotating_shared_secrets() {
    let Some(ws) = fleet() else { return };
    let o = ws.run(&["machine", "remove", "m2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("m2 could read the shared secrets of shared-one")
            && stdout(&o).contains("`varsmith generate --regenerate -g shared-one --all`"),
        "{}",
        stdout(&o)
    );
}

/// Item 12: a running generator prints a heartbeat when stderr is not a terminal. The script
/// blocks on a fifo the test opens only after it saw the heartbeat line.
#[test]
fn heartbeat_of_a_running_generator() {
    if !(require("sops") && require("age")) {
        return;
    }
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [slow]\n");
    let fifo = ws.root().join("release");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    ws.generator(
        "slow",
        &format!(
            "files:\n  s: {{ secret: false }}\nscript: |\n  read -r line < {}\n  echo \"$line\" > $out/s\n",
            fifo.display()
        ),
    );
    let mut child = ws
        .command(&["generate", "--no-sandbox", "m1"])
        .env("VARSMITH_HEARTBEAT_SECS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "no heartbeat before the end: {seen}"
        );
        seen.push_str(&line);
        if line.starts_with("still running: machine m1, generator slow ") {
            break;
        }
    }
    std::fs::write(&fifo, "go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{seen}{rest}");
}

/// Item 15: `-C DIR man` prints the page; `--out-dir` writes them.
#[test]
fn man_with_workspace_dir() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(dir.path())
        .arg("man")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(".TH"), "{}", stdout(&o));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let out = dir.path().join("pages");
    std::fs::create_dir(&out).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .args(["man", "--out-dir"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("varsmith.1").is_file());
}

/// Item 7: without a key, regenerating a generator with a persisted prompt says the stored
/// value cannot be decrypted (and how to proceed), instead of asking for the prompt.
#[test]
fn a_persisted_prompt_without_a_key_says_it_cannot_decrypt() {
    if !(require("sops") && require("bwrap") && require("age")) {
        return;
    }
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, p]\n");
    ws.generator(
        "p",
        "prompts:\n  pw: { type: hidden, persist: true }\nfiles:\n  out: {}\nscript: |\n  cat $prompts/pw > $out/out\n",
    );
    let o = ws
        .command(&["generate"])
        .env("VARSMITH_PROMPT_P_PW", "s3cret")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let before = ws.snapshot();
    let o = ws
        .command(&["generate", "--regenerate", "-g", "p", "m1"])
        .env("SOPS_AGE_KEY_FILE", "")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot decrypt the stored value of the persisted prompt pw")
            && err.contains("--identity FILE"),
        "{err}"
    );
    assert!(!err.contains("no terminal"), "{err}");
    assert_eq!(before, ws.snapshot(), "something was written");
}

/// Item 11: a regeneration whose public outputs changed names the machines to deploy: those
/// declaring the generator, those depending on it, a shared generator's consumers; not others.
#[test]
fn changed_public_outputs_name_the_machines_to_deploy() {
    if !(require("sops") && require("bwrap") && require("age")) {
        return;
    }
    let ws = Ws::new(
        "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, sp, dep]\n  m2:\n    generators: [openssh, sp]\n  m3:\n    generators: [openssh, own, ownpub]\n",
    );
    let rnd = "od -An -N8 -tx1 /dev/urandom | tr -d ' \\n'";
    ws.generator(
        "sp",
        &format!("share: true\nfiles:\n  p: {{ secret: false }}\nscript: |\n  {rnd} > $out/p\n"),
    );
    ws.generator(
        "dep",
        "dependencies: [sp]\nfiles:\n  d: {}\nscript: |\n  cat $in/sp/p > $out/d\n",
    );
    ws.generator(
        "own",
        &format!("files:\n  q: {{ secret: false }}\nscript: |\n  {rnd} > $out/q\n"),
    );
    ws.generator(
        "ownpub",
        "files:\n  s: {}\nscript: |\n  echo fixed > $out/s\n",
    );
    let o = ws.run(&["generate", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The first generation changed nothing that was deployed: no such line.
    assert!(
        !stderr(&o).contains("public outputs changed"),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["generate", "--regenerate", "-g", "sp", "--all"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("public outputs changed: deploy m1, m2 (`varsmith deploy m1 m2`)"),
        "{err}"
    );
    let o = ws.run(&["generate", "--regenerate", "-g", "own", "m3"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("public outputs changed: deploy m3 (`varsmith deploy m3`)"),
        "{err}"
    );
    // A regeneration whose public outputs are the same names nobody.
    let o = ws.run(&["generate", "--regenerate", "-g", "ownpub", "m3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("public outputs changed"),
        "{}",
        stderr(&o)
    );
}

/// Item 3, second half: a `generate` whose only steps failed (re-encrypting for a new admin
/// without a key that opens the files) never ends with "nothing to do".
#[test]
fn a_failed_generate_never_says_nothing_to_do() {
    let Some(ws) = fleet() else { return };
    let bob = "age1wqpj236clhpuxcv77ua76s5lplvjxywf4zlye7y2trhfkztm9unqdn53dz";
    let o = ws.run(&["admin", "add", "bob", bob]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = keyless(&ws, &["generate", "--all"]);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("FAILED"), "{err}");
    assert!(!err.contains("nothing to do"), "{err}");
    assert!(err.contains("no generator ran"), "{err}");
}
