//! The hey verbs' flags (issue 23, item 4), each asserted on the exact argv: what the dry run
//! prints and, where a tool runs, what a recording stand-in received.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::remote::{StandIns, write_inventory};

const INV: &str = "machines:\n  web:\n    target: admin@web.example.org\n  box:\n    target: root@box.example.org\n  mac:\n    target: admin@mac.example.org\n    system: aarch64-darwin\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ws(inv: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_inventory(d.path(), inv);
    d
}

fn run(root: &Path, args: &[&str], s: Option<&StandIns>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C").arg(root).args(args).env_remove("NIX_SSHOPTS");
    if let Some(s) = s {
        c.env("PATH", s.path_env());
    }
    c.output().unwrap()
}

fn plan_argv(root: &Path, args: &[&str]) -> Vec<Vec<String>> {
    let mut a = vec!["deploy", "--dry-run", "--json", "--no-check"];
    a.extend(args);
    let o = run(root, &a, None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut out = Vec::new();
    for st in v["stages"].as_array().unwrap() {
        for m in st["machines"].as_array().unwrap() {
            for c in m["commands"].as_array().unwrap() {
                out.push(serde_json::from_value(c["argv"].clone()).unwrap());
            }
        }
    }
    out
}

#[test]
fn a_non_root_nixos_target_gets_remote_sudo_and_fast_is_passed() {
    let w = ws(INV);
    let argv = plan_argv(w.path(), &["web", "--fast"]);
    assert_eq!(
        argv,
        [[
            "nixos-rebuild",
            "switch",
            "--flake",
            ".#web",
            "--target-host",
            "admin@web.example.org",
            "--build-host",
            "localhost",
            "--use-remote-sudo",
            "--show-trace",
            "--fast"
        ]]
    );
    let root = plan_argv(w.path(), &["box"]);
    assert!(!root[0].contains(&"--use-remote-sudo".to_string()));
    // The stand-in receives exactly that argv.
    let s = StandIns::new();
    let o = run(
        w.path(),
        &["deploy", "web", "--fast", "--no-check"],
        Some(&s),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let recs = s.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0][1..], argv[0][..]);
}

#[test]
fn fast_on_nh_darwin_and_clan_is_refused_with_a_reason() {
    let w = ws(&format!("{INV}deploy:\n  backend: nh\n"));
    let o = run(w.path(), &["deploy", "web", "--fast", "--dry-run"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("web: nh has no --fast"),
        "{}",
        text(&o.stderr)
    );
    let o = run(w.path(), &["deploy", "mac", "--fast", "--dry-run"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("mac: darwin-rebuild has no --fast"),
        "{}",
        text(&o.stderr)
    );
    // nh takes --build-host as nixos-rebuild does.
    let argv = plan_argv(w.path(), &["web", "--build-host", "builder.example.org"]);
    assert_eq!(
        argv[0],
        [
            "nh",
            "os",
            "switch",
            ".",
            "--hostname",
            "web",
            "--target-host",
            "admin@web.example.org",
            "--build-host",
            "builder.example.org",
            "--",
            "--show-trace"
        ]
    );
}

#[test]
fn sync_checks_the_host_and_syncs_darwin_with_darwin_rebuild() {
    let w = ws(INV);
    let o = run(w.path(), &["sync", "--host", "wbe", "--dry-run"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("wbe") && err.contains("web"), "{err}");
    let o = run(w.path(), &["sync", "--host", "mac", "--dry-run"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line = text(&o.stdout);
    assert!(
        line == "darwin-rebuild switch --flake '.#mac' --show-trace\n"
            || line == "sudo darwin-rebuild switch --flake '.#mac' --show-trace\n",
        "{line}"
    );
    // No --host: this machine's name is none of the workspace's.
    let o = run(w.path(), &["sync", "--dry-run"], None);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("pass --host with one of: web, box, mac"),
        "{err}"
    );
}

#[test]
fn install_and_bootstrap_refuse_darwin_and_a_missing_root() {
    let w = ws(INV);
    for args in [
        &["install", "--host", "mac", "--root", "/", "--dry-run"][..],
        &["bootstrap", "mac", "root@installer", "--dry-run"][..],
    ] {
        let o = run(w.path(), args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains("mac is a nix-darwin machine"),
            "{}",
            text(&o.stderr)
        );
    }
    let o = run(
        w.path(),
        &[
            "install",
            "--host",
            "web",
            "--root",
            "/nonexistent/mnt",
            "--dry-run",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--root /nonexistent/mnt: no such directory"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn rollback_on_darwin_runs_darwin_rebuild_rollback_on_its_target() {
    let w = ws(INV);
    let o = run(w.path(), &["rollback", "mac", "--dry-run"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let line = text(&o.stdout);
    assert!(
        line.ends_with(
            " -- admin@mac.example.org $'sh -c \\'exec sudo darwin-rebuild --rollback\\n\\''\n"
        ),
        "{line}"
    );
}

#[test]
fn the_seed_order_from_os_entries_is_three_stages() {
    let w = ws(concat!(
        "machines:\n",
        "  mac1: { system: aarch64-darwin }\n",
        "  peer1: {}\n",
        "  ctl: { tags: [zerotier-controller] }\n",
        "  peer2: {}\n",
        "deploy:\n  order: [\"tag:zerotier-controller\", \"os:nixos\", \"os:darwin\"]\n"
    ));
    let o = run(
        w.path(),
        &["deploy", "--all", "--dry-run", "--no-check"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let heads: Vec<String> = text(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("# "))
        .map(String::from)
        .collect();
    assert_eq!(
        heads,
        [
            "# tag zerotier-controller (1 machines)",
            "# os nixos (2 machines)",
            "# os darwin (1 machines)"
        ]
    );
    let w = ws("machines:\n  a: {}\ndeploy:\n  order: [\"os:beos\"]\n");
    let o = run(
        w.path(),
        &["deploy", "--all", "--dry-run", "--no-check"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("unknown OS \"beos\""),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_successful_deploy_summarises_every_machine_and_the_total_also_as_json() {
    let w = ws(concat!(
        "machines:\n  ctl: { tags: [zerotier-controller] }\n  peer: {}\n",
        "deploy:\n  order: [\"tag:zerotier-controller\"]\n"
    ));
    let s = StandIns::new();
    let o = run(w.path(), &["deploy", "--all", "--no-check"], Some(&s));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("deployed 2 machine(s)\n"), "{err}");
    assert!(
        err.contains("  ctl: ok (tag zerotier-controller, "),
        "{err}"
    );
    assert!(err.contains("  peer: ok (rest, "), "{err}");
    assert!(err.contains("total: 2 machine(s) in "), "{err}");
    let o = run(
        w.path(),
        &["deploy", "--all", "--no-check", "--json"],
        Some(&s),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["command"], "deploy");
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["exit_code"], 0);
    assert!(v["seconds"].as_f64().is_some());
    let m = v["machines"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["machine"], "ctl");
    assert_eq!(m[0]["stage"], "tag zerotier-controller");
    assert_eq!(m[0]["result"], "ok");
    assert_eq!(m[1]["stage"], "rest");
    assert!(m[1]["seconds"].as_f64().is_some());
}
