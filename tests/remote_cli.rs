//! push-keys and bootstrap through the varsmith binary, on workspaces whose keys were
//! encrypted by the real `sops` and are decrypted by varsmith's sops module.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::remote::{
    Sshd, StandIns, keyed_workspace, require_as_root, script, which, write_inventory,
};

const INV: &str = "machines:\n  web:\n    target: root@web.example.org\n    generators: [openssh, global-identity]\n";

fn varsmith(
    root: &Path,
    args: &[&str],
    path: Option<&std::ffi::OsStr>,
    key: Option<&Path>,
) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
    c.arg("-C").arg(root).args(args);
    if let Some(p) = path {
        c.env("PATH", p);
    }
    if let Some(k) = key {
        c.env("SOPS_AGE_KEY_FILE", k);
    }
    c.env_remove("SOPS_AGE_KEY");
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_missing_host_key_is_a_clear_error() {
    let ws = tempfile::tempdir().unwrap();
    write_inventory(ws.path(), INV);
    let out = varsmith(ws.path(), &["push-keys", "web"], None, None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("web: the SSH host key has not been generated"),
        "{err}"
    );
    assert!(err.contains("varsmith generate web -g openssh"), "{err}");
    assert!(err.contains("--generate"), "{err}");
    let out = varsmith(
        ws.path(),
        &["bootstrap", "web", "root@installer", "--trust-on-first-use"],
        None,
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("has not been generated"));
    let out = varsmith(ws.path(), &["push-keys", "nope"], None, None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unknown machine is a usage error"
    );
}

#[test]
fn generate_makes_the_missing_keys_before_pushing() {
    if !require_as_root(&["sops", "age-keygen", "bwrap", "ssh-keygen"]) {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let (key_file, recipient) = crate::util::remote::age_keygen(ws.path());
    let port = crate::util::remote::free_port().to_string();
    write_inventory(
        ws.path(),
        &format!(
            "admins:\n  alice: {recipient}\nmachines:\n  web:\n    target: root@127.0.0.1\n    generators: [openssh, global-identity]\n"
        ),
    );
    // The key comes only from SOPS_AGE_KEY: `--generate` runs in this process, so it works
    // without handing the key to a child.
    let key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.path())
        .args(["push-keys", "web", "--generate", "--ssh-option"])
        .arg(format!("Port={port}"))
        .env("SOPS_AGE_KEY", key.trim())
        .env_remove("SOPS_AGE_KEY_FILE")
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("web: openssh has no value yet; generating it"),
        "{err}"
    );
    assert!(
        err.contains("web: global-identity has no value yet; generating it"),
        "{err}"
    );
    // Nothing listens on the port: the push itself fails, after the keys were made.
    assert_eq!(out.status.code(), Some(1), "{err}");
    let secrets = ws.path().join("sops/machines/web/secrets/openssh.yaml");
    let dec = Command::new("sops")
        .args(["decrypt", "--extract", "[\"ssh_host_ed25519_key\"]"])
        .arg(&secrets)
        .env("SOPS_AGE_KEY", key.trim())
        .output()
        .unwrap();
    assert!(dec.status.success(), "{}", text(&dec.stderr));
    assert!(text(&dec.stdout).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    assert!(
        ws.path()
            .join("sops/shared/secrets/global-identity.yaml")
            .is_file()
    );
}

#[test]
fn push_keys_cli_installs_keys_over_real_ssh_without_key_bytes_in_argv() {
    if !require_as_root(&["sops", "age-keygen"]) {
        return;
    }
    let Some(sshd) = Sshd::start() else { return };
    let ws = tempfile::tempdir().unwrap();
    let (sk, pk, gsk, age) = keyed_workspace(ws.path(), "web", INV);
    std::fs::write(
        ws.path().join("known_hosts"),
        format!("web {}\n", sshd.host_pub),
    )
    .unwrap();
    // An `ssh` on PATH that logs its argv and execs the real client.
    let bin = sshd.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = sshd.dir.path().join("ssh-argv.log");
    script(
        &bin.join("ssh"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            which("ssh").unwrap().display()
        ),
    );
    let path = std::env::join_paths(
        std::iter::once(bin.clone())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let mut args = vec!["push-keys".to_string(), "web".into(), sshd.target()];
    for o in sshd.ssh_options() {
        args.push("--ssh-option".into());
        args.push(o);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = varsmith(ws.path(), &args, Some(&path), Some(&age));
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(
        std::fs::read(sshd.etc_ssh.join("ssh_host_ed25519_key")).unwrap(),
        sk
    );
    assert_eq!(
        std::fs::read_to_string(sshd.etc_ssh.join("ssh_host_ed25519_key.pub")).unwrap(),
        format!("{pk}\n")
    );
    assert_eq!(
        std::fs::read(sshd.etc_ssh.join("global_ed25519")).unwrap(),
        gsk
    );
    let argv = std::fs::read_to_string(&log).unwrap();
    for secret in [&sk, &gsk] {
        for line in String::from_utf8_lossy(secret)
            .lines()
            .filter(|l| !l.starts_with("-----"))
        {
            assert!(!argv.contains(line), "key material in argv");
        }
    }
    // The pushed key is pinned beside the one the running sshd still serves.
    let pins = std::fs::read_to_string(ws.path().join("known_hosts")).unwrap();
    let key = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let mut want = vec![
        format!("web {}", key(&pk)),
        format!("web {}", key(&sshd.host_pub)),
    ];
    want.sort();
    let mut got: Vec<String> = pins.lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, want);
    // --persist, --no-global.
    let mut pargs = args.clone();
    pargs.push("--persist");
    pargs.push("--no-global");
    let out = varsmith(ws.path(), &pargs, Some(&path), Some(&age));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(sshd.persist.join("etc/ssh/ssh_host_ed25519_key").is_file());
    assert!(!sshd.persist.join("etc/ssh/global_ed25519").exists());
}

#[test]
fn bootstrap_cli_pins_the_host_key_and_cleans_up_on_ctrl_c() {
    if !require_as_root(&["sops", "age-keygen", "find", "sha256sum"]) {
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    let (_sk, pk, _gsk, age) = keyed_workspace(ws.path(), "web", INV);
    let s = StandIns::new();
    let out = varsmith(
        ws.path(),
        &[
            "bootstrap",
            "web",
            "root@installer",
            "--no-reboot",
            "--trust-on-first-use",
        ],
        Some(&s.path_env()),
        Some(&age),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(s.extra("tree").contains("etc/ssh/ssh_host_ed25519_key 600"));
    assert!(!Path::new(s.extra("tree-path").trim()).exists());
    let kh = std::fs::read_to_string(ws.path().join("known_hosts")).unwrap();
    let mut it = pk.split_whitespace();
    assert_eq!(
        kh,
        format!("web {} {}\n", it.next().unwrap(), it.next().unwrap())
    );

    // Ctrl-C while nixos-anywhere runs: the tree is removed and varsmith exits 130.
    std::fs::remove_file(format!("{}.tree-path", s.log.display())).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.path())
        .args(["bootstrap", "web", "root@installer", "--trust-on-first-use"])
        .env("PATH", s.path_env())
        .env("SOPS_AGE_KEY_FILE", &age)
        .env("STANDIN_SLEEP", "30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let tree = loop {
        let t = s.extra("tree-path");
        if !t.trim().is_empty() && !s.extra("sums").is_empty() {
            break t.trim().to_string();
        }
        assert!(Instant::now() < deadline, "stand-in never ran");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(Path::new(&tree).exists());
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!Path::new(&tree).exists(), "tree removed on Ctrl-C");
    assert!(!Path::new(&tree).parent().unwrap().exists());
}
