//! Host key rotation end to end against a real OpenSSH server on loopback (see
//! `common_remote`): `generate --rotate-host-key` keeps the old host key a recipient and `check`
//! reports the rotation as pending; `push-keys` installs the new key on the "host", which
//! confirms the rotation: `check` is clean again and the machine's secrets decrypt (real sops)
//! with the new host key only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::remote::{Sshd, StandIns, age_keygen, require_as_root, write_inventory};

const TOKEN: &str =
    "files:\n  t: {}\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/t\n";

struct Ws {
    dir: tempfile::TempDir,
    runtime: tempfile::TempDir,
    key: PathBuf,
}

impl Ws {
    fn new(sshd: &Sshd) -> Ws {
        Ws::with(&sshd.target(), &sshd.host_pub)
    }

    /// A workspace whose machine `web` is reached at `target`, its pin `pinned`.
    fn with(target: &str, pinned: &str) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let (key, admin) = age_keygen(dir.path());
        write_inventory(
            dir.path(),
            &format!(
                "admins:\n  alice: {admin}\nmachines:\n  web:\n    target: {target}\n    generators: [openssh, token]\n"
            ),
        );
        std::fs::create_dir(dir.path().join("generators")).unwrap();
        std::fs::write(dir.path().join("generators/token.yaml"), TOKEN).unwrap();
        std::fs::write(dir.path().join("known_hosts"), format!("web {pinned}\n")).unwrap();
        let runtime = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        Ws { dir, runtime, key }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C")
            .arg(self.root())
            .args(args)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env_remove("SOPS_AGE_KEY")
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("HOME", self.root().join("home"));
        c
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(o.status.success(), "varsmith {args:?}: {}", text(&o.stderr));
        o
    }

    /// The machine's host private key, decrypted by varsmith.
    fn host_key(&self, into: &Path) -> PathBuf {
        let o = self.ok(&["get", "web", "openssh/ssh_host_ed25519_key"]);
        std::fs::write(into, &o.stdout).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(into, std::fs::Permissions::from_mode(0o600)).unwrap();
        into.to_path_buf()
    }

    fn recipients(&self, rel: &str) -> usize {
        std::fs::read_to_string(self.root().join(rel))
            .unwrap()
            .lines()
            .filter(|l| l.trim_start().starts_with("- recipient:"))
            .count()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The real sops, decrypting with the age key ssh-to-age derives from an OpenSSH host key
/// (what sops-nix does on the host with `sops.age.sshKeyPaths`).
fn sops_with_host_key(file: &Path, ssh_key: &Path) -> Output {
    let pem = std::fs::read_to_string(ssh_key).unwrap();
    let age = varsmith::keys::ssh_to_age::private_to_age(&pem).unwrap();
    Command::new("sops")
        .arg("decrypt")
        .arg(file)
        .env("SOPS_AGE_KEY", age.as_str())
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap()
}

#[test]
fn rotation_keeps_the_old_key_until_push_keys_installs_the_new_one() {
    if !require_as_root(&["sops", "age-keygen", "bwrap", "ssh-keygen"]) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let ws = Ws::new(&sshd);
    ws.ok(&["generate"]);
    let keys = tempfile::tempdir().unwrap();
    let old = ws.host_key(&keys.path().join("old"));
    let token = ws.root().join("sops/machines/web/secrets/token.yaml");
    let plain = sops_with_host_key(&token, &old);
    assert!(plain.status.success(), "{}", text(&plain.stderr));

    // Refused without the flag, then rotated.
    assert_eq!(
        ws.run(&["generate", "--regenerate", "-g", "openssh", "web"])
            .status
            .code(),
        Some(2)
    );
    ws.ok(&[
        "generate",
        "--regenerate",
        "-g",
        "openssh",
        "--rotate-host-key",
        "web",
    ]);
    let new = ws.host_key(&keys.path().join("new"));
    assert_ne!(std::fs::read(&old).unwrap(), std::fs::read(&new).unwrap());

    // Pending: check warns (exit 0: deploying is the next step) and says why; both host
    // keys (and the admin) decrypt.
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).contains("web/openssh: rotation: host key rotated, not yet on the host"),
        "{}",
        text(&o.stdout)
    );
    assert!(ws.root().join("sops/machines/web/rotation.json").is_file());
    for rel in [
        "sops/machines/web/secrets/token.yaml",
        "sops/machines/web/secrets/openssh.yaml",
    ] {
        assert_eq!(ws.recipients(rel), 3, "{rel}");
    }
    let during = sops_with_host_key(&token, &old);
    assert_eq!(during.stdout, plain.stdout, "{}", text(&during.stderr));
    assert_eq!(sops_with_host_key(&token, &new).stdout, plain.stdout);

    // push-keys installs the new key on the host and confirms the rotation.
    let mut args = vec!["push-keys".to_string(), "web".into(), "--no-global".into()];
    for o in sshd.ssh_options() {
        args.push("--ssh-option".into());
        args.push(o);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = ws.ok(&args);
    assert!(
        text(&o.stderr).contains("web: host key rotation confirmed"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read(sshd.etc_ssh.join("ssh_host_ed25519_key")).unwrap(),
        std::fs::read(&new).unwrap()
    );

    // Done: check is clean, the files are for the new key and the admin only.
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(!ws.root().join("sops/machines/web/rotation.json").exists());
    for rel in [
        "sops/machines/web/secrets/token.yaml",
        "sops/machines/web/secrets/openssh.yaml",
    ] {
        assert_eq!(ws.recipients(rel), 2, "{rel}");
    }
    let installed = sshd.etc_ssh.join("ssh_host_ed25519_key");
    assert_eq!(sops_with_host_key(&token, &installed).stdout, plain.stdout);
    let after = sops_with_host_key(&token, &old);
    assert!(!after.status.success(), "the old host key still decrypts");
}

#[test]
fn bootstrap_confirms_a_rotation_when_it_pins_the_new_key() {
    if !require_as_root(&[
        "sops",
        "age-keygen",
        "bwrap",
        "ssh-keygen",
        "find",
        "sha256sum",
    ]) {
        return;
    }
    let ws = Ws::with(
        "root@web.example.org",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQcXSnjv6sQAjGdHpJ5nx4iVsyYR9g5Nj8GsxrgZxtV",
    );
    ws.ok(&["generate"]);
    ws.ok(&[
        "generate",
        "--regenerate",
        "-g",
        "openssh",
        "--rotate-host-key",
        "web",
    ]);
    assert_eq!(ws.run(&["check"]).status.code(), Some(0));
    let keys = tempfile::tempdir().unwrap();
    let new = ws.host_key(&keys.path().join("new"));
    // A failed install confirms nothing.
    let s = StandIns::new();
    let o = ws
        .command(&[
            "bootstrap",
            "web",
            "fail@nowhere",
            "--no-reboot",
            "--no-global",
            "--trust-on-first-use",
        ])
        .env("PATH", s.path_env())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(ws.root().join("sops/machines/web/rotation.json").is_file());
    let o = ws
        .command(&[
            "bootstrap",
            "web",
            "root@installer",
            "--no-reboot",
            "--no-global",
            "--trust-on-first-use",
        ])
        .env("PATH", s.path_env())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("web: host key rotation confirmed"),
        "{}",
        text(&o.stderr)
    );
    let pub_line = std::fs::read_to_string(
        ws.root()
            .join("sops/machines/web/facts/openssh/ssh_host_ed25519_key.pub"),
    )
    .unwrap();
    let kh = std::fs::read_to_string(ws.root().join("known_hosts")).unwrap();
    let mut f = pub_line.split_whitespace();
    assert_eq!(
        kh,
        format!("web {} {}\n", f.next().unwrap(), f.next().unwrap())
    );
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let token = ws.root().join("sops/machines/web/secrets/token.yaml");
    assert!(sops_with_host_key(&token, &new).status.success());
    assert_eq!(ws.recipients("sops/machines/web/secrets/token.yaml"), 2);
}
