//! The hey verbs' flags (issue 23, item 4), each asserted on the exact argv: what the dry run
//! prints and, where a tool runs, what a recording stand-in received.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::remote::{DeployDir, StandIns, deploy_dir, write_inventory};

const INV: &str = "machines:\n  web:\n    target: admin@web.example.org\n  box:\n    target: root@box.example.org\n  mac:\n    target: admin@mac.example.org\n    system: aarch64-darwin\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ws(inv: &str) -> DeployDir {
    let d = deploy_dir();
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
    // nh takes --build-host as nixos-rebuild does (a build host that is no machine needs its
    // key).
    let argv = plan_argv(
        w.path(),
        &[
            "web",
            "--build-host",
            "builder.example.org",
            "--build-host-key",
            "ssh-ed25519 AAAAbuilder",
        ],
    );
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

#[test]
fn deploy_without_a_flake_is_an_error_naming_the_fix_dry_run_included() {
    // No flake.nix here or above (up to the repository root): every deploy tool would fail.
    let top = tempfile::tempdir().unwrap();
    std::fs::write(top.path().join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
    let repo = top.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let ws = repo.join("ws");
    std::fs::create_dir(&ws).unwrap();
    write_inventory(&ws, INV);
    let s = StandIns::new();
    for args in [
        &["deploy", "web", "--dry-run", "--no-check"][..],
        &["deploy", "--all", "--no-check"],
        &["rotate-host-key", "web", "--dry-run"],
    ] {
        let o = run(&ws, args, Some(&s));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("no flake.nix in {}", ws.display()))
                && err.contains("nixosConfigurations.<machine>")
                && err.contains("nix flake init"),
            "{args:?}: {err}"
        );
    }
    assert!(s.records().is_empty(), "nothing ran");
    // A flake.nix in the workspace's parent (inside the repository) is what `--flake .`
    // resolves to, as Nix searches upward: deploy goes ahead.
    std::fs::write(repo.join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
    let o = run(&ws, &["deploy", "web", "--no-check"], Some(&s));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(s.records().len(), 1);
}

/// A nixos-rebuild stand-in that records `NIX_SSHOPTS`, its argv, and how the real `ssh`
/// resolves the target and the build host with those options (`ssh -G`: no connection).
const RESOLVER: &str = r#"#!/bin/sh
t= b= p=
for a in "$@"; do
    [ "$p" = --target-host ] && t=$a
    [ "$p" = --build-host ] && b=$a
    p=$a
done
{
    printf 'NIX_SSHOPTS=%s\n' "$NIX_SSHOPTS"
    printf 'ARGV=%s\n' "$*"
    for h in "$t" "$b"; do
        printf '== %s\n' "$h"
        ssh $NIX_SSHOPTS -G "$h" | grep -E '^(hostkeyalias|userknownhostsfile|stricthostkeychecking|port) '
    done
    f=$(dirname "$(printf '%s' "$NIX_SSHOPTS" | cut -d' ' -f2)")/build_host_known_hosts
    if [ -e "$f" ]; then echo "== build host pin"; cat "$f"; fi
} >> "$RESOLVER_LOG"
"#;

#[test]
fn a_build_host_gets_its_own_pin_never_the_targets_alias() {
    if !crate::util::remote::require_as_root(&["ssh"]) {
        return;
    }
    let w = ws(concat!(
        "machines:\n",
        "  web:\n    target: admin@web.example.org\n",
        "  builder:\n    target: root@builder.example.org\n",
    ));
    let kh = w.path().join("known_hosts");
    let key = |c: char| {
        format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{}",
            c.to_string().repeat(43)
        )
    };
    std::fs::write(&kh, format!("web {}\nbuilder {}\n", key('A'), key('B'))).unwrap();
    let pin = |host: &str, alias: &str| {
        format!(
            "Host {host}\n  UserKnownHostsFile={}\n  GlobalKnownHostsFile=/dev/null\n  KnownHostsCommand=none\n  UpdateHostKeys=no\n  HostKeyAlias={alias}\n  StrictHostKeyChecking=yes\n",
            kh.display()
        )
    };
    // The dry run: the machine name resolves to its target; NIX_SSHOPTS is `-F <file>` whose
    // text has one block per host, then the user's options and configuration.
    let o = run(
        w.path(),
        &[
            "deploy",
            "web",
            "--build-host",
            "builder",
            "--dry-run",
            "--json",
            "--no-check",
            "--ssh-option",
            "ServerAliveInterval=7",
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let m = &v["stages"][0]["machines"][0];
    let cmd = &m["commands"][0];
    let argv: Vec<String> = serde_json::from_value(cmd["argv"].clone()).unwrap();
    assert_eq!(
        argv,
        [
            "nixos-rebuild",
            "switch",
            "--flake",
            ".#web",
            "--target-host",
            "admin@web.example.org",
            "--build-host",
            "root@builder.example.org",
            "--use-remote-sudo",
            "--show-trace"
        ]
    );
    let path = m["ssh_config"]["path"].as_str().unwrap();
    assert_eq!(cmd["env"]["NIX_SSHOPTS"], format!("-F {path}"));
    assert_eq!(
        m["ssh_config"]["text"].as_str().unwrap(),
        format!(
            "# varsmith: ssh settings for deploying web with --build-host root@builder.example.org: nixos-rebuild and nh pass one NIX_SSHOPTS to every ssh, so each host gets its own pin here.\n{}{}Match all\n  ServerAliveInterval=7\n  Include ~/.ssh/config\n  Include /etc/ssh/ssh_config\n",
            pin("web.example.org", "web"),
            pin("builder.example.org", "builder")
        )
    );

    // The real run: the tool's ssh resolves each host to its own pin, and the user's own
    // configuration (which names another alias for every host) comes after ours.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(
        home.path().join(".ssh/config"),
        "Host *.example.org\n  HostKeyAlias evil\n  Port 2222\n",
    )
    .unwrap();
    let s = StandIns::new();
    let log = home.path().join("resolved");
    crate::util::remote::script(&s.bin.join("nixos-rebuild"), RESOLVER);
    let resolve = |args: &[&str]| {
        let mut a = vec!["deploy", "web", "--no-check"];
        a.extend(args);
        let _ = std::fs::remove_file(&log);
        let o = Command::new(env!("CARGO_BIN_EXE_varsmith"))
            .arg("-C")
            .arg(w.path())
            .args(&a)
            .env("PATH", s.path_env())
            .env("HOME", home.path())
            .env("RESOLVER_LOG", &log)
            .env_remove("NIX_SSHOPTS")
            .output()
            .unwrap();
        (o, std::fs::read_to_string(&log).unwrap_or_default())
    };
    let (o, got) = resolve(&["--build-host", "builder"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let khs = format!("userknownhostsfile {}", kh.display());
    assert!(
        got.contains(&format!(
            "== admin@web.example.org\nport 2222\nstricthostkeychecking true\nhostkeyalias web\n{khs}\n"
        )),
        "{got}"
    );
    assert!(
        got.contains(&format!(
            "== root@builder.example.org\nport 2222\nstricthostkeychecking true\nhostkeyalias builder\n{khs}\n"
        )),
        "{got}"
    );

    // A build host that is no machine: refused without a key; with --build-host-key it is
    // pinned in a file of its own, as itself.
    let (o, _) = resolve(&["--build-host", "nix@big.example.net"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("--build-host nix@big.example.net: not a machine of this workspace")
            && err.contains("--build-host-key"),
        "{err}"
    );
    let (o, got) = resolve(&[
        "--build-host",
        "nix@big.example.net",
        "--build-host-key",
        &key('C'),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        got.contains("== nix@big.example.net\nport 22\nstricthostkeychecking true\nhostkeyalias big.example.net\nuserknownhostsfile /"),
        "{got}"
    );
    assert!(
        got.contains(&format!(
            "== build host pin\nbig.example.net {}\n",
            key('C')
        )),
        "{got}"
    );
    assert!(
        got.contains(
            "== admin@web.example.org\nport 2222\nstricthostkeychecking true\nhostkeyalias web\n"
        ),
        "{got}"
    );
    // localhost builds here: no ssh configuration, the target's pin as before.
    let (o, got) = resolve(&["--build-host", "localhost"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(got.contains("NIX_SSHOPTS=-o UserKnownHostsFile="), "{got}");
    assert!(got.contains("-o HostKeyAlias=web"), "{got}");
}
