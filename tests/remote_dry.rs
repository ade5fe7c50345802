//! Dry runs of deploy, push-keys and bootstrap through the binary: exact command lines, the
//! documented `--json` shape, nothing started (not even ssh); push-keys on a machine without
//! `global-identity`.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::remote::{
    Sshd, StandIns, deploy_dir, keyed_workspace, require_as_root, write_inventory,
};
use serde_json::Value;

fn varsmith(root: &Path, args: &[&str], path: &std::ffi::OsStr) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("PATH", path)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("NIX_SSHOPTS")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A PATH whose `ssh`, `nix` and every deploy tool only record that they ran.
fn recording_path(s: &StandIns) -> std::ffi::OsString {
    for p in ["ssh", "nix", "nixos-anywhere"] {
        crate::util::remote::script(
            &s.bin.join(p),
            &format!("#!/bin/sh\necho ran >> '{}'\nexit 1\n", s.log.display()),
        );
    }
    s.path_env()
}

/// Checks a command object of the JSON: argv (strings), env (string map), stdin, line.
fn check_cmd(c: &Value) -> Vec<String> {
    let argv: Vec<String> = c["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("argv string").to_string())
        .collect();
    assert!(
        c["env"]
            .as_object()
            .expect("env")
            .values()
            .all(Value::is_string)
    );
    assert!(c["stdin"].is_null() || c["stdin"] == "previous-path");
    assert!(c["line"].as_str().expect("line").contains(argv[0].as_str()));
    argv
}

const FLEET: &str = "\
machines:
  ctl:
    tags: [zerotier-controller]
    generators: [openssh]
  mac:
    target: admin@mac.example.org
    system: aarch64-darwin
  peer:
    target: root@10.0.0.2
deploy:
  order: [zerotier-controller]
";

#[test]
fn deploy_dry_run_json_has_the_documented_shape() {
    let ws = deploy_dir();
    write_inventory(ws.path(), FLEET);
    let s = StandIns::new();
    let path = recording_path(&s);
    let out = varsmith(
        ws.path(),
        &[
            "deploy",
            "--all",
            "--dry-run",
            "--json",
            "--verify",
            "-j",
            "16",
        ],
        &path,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["command"], "deploy");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["jobs"], 16);
    assert_eq!(doc["keep_going"], false);
    assert!(doc["check"].as_str().unwrap().ends_with(" check"));
    let stages = doc["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0]["label"], "tag zerotier-controller");
    let ctl = &stages[0]["machines"][0];
    assert_eq!(ctl["machine"], "ctl");
    assert_eq!(ctl["backend"], "nixos-rebuild");
    assert_eq!(ctl["target"], "root@ctl");
    let argv = check_cmd(&ctl["commands"][0]);
    assert_eq!(argv[..4], ["nixos-rebuild", "switch", "--flake", ".#ctl"]);
    let v = &ctl["verify"];
    assert_eq!(v["systemd"], true);
    assert_eq!(check_cmd(&v["command"])[0], "ssh");
    assert_eq!(
        v["files"],
        serde_json::json!([{ "path": "/run/secrets/varsmith/openssh/ssh_host_ed25519_key",
            "owner": "root", "group": "root", "mode": "0600" }])
    );
    let mac = &stages[1]["machines"][0];
    assert_eq!(mac["backend"], "darwin-rebuild");
    let cmds = mac["commands"].as_array().unwrap();
    let copy = check_cmd(&cmds[0]);
    assert_eq!(
        copy,
        [
            "nix",
            "flake",
            "archive",
            "--json",
            "--to",
            "ssh-ng://admin@mac.example.org",
            "."
        ]
    );
    let act = check_cmd(&cmds[1]);
    assert_eq!(cmds[1]["stdin"], "previous-path");
    assert_eq!(act[0], "ssh");
    assert!(
        act.last().unwrap().contains("sudo darwin-rebuild switch"),
        "{act:?}"
    );
    assert_eq!(mac["verify"]["systemd"], false);
    assert!(s.records().is_empty(), "nothing ran");
    assert!(!s.log.exists(), "not even ssh");
    // --json without --dry-run is the run's summary as JSON (tested in remote_hey_flags.rs).
}

#[test]
fn push_keys_and_bootstrap_dry_runs_print_exact_commands_and_json() {
    let ws = tempfile::tempdir().unwrap();
    write_inventory(
        ws.path(),
        "machines:\n  web:\n    target: root@web.example.org\n    generators: [openssh]\n",
    );
    let s = StandIns::new();
    let path = recording_path(&s);
    let out = varsmith(
        ws.path(),
        &["push-keys", "web", "--dry-run", "--json"],
        &path,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["command"], "push-keys");
    assert_eq!(doc["machine"], "web");
    assert_eq!(doc["target"], "root@web.example.org");
    assert_eq!(
        doc["files"],
        serde_json::json!([
            { "path": "/etc/ssh/ssh_host_ed25519_key", "mode": "0600" },
            { "path": "/etc/ssh/ssh_host_ed25519_key.pub", "mode": "0644" }
        ]),
        "no global identity on a machine without it"
    );
    let argv = check_cmd(&doc["commands"][0]);
    assert_eq!(argv[..2], ["ssh", "-T"]);
    assert_eq!(argv[argv.len() - 2], "root@web.example.org");
    assert_eq!(doc["pin"]["alias"], "web");
    assert_eq!(doc["pin"]["keep_previous"], true);
    let out = varsmith(ws.path(), &["push-keys", "web", "--dry-run"], &path);
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].starts_with(
            "ssh -T -o 'BatchMode=yes' -o 'ConnectTimeout=20' -- root@web.example.org $'sh -c \\'set -eu\\ndir=/etc/ssh\\n"
        ),
        "{lines:?}"
    );

    let out = varsmith(
        ws.path(),
        &[
            "bootstrap",
            "web",
            "root@1.2.3.4",
            "--no-reboot",
            "--dry-run",
            "--json",
        ],
        &path,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["command"], "bootstrap");
    assert_eq!(doc["extra_files"]["root"], "<tmpfs>/extra-files");
    assert_eq!(
        doc["extra_files"]["files"][0]["path"],
        "etc/ssh/ssh_host_ed25519_key"
    );
    assert_eq!(
        check_cmd(&doc["commands"][0]),
        [
            "nixos-anywhere",
            "--flake",
            ".#web",
            "--extra-files",
            "<tmpfs>/extra-files",
            "--no-reboot",
            "root@1.2.3.4"
        ]
    );
    assert_eq!(doc["pin"]["keep_previous"], false);
    let out = varsmith(
        ws.path(),
        &["bootstrap", "web", "root@1.2.3.4", "--dry-run"],
        &path,
    );
    assert!(
        text(&out.stdout).contains(
            "\nnixos-anywhere --flake '.#web' --extra-files '<tmpfs>/extra-files' root@1.2.3.4\n"
        ),
        "{}",
        text(&out.stdout)
    );
    assert!(!s.log.exists(), "nothing ran, not even ssh");
    assert!(!ws.path().join("known_hosts").exists(), "nothing pinned");
}

#[test]
fn push_keys_works_on_a_machine_without_global_identity() {
    if !require_as_root(&["sops", "age-keygen"]) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let ws = tempfile::tempdir().unwrap();
    let inv = "machines:\n  web:\n    generators: [openssh]\n";
    let (sk, pk, _gsk, age) = keyed_workspace(ws.path(), "web", inv);
    std::fs::remove_dir_all(ws.path().join("sops/shared")).unwrap();
    std::fs::write(
        ws.path().join("known_hosts"),
        format!("web {}\n", sshd.host_pub),
    )
    .unwrap();
    let mut args = vec!["push-keys".to_string(), "web".into(), sshd.target()];
    for o in sshd.ssh_options() {
        args.extend(["--ssh-option".to_string(), o]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.path())
        .args(&args)
        .env("SOPS_AGE_KEY_FILE", &age)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(sshd.etc_ssh.join("ssh_host_ed25519_key")).unwrap(),
        sk
    );
    assert!(!sshd.etc_ssh.join("global_ed25519").exists());
    let pins = std::fs::read_to_string(ws.path().join("known_hosts")).unwrap();
    let pk2: Vec<&str> = pk.split_whitespace().take(2).collect();
    assert!(pins.contains(&format!("web {}", pk2.join(" "))), "{pins}");
}
