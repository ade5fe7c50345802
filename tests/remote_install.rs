//! bootstrap's activation and partitioning secrets, `sync` and `install`, through the binary
//! with recording stand-ins (nixos-anywhere, nixos-rebuild, nh, nixos-install): exact argv,
//! the files as they were while the tool ran, nothing left afterwards.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::remote::{StandIns, keyed_workspace, require_as_root, sops_encrypt};

const INV: &str = "machines:\n  web:\n    generators: [openssh, luks, seed]\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn varsmith(root: &Path, args: &[&str], s: &StandIns, key: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("PATH", s.path_env())
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .unwrap()
}

/// A workspace whose `web` has a host key, a partitioning secret (`luks/key`) and an
/// activation secret (`seed/seed`, mode 0440), all encrypted by the real sops.
fn workspace() -> Option<(tempfile::TempDir, std::path::PathBuf, Vec<u8>, Vec<u8>)> {
    if !require_as_root(&["sops", "age-keygen", "ssh-keygen", "find", "sha256sum"]) {
        return None;
    }
    let ws = tempfile::tempdir().unwrap();
    let (_sk, _pk, _gsk, age) = keyed_workspace(ws.path(), "web", INV);
    let g = ws.path().join("generators");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::write(
        g.join("luks.yaml"),
        "files:\n  key: { needed_for: partitioning }\nscript: 'true'\n",
    )
    .unwrap();
    std::fs::write(
        g.join("seed.yaml"),
        "files:\n  seed: { needed_for: activation, mode: \"0440\" }\nscript: 'true'\n",
    )
    .unwrap();
    let recipient = std::fs::read_to_string(&age)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(String::from))
        .unwrap();
    let sec = ws.path().join("sops/machines/web/secrets");
    let luks = b"luks-passphrase-1a2b\n".to_vec();
    let seed = b"activation-seed-3c4d\n".to_vec();
    sops_encrypt(&recipient, "key", &luks, &sec.join("luks.yaml"));
    sops_encrypt(&recipient, "seed", &seed, &sec.join("seed.yaml"));
    Some((ws, age, luks, seed))
}

#[test]
fn bootstrap_passes_disk_keys_and_activation_secrets() {
    let Some((ws, age, luks, seed)) = workspace() else {
        return;
    };
    let s = StandIns::new();
    let dry = varsmith(
        ws.path(),
        &["bootstrap", "web", "root@installer", "--dry-run", "--json"],
        &s,
        &age,
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(
        doc["disk_encryption_keys"],
        serde_json::json!([{ "remote": "/run/partitioning-secrets/luks/key", "local": "<tmpfs>/disk-keys/luks/key" }])
    );
    let files: Vec<&str> = doc["extra_files"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"var/lib/varsmith/activation/seed/seed"),
        "{files:?}"
    );
    assert!(s.records().is_empty());

    let out = varsmith(
        ws.path(),
        &["bootstrap", "web", "root@installer", "--trust-on-first-use"],
        &s,
        &age,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rec = &s.records()[0];
    let tree = s.extra("tree-path").trim().to_string();
    let disk = s.extra("disk");
    let fields: Vec<&str> = disk.split_whitespace().collect();
    assert_eq!(
        fields[..3],
        ["/run/partitioning-secrets/luks/key", &sha(&luks), "400"]
    );
    let local = fields[3];
    assert_eq!(
        rec[1..],
        [
            "nixos-anywhere",
            "--flake",
            ".#web",
            "--extra-files",
            &tree,
            "--disk-encryption-keys",
            "/run/partitioning-secrets/luks/key",
            local,
            "root@installer",
        ]
    );
    assert!(
        !local.starts_with(&tree),
        "the disk key is not in the installed tree"
    );
    assert_eq!(
        Path::new(local)
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent(),
        Path::new(&tree).parent()
    );
    assert!(
        s.extra("tree")
            .contains("var/lib/varsmith/activation/seed/seed 440 root"),
        "{}",
        s.extra("tree")
    );
    assert!(s.extra("sums").contains(&format!(
        "{}  ./var/lib/varsmith/activation/seed/seed",
        sha(&seed)
    )));
    assert!(
        !Path::new(local).exists() && !Path::new(&tree).exists(),
        "removed afterwards"
    );
    for r in s.records() {
        for a in r {
            assert!(!a.contains("luks-passphrase") && !a.contains("activation-seed"));
        }
    }
}

#[test]
fn sync_uses_nh_when_present_else_nixos_rebuild_boot_by_default() {
    let ws = tempfile::tempdir().unwrap();
    crate::util::remote::write_inventory(ws.path(), "machines:\n  web: {}\n");
    let s = StandIns::new();
    let none = Path::new("/nonexistent");
    let out = varsmith(ws.path(), &["sync", "--host", "web"], &s, none);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = varsmith(
        ws.path(),
        &["sync", "switch", "--host", "web", "--debug"],
        &s,
        none,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        s.records(),
        vec![
            sv(&[
                "",
                "nh",
                "os",
                "boot",
                ".",
                "--hostname",
                "web",
                "--",
                "--show-trace"
            ]),
            sv(&[
                "",
                "nh",
                "--verbose",
                "os",
                "switch",
                ".",
                "--hostname",
                "web",
                "--",
                "--show-trace"
            ]),
        ]
    );
    std::fs::remove_file(s.bin.join("nh")).unwrap();
    // Without nh on PATH (and with only the stand-ins and coreutils there).
    let path = std::env::join_paths([s.bin.clone(), "/usr/bin".into(), "/bin".into()]).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_varsmith"))
            .arg("-C")
            .arg(ws.path())
            .args(args)
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let root = unsafe { libc::geteuid() } == 0;
    let sudo = if root { "" } else { "sudo " };
    let out = run(&["sync", "--host", "web", "--dry-run"]);
    assert_eq!(
        text(&out.stdout),
        format!("{sudo}nixos-rebuild boot --flake '.#web' --show-trace\n")
    );
    if root {
        let out = run(&["sync", "build", "--host", "web", "--no-show-trace"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            s.records()[2],
            sv(&["", "nixos-rebuild", "build", "--flake", ".#web"])
        );
    }
    let out = run(&["sync", "--host", "-x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn install_places_keys_and_activation_secrets_under_the_root_first() {
    let Some((ws, age, _luks, seed)) = workspace() else {
        return;
    };
    let s = StandIns::new();
    let mnt = tempfile::tempdir().unwrap();
    let log = s.log.with_extension("install");
    crate::util::remote::script(
        &s.bin.join("nixos-install"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" > '{l}'\n(cd \"$4\" && find . -type f -printf '%P %m\\n' | sort) >> '{l}'\nsha256sum \"$4/var/lib/varsmith/activation/seed/seed\" | cut -d' ' -f1 >> '{l}'\n",
            l = log.display()
        ),
    );
    let root = mnt.path().to_str().unwrap();
    let dry = varsmith(
        ws.path(),
        &["install", "--host", "web", "--root", root, "--dry-run"],
        &s,
        &age,
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(
        text(&dry.stdout),
        format!(
            "# place {root}/etc/ssh/ssh_host_ed25519_key (0600)\n# place {root}/etc/ssh/ssh_host_ed25519_key.pub (0644)\n\
             # place {root}/etc/ssh/global_ed25519 (0600)\n# place {root}/var/lib/varsmith/activation/seed/seed (0440)\n\
             nixos-install --flake '.#web' --root {root} --show-trace\n"
        )
    );
    assert!(!log.exists() && std::fs::read_dir(mnt.path()).unwrap().next().is_none());
    let out = varsmith(
        ws.path(),
        &["install", "--host", "web", "--root", root],
        &s,
        &age,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "--flake .#web --root {root} --show-trace\netc/ssh/global_ed25519 600\netc/ssh/ssh_host_ed25519_key 600\n\
             etc/ssh/ssh_host_ed25519_key.pub 644\n\
             var/lib/varsmith/activation/seed/seed 440\n{}\n",
            sha(&seed)
        )
    );
}
