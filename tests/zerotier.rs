//! `varsmith zerotier …` through the binary, against ZeroTierOne's own vectors (selftest.cpp's
//! known-good and known-bad identities), and the bundled zerotier generators end to end (real
//! bubblewrap, sops and age), every identity they produce validated by an independent
//! implementation of ZeroTier's check (`tests/zerotier_check.py`: Python's standard library and
//! openssl, no code shared with varsmith).

use crate::util::common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `KNOWN_GOOD_IDENTITY` of ZeroTierOne's selftest.cpp (github.com/zerotier/ZeroTierOne).
const KNOWN_GOOD: &str = "8e4df28b72:0:ac3d46abe0c21f3cfe7a6c8d6a85cfcffcb82fbd55af6a4d6350657c68200843fa2e16f9418bbd9702cae365f2af5fb4c420908b803a681d4daef6114d78a2d7:bd8dd6e4ce7022d2f812797a80c6ee8ad180dc4ebf301dec8b06d1be08832bddd63a2f1cfa7b2c504474c75bdc8898ba476ef92e8e2d0509f8441985171ff16e";
/// `KNOWN_BAD_IDENTITY` of the same file: the good one with another address.
const KNOWN_BAD: &str = "9e4df28b72:0:ac3d46abe0c21f3cfe7a6c8d6a85cfcffcb82fbd55af6a4d6350657c68200843fa2e16f9418bbd9702cae365f2af5fb4c420908b803a681d4daef6114d78a2d7:bd8dd6e4ce7022d2f812797a80c6ee8ad180dc4ebf301dec8b06d1be08832bddd63a2f1cfa7b2c504474c75bdc8898ba476ef92e8e2d0509f8441985171ff16e";

/// `varsmith zerotier ARGS` in `dir`, with no workspace anywhere and an empty environment.
fn zt(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("zerotier")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("run varsmith")
}

/// Runs the independent checker on `identities` and `members` (nwid, node, ip); returns its
/// report. None when python3 or openssl is missing outside CI.
fn independent_check(
    identities: &[String],
    members: &[(String, String, String)],
) -> Option<serde_json::Value> {
    if !(require("python3") && require("openssl")) {
        return None;
    }
    let members: Vec<_> = members
        .iter()
        .map(|(nwid, node, ip)| serde_json::json!({"nwid": nwid, "node": node, "ip": ip}))
        .collect();
    let req = serde_json::json!({"identities": identities, "members": members});
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zerotier_check.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "checker: {}", stderr(&out));
    Some(serde_json::from_slice(&out.stdout).expect("checker JSON"))
}

/// Asserts every identity and member of a checker report is valid.
fn assert_all_valid(report: &serde_json::Value) {
    for r in report["identities"].as_array().unwrap() {
        assert_eq!(r["ok"], true, "independent check: {r}");
    }
    for r in report["members"].as_array().unwrap() {
        assert_eq!(r["ok"], true, "independent check of an address: {r}");
    }
}

#[test]
fn zerotier_selftest_vectors_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good"), KNOWN_GOOD).unwrap();
    std::fs::write(dir.path().join("bad"), KNOWN_BAD).unwrap();
    std::fs::write(
        dir.path().join("good.public"),
        format!("{}\n", &KNOWN_GOOD[..141]),
    )
    .unwrap();

    let o = zt(dir.path(), &["validate", "good"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "good: valid ZeroTier identity 8e4df28b72 (with its private key)\n"
    );
    let o = zt(dir.path(), &["validate", "good.public"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("8e4df28b72 (public)"));

    let o = zt(dir.path(), &["validate", "bad"]);
    assert_eq!(o.status.code(), Some(1), "the known-bad identity must fail");
    assert_eq!(
        stderr(&o),
        "error: bad: not a valid ZeroTier identity: address 9e4df28b72 does not belong to this public key (its hash gives 8e4df28b72)\n"
    );
    assert!(stdout(&o).is_empty());

    // The network id of the known-good controller, and its members' addresses.
    let o = zt(
        dir.path(),
        &["network-id", "good.public", "--number", "0xabcdef"],
    );
    assert_eq!(stdout(&o), "8e4df28b72abcdef\n", "{}", stderr(&o));
    let o = zt(dir.path(), &["network-id", "bad"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "no network id from an invalid controller"
    );
    assert!(stdout(&o).is_empty());
    let o = zt(dir.path(), &["rfc4193", "8056c2e21c000001", "8e4df28b72"]);
    assert_eq!(stdout(&o), "fd80:56c2:e21c:0:199:938e:4df2:8b72\n");
    let o = zt(
        dir.path(),
        &["rfc4193", "8056c2e21c000001", "8e4df28b72", "--cidr"],
    );
    assert_eq!(stdout(&o), "fd80:56c2:e21c:0:199:938e:4df2:8b72/88\n");
    let o = zt(
        dir.path(),
        &["6plane", "8056c2e21c000001", "8e4df28b72", "--cidr"],
    );
    assert_eq!(stdout(&o), "fc9c:56c2:e38e:4df2:8b72::1/40\n");

    // The independent checker agrees on ZeroTier's vectors (so it is itself checked).
    let Some(report) = independent_check(&[KNOWN_GOOD.into(), KNOWN_BAD.into()], &[]) else {
        return;
    };
    assert_eq!(report["identities"][0]["ok"], true, "{report}");
    assert_eq!(report["identities"][1]["ok"], false, "{report}");
}

#[test]
fn malformed_input_exits_2_naming_the_file_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("short", KNOWN_GOOD[..KNOWN_GOOD.len() - 1].to_string()),
        ("type1", KNOWN_GOOD.replacen(":0:", ":1:", 1)),
        ("fields", format!("{KNOWN_GOOD}:00")),
        ("nothex", KNOWN_GOOD.replace("bd8dd6", "bd8xd6")),
    ];
    for (name, text) in &cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        let o = zt(dir.path(), &["validate", name]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).starts_with(&format!("error: {name}: ")),
            "{}",
            stderr(&o)
        );
        assert!(
            !stderr(&o).contains("bd8dd6e4"),
            "the private key leaked: {}",
            stderr(&o)
        );
    }
    let o = zt(dir.path(), &["validate", "missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("missing"));
    for args in [
        &["rfc4193", "8056c2e21c00001", "8e4df28b72"][..],
        &["6plane", "8056c2e21c000001", "8e4df28b7z"],
        &["network-id", "x", "--number", "16777216"],
        &["network-id", "x", "--number", "1", "--random"],
    ] {
        let o = zt(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn generate_writes_a_valid_pair_with_modes_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let o = zt(dir.path(), &["generate", "id.secret", "id.public"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).is_empty() && stderr(&o).is_empty());
    let mode = |f: &str| {
        std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("id.secret"), 0o600);
    assert_eq!(mode("id.public"), 0o644);
    let secret = std::fs::read_to_string(dir.path().join("id.secret")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("id.public")).unwrap();
    assert_eq!(public.len(), 141, "address:0:128 hex digits, no newline");
    assert_eq!(secret.len(), 270);
    assert!(secret.starts_with(&format!("{public}:")));
    let o = zt(dir.path(), &["validate", "id.secret"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // Never over an existing file (nor through a symlink), and nothing half-written.
    let before = std::fs::read(dir.path().join("id.secret")).unwrap();
    let o = zt(dir.path(), &["generate", "id.secret", "other.public"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read(dir.path().join("id.secret")).unwrap(), before);
    assert!(!dir.path().join("other.public").exists());
    let o = zt(dir.path(), &["generate", "new.secret", "id.public"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !dir.path().join("new.secret").exists(),
        "the secret alone stayed"
    );
    std::os::unix::fs::symlink("/nonexistent-target", dir.path().join("link")).unwrap();
    let o = zt(dir.path(), &["generate", "link", "p2"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!Path::new("/nonexistent-target").exists());

    let node = &public[..10];
    let Some(report) = independent_check(std::slice::from_ref(&secret), &[]) else {
        return;
    };
    assert_all_valid(&report);
    assert_eq!(report["identities"][0]["address"], node);
}

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  ctl:
    generators: [openssh, zerotier-controller]
  m1:
    generators: [openssh, zerotier-member]
  m2:
    generators: [openssh, zerotier-member]
";

fn get(ws: &Ws, host: &str, var: &str) -> String {
    let o = ws.run(&["get", host, var]);
    assert!(o.status.success(), "get {host} {var}: {}", stderr(&o));
    String::from_utf8(o.stdout).expect("UTF-8")
}

/// The bundled generators in a real workspace, sandboxed (or not): the controller's identity,
/// the network id and every member's identity and address are real.
fn bundled_generators_make_real_identities(extra: &[&str]) {
    if !(require("sops") && require("bwrap") && require("age")) {
        return;
    }
    let ws = Ws::new(FLEET);
    let mut args = vec!["generate", "--all"];
    args.extend_from_slice(extra);
    let o = ws.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    let nwid = get(&ws, "ctl", "zerotier-controller/network-id");
    let controller = get(&ws, "ctl", "zerotier-controller/identity.secret");
    assert_eq!(nwid.len(), 16, "{nwid:?}");
    assert_eq!(
        nwid[..10],
        controller[..10],
        "network id = controller address + number"
    );
    assert_eq!(
        get(&ws, "ctl", "zerotier-controller/identity.public"),
        controller[..141]
    );
    let mut identities = vec![controller.clone()];
    let mut members = vec![(
        nwid.clone(),
        controller[..10].to_string(),
        get(&ws, "ctl", "zerotier-controller/ip"),
    )];
    for m in ["m1", "m2"] {
        let id = get(&ws, m, "zerotier-member/identity.secret");
        assert_eq!(get(&ws, m, "zerotier-member/identity.public"), id[..141]);
        members.push((
            nwid.clone(),
            id[..10].to_string(),
            get(&ws, m, "zerotier-member/ip"),
        ));
        identities.push(id);
    }
    assert_ne!(
        identities[1][..10],
        identities[2][..10],
        "two members, one address"
    );
    let Some(report) = independent_check(&identities, &members) else {
        return;
    };
    assert_all_valid(&report);
}

#[test]
fn bundled_generators_make_real_identities_in_the_sandbox() {
    bundled_generators_make_real_identities(&[]);
}

#[test]
fn bundled_generators_make_real_identities_without_the_sandbox() {
    bundled_generators_make_real_identities(&["--no-sandbox"]);
}

/// From a directory the sandbox's uid cannot enter (as root, scripts run as an unprivileged
/// uid), as with a checkout under /root, the sandbox binds a copy of the binary, removed when
/// varsmith exits.
#[test]
fn the_helper_works_from_a_directory_the_sandbox_cannot_enter() {
    if !(require("sops") && require("bwrap") && require("age")) {
        return;
    }
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let bin = private.path().join("varsmith");
    std::fs::copy(env!("CARGO_BIN_EXE_varsmith"), &bin).unwrap();
    let ws = Ws::new(
        "admins:\n  alice: ADMIN\nmachines:\n  ctl:\n    generators: [openssh, zerotier-controller]\n",
    );
    // The workspace's usual command line and environment, run by the copy.
    let cmd = ws.command(&["generate", "--all"]);
    let o = Command::new(&bin)
        .args(cmd.get_args())
        .envs(cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        ws.leftover_run_dirs(),
        Vec::<String>::new(),
        "the copy was left behind"
    );
    let id = get(&ws, "ctl", "zerotier-controller/identity.secret");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id"), &id).unwrap();
    let o = zt(dir.path(), &["validate", "id"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
