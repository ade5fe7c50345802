//! push-keys against a real OpenSSH server on loopback, in a private mount namespace whose
//! `/etc/ssh` and `/persist` are temporary directories (see `common_remote`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::util::remote::{Sshd, ssh_keygen, ssh_wrapper};
use varsmith::remote::Error;
use varsmith::remote::hostkeys::{KeyBundle, KeyPaths};
use varsmith::remote::known_hosts::KnownHosts;
use varsmith::remote::push_keys;
use varsmith::remote::ssh::Ssh;
use zeroize::Zeroizing;

struct Keys {
    sk: Vec<u8>,
    pk: String,
    gsk: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = ssh_keygen(dir.path(), "host");
    let (gsk, _) = ssh_keygen(dir.path(), "global");
    Keys {
        sk,
        pk,
        gsk,
        _dir: dir,
    }
}

fn bundle(k: &Keys, global: bool) -> KeyBundle {
    KeyBundle::from_parts(
        "web",
        Zeroizing::new(k.sk.clone()),
        format!("{}\n", k.pk).as_bytes(),
        global.then(|| Zeroizing::new(k.gsk.clone())),
        &KeyPaths::new(Path::new("/ws"), "web"),
    )
    .unwrap()
}

/// A workspace pin file that pins the test server's real key for machine `web`.
fn pinned(sshd: &Sshd) -> (tempfile::TempDir, KnownHosts) {
    let ws = tempfile::tempdir().unwrap();
    let kh = KnownHosts::for_workspace(ws.path());
    kh.pin("web", &sshd.host_pub).unwrap();
    (ws, kh)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Names in `dir`, sorted (temporary leftovers would show up here).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn push_installs_exact_bytes_and_modes_in_etc_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let (_ws, kh) = pinned(&sshd);
    let k = keys();
    let (wrapper, argv_log) = ssh_wrapper(sshd.dir.path());
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &sshd.ssh_options())
        .unwrap()
        .with_program(&wrapper);
    assert!(ssh.is_pinned());
    let report = push_keys::push(&ssh, &bundle(&k, true), false)
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(
        report.installed,
        [
            "/etc/ssh/ssh_host_ed25519_key",
            "/etc/ssh/ssh_host_ed25519_key.pub",
            "/etc/ssh/global_ed25519"
        ]
    );
    let e = &sshd.etc_ssh;
    assert_eq!(
        names(e),
        [
            "global_ed25519",
            "ssh_host_ed25519_key",
            "ssh_host_ed25519_key.pub"
        ]
    );
    assert_eq!(std::fs::read(e.join("ssh_host_ed25519_key")).unwrap(), k.sk);
    assert_eq!(
        std::fs::read_to_string(e.join("ssh_host_ed25519_key.pub")).unwrap(),
        format!("{}\n", k.pk)
    );
    assert_eq!(std::fs::read(e.join("global_ed25519")).unwrap(), k.gsk);
    assert_eq!(mode(&e.join("ssh_host_ed25519_key")), 0o600);
    assert_eq!(mode(&e.join("ssh_host_ed25519_key.pub")), 0o644);
    assert_eq!(mode(&e.join("global_ed25519")), 0o600);
    for f in names(e) {
        let md = std::fs::metadata(e.join(&f)).unwrap();
        assert_eq!((md.uid(), md.gid()), (0, 0), "{f} owned by root");
    }
    assert!(names(&sshd.persist).is_empty(), "nothing under /persist");
    // No key material in any argv: the private keys' base64 body lines never appear.
    let argv = std::fs::read_to_string(argv_log).unwrap();
    assert!(argv.contains("StrictHostKeyChecking=yes"));
    for secret in [&k.sk, &k.gsk] {
        let text = String::from_utf8_lossy(secret);
        for line in text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!argv.contains(line), "key material in ssh argv");
        }
    }
    // A second push replaces the files in place.
    let k2 = keys();
    push_keys::push(&ssh, &bundle(&k2, false), false).unwrap();
    assert_eq!(
        std::fs::read(e.join("ssh_host_ed25519_key")).unwrap(),
        k2.sk
    );
    assert_eq!(std::fs::read(e.join("global_ed25519")).unwrap(), k.gsk);
    assert_eq!(names(e).len(), 3, "no temporary leftovers: {:?}", names(e));
}

#[test]
fn persist_lands_in_the_persist_tree() {
    let Some(sshd) = Sshd::start() else { return };
    let (_ws, kh) = pinned(&sshd);
    let k = keys();
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &sshd.ssh_options()).unwrap();
    push_keys::push(&ssh, &bundle(&k, false), true)
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    let p = sshd.persist.join("etc/ssh");
    assert_eq!(
        names(&p),
        ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]
    );
    assert_eq!(std::fs::read(p.join("ssh_host_ed25519_key")).unwrap(), k.sk);
    assert_eq!(mode(&p.join("ssh_host_ed25519_key")), 0o600);
    assert_eq!(mode(&p.join("ssh_host_ed25519_key.pub")), 0o644);
    assert_eq!(
        mode(&p),
        0o755,
        "created ssh directory is world-traversable"
    );
    assert_eq!(mode(&sshd.persist.join("etc")), 0o755);
    assert!(names(&sshd.etc_ssh).is_empty(), "/etc/ssh untouched");
}

#[test]
fn a_target_not_matching_the_pin_is_refused() {
    let Some(sshd) = Sshd::start() else { return };
    let ws = tempfile::tempdir().unwrap();
    let kh = KnownHosts::for_workspace(ws.path());
    let k = keys();
    // The pin is the generated host key, which this server does not present.
    kh.pin("web", &k.pk).unwrap();
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &sshd.ssh_options()).unwrap();
    let err = push_keys::push(&ssh, &bundle(&k, true), false).unwrap_err();
    assert!(matches!(err, Error::HostKeyMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("does not match the one pinned for \"web\""),
        "{msg}"
    );
    assert!(msg.contains("known_hosts"), "{msg}");
    assert!(names(&sshd.etc_ssh).is_empty(), "nothing written");
    // A --ssh-option cannot switch the pin off: ours come first and ssh keeps the first value.
    let mut opts = sshd.ssh_options();
    opts.push("StrictHostKeyChecking=no".into());
    opts.push("UserKnownHostsFile=/dev/null".into());
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &opts).unwrap();
    let err = push_keys::push(&ssh, &bundle(&k, true), false).unwrap_err();
    assert!(matches!(err, Error::HostKeyMismatch { .. }), "{err}");
    assert!(names(&sshd.etc_ssh).is_empty(), "nothing written");
}

#[test]
fn unpinned_targets_follow_the_users_openssh_trust() {
    let Some(sshd) = Sshd::start() else { return };
    let ws = tempfile::tempdir().unwrap();
    let kh = KnownHosts::for_workspace(ws.path());
    let k = keys();
    let user_kh = sshd.dir.path().join("user_known_hosts");
    let mut opts = sshd.ssh_options();
    opts.push(format!("UserKnownHostsFile={}", user_kh.display()));
    opts.push("GlobalKnownHostsFile=/dev/null".into());
    // Unknown key, BatchMode: refused with a hint, nothing written.
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &opts).unwrap();
    assert!(!ssh.is_pinned());
    let err = push_keys::push(&ssh, &bundle(&k, false), false).unwrap_err();
    assert!(matches!(err, Error::HostKeyUnknown { .. }), "{err}");
    assert!(err.to_string().contains("accept-new"), "{err}");
    assert!(names(&sshd.etc_ssh).is_empty());
    // Explicit trust on first use.
    opts.push("StrictHostKeyChecking=accept-new".into());
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &opts).unwrap();
    push_keys::push(&ssh, &bundle(&k, false), false).unwrap();
    assert_eq!(names(&sshd.etc_ssh).len(), 2);
    // push-keys does not pin: the running sshd still serves its old key.
    assert!(kh.pinned("web").unwrap().is_empty());
}

#[test]
fn an_unreachable_target_is_a_clear_error_and_writes_nothing() {
    let Some(sshd) = Sshd::start() else { return };
    let (_ws, kh) = pinned(&sshd);
    let k = keys();
    let mut opts = sshd.ssh_options();
    let closed = crate::util::remote::free_port();
    opts[0] = format!("Port={closed}");
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &opts).unwrap();
    let err = push_keys::push(&ssh, &bundle(&k, true), true).unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with("root@127.0.0.1: unreachable:"), "{msg}");
    assert!(msg.contains("Connection refused"), "{msg}");
    assert!(!msg.contains("OPENSSH PRIVATE KEY"));
    assert!(names(&sshd.etc_ssh).is_empty());
    assert!(names(&sshd.persist).is_empty());
}

#[test]
fn a_failing_remote_side_leaves_no_temporary_files() {
    let Some(sshd) = Sshd::start() else { return };
    let (_ws, kh) = pinned(&sshd);
    let k = keys();
    // /persist/etc/ssh cannot be created: /persist/etc is a file.
    std::fs::write(sshd.persist.join("etc"), b"not a directory").unwrap();
    let ssh = Ssh::new(&sshd.target(), "web", &kh, &sshd.ssh_options()).unwrap();
    let err = push_keys::push(&ssh, &bundle(&k, true), true).unwrap_err();
    assert!(matches!(err, Error::Remote { .. }), "{err}");
    assert_eq!(names(&sshd.persist), ["etc"]);
    // Refused by the remote tar step (a read-only destination): the temp dir is removed.
    std::fs::remove_file(sshd.persist.join("etc")).unwrap();
    let ro = sshd.persist.join("etc/ssh");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir(ro.join("ssh_host_ed25519_key")).unwrap();
    std::fs::write(ro.join("ssh_host_ed25519_key/keep"), b"x").unwrap();
    let err = push_keys::push(&ssh, &bundle(&k, true), true).unwrap_err();
    assert!(matches!(err, Error::Remote { .. }), "{err}");
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert_eq!(names(&ro), ["ssh_host_ed25519_key"], "nothing installed");
    assert!(
        !names(&ro).iter().any(|n| n.starts_with(".varsmith-push")),
        "temporary directory removed: {:?}",
        names(&ro)
    );
}
