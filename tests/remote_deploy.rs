//! deploy through the varsmith binary with recording stand-ins for nixos-rebuild, nh,
//! darwin-rebuild and clan on `PATH`: exact argv, fleet order, dry-run, per-machine failures.

use std::process::{Command, Output};

use crate::util::remote::{DeployDir, StandIns, deploy_dir, write_inventory};

const FLEET: &str = "\
machines:
  peer1:
    tags: [zt]
  ctl:
    target: root@ctl.example.org
    tags: [zt, zerotier-controller]
  mac:
    target: admin@localhost
    system: aarch64-darwin
  peer2:
    target: admin@10.0.0.2
    tags: [zt]
  nhbox:
    deploy: nh
  clanbox:
    deploy: clan
  relay:
    tags: [relay]
deploy:
  order: [zerotier-controller, relay]
";

struct Env {
    ws: DeployDir,
    s: StandIns,
}

fn env(inventory: &str) -> Env {
    let ws = deploy_dir();
    write_inventory(ws.path(), inventory);
    Env {
        ws,
        s: StandIns::new(),
    }
}

impl Env {
    fn varsmith(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C")
            .arg(self.ws.path())
            .args(args)
            .env("PATH", self.s.path_env())
            .env_remove("NIX_SSHOPTS");
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn argv(&self) -> Vec<Vec<String>> {
        self.s.records()
    }
}

fn sv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn expected_fleet() -> Vec<Vec<String>> {
    vec![
        sv(&[
            "",
            "nixos-rebuild",
            "switch",
            "--flake",
            ".#ctl",
            "--target-host",
            "root@ctl.example.org",
            "--build-host",
            "localhost",
            "--show-trace",
        ]),
        sv(&[
            "",
            "nixos-rebuild",
            "switch",
            "--flake",
            ".#relay",
            "--target-host",
            "root@relay",
            "--build-host",
            "localhost",
            "--show-trace",
        ]),
        sv(&[
            "",
            "nixos-rebuild",
            "switch",
            "--flake",
            ".#peer1",
            "--target-host",
            "root@peer1",
            "--build-host",
            "localhost",
            "--show-trace",
        ]),
        sv(&[
            "",
            "darwin-rebuild",
            "switch",
            "--flake",
            ".#mac",
            "--show-trace",
        ]),
        sv(&[
            "",
            "nixos-rebuild",
            "switch",
            "--flake",
            ".#peer2",
            "--target-host",
            "admin@10.0.0.2",
            "--build-host",
            "localhost",
            "--use-remote-sudo",
            "--show-trace",
        ]),
        sv(&[
            "",
            "nh",
            "os",
            "switch",
            ".",
            "--hostname",
            "nhbox",
            "--target-host",
            "root@nhbox",
            "--",
            "--show-trace",
        ]),
        sv(&["", "clan", "machines", "update", "clanbox"]),
    ]
}

#[test]
fn fleet_runs_ordered_tags_first_then_the_rest_in_parallel() {
    let e = env(FLEET);
    // Every stand-in sleeps before recording: a stage that did not wait would record first.
    let out = e.varsmith(
        &["deploy", "--all", "--no-check", "-j", "4"],
        &[("STANDIN_SLEEP", "0.3")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = e.argv();
    let want = expected_fleet();
    assert_eq!(got.len(), want.len(), "{got:?}");
    assert_eq!(got[0], want[0], "the zerotier controller first");
    assert_eq!(got[1], want[1], "then the relay tag");
    let mut rest_got = got[2..].to_vec();
    let mut rest_want = want[2..].to_vec();
    rest_got.sort();
    rest_want.sort();
    assert_eq!(rest_got, rest_want);
    assert!(text(&out.stderr).contains("deployed 7 machine(s)"));
}

#[test]
fn dry_run_prints_the_exact_commands_and_runs_nothing() {
    let e = env(FLEET);
    let out = e.varsmith(&["deploy", "--all", "--dry-run", "--no-check"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "# tag zerotier-controller (1 machines)\n\
         nixos-rebuild switch --flake '.#ctl' --target-host root@ctl.example.org --build-host localhost --show-trace\n\
         # tag relay (1 machines)\n\
         nixos-rebuild switch --flake '.#relay' --target-host root@relay --build-host localhost --show-trace\n\
         # rest (5 machines)\n\
         nixos-rebuild switch --flake '.#peer1' --target-host root@peer1 --build-host localhost --show-trace\n\
         darwin-rebuild switch --flake '.#mac' --show-trace\n\
         nixos-rebuild switch --flake '.#peer2' --target-host admin@10.0.0.2 --build-host localhost --use-remote-sudo --show-trace\n\
         nh os switch . --hostname nhbox --target-host root@nhbox -- --show-trace\n\
         clan machines update clanbox\n"
    );
    assert!(e.argv().is_empty(), "nothing ran");
    // Without --no-check the check that would run first is shown, and still nothing runs.
    let out = e.varsmith(&["deploy", "peer1", "--dry-run"], &[]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.lines().next().unwrap().starts_with("# first: "),
        "{stdout}"
    );
    assert!(
        stdout.lines().next().unwrap().ends_with(" check peer1"),
        "{stdout}"
    );
    assert!(e.argv().is_empty());
}

#[test]
fn boot_and_fast_and_selected_hosts_in_given_order() {
    let e = env(FLEET);
    let out = e.varsmith(
        &[
            "deploy",
            "peer2",
            "peer1",
            "peer2",
            "--boot",
            "--fast",
            "--no-check",
            "-j",
            "1",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        e.argv(),
        vec![
            sv(&[
                "",
                "nixos-rebuild",
                "boot",
                "--flake",
                ".#peer2",
                "--target-host",
                "admin@10.0.0.2",
                "--build-host",
                "localhost",
                "--use-remote-sudo",
                "--show-trace",
                "--fast"
            ]),
            sv(&[
                "",
                "nixos-rebuild",
                "boot",
                "--flake",
                ".#peer1",
                "--target-host",
                "root@peer1",
                "--build-host",
                "localhost",
                "--show-trace",
                "--fast"
            ]),
        ]
    );
}

#[test]
fn a_failing_machine_is_reported_and_the_others_of_its_stage_still_deploy() {
    let e = env(FLEET);
    let out = e.varsmith(
        &["deploy", "--all", "--no-check", "-j", "4"],
        &[("FAIL_ARG", "admin@10.0.0.2")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("deploy failed on 1 of 7 machine(s); 6 ok, 0 not attempted:"),
        "{err}"
    );
    assert!(
        err.contains("  peer2: failed: `nixos-rebuild` exit status: 1"),
        "{err}"
    );
    assert!(err.contains("  peer1: ok ("), "{err}");
    assert!(
        err.contains("[peer2] stand-in failing on admin@10.0.0.2"),
        "output is prefixed: {err}"
    );
    assert_eq!(
        e.argv().len(),
        7,
        "every machine of the last stage was attempted"
    );
}

#[test]
fn a_failing_stage_stops_every_later_stage() {
    let e = env(FLEET);
    let fail = [("FAIL_ARG", "root@ctl.example.org")];
    let out = e.varsmith(&["deploy", "--all", "--no-check"], &fail);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("deploy failed on 1 of 7 machine(s); 0 ok, 6 not attempted:"),
        "{err}"
    );
    assert!(
        err.contains("  ctl: failed: `nixos-rebuild` exit status: 1 (tag zerotier-controller, "),
        "{err}"
    );
    for m in ["relay", "peer1", "mac", "peer2", "nhbox", "clanbox"] {
        assert!(
            err.contains(&format!(
                "  {m}: not attempted: stage \"tag zerotier-controller\" failed ("
            )),
            "{m}: {err}"
        );
    }
    let got = e.argv();
    assert_eq!(got.len(), 1, "only the controller ran: {got:?}");
    assert_eq!(got[0], expected_fleet()[0]);
}

#[test]
fn keep_going_runs_later_stages_after_a_failure() {
    let e = env(FLEET);
    let fail = [("FAIL_ARG", "root@ctl.example.org")];
    let out = e.varsmith(&["deploy", "--all", "--no-check", "--keep-going"], &fail);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("deploy failed on 1 of 7 machine(s); 6 ok, 0 not attempted:"),
        "{err}"
    );
    let got = e.argv();
    assert_eq!(got.len(), 7);
    assert_eq!(got[0], expected_fleet()[0], "the order still holds");
    assert_eq!(got[1], expected_fleet()[1]);
}

#[test]
fn a_pinned_host_gets_nix_sshopts_verifying_the_pin() {
    let e = env(FLEET);
    std::fs::write(
        e.ws.path().join("known_hosts"),
        "ctl ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji\n",
    )
    .unwrap();
    let out = e.varsmith(&["deploy", "ctl", "peer1", "--no-check", "-j", "1"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = e.argv();
    let kh = e.ws.path().join("known_hosts");
    assert_eq!(
        got[0][0],
        format!(
            "-o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o KnownHostsCommand=none -o UpdateHostKeys=no -o HostKeyAlias=ctl -o StrictHostKeyChecking=yes",
            kh.display()
        )
    );
    assert_eq!(got[1][0], "", "peer1 is not pinned");
    let out = e.varsmith(&["deploy", "ctl", "--no-check", "--dry-run"], &[]);
    assert!(
        text(&out.stdout).contains("NIX_SSHOPTS='-o UserKnownHostsFile="),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_must_pass_first_unless_no_check() {
    // Nothing was generated for this machine, so `varsmith check` cannot pass.
    let e = env("machines:\n  web:\n    generators: [openssh]\n");
    let out = e.varsmith(&["deploy", "web"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("check failed for the selected machines"),
        "{}",
        text(&out.stderr)
    );
    assert!(e.argv().is_empty(), "nothing deployed");
    let out = e.varsmith(&["deploy", "web", "--no-check"], &[]);
    assert!(out.status.success());
    assert_eq!(e.argv().len(), 1);
}

#[test]
fn bad_invocations_exit_2() {
    let e = env(FLEET);
    for args in [
        &["deploy", "--no-check"][..],
        &["deploy", "nope", "--no-check"],
        &["deploy", "mac", "--boot", "--no-check"],
        &["deploy", "--all", "-j", "0", "--no-check"],
        &["deploy", "peer1", "--all", "--no-check"],
    ] {
        let out = e.varsmith(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(e.argv().is_empty());
}

#[test]
fn preview_build_host_debug_and_a_given_target_shape_every_backend() {
    let e = env(FLEET);
    let args = [
        "--dry-activate",
        "--build-host",
        "builder@b.example.org",
        "--build-host-key",
        "ssh-ed25519 AAAAbuilder",
        "--debug",
        "--no-check",
        "-j",
        "1",
    ];
    for (host, want) in [
        (
            "peer1",
            sv(&[
                "",
                "nixos-rebuild",
                "dry-activate",
                "--flake",
                ".#peer1",
                "--target-host",
                "root@10.9.9.9",
                "--build-host",
                "builder@b.example.org",
                "--show-trace",
                "--verbose",
            ]),
        ),
        (
            "nhbox",
            sv(&[
                "",
                "nh",
                "--verbose",
                "os",
                "switch",
                ".",
                "--hostname",
                "nhbox",
                "--target-host",
                "root@10.9.9.9",
                "--build-host",
                "builder@b.example.org",
                "--dry",
                "--",
                "--show-trace",
            ]),
        ),
    ] {
        let mut a = vec!["deploy", host, "root@10.9.9.9"];
        a.extend(args);
        let out = e.varsmith(&a, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        // NIX_SSHOPTS names the generated ssh config (one pin per host; remote_hey_flags.rs).
        let got = e.argv().last().unwrap().clone();
        assert!(got[0].starts_with("-F /"), "{got:?}");
        assert_eq!(got[1..], want[1..]);
    }
    // darwin on this machine: a preview that never activates (`darwin-rebuild check`, then
    // the closure diff); --no-show-trace drops the trace. Its run is tested against the real
    // darwin-rebuild script in remote_darwin_preview.rs.
    let out = e.varsmith(
        &[
            "deploy",
            "mac",
            "--dry-activate",
            "--no-show-trace",
            "--no-check",
            "--dry-run",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("darwin-rebuild check --flake .#mac\\n"),
        "{shown}"
    );
    assert!(
        !shown.contains("switch") && !shown.contains("--show-trace"),
        "{shown}"
    );
    // clan has no preview; a target needs exactly one machine.
    for bad in [
        &["deploy", "clanbox", "--dry-activate", "--no-check"][..],
        &["deploy", "--all", "--no-check", "--build-host", "-x"],
    ] {
        assert_eq!(e.varsmith(bad, &[]).status.code(), Some(2), "{bad:?}");
    }
    assert_eq!(e.argv().len(), 2);
}

#[test]
fn ctrl_c_during_a_stage_starts_nothing_after_it() {
    use std::os::unix::process::CommandExt;
    let e = env(FLEET);
    let started = e.ws.path().join("started");
    // The controller's nixos-rebuild says it started, then waits to be interrupted.
    crate::util::remote::script(
        &e.s.bin.join("nixos-rebuild"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\ntouch '{}'\nexec sleep 30\n",
            e.s.log.display(),
            started.display()
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(e.ws.path())
        // --keep-going: the failed controller alone would not stop the later stages.
        .args(["deploy", "--all", "--no-check", "--keep-going"])
        .env("PATH", e.s.path_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the stand-in never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let log = std::fs::read_to_string(&e.s.log).unwrap();
    assert_eq!(log.lines().count(), 1, "only the controller started: {log}");
}
