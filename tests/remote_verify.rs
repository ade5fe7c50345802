//! `deploy --verify` and darwin deploys against the real sshd harness (a private mount
//! namespace standing in for the target): files with right and wrong modes on the "host",
//! `systemctl --failed` from a stand-in there, and a darwin machine activated on its target
//! after a real `nix flake archive --to ssh-ng://…`.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::remote::{
    DeployDir, Sshd, StandIns, deploy_dir, require_as_root, script, write_inventory,
};

const API: &str = r#"description: api token
files:
  token: { secret: true, mode: "0400" }
  token2: { secret: true, owner: root, group: root, mode: "0440" }
  admin-only: { secret: true, deploy: false }
  disk: { secret: true, needed_for: partitioning }
  id: { secret: false }
script: |
  true
"#;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Host {
    sshd: Sshd,
    bin: tempfile::TempDir,
}

/// The sshd harness with a `systemctl` stand-in printing `<bin>/failed-units`, and a
/// `darwin-rebuild` one recording its argv to `<bin>/darwin.log`.
fn host() -> Option<Host> {
    let bin = tempfile::Builder::new()
        .prefix("varsmith-hostbin-")
        .tempdir()
        .unwrap();
    let b = bin.path();
    std::fs::set_permissions(b, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script(
        &b.join("systemctl"),
        &format!(
            "#!/bin/sh\ncat '{}/failed-units' 2>/dev/null\nexit 0\n",
            b.display()
        ),
    );
    script(
        &b.join("darwin-rebuild"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{d}/darwin.log'\nf=\"$3\"\n[ -f \"${{f%#*}}/flake.nix\" ] && echo has-flake >> '{d}/darwin.log'\nexit 0\n",
            d = b.display()
        ),
    );
    script(
        &b.join("nixos-rebuild"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}/nixos.log'\n",
            b.display()
        ),
    );
    let sshd = Sshd::start_with_bin(Some(b))?;
    Some(Host { sshd, bin })
}

fn deploy(ws: &Path, h: &Host, s: &StandIns, args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C")
        .arg(ws)
        .arg("deploy")
        .args(args)
        .arg("--no-check");
    for o in h.sshd.ssh_options() {
        c.arg("--ssh-option").arg(o);
    }
    c.env("PATH", s.path_env())
        .env("NIX_CONFIG", "experimental-features = nix-command flakes")
        .env_remove("NIX_SSHOPTS")
        .env_remove("SOPS_AGE_KEY")
        .output()
        .unwrap()
}

fn workspace(h: &Host, inventory: &str) -> DeployDir {
    let ws = deploy_dir();
    write_inventory(ws.path(), inventory);
    std::fs::create_dir(ws.path().join("generators")).unwrap();
    std::fs::write(ws.path().join("generators/api.yaml"), API).unwrap();
    let pin = format!("web {}\nmac {}\n", h.sshd.host_pub, h.sshd.host_pub);
    std::fs::write(ws.path().join("known_hosts"), pin).unwrap();
    ws
}

#[test]
fn verify_reports_modes_missing_files_and_failed_units_per_machine() {
    let Some(h) = host() else { return };
    let ws = workspace(
        &h,
        "machines:\n  web:\n    target: root@127.0.0.1\n    generators: [api]\n",
    );
    let s = StandIns::new();
    h.sshd.exec(concat!(
        "set -e; d=/run/secrets/varsmith/api; mkdir -p $d; ",
        "printf a > $d/token; chmod 0400 $d/token; printf b > $d/token2; chmod 0644 $d/token2"
    ));
    let out = deploy(ws.path(), &h, &s, &["web", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "  web: failed: verify: /run/secrets/varsmith/api/token2: mode 0644, expected 0440 (rest, "
        ),
        "{err}"
    );
    let rec = s.records();
    assert_eq!(rec.len(), 1, "the deploy itself ran first");
    assert!(rec[0][0].contains("-o HostKeyAlias=web -o StrictHostKeyChecking=yes -o Port="));

    h.sshd.exec("chmod 0440 /run/secrets/varsmith/api/token2");
    std::fs::write(
        h.bin.path().join("failed-units"),
        "nginx.service loaded failed failed nginx\n",
    )
    .unwrap();
    let out = deploy(ws.path(), &h, &s, &["web", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("  web: failed: verify: failed units: nginx.service (rest, "),
        "{err}"
    );

    std::fs::write(h.bin.path().join("failed-units"), "").unwrap();
    let out = deploy(ws.path(), &h, &s, &["web", "--verify"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "deployed 1 machine(s)\n  web: ok, verified 2 secret(s), no failed units (rest, "
        ),
        "{err}"
    );

    h.sshd.exec("rm /run/secrets/varsmith/api/token");
    let out = deploy(ws.path(), &h, &s, &["web", "--verify"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("verify: /run/secrets/varsmith/api/token: missing (rest, "),
        "{err}"
    );
}

#[test]
fn a_darwin_machine_is_copied_to_and_activated_on_its_target() {
    if !require_as_root(&["nix", "git"]) {
        return;
    }
    let Some(h) = host() else { return };
    let ws = workspace(
        &h,
        "machines:\n  mac:\n    target: root@127.0.0.1\n    system: aarch64-darwin\n",
    );
    std::fs::write(
        ws.path().join("flake.nix"),
        "{ outputs = { self }: { }; }\n",
    )
    .unwrap();
    let s = StandIns::new();
    let out = deploy(ws.path(), &h, &s, &["mac"]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}\n{}", h.sshd.log());
    assert!(
        s.records().is_empty(),
        "no darwin-rebuild ran here: {:?}",
        s.records()
    );
    let log = std::fs::read_to_string(h.bin.path().join("darwin.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    let args: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(args[0], "switch");
    assert_eq!(args[1], "--flake");
    assert!(
        args[2].starts_with("/nix/store/") && args[2].ends_with("-source#mac"),
        "{log}"
    );
    assert_eq!(args[3..], ["--show-trace"]);
    assert_eq!(
        lines[1], "has-flake",
        "the flake source is in the target's store"
    );
}

fn varsmith(ws: &Path, h: &Host, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C").arg(ws).args(args);
    for o in h.sshd.ssh_options() {
        c.arg("--ssh-option").arg(o);
    }
    let mut child = c
        .env_remove("SOPS_AGE_KEY")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn rollback_and_ssh_run_on_the_target_with_the_pinned_key() {
    let Some(h) = host() else { return };
    let ws = workspace(&h, "machines:\n  web:\n    target: root@127.0.0.1\n");
    let out = varsmith(ws.path(), &h, &["rollback", "web", "--dry-run"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    let kh = ws.path().join("known_hosts");
    assert!(
        line.starts_with(&format!(
            "ssh -T -o 'UserKnownHostsFile={}' -o 'GlobalKnownHostsFile=/dev/null' -o 'KnownHostsCommand=none' -o 'UpdateHostKeys=no' -o 'HostKeyAlias=web' -o 'StrictHostKeyChecking=yes' -o 'BatchMode=yes' -o "
        , kh.display())),
        "{line}"
    );
    assert!(
        line.ends_with(
            " -- root@127.0.0.1 $'sh -c \\'exec nixos-rebuild switch --rollback\\n\\''\n"
        ),
        "{line}"
    );
    assert!(
        !h.bin.path().join("nixos.log").exists(),
        "a dry run runs nothing"
    );
    let out = varsmith(ws.path(), &h, &["rollback", "web"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = std::fs::read_to_string(h.bin.path().join("nixos.log")).unwrap();
    assert_eq!(log, "switch --rollback\n");

    let out = varsmith(ws.path(), &h, &["ssh", "web", "--dry-run"], "");
    let line = text(&out.stdout);
    assert!(line.starts_with("ssh -o 'UserKnownHostsFile="), "{line}");
    assert!(!line.contains("BatchMode"), "{line}");
    assert!(line.ends_with(" -- root@127.0.0.1\n"), "{line}");
    let out = varsmith(
        ws.path(),
        &h,
        &["ssh", "web"],
        "echo on-the-host-$((40+2)); exit 7\n",
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "on-the-host-42\n");
    // Another key pinned for the machine: refused.
    std::fs::write(
        &kh,
        "web ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOHz+U0YtjINc54dZiJNclfmEFifF7RXCFlNlTbuZBji\n",
    )
    .unwrap();
    let out = varsmith(ws.path(), &h, &["ssh", "web"], "echo reached\n");
    assert_ne!(out.status.code(), Some(0));
    assert!(!text(&out.stdout).contains("reached"));
}

#[test]
fn deploy_uploads_activation_secrets_with_their_modes_and_no_bytes_in_argv_or_env() {
    if !require_as_root(&["sops", "age-keygen"]) {
        return;
    }
    let Some(h) = host() else { return };
    let ws = workspace(
        &h,
        "machines:\n  web:\n    target: root@127.0.0.1\n    generators: [act1, act2]\n",
    );
    let g = ws.path().join("generators");
    std::fs::write(
        g.join("act1.yaml"),
        "files:\n  seed: { needed_for: activation }\nscript: 'true'\n",
    )
    .unwrap();
    std::fs::write(
        g.join("act2.yaml"),
        "files:\n  token: { needed_for: activation, owner: nobody, group: nogroup, mode: \"0440\" }\nscript: 'true'\n",
    )
    .unwrap();
    let (age, recipient) = crate::util::remote::age_keygen(ws.path());
    let sec = ws.path().join("sops/machines/web/secrets");
    let seed = b"activation-seed-4f9a\n".to_vec();
    let token = b"activation-token-77c1\n".to_vec();
    crate::util::remote::sops_encrypt(&recipient, "seed", &seed, &sec.join("act1.yaml"));
    crate::util::remote::sops_encrypt(&recipient, "token", &token, &sec.join("act2.yaml"));
    let s = StandIns::new();
    // ssh and nixos-rebuild record their argv and whether their environment holds a key.
    let log = h.bin.path().join("local.log");
    let real_ssh = crate::util::remote::which("ssh").unwrap();
    let rec = |name: &str, then: &str| {
        format!(
            "#!/bin/sh\nprintf 'CALL %s\\n%s\\n' \"$(basename \"$0\")\" \"$*\" >> '{l}'\nenv | grep -q AGE-SECRET-KEY && echo KEY-IN-ENV >> '{l}'\n{then}\n",
            l = log.display()
        )
        .replace("{name}", name)
    };
    script(
        &s.bin.join("ssh"),
        &rec("ssh", &format!("exec '{}' \"$@\"", real_ssh.display())),
    );
    script(
        &s.bin.join("nixos-rebuild"),
        &rec("nixos-rebuild", "exit 0"),
    );
    let key = std::fs::read_to_string(&age).unwrap();

    let dry = deploy(ws.path(), &h, &s, &["web", "--dry-run"]);
    let lines = text(&dry.stdout);
    assert!(
        lines.contains("  # stdin: the activation secrets (tar)\nNIX_SSHOPTS="),
        "{lines}"
    );
    assert!(!log.exists(), "a dry run runs nothing and decrypts nothing");

    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C")
        .arg(ws.path())
        .args(["deploy", "web", "--no-check"]);
    for o in h.sshd.ssh_options() {
        c.arg("--ssh-option").arg(o);
    }
    let out = c
        .env("PATH", s.path_env())
        .env("SOPS_AGE_KEY", key.trim())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = h.sshd.exec(concat!(
        "cd /var/lib/varsmith/activation && stat -c '%n %U %G %a' act1/seed act2/token && ",
        "cat act1/seed act2/token && ls -a . | tr '\\n' ' '"
    ));
    assert_eq!(
        text(&got),
        format!(
            "act1/seed root root 400\nact2/token nobody nogroup 440\n{}{}. .. act1 act2 ",
            text(&seed),
            text(&token)
        )
    );
    let log = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("CALL "))
        .collect();
    assert_eq!(
        order,
        ["ssh", "nixos-rebuild"],
        "upload before activation: {log}"
    );
    for secret in [
        "activation-seed-4f9a",
        "activation-token-77c1",
        "AGE-SECRET-KEY",
        "KEY-IN-ENV",
    ] {
        assert!(
            !log.contains(secret),
            "{secret} in an argv or environment: {log}"
        );
    }
}
