//! The everyday CLI surface through the binary: shell completions (parsed and run by real
//! bash, zsh and fish), the man page (rendered by groff), `--json` documents (parsed with
//! serde_json, fields checked against the README's shapes), errors as JSON, the one
//! did-you-mean wording, a line per finished generator off a terminal, a closed stdout, and
//! `init` reusing an existing age key.

use crate::util::common::*;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  cinnabar:
    generators: [openssh, base, derived]
  electrum:
    generators: [openssh, base]
";

/// The workspace above with two small generators of its own (no real tool needed to plan).
fn fleet() -> Ws {
    let ws = Ws::new(FLEET);
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/s\n  echo \"public-$machine\" > $out/pub\n",
    );
    ws.generator(
        "derived",
        "dependencies: [base]\nfiles:\n  d: { owner: api, group: api, mode: \"0440\" }\nscript: |\n  sha256sum < $in/base/s | cut -d' ' -f1 > $out/d\n",
    );
    ws
}

/// Runs the built binary with `args` (no workspace), `HOME` set to `home`.
fn varsmith_in(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .args(args)
        .env("HOME", home)
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run varsmith")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}

fn shell(sh: &str, script: &str) -> Output {
    Command::new(sh)
        .args(["-c", script])
        .output()
        .expect("run shell")
}

#[test]
fn bash_completion_parses_and_completes_subcommands_and_options() {
    if !require("bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = varsmith_in(dir.path(), &["completions", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = dir.path().join("varsmith.bash");
    std::fs::write(&file, &o.stdout).unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "set -e; source {f}; COMP_WORDS=({w}); COMP_CWORD={c}; COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _varsmith varsmith '{cur}' '{prev}'; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            f = file.display(),
            w = words.join(" "),
            c = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let o = shell("bash", &script);
        assert!(o.status.success(), "bash: {}", stderr(&o));
        stdout(&o)
    };
    let subs = complete("varsmith gen");
    assert_eq!(subs.lines().collect::<Vec<_>>(), ["generate"], "{subs}");
    let opts = complete("varsmith generate --pl");
    assert!(opts.lines().any(|l| l == "--plan"), "{opts}");
    let opts = complete("varsmith list --j");
    assert!(opts.lines().any(|l| l == "--json"), "{opts}");
}

#[test]
fn zsh_and_fish_completions_load_in_the_real_shells() {
    let dir = tempfile::tempdir().unwrap();
    if require("zsh") {
        let o = varsmith_in(dir.path(), &["completions", "zsh"]);
        assert!(o.status.success());
        let f = dir.path().join("_varsmith");
        std::fs::write(&f, &o.stdout).unwrap();
        let o = shell(
            "zsh",
            &format!(
                "autoload -U compinit; compinit -u -d {d}/zcd; source {f}; print $+functions[_varsmith]",
                d = dir.path().display(),
                f = f.display()
            ),
        );
        assert_eq!(stdout(&o).trim(), "1", "zsh: {}", stderr(&o));
    }
    if require("fish") {
        let o = varsmith_in(dir.path(), &["completions", "fish"]);
        assert!(o.status.success());
        let f = dir.path().join("varsmith.fish");
        std::fs::write(&f, &o.stdout).unwrap();
        let o = Command::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!(
                "source {}; complete -C 'varsmith gen'",
                f.display()
            ))
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(
            stdout(&o).starts_with("generate\t"),
            "fish: {} {}",
            stdout(&o),
            stderr(&o)
        );
    }
}

/// Renders roff with groff as plain text; fails on any groff warning.
fn groff(roff: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("groff");
    child.stdin.take().unwrap().write_all(roff).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "groff: {}",
        stderr(&o)
    );
    stdout(&o)
}

#[test]
fn man_renders_the_main_page_and_a_subcommand_page() {
    if !require("groff") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = varsmith_in(dir.path(), &["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = groff(&o.stdout);
    assert!(page.starts_with("varsmith(1)"), "{page}");
    for want in [
        "NAME",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "generate",
        "completions",
        "--identity",
    ] {
        assert!(page.contains(want), "man page lacks {want}:\n{page}");
    }
    let o = varsmith_in(dir.path(), &["man", "generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = groff(&o.stdout);
    assert!(page.starts_with("varsmith-generate(1)"), "{page}");
    assert!(page.contains("--plan") && page.contains("--json"), "{page}");
    let o = varsmith_in(dir.path(), &["man", "generat"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(r#"unknown command "generat" (did you mean "generate"?)"#),
        "{}",
        stderr(&o)
    );
    // `man --out-dir`: every page, as the flake package installs them.
    let pages = dir.path().join("man");
    std::fs::create_dir(&pages).unwrap();
    let o = varsmith_in(dir.path(), &["man", "--out-dir", pages.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (file, title) in [
        ("varsmith.1", "varsmith(1)"),
        ("varsmith-generate.1", "varsmith-generate(1)"),
        ("varsmith-deploy.1", "varsmith-deploy(1)"),
        ("varsmith-zerotier.1", "varsmith-zerotier(1)"),
    ] {
        let page = groff(&std::fs::read(pages.join(file)).unwrap());
        assert!(page.starts_with(title), "{file}: {page}");
    }
    let o = varsmith_in(dir.path(), &["man", "--out-dir", "/nonexistent-dir"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn unknown_names_have_one_wording_everywhere_and_write_nothing() {
    let ws = fleet();
    let contents_before = contents(&ws);
    let machine = r#"unknown machine "cinabar" (did you mean "cinnabar"?)"#;
    for args in [
        &["generate", "cinabar"][..],
        &["generate", "--plan", "cinabar"],
        &["check", "cinabar"],
        &["list", "cinabar"],
        &["get", "cinabar", "base/s"],
        &["set", "cinabar", "base/s"],
        &["rekey", "cinabar"],
        &["push-keys", "cinabar"],
        &["bootstrap", "cinabar", "root@192.0.2.1"],
        &["deploy", "--dry-run", "cinabar"],
        &["machine", "remove", "cinabar"],
    ] {
        let o = ws.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(machine), "{args:?}: {}", stderr(&o));
    }
    // A typo gets a suggestion; a generator that exists but no machine uses says so.
    let o = ws.run(&["generate", "-g", "wirguard"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(r#"unknown generator "wirguard" (did you mean "wireguard"?)"#),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["generate", "-g", "tls-ca"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(r#"generator "tls-ca" is defined but not used by any machine"#)
            && !e.contains("did you mean"),
        "{e}"
    );
    let o = ws.run(&["get", "electrum", "derived/d"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(r#"generator "derived" is defined but not used by machine electrum"#),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["get", "cinnabar", "bsae/s"]);
    assert!(
        stderr(&o).contains(r#"unknown generator "bsae" (did you mean "base"?)"#),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["get", "cinnabar", "base/pubb"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(
            r#"machine cinnabar, generator base: unknown file "pubb" (did you mean "pub"?)"#
        ),
        "{}",
        stderr(&o)
    );
    let o = ws.run(&["admin", "remove", "alcie"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(r#"unknown admin "alcie" (did you mean "alice"?)"#),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        contents(&ws),
        contents_before,
        "a rejected command wrote something"
    );
    // An inventory naming an unknown generator: the file, the machine and a suggestion.
    let bad = ws.root().join("varsmith.yaml");
    let text = std::fs::read_to_string(&bad).unwrap();
    std::fs::write(&bad, text.replace("[openssh, base]", "[openssh, bsae]")).unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("varsmith.yaml")
            && e.contains(r#"machine electrum: unknown generator "bsae" (did you mean "base"?)"#),
        "{e}"
    );
    std::fs::write(&bad, text).unwrap();
}

/// The workspace's files and their bytes, without the lock file (created by the first
/// command that takes the lock, and empty).
fn contents(ws: &Ws) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let lock = ws.root().join("sops/.tmp/lock");
    ws.snapshot()
        .into_iter()
        .filter(|(p, ..)| *p != lock)
        .map(|(p, b, _)| (p, b))
        .collect()
}

#[test]
fn json_errors_on_a_broken_inventory_and_a_bad_command_line() {
    let ws = fleet();
    std::fs::write(ws.root().join("varsmith.yaml"), "machines: [\n").unwrap();
    for args in [
        &["check", "--json"][..],
        &["list", "cinnabar", "--json"],
        &["generate", "--json"],
        &["generate", "--plan", "--json"],
    ] {
        let o = ws.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let v = json(&o);
        let e = &v["error"];
        assert_eq!(e["kind"], "usage", "{args:?}: {v}");
        assert_eq!(e["exit_code"], 2);
        assert!(
            e["message"].as_str().unwrap().contains("varsmith.yaml"),
            "{v}"
        );
        assert!(e["causes"].is_array());
        // The human message is on stderr as without --json.
        assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
    }
    let o = ws.run(&["check", "--json", "--no-such-option"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(json(&o)["error"]["kind"], "usage");
    // Without --json, stdout stays empty.
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
}

#[test]
fn list_has_a_header_and_json_with_every_file_option() {
    let ws = fleet();
    let o = ws.run(&["list", "cinnabar"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "VAR\tKIND\tON HOST\tSTATE");
    assert!(
        lines.contains(&"derived/d\tsecret\t0440 api:api\tmissing: never generated"),
        "{out}"
    );
    let o = ws.run(&["list", "cinnabar", "--json"]);
    assert!(o.status.success());
    let v = json(&o);
    assert_eq!(v["machine"], "cinnabar");
    let vars = v["vars"].as_array().unwrap();
    let names: Vec<&str> = vars.iter().map(|x| x["var"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "openssh/ssh_host_ed25519_key",
            "openssh/ssh_host_ed25519_key.pub",
            "base/s",
            "base/pub",
            "derived/d"
        ]
    );
    let d = &vars[4];
    assert_eq!(d["generator"], "derived");
    assert_eq!(d["file"], "d");
    assert_eq!(d["secret"], true);
    assert_eq!(d["deploy"], true);
    assert_eq!(d["shared"], false);
    assert_eq!(d["owner"], "api");
    assert_eq!(d["group"], "api");
    assert_eq!(d["mode"], "0440");
    assert_eq!(d["needed_for"], "services");
    assert_eq!(d["state"], "missing");
    assert_eq!(d["state_text"], "missing: never generated");
    assert_eq!(vars[3]["secret"], false);

    // check --json: the documented shape, one finding per generator never generated.
    let o = ws.run(&["check", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["checked"], 5);
    let f = &v["findings"].as_array().unwrap()[0];
    assert_eq!(f["owner"], "cinnabar");
    assert_eq!(f["generator"], "openssh");
    assert_eq!(f["kind"], "missing");
    assert!(f["detail"].is_string() && f["source"].is_string(), "{f}");
}

#[test]
fn generate_json_says_what_ran_why_and_which_files_and_logs_a_line_per_run() {
    if !(require("sops") && require("bwrap") && require("age")) {
        return;
    }
    let ws = fleet();
    let o = ws.run(&["generate", "--plan", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = json(&o);
    let plan = plan["plan"].as_array().unwrap();
    assert_eq!(plan.len(), 5);
    assert_eq!(plan[0]["machine"], "cinnabar");
    assert_eq!(plan[0]["generator"], "openssh");
    assert_eq!(plan[0]["label"], "cinnabar/openssh");
    assert_eq!(plan[0]["reason"], "missing");
    assert_eq!(plan[0]["source"], "bundled:openssh");
    assert!(
        ws.snapshot()
            .iter()
            .all(|(p, ..)| !p.starts_with(ws.root().join("sops")))
    );

    let o = ws.run(&["generate", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    for r in runs {
        assert_eq!(r["status"], "ran", "{r}");
        assert_eq!(r["reason"], "missing");
        assert_eq!(r["reason_text"], "missing: never generated");
        assert!(r["took_ms"].is_u64(), "{r}");
        assert!(r["error"].is_null());
    }
    let base = runs.iter().find(|r| r["label"] == "electrum/base").unwrap();
    assert_eq!(base["machine"], "electrum");
    assert_eq!(base["generator"], "base");
    assert_eq!(base["files"], serde_json::json!(["s", "pub"]));
    assert_eq!(
        v["summary"],
        serde_json::json!({"ran": 5, "failed": 0, "skipped": 0, "up_to_date": 0})
    );
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["failures"], serde_json::json!([]));
    // Names only: no generated value is in the document.
    let secret = ws.run(&["get", "electrum", "base/s"]).stdout;
    assert_eq!(secret.len(), 32);
    assert!(!stdout(&o).contains(std::str::from_utf8(&secret).unwrap()));
    // Off a terminal: one line per finished generator, with the reason it ran.
    let log = stderr(&o);
    for label in [
        "cinnabar/openssh",
        "cinnabar/base",
        "cinnabar/derived",
        "electrum/openssh",
        "electrum/base",
    ] {
        let line = log
            .lines()
            .find(|l| l.starts_with(&format!("done {label} ")))
            .unwrap_or_else(|| panic!("no line for {label}: {log}"));
        let rest = line[format!("done {label} ").len()..].to_string();
        let (took, why) = rest.split_once(' ').unwrap();
        assert!(
            took.ends_with('s') && took.trim_end_matches('s').parse::<f64>().is_ok(),
            "{line}"
        );
        assert_eq!(why, "(missing: never generated)", "{line}");
    }
    assert!(
        log.contains("generated 5 of 5 planned generator runs"),
        "{log}"
    );

    // Nothing to do: every node in scope is up to date, and no per-run line is printed.
    let o = ws.run(&["generate", "--json", "cinnabar"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "{v}");
    assert!(
        runs.iter().all(|r| r["status"] == "up-to-date"
            && r["reason"].is_null()
            && r["took_ms"].is_null())
    );
    assert!(!stderr(&o).contains("done "), "{}", stderr(&o));

    // A failing run and what it skips.
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nvalidation: failing\nscript: exit 3\n",
    );
    let o = ws.run(&["generate", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json(&o);
    let runs = v["runs"].as_array().unwrap();
    let failed: Vec<&Value> = runs.iter().filter(|r| r["status"] == "failed").collect();
    assert!(
        failed.iter().any(|r| r["label"] == "electrum/base"
            && r["reason"] == "changed"
            && r["error"].is_string()),
        "{v}"
    );
    assert!(
        runs.iter()
            .any(|r| r["label"] == "cinnabar/derived" && r["status"] == "skipped"),
        "{v}"
    );
    assert_eq!(v["exit_code"], 1);
    assert!(
        stderr(&o)
            .lines()
            .any(|l| l.starts_with("failed electrum/base ")),
        "{}",
        stderr(&o)
    );
}

/// Runs varsmith with a stdout whose reading end is already closed: every write fails with
/// EPIPE, deterministically.
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(writer)
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    cmd.output().expect("run varsmith")
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let ws = fleet();
    let store = tempfile::tempdir().unwrap();
    for i in 0..50 {
        std::fs::write(
            store.path().join(format!("f{i}")),
            format!("leak-{i} hunter2-secret-value"),
        )
        .unwrap();
    }
    let secrets = store.path().join("secrets.txt");
    std::fs::write(
        &secrets,
        format!("s={}\n", hex::encode("hunter2-secret-value")),
    )
    .unwrap();
    for args in [
        &["man"][..],
        &["completions", "bash"],
        &["list", "cinnabar"],
        &["list", "cinnabar", "--json"],
        &["check"],
        &["check", "--json"],
        &["generate", "--plan"],
        &["generate", "--plan", "--json"],
        &["--help"],
    ] {
        let o = with_closed_stdout(ws.command(args));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            !e.contains("Broken pipe") && !e.contains("panicked"),
            "{args:?}: {e}"
        );
    }
    // The sops verbs too: encrypt, then decrypt, to a closed stdout.
    let plain = store.path().join("plain.yaml");
    std::fs::write(&plain, "a: 1\nb: two\n").unwrap();
    let o = with_closed_stdout(ws.command(&[
        "sops",
        "encrypt",
        "--age",
        &ws.recipient,
        plain.to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(0), "sops encrypt: {}", stderr(&o));
    let enc = ws.run(&[
        "sops",
        "encrypt",
        "--age",
        &ws.recipient,
        plain.to_str().unwrap(),
    ]);
    assert!(enc.status.success(), "{}", stderr(&enc));
    let enc_file = store.path().join("enc.yaml");
    std::fs::write(&enc_file, &enc.stdout).unwrap();
    let o = with_closed_stdout(ws.command(&["sops", "decrypt", enc_file.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(0), "sops decrypt: {}", stderr(&o));
    assert!(o.stderr.is_empty(), "{}", stderr(&o));
    // audit: its verdict is not clean, yet a closed stdout still ends it with 0 and no noise.
    for json in [true, false] {
        let mut c = ws.command(&["audit", "--store"]);
        c.arg(store.path())
            .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets);
        if json {
            c.arg("--json");
        }
        let o = with_closed_stdout(c);
        assert_eq!(o.status.code(), Some(0), "audit: {}", stderr(&o));
        assert!(!stderr(&o).contains("Broken pipe"), "{}", stderr(&o));
    }
    // With a reader the same audit finds the leaks (the commands above did have work to print).
    let mut c = ws.command(&["audit", "--json", "--store"]);
    c.arg(store.path())
        .env("VARSMITH_AUDIT_SECRETS_FILE", &secrets);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(json(&o).is_object());
}

#[test]
fn init_reuses_the_existing_age_key_unless_new_key() {
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join(".config/sops/age/keys.txt");
    let existing = varsmith::keys::keygen::append_admin_key(&keys).unwrap();
    let before = std::fs::read(&keys).unwrap();
    let ws1 = home.path().join("ws1");
    let o = varsmith_in(
        home.path(),
        &["-C", ws1.to_str().unwrap(), "init", "--admin", "alice"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "using its age key from {} ({existing})",
            keys.display()
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(&keys).unwrap(),
        before,
        "the key file changed"
    );
    let inv = std::fs::read_to_string(ws1.join("varsmith.yaml")).unwrap();
    assert!(inv.contains(&format!("alice: {existing}")), "{inv}");
    let key_json = std::fs::read_to_string(ws1.join("sops/users/alice/key.json")).unwrap();
    assert!(key_json.contains(&existing));

    // --new-key appends a second key and registers that one.
    let ws2 = home.path().join("ws2");
    let o = varsmith_in(
        home.path(),
        &[
            "-C",
            ws2.to_str().unwrap(),
            "init",
            "--admin",
            "bob",
            "--new-key",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(text.matches("AGE-SECRET-KEY-1").count(), 2);
    assert!(
        text.starts_with(std::str::from_utf8(&before).unwrap()),
        "the old key was not kept"
    );
    let inv = std::fs::read_to_string(ws2.join("varsmith.yaml")).unwrap();
    assert!(!inv.contains(&existing), "{inv}");

    // With two keys, the first is reused and the message says so.
    let ws3 = home.path().join("ws3");
    let o = varsmith_in(home.path(), &["-C", ws3.to_str().unwrap(), "init"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the first of its 2 age keys"),
        "{}",
        stderr(&o)
    );

    // SOPS_AGE_KEY_FILE names the key file; a missing one gets a new key.
    let other = home.path().join("other/keys.txt");
    let ws4 = home.path().join("ws4");
    let o = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .args(["-C", ws4.to_str().unwrap(), "init", "--admin", "carol"])
        .env("HOME", home.path())
        .env("SOPS_AGE_KEY_FILE", &other)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("added a new age key"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&other)
            .unwrap()
            .matches("AGE-SECRET-KEY-1")
            .count(),
        1
    );
}

/// Runs `varsmith ARGS` on a terminal (`script`) with `typed` as the keyboard input.
fn on_a_terminal(home: &Path, args: &str, typed: &[u8]) -> Output {
    use std::io::Write;
    let cmdline = format!("{} {args}", env!("CARGO_BIN_EXE_varsmith"));
    let mut child = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .env("HOME", home)
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    // Typed ahead: the terminal buffers the line until varsmith reads it.
    child.stdin.as_mut().unwrap().write_all(typed).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn init_on_a_terminal_asks_before_reusing_the_key() {
    if !require("script") {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join(".config/sops/age/keys.txt");
    let existing = varsmith::keys::keygen::append_admin_key(&keys).unwrap();
    let ws1 = home.path().join("ws1");
    let o = on_a_terminal(
        home.path(),
        &format!("-C {} init --admin ann", ws1.display()),
        b"\n",
    );
    assert!(o.status.success(), "{}", stdout(&o));
    let screen = stdout(&o);
    assert!(
        screen.contains(&format!(
            "already holds an age key ({existing}). Use it? [Y/n]"
        )),
        "{screen}"
    );
    let inv = std::fs::read_to_string(ws1.join("varsmith.yaml")).unwrap();
    assert!(inv.contains(&format!("ann: {existing}")), "{inv}");

    let ws2 = home.path().join("ws2");
    let o = on_a_terminal(
        home.path(),
        &format!("-C {} init --admin ben", ws2.display()),
        b"n\n",
    );
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("added a new age key"), "{}", stdout(&o));
    let inv = std::fs::read_to_string(ws2.join("varsmith.yaml")).unwrap();
    assert!(
        inv.contains("ben: age1") && !inv.contains(&existing),
        "{inv}"
    );
    let text = std::fs::read_to_string(&keys).unwrap();
    assert_eq!(text.matches("AGE-SECRET-KEY-1").count(), 2);
}
