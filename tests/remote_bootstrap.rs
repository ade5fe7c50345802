//! bootstrap with a recording nixos-anywhere stand-in: the exact argv, the extra-files tree's
//! layout and modes while it runs, its removal afterwards, and the host key pin.

use std::path::Path;

use crate::util::remote::{StandIns, require_as_root, ssh_keygen};
use varsmith::remote::Error;
use varsmith::remote::bootstrap::{self, BootstrapOptions};
use varsmith::remote::hostkeys::{KeyBundle, KeyPaths};
use varsmith::remote::known_hosts::KnownHosts;
use zeroize::Zeroizing;

struct Fixture {
    sk: Vec<u8>,
    pk: String,
    gsk: Vec<u8>,
    ws: tempfile::TempDir,
    s: StandIns,
}

fn fixture() -> Option<Fixture> {
    if !require_as_root(&["ssh-keygen", "find", "sha256sum"]) {
        return None;
    }
    let ws = tempfile::tempdir().unwrap();
    let (sk, pk) = ssh_keygen(ws.path(), "h");
    let (gsk, _) = ssh_keygen(ws.path(), "g");
    Some(Fixture {
        sk,
        pk,
        gsk,
        ws,
        s: StandIns::new(),
    })
}

fn bundle(f: &Fixture, global: bool) -> KeyBundle {
    KeyBundle::from_parts(
        "web",
        Zeroizing::new(f.sk.clone()),
        format!("{}\n", f.pk).as_bytes(),
        global.then(|| Zeroizing::new(f.gsk.clone())),
        &KeyPaths::new(Path::new("/ws"), "web"),
    )
    .unwrap()
}

fn opts(f: &Fixture) -> BootstrapOptions {
    BootstrapOptions {
        program: f.s.bin.join("nixos-anywhere").display().to_string(),
        ..Default::default()
    }
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[test]
fn tree_layout_modes_argv_removal_and_pin() {
    let Some(f) = fixture() else { return };
    let kh = KnownHosts::for_workspace(f.ws.path());
    let o = BootstrapOptions {
        no_reboot: true,
        no_disko_deps: true,
        debug: true,
        ssh_options: vec!["Port=2222".into()],
        ..opts(&f)
    };
    bootstrap::run(f.ws.path(), &bundle(&f, true), "root@installer", &o, &kh).unwrap();
    let recs = f.s.records();
    assert_eq!(recs.len(), 1);
    let tree = f.s.extra("tree-path").trim().to_string();
    assert_eq!(
        recs[0],
        [
            "",
            "nixos-anywhere",
            "--flake",
            ".#web",
            "--extra-files",
            &tree,
            "--no-reboot",
            "--no-disko-deps",
            "--debug",
            "--ssh-option",
            "Port=2222",
            "root@installer"
        ]
    );
    assert_eq!(
        f.s.extra("tree"),
        "etc 755 root\n\
         etc/ssh 755 root\n\
         etc/ssh/global_ed25519 600 root\n\
         etc/ssh/ssh_host_ed25519_key 600 root\n\
         etc/ssh/ssh_host_ed25519_key.pub 644 root\n"
    );
    assert_eq!(f.s.extra("parent-mode").trim(), "700");
    let sums = f.s.extra("sums");
    assert!(sums.contains(&format!("{}  ./etc/ssh/ssh_host_ed25519_key\n", sha(&f.sk))));
    assert!(sums.contains(&format!("{}  ./etc/ssh/global_ed25519\n", sha(&f.gsk))));
    let pubfile = format!("{}\n", f.pk);
    assert!(sums.contains(&format!(
        "{}  ./etc/ssh/ssh_host_ed25519_key.pub\n",
        sha(pubfile.as_bytes())
    )));
    // On tmpfs, and gone afterwards (with its private parent).
    let tree = Path::new(&tree);
    assert!(tree.starts_with("/dev/shm") || std::env::var_os("XDG_RUNTIME_DIR").is_some());
    assert!(!tree.exists());
    assert!(!tree.parent().unwrap().exists());
    // No key material in the argv.
    let log = std::fs::read_to_string(&f.s.log).unwrap();
    for secret in [&f.sk, &f.gsk] {
        for line in String::from_utf8_lossy(secret)
            .lines()
            .filter(|l| !l.starts_with("-----"))
        {
            assert!(!log.contains(line));
        }
    }
    // The installed host's key is pinned under the machine name.
    let mut it = f.pk.split_whitespace();
    let want = format!("{} {}", it.next().unwrap(), it.next().unwrap());
    assert_eq!(kh.pinned("web").unwrap(), vec![want]);
}

#[test]
fn persist_layout_without_global() {
    let Some(f) = fixture() else { return };
    let kh = KnownHosts::for_workspace(f.ws.path());
    let o = BootstrapOptions {
        persist: true,
        ..opts(&f)
    };
    bootstrap::run(f.ws.path(), &bundle(&f, false), "root@installer", &o, &kh).unwrap();
    assert_eq!(
        f.s.extra("tree"),
        "persist 755 root\n\
         persist/etc 755 root\n\
         persist/etc/ssh 755 root\n\
         persist/etc/ssh/ssh_host_ed25519_key 600 root\n\
         persist/etc/ssh/ssh_host_ed25519_key.pub 644 root\n"
    );
    assert_eq!(f.s.records()[0].last().unwrap(), "root@installer");
}

#[test]
fn a_failed_install_removes_the_tree_and_pins_nothing() {
    let Some(f) = fixture() else { return };
    let kh = KnownHosts::for_workspace(f.ws.path());
    let err = bootstrap::run(
        f.ws.path(),
        &bundle(&f, true),
        "fail@nowhere",
        &opts(&f),
        &kh,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Tool { .. }), "{err}");
    assert!(err.to_string().contains("for web"), "{err}");
    let tree = f.s.extra("tree-path");
    assert!(!tree.trim().is_empty(), "the stand-in ran");
    assert!(!Path::new(tree.trim()).exists());
    assert!(kh.pinned("web").unwrap().is_empty());
    assert!(!f.ws.path().join("known_hosts").exists());
}

#[test]
fn a_missing_program_is_a_clear_error_and_removes_the_tree() {
    let Some(f) = fixture() else { return };
    let kh = KnownHosts::for_workspace(f.ws.path());
    let o = BootstrapOptions {
        program: "/nonexistent/nixos-anywhere".into(),
        ..Default::default()
    };
    let err = bootstrap::run(f.ws.path(), &bundle(&f, true), "root@x", &o, &kh).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot run `/nonexistent/nixos-anywhere`"),
        "{err}"
    );
}

#[test]
fn the_tree_is_private_on_tmpfs_and_removed_on_drop() {
    use std::os::unix::fs::PermissionsExt;
    let Some(f) = fixture() else { return };
    let tree = bootstrap::ExtraFiles::build(&bundle(&f, true), false).unwrap();
    let root = tree.root().to_path_buf();
    let parent = tree.private_dir().to_path_buf();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&parent), 0o700);
    assert_eq!(
        mode(&root),
        0o755,
        "copied onto the new system's / by tar -p"
    );
    assert_eq!(mode(&root.join("etc/ssh/ssh_host_ed25519_key")), 0o600);
    assert_eq!(
        std::fs::read(root.join("etc/ssh/ssh_host_ed25519_key")).unwrap(),
        f.sk
    );
    drop(tree);
    assert!(!parent.exists());
}

#[test]
fn mismatched_key_pair_is_refused_before_anything_runs() {
    let Some(f) = fixture() else { return };
    let (_, other_pk) = ssh_keygen(f.ws.path(), "other");
    let err = KeyBundle::from_parts(
        "web",
        Zeroizing::new(f.sk.clone()),
        other_pk.as_bytes(),
        None,
        &KeyPaths::new(Path::new("/ws"), "web"),
    )
    .unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("does not match the public key"),
        "{err}"
    );
}
