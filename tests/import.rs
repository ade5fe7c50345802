//! `varsmith import clan` and `varsmith import sops`, through the binary with real sops: a
//! clan-layout workspace written exactly as clan-core writes it (one sops file per var in the
//! binary store, encrypted to the machine's age key and the admin, access symlinks, public
//! `value` files, `sops/machines/<m>/key.json`), imported byte for byte with nothing to
//! regenerate; and a sops-nix file adopted as a declared external secret.

use crate::util::common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

const FLEET: &str = "admins:
  alice: ADMIN
machines:
  m1:
    generators: [openssh, pw, cert]
  m2:
    generators: [openssh, pw, cert]
";

/// clan's openssh generator, ported with the rename only.
const OPENSSH: &str = "files:
  ssh.id_ed25519: {}
  ssh.id_ed25519.pub: { secret: false }
runtime_inputs: [ssh-keygen]
script: |
  ssh-keygen -t ed25519 -N '' -C '' -f $out/ssh.id_ed25519
";
const PW: &str = "files:
  password: {}
  password-hash: { secret: false }
  recovery: { deploy: false }
script: |
  echo x > $out/password; echo y > $out/password-hash; echo z > $out/recovery
";
const NET: &str = "share: true
files:
  secret-key: {}
  id: { secret: false }
script: |
  echo k > $out/secret-key; echo i > $out/id
";
const CERT: &str = "dependencies: [net]
files:
  key: {}
script: |
  cat $in/net/id > $out/key
";

fn tools() -> bool {
    require("sops") && require("age")
}

/// A fresh age key file; returns its recipient.
fn age_key(path: &Path) -> String {
    varsmith::keys::keygen::append_admin_key(path).expect("keygen")
}

/// Encrypts `value` as clan does: a temp file without extension (sops' binary store) through
/// `sops --config <rules> encrypt --in-place`, then moved to `<dir>/secret`.
fn clan_secret(dir: &Path, value: &[u8], recipients: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("source");
    std::fs::write(&plain, value).unwrap();
    let cfg = tmp.path().join("rules.json");
    let rules = serde_json::json!({"creation_rules": [{"key_groups": [{"age": recipients}]}]});
    std::fs::write(&cfg, rules.to_string()).unwrap();
    let o = Command::new("sops")
        .arg("--config")
        .arg(&cfg)
        .args(["encrypt", "--in-place"])
        .arg(&plain)
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .output()
        .expect("run sops");
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::rename(&plain, dir.join("secret")).unwrap();
}

/// clan's access symlink `<var>/<kind>/<name>` -> `sops/<kind>/<name>`.
fn grant(var: &Path, kind: &str, name: &str, depth: usize) {
    let d = var.join(kind);
    std::fs::create_dir_all(&d).unwrap();
    let up = "../".repeat(depth + 2);
    std::os::unix::fs::symlink(format!("{up}sops/{kind}/{name}"), d.join(name)).unwrap();
}

struct Clan {
    dir: tempfile::TempDir,
    machine_keys: Vec<(String, PathBuf, String)>,
    /// (owner dir under vars/, generator, file, value)
    values: Vec<(String, String, String, Vec<u8>)>,
}

/// A clan workspace for `machines`, its secrets encrypted to each machine's key and `admin`.
fn clan_workspace(machines: &[&str], admin: &str, files_per_gen: usize) -> Clan {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut machine_keys: Vec<(String, PathBuf, String)> = Vec::new();
    let mut values = Vec::new();
    let kj = |p: &Path, k: &str| {
        std::fs::create_dir_all(p).unwrap();
        std::fs::write(
            p.join("key.json"),
            format!("{{\n  \"publickey\": \"{k}\",\n  \"type\": \"age\"\n}}"),
        )
        .unwrap();
    };
    kj(&root.join("sops/users/alice"), admin);
    for m in machines {
        let key = root.join(format!("{m}.key.txt"));
        let r = age_key(&key);
        kj(&root.join("sops/machines").join(m), &r);
        machine_keys.push((m.to_string(), key, r));
    }
    let mut put = |owner: &str,
                   machine: Option<&str>,
                   g: &str,
                   f: &str,
                   v: &[u8],
                   secret: bool,
                   deploy: bool| {
        let var = root.join("vars").join(owner).join(g).join(f);
        let depth = owner.split('/').count() + 2;
        if secret {
            let mk = machine_keys_of(&machine_keys, machine);
            let mut rs: Vec<&str> = vec![admin];
            if deploy {
                rs.extend(mk.iter().map(String::as_str));
            }
            clan_secret(&var, v, &rs);
            grant(&var, "users", "alice", depth);
            if deploy && let Some(m) = machine {
                grant(&var, "machines", m, depth);
            }
        } else {
            std::fs::create_dir_all(&var).unwrap();
            std::fs::write(var.join("value"), v).unwrap();
        }
        values.push((owner.to_string(), g.to_string(), f.to_string(), v.to_vec()));
    };
    fn machine_keys_of(keys: &[(String, PathBuf, String)], m: Option<&str>) -> Vec<String> {
        keys.iter()
            .filter(|(n, _, _)| m.is_none_or(|m| m == n))
            .map(|(_, _, r)| r.clone())
            .collect()
    }
    let _ = files_per_gen;
    put(
        "shared",
        None,
        "net",
        "secret-key",
        b"net secret\xff\x00",
        true,
        true,
    );
    put("shared", None, "net", "id", b"8e4df28b72\n", false, true);
    for m in machines {
        let o = format!("per-machine/{m}");
        put(
            &o,
            Some(m),
            "openssh",
            "ssh.id_ed25519",
            format!("PRIVATE {m}\n").as_bytes(),
            true,
            true,
        );
        put(
            &o,
            Some(m),
            "openssh",
            "ssh.id_ed25519.pub",
            format!("ssh-ed25519 AAAA {m}\n").as_bytes(),
            false,
            true,
        );
        put(
            &o,
            Some(m),
            "pw",
            "password",
            format!("hunter2-{m}").as_bytes(),
            true,
            true,
        );
        put(
            &o,
            Some(m),
            "pw",
            "password-hash",
            b"$6$salt$hash\n",
            false,
            true,
        );
        put(
            &o,
            Some(m),
            "pw",
            "recovery",
            b"\x00\x01binary\x80",
            true,
            false,
        );
        put(
            &o,
            Some(m),
            "cert",
            "key",
            format!("cert of {m}\n").as_bytes(),
            true,
            true,
        );
    }
    Clan {
        dir,
        machine_keys,
        values,
    }
}

fn workspace() -> Ws {
    let ws = Ws::new(FLEET);
    ws.generator("openssh", OPENSSH);
    ws.generator("pw", PW);
    ws.generator("net", NET);
    ws.generator("cert", CERT);
    ws
}

fn ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

fn import_clan(ws: &Ws, clan: &Clan, extra: &[&str]) -> std::process::Output {
    let d = clan.dir.path().to_str().unwrap().to_string();
    let mut args = vec!["import", "clan", d.as_str()];
    args.extend_from_slice(extra);
    ws.run(&args)
}

#[test]
fn clan_vars_come_over_byte_identical_and_nothing_regenerates() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let clan = clan_workspace(&["m1", "m2"], &ws.recipient, 0);
    ok(&import_clan(&ws, &clan, &[]));
    // check is clean, with and without an identity.
    ok(&ws.run(&["check"]));
    let o = ws
        .command(&["check"])
        .env_remove("SOPS_AGE_KEY_FILE")
        .output()
        .unwrap();
    ok(&o);
    // nothing to regenerate
    let o = ws.run(&["generate", "--plan", "--json"]);
    ok(&o);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["plan"], serde_json::json!([]), "{}", stdout(&o));
    // every value byte for byte through varsmith get
    for (owner, g, f, v) in &clan.values {
        let hosts: Vec<&str> = match owner.strip_prefix("per-machine/") {
            Some(m) => vec![m],
            None => vec!["m1", "m2"],
        };
        for h in hosts {
            let o = ws.run(&["get", h, &format!("{g}/{f}")]);
            ok(&o);
            assert_eq!(&o.stdout, v, "{h} {g}/{f}");
        }
    }
    // each machine's clan age key (its /var/lib/sops-nix/key.txt) decrypts its new files with
    // real sops, and the values are the clan ones
    for (m, key, r) in &clan.machine_keys {
        let kj =
            std::fs::read_to_string(ws.root().join(format!("sops/machines/{m}/key.json"))).unwrap();
        assert!(kj.contains(r.as_str()), "{kj}");
        let f = ws.root().join(format!("sops/machines/{m}/secrets/pw.yaml"));
        let o = crate::util::common::sops_decrypt(&f, key);
        ok(&o);
        let text = stdout(&o);
        assert!(text.contains(&format!("password: hunter2-{m}")), "{text}");
        let o =
            crate::util::common::sops_decrypt(&ws.root().join("sops/shared/secrets/net.yaml"), key);
        ok(&o);
        // deploy: false stays admins-only
        let o = crate::util::common::sops_decrypt(
            &ws.root()
                .join(format!("sops/machines/{m}/secrets/admin/pw.yaml")),
            key,
        );
        assert!(!o.status.success());
        let o = crate::util::common::sops_decrypt(
            &ws.root()
                .join(format!("sops/machines/{m}/secrets/admin/pw.yaml")),
            &ws.key,
        );
        ok(&o);
    }
    // facts are the clan values, raw
    let fact = std::fs::read(ws.root().join("sops/machines/m1/facts/pw/password-hash")).unwrap();
    assert_eq!(fact, b"$6$salt$hash\n");
    // a later generate does nothing
    let o = ws.run(&["generate", "--json"]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    for r in runs {
        assert_eq!(r["status"], "up-to-date", "{r}");
    }
}

#[test]
fn clan_import_refuses_to_overwrite_and_dry_run_writes_nothing() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let clan = clan_workspace(&["m1", "m2"], &ws.recipient, 0);
    let before = ws.snapshot();
    let o = import_clan(&ws, &clan, &["--dry-run"]);
    ok(&o);
    assert!(
        stdout(&o).contains("would write sops/machines/m1/secrets/pw.yaml"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("would write sops/machines/m1/key.json"),
        "{}",
        stdout(&o)
    );
    assert_eq!(ws.snapshot(), before, "--dry-run wrote something");
    assert!(!ws.root().join("sops").exists());
    ok(&import_clan(&ws, &clan, &[]));
    let after = ws.snapshot();
    let o = import_clan(&ws, &clan, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refusing to overwrite existing varsmith data"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("sops/machines/m1/state/pw.json"),
        "{}",
        stderr(&o)
    );
    assert_eq!(ws.snapshot(), after);
}

#[test]
fn clan_import_without_the_admin_key_writes_nothing() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let other = tempfile::tempdir().unwrap();
    let stranger = age_key(&other.path().join("k"));
    let clan = clan_workspace(&["m1", "m2"], &stranger, 0);
    let o = import_clan(&ws, &clan, &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!ws.root().join("sops/machines").exists(), "partial import");
    assert!(!ws.root().join("sops/shared").exists(), "partial import");
}

#[test]
fn clan_import_names_a_definition_that_does_not_match() {
    if !tools() {
        return;
    }
    let ws = workspace();
    ws.generator(
        "pw",
        &PW.replace("recovery: { deploy: false }", "other: {}"),
    );
    let clan = clan_workspace(&["m1", "m2"], &ws.recipient, 0);
    let o = import_clan(&ws, &clan, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("m1/pw: clan has no file other"),
        "{}",
        stderr(&o)
    );
    assert!(!ws.root().join("sops/machines").exists());
    assert!(!ws.root().join("sops/shared").exists());
}

#[test]
fn sops_nix_file_is_adopted_rekeyed_and_checked() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let clan = clan_workspace(&["m1", "m2"], &ws.recipient, 0);
    ok(&import_clan(&ws, &clan, &[]));
    // a sops-nix secrets/common.yaml encrypted to the admin only, by real sops
    let src = ws.root().join("secrets");
    std::fs::create_dir_all(&src).unwrap();
    let common = src.join("common.yaml");
    std::fs::write(&common, "wifi: s3cret\napi:\n  token: abc\n").unwrap();
    let o = Command::new("sops")
        .args(["encrypt", "--in-place", "--age", &ws.recipient])
        .arg(&common)
        .env_remove("SOPS_AGE_KEY_FILE")
        .output()
        .unwrap();
    ok(&o);
    let before = ws.snapshot();
    let c = common.to_str().unwrap();
    let o = ws.run(&["import", "sops", c, "--shared", "--dry-run"]);
    ok(&o);
    assert!(
        stdout(&o).contains("would write sops/shared/secrets/common.yaml"),
        "{}",
        stdout(&o)
    );
    assert_eq!(ws.snapshot(), before);
    ok(&ws.run(&["import", "sops", c, "--shared"]));
    let dest = ws.root().join("sops/shared/secrets/common.yaml");
    // every host decrypts it with its key, the value unchanged
    for (_, key, _) in &clan.machine_keys {
        let o = crate::util::common::sops_decrypt(&dest, key);
        ok(&o);
        assert!(stdout(&o).contains("wifi: s3cret"), "{}", stdout(&o));
    }
    let o = ws.run(&["check"]);
    ok(&o);
    assert!(!stdout(&o).contains("hand-made"));
    // a second import of the same name is refused
    let o = ws.run(&["import", "sops", c, "--shared"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // a new admin, then rekey: the new admin decrypts, value unchanged
    let bob_key = ws.root().join("bob.agekey");
    let bob = age_key(&bob_key);
    ok(&ws.run(&["admin", "add", "bob", &bob]));
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    ok(&ws.run(&["rekey"]));
    let o = crate::util::common::sops_decrypt(&dest, &bob_key);
    ok(&o);
    assert!(stdout(&o).contains("wifi: s3cret"));
    assert!(stdout(&o).contains("token: abc"));
    ok(&ws.run(&["check"]));
    // a declared file that disappears is a finding
    std::fs::remove_file(&dest).unwrap();
    let o = ws.run(&["check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("declared in sops/external.json but missing"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn clan_import_never_moves_a_host_to_its_ssh_key_as_a_side_effect() {
    if !(tools() && require("ssh-keygen")) {
        return;
    }
    // The bundled openssh (files ssh_host_ed25519_key{,.pub}) and a clan that has those files:
    // importing would make the SSH-derived key the recipient while the host uses its age key.
    let ws = Ws::new(FLEET);
    ws.generator("pw", PW);
    ws.generator("net", NET);
    ws.generator("cert", CERT);
    let clan = clan_workspace(&["m1", "m2"], &ws.recipient, 0);
    let keys = tempfile::tempdir().unwrap();
    for m in ["m1", "m2"] {
        let base = clan
            .dir
            .path()
            .join(format!("vars/per-machine/{m}/openssh"));
        std::fs::rename(
            base.join("ssh.id_ed25519"),
            base.join("ssh_host_ed25519_key"),
        )
        .unwrap();
        std::fs::rename(
            base.join("ssh.id_ed25519.pub"),
            base.join("ssh_host_ed25519_key.pub"),
        )
        .unwrap();
        let k = keys.path().join(m);
        let o = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
            .arg(&k)
            .output()
            .unwrap();
        ok(&o);
        std::fs::copy(
            k.with_extension("pub"),
            base.join("ssh_host_ed25519_key.pub/value"),
        )
        .unwrap();
    }
    let o = import_clan(&ws, &clan, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("would make the SSH-derived key"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--rotate-host-key"), "{}", stderr(&o));
    assert!(!ws.root().join("sops/machines").exists());
}
