//! bootstrap verifies the installer (issue 19, "also check"): nixos-anywhere starts every ssh
//! with `UserKnownHostsFile=/dev/null StrictHostKeyChecking=no` before the user's
//! `--ssh-option`s, so varsmith puts an `ssh` wrapper first on its PATH that pins the
//! installer's key given with `--installer-host-key`. A nixos-anywhere stand-in connects the
//! way nixos-anywhere does to the real sshd harness: the right key connects, a wrong key is
//! refused (nothing pinned), and without the key or `--trust-on-first-use` nothing runs.

use std::process::{Command, Output};

use crate::util::remote::{Sshd, keyed_workspace, require_as_root, script, ssh_keygen};

const INV: &str = "machines:\n  web:\n    target: root@web.example.org\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn bootstrap_pins_the_installer_key_for_nixos_anywhere() {
    if !require_as_root(&["sops", "age-keygen"]) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let ws = tempfile::tempdir().unwrap();
    let (_, _, _, age) = keyed_workspace(ws.path(), "web", INV);
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("na.log");
    // nixos-anywhere's own ssh options first, as its sshArgs are.
    let opts: String = sshd
        .ssh_options()
        .iter()
        .map(|o| format!(" -o '{o}'"))
        .collect();
    script(
        &bin.path().join("nixos-anywhere"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{log}'\nfor t; do :; done\nexec ssh -T -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no{opts} \"$t\" 'echo reached-installer'\n",
            log = log.display()
        ),
    );
    let mut path = vec![bin.path().to_path_buf()];
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    let path = std::env::join_paths(path).unwrap();
    let run = |extra: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_varsmith"))
            .arg("-C")
            .arg(ws.path())
            .args([
                "bootstrap",
                "web",
                "root@127.0.0.1",
                "--no-reboot",
                "--no-global",
            ])
            .args(extra)
            .env("PATH", &path)
            .env("SOPS_AGE_KEY_FILE", &age)
            .env_remove("SOPS_AGE_KEY")
            .output()
            .unwrap()
    };

    // Neither the key nor an explicit trust on first use: refused, nothing ran.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("--installer-host-key"),
        "{}",
        text(&o.stderr)
    );
    assert!(!log.exists());

    // A wrong installer key: nixos-anywhere's ssh is refused; nothing is pinned.
    let keys = tempfile::tempdir().unwrap();
    let (_, wrong) = ssh_keygen(keys.path(), "wrong");
    let o = run(&["--installer-host-key", &wrong]);
    assert!(!o.status.success());
    assert!(!text(&o.stdout).contains("reached-installer"));
    assert!(!ws.path().join("known_hosts").exists());

    // The installer's real key (as a file): connected, then the machine's key is pinned.
    let kf = keys.path().join("installer.pub");
    std::fs::write(&kf, format!("{}\n", sshd.host_pub)).unwrap();
    let o = run(&["--installer-host-key", &format!("@{}", kf.display())]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("reached-installer"));
    let kh = std::fs::read_to_string(ws.path().join("known_hosts")).unwrap();
    assert!(kh.starts_with("web ssh-ed25519 "), "{kh}");
    // nixos-anywhere's argv is unchanged by the pin (it lives in the wrapper).
    let argv = std::fs::read_to_string(&log).unwrap();
    let last = argv.lines().last().unwrap();
    assert!(last.starts_with("--flake .#web --extra-files "), "{last}");
    assert!(last.ends_with(" --no-reboot root@127.0.0.1"), "{last}");

    // The dry run says so.
    let o = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.path())
        .args([
            "bootstrap",
            "web",
            "root@127.0.0.1",
            "--dry-run",
            "--installer-host-key",
        ])
        .arg(&sshd.host_pub)
        .output()
        .unwrap();
    assert!(
        text(&o.stdout)
            .contains("accepts only the installer's ssh-ed25519 key, pinned as web.installer"),
        "{}",
        text(&o.stdout)
    );
}
