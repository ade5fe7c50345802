//! The pin file holds exact machine entries only (issue 19, Low): a `known_hosts` pattern line
//! (`* ssh-ed25519 <the host's real key>`) beside a wrong pin for the machine must not let the
//! connection through. Against the real OpenSSH server of `common_remote`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::remote::{Sshd, ssh_keygen, write_inventory};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `varsmith ssh web` with `stdin` as the remote shell's input.
fn ssh_verb(root: &std::path::Path, sshd: &Sshd, stdin: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C").arg(root).args(["ssh", "web"]);
    for o in sshd.ssh_options() {
        c.arg("--ssh-option").arg(o);
    }
    let mut child = c
        .env("HOME", root.join("home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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

fn workspace(sshd: &Sshd, known_hosts: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_inventory(
        d.path(),
        &format!("machines:\n  web:\n    target: {}\n", sshd.target()),
    );
    std::fs::write(d.path().join("known_hosts"), known_hosts).unwrap();
    d
}

#[test]
fn a_wildcard_line_does_not_widen_a_wrong_pin() {
    let Some(sshd) = Sshd::start() else { return };
    let keys = tempfile::tempdir().unwrap();
    let (_, wrong) = ssh_keygen(keys.path(), "wrong");
    let planted = format!("web {wrong}\n* {}\n", sshd.host_pub);
    let ws = workspace(&sshd, &planted);

    // OpenSSH itself, pointed at such a file, accepts the host through the pattern line:
    // the hole the pin file's rules close.
    let mut c = Command::new("ssh");
    c.arg("-T");
    for o in sshd.ssh_options() {
        c.arg("-o").arg(o);
    }
    let kh = ws.path().join("known_hosts");
    let out = c
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", kh.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "HostKeyAlias=web",
        ])
        .args(["--", &sshd.target(), "echo reached"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "reached\n", "{}", text(&out.stderr));

    // varsmith refuses before connecting, naming the line.
    let o = ssh_verb(ws.path(), &sshd, "echo reached\n");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("reached"));
    let err = text(&o.stderr);
    assert!(err.contains("known_hosts:2: a wildcard pattern"), "{err}");
    assert!(!err.contains(&sshd.host_pub), "{err}");

    // Markers, negations, hashed and port entries are refused alike.
    for line in [
        format!("@cert-authority * {}", sshd.host_pub),
        format!("!other,web? {}", sshd.host_pub),
        format!("|1|c2FsdA==|aGFzaA== {}", sshd.host_pub),
        format!("[web]:22 {}", sshd.host_pub),
    ] {
        std::fs::write(&kh, format!("web {wrong}\n{line}\n")).unwrap();
        let o = ssh_verb(ws.path(), &sshd, "echo reached\n");
        assert_eq!(o.status.code(), Some(2), "{line}: {}", text(&o.stderr));
        assert!(!text(&o.stdout).contains("reached"));
    }

    // The wrong pin alone: ssh refuses the host (exit 255 from ssh).
    std::fs::write(&kh, format!("web {wrong}\n")).unwrap();
    let o = ssh_verb(ws.path(), &sshd, "echo reached\n");
    assert!(!o.status.success());
    assert!(!text(&o.stdout).contains("reached"));

    // The right pin among other machines' exact entries: connected.
    std::fs::write(&kh, format!("db {wrong}\nweb {}\n", sshd.host_pub)).unwrap();
    let o = ssh_verb(ws.path(), &sshd, "echo reached\n");
    assert_eq!(text(&o.stdout), "reached\n", "{}", text(&o.stderr));
}
