//! `rotate-host-key` end to end against the real OpenSSH server of `common_remote` and the
//! real sops: the "host" (the server's `/etc/ssh` and a generation directory that a
//! `nixos-rebuild` stand-in fills with the machine's sops files, as a real deploy would put
//! them in the system closure) decrypts its current files with the key on its disk after every
//! step, including a step failing at each of the five points; a rerun continues where the
//! failed run stopped and finishes the rotation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::remote::{Sshd, age_keygen, require_as_root, script, write_inventory};

const TOKEN: &str =
    "files:\n  t: {}\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/t\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Fleet {
    sshd: Sshd,
    dir: tempfile::TempDir,
    runtime: tempfile::TempDir,
    key: PathBuf,
    bin: PathBuf,
    /// The host's current generation: the sops files of its last deploy.
    generation: PathBuf,
    /// While this file exists, the nixos-rebuild stand-in fails.
    fail_deploy: PathBuf,
}

impl Fleet {
    fn new(sshd: Sshd) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir(&root).unwrap();
        // Inside a flake, as deploy requires (the nixos-rebuild stand-in evaluates nothing).
        std::fs::write(dir.path().join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
        let (key, admin) = age_keygen(dir.path());
        write_inventory(
            &root,
            &format!(
                "admins:\n  alice: {admin}\nmachines:\n  web:\n    target: {}\n    generators: [openssh, token]\n",
                sshd.target()
            ),
        );
        std::fs::create_dir(root.join("generators")).unwrap();
        std::fs::write(root.join("generators/token.yaml"), TOKEN).unwrap();
        std::fs::write(root.join("known_hosts"), format!("web {}\n", sshd.host_pub)).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let generation = dir.path().join("generation");
        let fail_deploy = dir.path().join("fail-deploy");
        script(
            &bin.join("nixos-rebuild"),
            &format!(
                "#!/bin/sh\n[ -e '{f}' ] && {{ echo 'stand-in: switch failed' >&2; exit 1; }}\nrm -rf '{g}.new' && cp -r sops/machines/web/secrets '{g}.new' && rm -rf '{g}' && mv '{g}.new' '{g}'\n",
                f = fail_deploy.display(),
                g = generation.display()
            ),
        );
        let runtime = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        Fleet {
            sshd,
            dir,
            runtime,
            key,
            bin,
            generation,
            fail_deploy,
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    /// `varsmith -C ws ARGS` (with the server's ssh options appended when `ssh`).
    fn run_env(&self, args: &[&str], ssh: bool, env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C").arg(self.root()).args(args);
        if ssh {
            for o in self.sshd.ssh_options() {
                c.arg("--ssh-option").arg(o);
            }
        }
        let mut path = vec![self.bin.clone()];
        path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
        c.env("PATH", std::env::join_paths(path).unwrap())
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env_remove("SOPS_AGE_KEY")
            .env_remove("NIX_SSHOPTS")
            .env_remove("VARSMITH_TEST_ROTATE_FAIL")
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("HOME", self.dir.path().join("home"))
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str], ssh: bool) -> Output {
        let o = self.run_env(args, ssh, &[]);
        assert!(o.status.success(), "varsmith {args:?}: {}", text(&o.stderr));
        o
    }

    /// A rotation run that must stop at step `n` (`name`).
    fn rotate_fails_at(&self, n: usize, name: &str, extra: &[&str], env: &[(&str, &str)]) {
        let mut args = vec!["rotate-host-key", "web", "--no-global"];
        args.extend(extra);
        let o = self.run_env(&args, true, env);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "web: host key rotation stopped at step {n}/5 ({name}); fix the cause and rerun `varsmith rotate-host-key web`"
            )),
            "{err}"
        );
        let dry = self.ok(&["rotate-host-key", "web", "--dry-run"], false);
        assert!(
            text(&dry.stdout).starts_with(&format!(
                "# rotate-host-key web: next step {n}/5 ({name})\n"
            )),
            "{}",
            text(&dry.stdout)
        );
    }

    /// The host decrypts every file of its current generation with the key on its disk.
    fn host_decrypts(&self, when: &str) -> String {
        let key = self.sshd.etc_ssh.join("ssh_host_ed25519_key");
        let o = sops_with_host_key(&self.generation.join("token.yaml"), &key);
        assert!(o.status.success(), "{when}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    fn recipients(&self, file: &Path) -> usize {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| l.trim_start().starts_with("- recipient:"))
            .count()
    }
}

/// The real sops with the age key that ssh-to-age derives from an OpenSSH host key (what
/// sops-nix does on the host at boot and at activation).
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
fn rotation_is_one_resumable_verb_and_the_host_always_decrypts() {
    if !require_as_root(&["sops", "age-keygen", "bwrap", "ssh-keygen"]) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let f = Fleet::new(sshd);
    f.ok(&["generate"], false);
    // The machine runs with its first key and a deployed generation.
    f.ok(&["push-keys", "web", "--no-global"], true);
    f.ok(&["deploy", "web"], true);
    let plain = f.host_decrypts("before");
    let old_key = f.dir.path().join("old-key");
    std::fs::copy(f.sshd.etc_ssh.join("ssh_host_ed25519_key"), &old_key).unwrap();

    let dry = f.ok(&["rotate-host-key", "web", "--dry-run"], false);
    let steps: Vec<String> = text(&dry.stdout)
        .lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "1. generate",
            "2. deploy-both",
            "3. push-keys",
            "4. confirm",
            "5. deploy-new"
        ]
    );
    assert!(!f.root().join("sops/machines/web/rotation.json").exists());

    // 1: nothing happened.
    f.rotate_fails_at(
        1,
        "generate",
        &[],
        &[("VARSMITH_TEST_ROTATE_FAIL", "generate")],
    );
    assert_eq!(f.host_decrypts("after a failed generate"), plain);

    // 2: the new key exists (pending: a warning in check, not a failure), the host still has
    // the old files and the old key.
    f.rotate_fails_at(
        2,
        "deploy-both",
        &[],
        &[("VARSMITH_TEST_ROTATE_FAIL", "deploy-both")],
    );
    let check = f.run_env(&["check"], false, &[]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout)
            .contains("web/openssh: rotation: host key rotated, not yet on the host"),
        "{}",
        text(&check.stdout)
    );
    assert_eq!(f.host_decrypts("after a failed first deploy"), plain);

    // 3: the host got the files both keys open; push-keys cannot connect (a closed port
    // comes first, and ssh keeps the first value).
    f.rotate_fails_at(3, "push-keys", &["--ssh-option", "Port=1"], &[]);
    assert_eq!(f.recipients(&f.generation.join("token.yaml")), 3);
    assert_eq!(f.host_decrypts("after a failed push-keys"), plain);

    // 4: the new key is on the host and pinned beside the old pin; the running sshd still
    // serves its key, and ssh keeps working through the pins. A reboot here decrypts the
    // current generation with the new key.
    let o = f.run_env(
        &["rotate-host-key", "web", "--no-global"],
        true,
        &[("VARSMITH_TEST_ROTATE_FAIL", "confirm")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("still serves its previous key: restart sshd"),
        "{}",
        text(&o.stderr)
    );
    assert_ne!(
        std::fs::read(f.sshd.etc_ssh.join("ssh_host_ed25519_key")).unwrap(),
        std::fs::read(&old_key).unwrap()
    );
    assert_eq!(f.host_decrypts("after push-keys (simulated reboot)"), plain);
    let kh = std::fs::read_to_string(f.root().join("known_hosts")).unwrap();
    assert_eq!(kh.lines().count(), 3, "{kh}");

    // 5: the workspace's files are for the new key only; the deploy fails, the host keeps
    // the files both keys open.
    std::fs::write(&f.fail_deploy, "").unwrap();
    f.rotate_fails_at(5, "deploy-new", &[], &[]);
    assert_eq!(
        f.recipients(&f.root().join("sops/machines/web/secrets/token.yaml")),
        2
    );
    assert_eq!(f.host_decrypts("after a failed last deploy"), plain);

    // The rerun finishes: the host's files open with the new key only.
    std::fs::remove_file(&f.fail_deploy).unwrap();
    let o = f.ok(&["rotate-host-key", "web", "--no-global"], true);
    assert!(
        text(&o.stderr).contains("web: host key rotation complete"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(f.host_decrypts("after the rotation"), plain);
    assert_eq!(f.recipients(&f.generation.join("token.yaml")), 2);
    let old = sops_with_host_key(&f.generation.join("token.yaml"), &old_key);
    assert!(
        !old.status.success(),
        "the old key still opens the host's files"
    );
    assert!(
        !f.root()
            .join("sops/machines/web/rotate-host-key.json")
            .exists()
    );
    assert!(!f.root().join("sops/machines/web/rotation.json").exists());
    let check = f.run_env(&["check"], false, &[]);
    assert_eq!(check.status.code(), Some(0));
    assert!(!text(&check.stdout).contains("rotation"));
}
