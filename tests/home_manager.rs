//! Secrets where users need them (issue 25): templates, reloadUnits and systemd credentials on a
//! real NixOS evaluation (2020 nixpkgs + sops-nix HEAD, whose NixOS module has templates), the
//! darwin refusals on a real nix-darwin evaluation, after a real `varsmith generate`; real sops
//! decrypts what the host gets and `varsmith audit` proves the template's store side holds
//! placeholders only.
//!
//! The scratch workspace is tests/util/nix_fixtures/hm (a flake whose inputs are the offline
//! kit's tarballs). In CI (`CI=true`) a missing nix, kit or sops fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::nix::{Kit, Run, copy_dir, git, run};
use serde_json::{Value, json};

/// The nix flags of every evaluation here (the flake's inputs are file:// tarballs, locked once).
use crate::util::nix::OFFLINE as NIX_FLAGS;

/// The scratch workspace: a git repository holding the fixture flake, this worktree's nix/ as
/// `varsmith-nix/`, and a varsmith.yaml naming one throwaway admin (whose key lives outside).
struct Ws {
    tmp: tempfile::TempDir,
    root: PathBuf,
    admin_key: PathBuf,
}

impl Ws {
    fn new(kit: &Path) -> Ws {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tmp = tempfile::Builder::new()
            .prefix("varsmith-hm-")
            .tempdir()
            .unwrap();
        let root = tmp.path().join("ws");
        copy_dir(&src.join("tests/util/nix_fixtures/hm"), &root);
        copy_dir(&src.join("nix"), &root.join("varsmith-nix"));
        let flake = std::fs::read_to_string(root.join("flake.nix")).unwrap();
        std::fs::write(
            root.join("flake.nix"),
            flake.replace("@KIT@", &kit.display().to_string()),
        )
        .unwrap();
        let admin_key = tmp.path().join("admin.agekey");
        let admin = varsmith::keys::keygen::append_admin_key(&admin_key).expect("keygen");
        std::fs::write(
            root.join("varsmith.yaml"),
            format!("admins:\n  admin: {admin}\n"),
        )
        .unwrap();
        // The machines' age keys (as `varsmith machine add` would register them).
        for m in ["m1", "d1"] {
            let key = tmp.path().join(format!("{m}.agekey"));
            let recipient = varsmith::keys::keygen::append_admin_key(&key).expect("keygen");
            let dir = root.join("sops/machines").join(m);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("key.json"),
                format!("[{{\"publickey\": \"{recipient}\", \"type\": \"age\"}}]"),
            )
            .unwrap();
        }
        git(&root, &["init", "-q"]);
        git(&root, &["add", "-A"]);
        let ws = Ws {
            tmp,
            root,
            admin_key,
        };
        let r = run(ws.nix(&["flake", "metadata"]));
        assert!(r.ok, "locking the fixture flake: {}", r.stderr);
        git(&ws.root, &["add", "-A"]);
        ws
    }

    fn nix(&self, sub: &[&str]) -> Command {
        let mut c = Command::new("nix");
        c.args(sub)
            .args(["--extra-experimental-features", "nix-command flakes"])
            .args(NIX_FLAGS)
            .current_dir(&self.root);
        c
    }

    /// `varsmith -C <ws> ARGS…` with the admin key.
    fn varsmith(&self, args: &[&str]) -> Run {
        let home = self.tmp.path().join("home");
        let mut c = crate::util::sops::varsmith(&home);
        c.arg("-C")
            .arg(&self.root)
            .args(args)
            .env("SOPS_AGE_KEY_FILE", &self.admin_key)
            .env("XDG_RUNTIME_DIR", self.tmp.path())
            .env(
                "VARSMITH_NIX_FLAGS",
                shlex::try_join(NIX_FLAGS).expect("flags"),
            );
        run(c)
    }

    fn generate(&self, args: &[&str]) {
        let mut all = vec!["generate"];
        all.extend_from_slice(args);
        let r = self.varsmith(&all);
        assert!(r.ok, "varsmith {all:?}: {}{}", r.stdout, r.stderr);
        git(&self.root, &["add", "-A"]);
    }

    /// `nix eval --json .#<attr> --apply <apply>`, parsed.
    fn eval_json(&self, attr: &str, apply: &str) -> Value {
        let r = self.eval(attr, apply, true);
        assert!(r.ok, "nix eval {attr}: {}", r.stderr);
        serde_json::from_str(&r.stdout).expect("nix eval --json")
    }

    fn eval(&self, attr: &str, apply: &str, json: bool) -> Run {
        let mut c = self.nix(&["eval"]);
        c.arg(if json { "--json" } else { "--raw" })
            .arg(format!(".#{attr}"));
        if !apply.is_empty() {
            c.args(["--apply", apply]);
        }
        run(c)
    }

    /// The plaintext of `key` in a workspace sops file, decrypted by real sops with `key_file`.
    fn sops_value(&self, key_file: &Path, rel: &str, key: &str) -> Result<String, String> {
        let home = self.tmp.path().join("home");
        let out = crate::util::sops::sops_decrypt(
            &home,
            key_file,
            &["--extract", &format!("[\"{key}\"]")],
            &self.root.join(rel),
        );
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// sops-nix's placeholder of a secret name (modules/sops/templates).
fn placeholder(name: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(name.as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("<SOPS:{hex}:PLACEHOLDER>")
}

fn kit_and_sops() -> Option<PathBuf> {
    let kit = Kit::find()?;
    if !crate::util::ci::require("sops") {
        return None;
    }
    kit.dir
}

/// Templates, reloadUnits and systemd credentials on NixOS; the same options refused on darwin.
#[test]
fn templates_reload_units_and_credentials() {
    let Some(kit) = kit_and_sops() else { return };
    let ws = Ws::new(&kit);
    ws.generate(&["m1"]);
    nixos_wiring(&ws);
    template_store_side(&ws);
    darwin_refusals(&ws);
}

fn nixos_wiring(ws: &Ws) {
    let v = ws.eval_json(
        "nixosConfigurations.m1.config",
        r#"c: {
             secrets = builtins.mapAttrs (_: s: {
               inherit (s) key format owner group mode path restartUnits reloadUnits;
             }) c.sops.secrets;
             templates = builtins.mapAttrs (_: t: {
               inherit (t) content owner group mode path restartUnits reloadUnits;
             }) c.sops.templates;
             templatePath = c.varsmith.templates."app.env".path;
             tokenPlaceholder = c.varsmith.generators.api.files.token.placeholder;
             sopsPlaceholder = c.sops.placeholder."varsmith/api/token";
             factPlaceholderThrows = !(builtins.tryEval c.varsmith.generators.api.files.id.placeholder).success;
             credential = c.systemd.services.myapp.serviceConfig.LoadCredential;
             dynamicUser = c.systemd.services.myapp.serviceConfig.DynamicUser;
             failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
           }"#,
    );
    assert_eq!(v["failed"], json!([]), "{v}");
    let token = &v["secrets"]["varsmith/api/token"];
    assert_eq!(
        *token,
        json!({
            "key": "token", "format": "yaml", "owner": "root", "group": "root", "mode": "0400",
            "path": "/run/secrets/varsmith/api/token",
            "restartUnits": ["myapp.service"], "reloadUnits": ["nginx.service"],
        })
    );
    assert_eq!(
        v["secrets"]["varsmith/seed/seed"]["reloadUnits"],
        json!([]),
        "{v}"
    );
    assert_eq!(
        v["credential"],
        json!(["api-token:/run/secrets/varsmith/api/token"])
    );
    assert_eq!(v["dynamicUser"], json!(true));
    let tp = placeholder("varsmith/api/token");
    assert_eq!(v["tokenPlaceholder"], json!(tp));
    assert_eq!(v["sopsPlaceholder"], json!(tp));
    assert_eq!(v["factPlaceholderThrows"], json!(true));
    assert_eq!(v["templatePath"], json!("/run/secrets/rendered/app.env"));
    assert_eq!(
        v["templates"]["app.env"],
        json!({
            "content": format!("TOKEN={tp}\nSEED={}\nID=api-id\n", placeholder("varsmith/seed/seed")),
            "owner": "nobody", "group": "root", "mode": "0440",
            "path": "/run/secrets/rendered/app.env",
            "restartUnits": ["myapp.service"], "reloadUnits": ["nginx.service"],
        })
    );
}

/// The template's store side (its `file` derivation, in the system's closure) holds the
/// placeholders and no secret: `varsmith audit --closure` of it is clean, and the secret, which
/// real sops decrypts from the host's file, appears nowhere in it.
fn template_store_side(ws: &Ws) {
    let r = ws.eval(
        "nixosConfigurations.m1.config.sops.templates.\"app.env\".file.drvPath",
        "",
        false,
    );
    assert!(r.ok, "template drvPath: {}", r.stderr);
    let drv = r.stdout.trim().to_string();
    let token = ws
        .sops_value(&ws.admin_key, "sops/machines/m1/secrets/api.yaml", "token")
        .expect("admin decrypts the token");
    assert_eq!(token.len(), 32, "{token}");
    let host = ws.tmp.path().join("m1.agekey");
    assert_eq!(
        ws.sops_value(&host, "sops/machines/m1/secrets/api.yaml", "token")
            .as_deref(),
        Ok(token.as_str()),
        "the host decrypts what it gets"
    );
    let text = std::fs::read_to_string(&drv).expect("read the .drv");
    assert!(
        text.contains(&placeholder("varsmith/api/token")),
        "{drv} lacks the placeholder"
    );
    assert!(!text.contains(&token), "{drv} holds the secret");
    let audit = ws.varsmith(&["audit", "--closure", &drv]);
    assert!(
        audit.ok && audit.stdout.contains("clean"),
        "audit --closure of the template: {}{}",
        audit.stdout,
        audit.stderr
    );
}

/// On nix-darwin, restartUnits, reloadUnits and credentials are assertion failures naming the
/// option (evaluation fails), and no sops secret carries them.
fn darwin_refusals(ws: &Ws) {
    ws.generate(&["d1"]);
    let v = ws.eval_json(
        "darwinConfigurations.d1.config",
        r#"c: {
             failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
             secret = builtins.attrNames c.sops.secrets."varsmith/api/token";
             template = { inherit (c.sops.templates."app.env") content owner group mode; };
           }"#,
    );
    let failed: Vec<&str> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for opt in [
        "generators.api.files.token.restartUnits",
        "generators.api.files.token.credentials",
        "templates.app.env.reloadUnits",
    ] {
        let want = format!(
            "varsmith: machine d1: {opt} is set, but nix-darwin has no systemd units (sops-nix restarts no launchd service): remove it"
        );
        assert!(failed.contains(&want.as_str()), "{want}\nnot in {failed:?}");
    }
    assert_eq!(failed.len(), 3, "{failed:?}");
    let keys: Vec<&str> = v["secret"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!keys.contains(&"restartUnits") && !keys.contains(&"reloadUnits"));
    assert_eq!(
        v["template"],
        json!({
            "content": format!("SEED={}\n", placeholder("varsmith/seed/seed")),
            "owner": "root", "group": "wheel", "mode": "0400",
        })
    );
}

/// The three ways alice's home is evaluated: standalone, inside NixOS m1, inside nix-darwin d1,
/// with her home directory.
const HOMES: [(&str, &str); 3] = [
    (
        "homeConfigurations.\"alice@stibnite\".config",
        "/home/alice",
    ),
    (
        "nixosConfigurations.m1.config.home-manager.users.alice",
        "/home/alice",
    ),
    (
        "darwinConfigurations.d1.config.home-manager.users.alice",
        "/Users/alice",
    ),
];

/// What the three evaluations of alice's home say about varsmith.
const HOME_VIEW: &str = r#"c: {
  status = c.varsmith.status;
  definitions = builtins.mapAttrs (_: g: g.fingerprint) c.varsmith.definitions.generators;
  # What a format-2 manifest records (nix/fingerprint.nix `validationHash`, `shapeHash`).
  hashes = builtins.mapAttrs (_: g: {
    validation = g.validationHash;
    shape = builtins.hashString "sha256" (builtins.toJSON (builtins.mapAttrs (_: f: { inherit (f) deploy secret; }) g.files));
  }) c.varsmith.generators;
  secrets = builtins.mapAttrs (_: s: { inherit (s) key format mode path; file = baseNameOf s.sopsFile; }) c.sops.secrets;
  templates = builtins.mapAttrs (_: t: { inherit (t) content mode path; }) c.sops.templates;
  keyFile = c.sops.age.keyFile;
  sshKeyPaths = c.sops.age.sshKeyPaths;
  check = c.home.activation ? varsmith-check;
  credential = let u = c.systemd.user.services.mail-sync or null; in
    if u == null then null else { inherit (u.Service) LoadCredential; inherit (u.Unit) After Wants; };
}"#;

impl Ws {
    /// `varsmith ARGS…` that must succeed; stages what it wrote.
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.varsmith(args);
        assert!(r.ok, "varsmith {args:?}: {}{}", r.stdout, r.stderr);
        git(&self.root, &["add", "-A"]);
        r
    }

    /// `varsmith ARGS…` that must exit with `code`, saying `msg` on stdout or stderr.
    fn fails(&self, args: &[&str], code: i32, msg: &str) {
        let r = self.varsmith(args);
        assert_eq!(
            r.code,
            Some(code),
            "varsmith {args:?}: {}{}",
            r.stdout,
            r.stderr
        );
        assert!(
            r.stdout.contains(msg) || r.stderr.contains(msg),
            "varsmith {args:?} lacks {msg:?}: {}{}",
            r.stdout,
            r.stderr
        );
    }

    /// Whether `key_file` (an age identity) opens the workspace sops file `rel`.
    fn opens(&self, key_file: &Path, rel: &str, key: &str) -> bool {
        self.sops_value(key_file, rel, key).is_ok()
    }
}

/// A home-manager user through `homeManagerModules.default`, standalone and integrated into
/// NixOS and nix-darwin: definitions readable before any output exists (the CLI's discovery),
/// missing vars failing the home's activation with the generate command named, then
/// `varsmith generate --user alice` writing sops/users/alice/ (real sops: alice and the admin
/// decrypt, bob and the machine's host key do not; the shared generator alice uses gets her
/// recipient), the user store wired into sops-nix's home-manager module (paths under
/// ~/.config/sops-nix/secrets, modes, the age key file, the template), `check --user` clean,
/// and a changed definition failing `check --user` and the home's evaluation again.
#[test]
fn home_manager_user_generators() {
    let Some(kit) = kit_and_sops() else { return };
    let ws = Ws::new(&kit);
    ws.generate(&["m1"]);
    let mut users = Vec::new();
    for u in ["alice", "bob"] {
        let key = ws.tmp.path().join(format!("{u}.agekey"));
        let r = varsmith::keys::keygen::append_admin_key(&key).expect("keygen");
        users.push((key, r));
    }
    let (alice_key, alice) = users[0].clone();
    let bob_key = users[1].0.clone();
    let m1_key = ws.tmp.path().join("m1.agekey");
    // Not registered yet: generate names the fix, writes nothing.
    ws.fails(
        &["generate", "--user", "alice"],
        2,
        "user alice, generator api: the user has no recipient to encrypt to",
    );
    assert!(!ws.root.join("sops/users/alice/secrets").exists());
    user_add(&ws, &alice);

    // Discovery: alice's three homes in one evaluation per output.
    let r = ws.varsmith(&["user", "list", "--json"]);
    assert!(r.ok, "{}", r.stderr);
    let listed: Value = serde_json::from_str(&r.stdout).expect("user list --json");
    assert_eq!(
        listed,
        json!([{
            "user": "alice", "registered": true, "source": "age",
            "homes": [
                {"kind": "standalone", "attr": "alice@stibnite", "error": null},
                {"kind": "nixos", "attr": "m1", "error": null},
                {"kind": "darwin", "attr": "d1", "error": null},
            ],
            "generators": {"api": false, "gpg-pass": false, "seed": true},
        }])
    );

    // Before alice's outputs exist: definitions evaluate, verdicts say missing, the home's
    // activation fails with the command that repairs it.
    let mut fps = Value::Null;
    for (attr, _) in HOMES {
        let v = ws.eval_json(attr, HOME_VIEW);
        assert_eq!(
            v["status"],
            json!({"api": "missing: never generated", "gpg-pass": "missing: never generated", "seed": null}),
            "{attr}"
        );
        assert_eq!(v["check"], json!(true), "{attr}");
        if fps.is_null() {
            fps = v["definitions"].clone();
        }
        assert_eq!(v["definitions"], fps, "{attr}: one schema, one fingerprint");
    }
    let missing = ws.eval(
        &format!("{}.home.activation.varsmith-check.data", HOMES[0].0),
        "",
        true,
    );
    assert!(
        !missing.ok
            && missing.stderr.contains(
                "varsmith: user alice: generator gpg-pass is missing (missing: never generated): run `varsmith generate --user alice`\n"
            ),
        "{}",
        missing.stderr
    );
    ws.fails(&["check", "--user", "alice"], 1, "never generated");

    // The CLI generates alice's own generators (and re-wraps the shared one for her).
    let m1_api = std::fs::read(ws.root.join("sops/machines/m1/state/api.json")).unwrap();
    let r = ws.ok(&["generate", "--user", "alice"]);
    assert!(
        r.stderr.contains("generated 2 of 2 planned generator runs"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read(ws.root.join("sops/machines/m1/state/api.json")).unwrap(),
        m1_api,
        "generate --user touched machine m1"
    );
    for f in [
        "secrets/api.yaml",
        "secrets/gpg-pass.yaml",
        "facts/api/id",
        "state/api.json",
        "state/gpg-pass.json",
    ] {
        assert!(ws.root.join("sops/users/alice").join(f).is_file(), "{f}");
    }
    user_decryption(&ws, (&alice_key, &bob_key, &m1_key));
    let sops_yaml = std::fs::read_to_string(ws.root.join(".sops.yaml")).unwrap();
    assert!(
        sops_yaml.contains("'^sops/users/alice/secrets/[^/]+\\.yaml$'"),
        "{sops_yaml}"
    );
    ws.ok(&["check", "--user", "alice"]);
    ws.ok(&["check", "m1"]);
    ws.ok(&["generate", "--user", "alice@stibnite", "--plan"]);

    let cfg = |home: &str| format!("{home}/.config/sops-nix/secrets");
    for (attr, home) in HOMES {
        let v = ws.eval_json(attr, HOME_VIEW);
        assert_eq!(
            v["status"],
            json!({"api": null, "gpg-pass": null, "seed": null}),
            "{attr}"
        );
        assert_eq!(v["check"], json!(false), "{attr}");
        assert_eq!(
            v["secrets"]["varsmith/gpg-pass/pass"],
            json!({"key": "pass", "format": "yaml", "mode": "0440",
                   "path": format!("{}/varsmith/gpg-pass/pass", cfg(home)),
                   "file": v["secrets"]["varsmith/gpg-pass/pass"]["file"]}),
            "{attr}"
        );
        let file = v["secrets"]["varsmith/gpg-pass/pass"]["file"]
            .as_str()
            .unwrap();
        assert!(file.ends_with("-varsmith-gpg-pass.yaml"), "{file}");
        assert_eq!(
            v["secrets"]["varsmith/api/token"]["path"],
            json!(format!("{}/varsmith/api/token", cfg(home)))
        );
        assert!(v["secrets"]["varsmith/seed/seed"].is_object(), "{attr}");
        assert_eq!(
            v["keyFile"],
            json!(format!("{home}/.config/sops/age/keys.txt")),
            "{attr}"
        );
        assert_eq!(v["sshKeyPaths"], json!([]), "{attr}");
        // A systemd credential of the user's own unit on Linux; none on darwin (no systemd).
        assert_eq!(
            v["credential"],
            if home.starts_with("/Users/") {
                Value::Null
            } else {
                json!({
                    "LoadCredential": [format!("gpg-pass:{}/varsmith/gpg-pass/pass", cfg(home))],
                    "After": ["sops-nix.service"], "Wants": ["sops-nix.service"],
                })
            },
            "{attr}"
        );
        assert_eq!(
            v["templates"]["netrc"],
            json!({
                "content": format!("machine example.org password {}\n", placeholder("varsmith/gpg-pass/pass")),
                "mode": "0600",
                "path": format!("{}/rendered/netrc", cfg(home)),
            }),
            "{attr}"
        );
    }

    user_get_set_list(&ws);
    user_check_failures(&ws);
    user_audit(&ws);
    ssh_user(&ws);
    // Re-registered: alice's files (and the shared one) lack her new recipient until rekeyed.
    ws.fails(&["check", "--user", "alice"], 1, "recipient");
    ws.ok(&["rekey", "--user", "alice"]);
    ws.ok(&["check", "--user", "alice"]);

    // A changed definition (its validation, as clan's validationHash): out of date for
    // `check --user` and the home's activation.
    let path = ws.root.join("alice.nix");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replace(
        "dependencies = [ \"seed\" ];",
        "dependencies = [ \"seed\" ];\n    validation.rev = 2;",
    );
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    git(&ws.root, &["add", "-A"]);
    let v = ws.eval_json(HOMES[0].0, HOME_VIEW);
    assert_eq!(v["status"]["gpg-pass"], json!("definition changed"));
    let r = ws.eval(
        &format!("{}.home.activation.varsmith-check.data", HOMES[1].0),
        "",
        true,
    );
    assert!(
        !r.ok
            && r.stderr.contains(
                "varsmith: user alice: generator gpg-pass is out of date (definition changed): run `varsmith generate --user alice`\n"
            ),
        "{}",
        r.stderr
    );
    ws.fails(&["check", "--user", "alice"], 1, "definition changed");
    ws.ok(&["generate", "--user", "alice"]);
    ws.ok(&["check", "--user", "alice"]);
    machine_dependency_refused(&ws);
}

/// Real sops: alice's key opens her files and the shared one she uses; bob's key and m1's host
/// key do not open hers; the admin opens everything; m1 still opens the shared file.
fn user_decryption(ws: &Ws, (alice, bob, m1): (&Path, &Path, &Path)) {
    let pass = "sops/users/alice/secrets/gpg-pass.yaml";
    let value = ws.sops_value(alice, pass, "pass").expect("alice decrypts");
    let seed = ws
        .sops_value(alice, "sops/shared/secrets/seed.yaml", "seed")
        .expect("alice decrypts the shared seed");
    assert_eq!(value, format!("{seed}-alice"), "gpg-pass read $in/seed");
    assert!(!ws.opens(bob, pass, "pass"), "bob decrypts alice's secret");
    assert!(
        !ws.opens(m1, pass, "pass"),
        "m1's host key decrypts alice's secret"
    );
    assert!(
        !ws.opens(m1, "sops/users/alice/secrets/api.yaml", "token"),
        "m1's host key decrypts alice's api token"
    );
    assert!(ws.opens(&ws.admin_key, pass, "pass"), "the admin decrypts");
    assert!(ws.opens(m1, "sops/shared/secrets/seed.yaml", "seed"));
    assert!(!ws.opens(bob, "sops/shared/secrets/seed.yaml", "seed"));
}

/// `list`, `get` and `set` with `--user`: alice's vars (her own and the shared one), a fact and
/// a secret read back, a secret replaced from stdin.
fn user_get_set_list(ws: &Ws) {
    let r = ws.ok(&["list", "--user", "alice", "--json"]);
    let l: Value = serde_json::from_str(&r.stdout).expect("list --json");
    let mut vars: Vec<&str> = l["vars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["var"].as_str().unwrap())
        .collect();
    vars.sort_unstable();
    assert_eq!(
        vars,
        ["api/id", "api/token", "gpg-pass/pass", "seed/seed"],
        "{l}"
    );
    assert!(
        l["vars"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["state"] == "ok"),
        "{l}"
    );
    assert_eq!(
        ws.ok(&["get", "--user", "alice", "api/id"]).stdout,
        "api-id"
    );
    let token = ws
        .ok(&["get", "--user", "alice@stibnite", "api/token"])
        .stdout;
    assert_eq!(token.len(), 32, "{token:?}");
    let home = ws.tmp.path().join("home");
    let mut c = crate::util::sops::varsmith(&home);
    c.arg("-C")
        .arg(&ws.root)
        .args(["set", "--user", "alice", "api/token"])
        .env("SOPS_AGE_KEY_FILE", &ws.admin_key)
        .env("XDG_RUNTIME_DIR", ws.tmp.path())
        .env(
            "VARSMITH_NIX_FLAGS",
            shlex::try_join(NIX_FLAGS).expect("flags"),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("varsmith set");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"new-alice-token\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&ws.root, &["add", "-A"]);
    assert_eq!(
        ws.ok(&["get", "--user", "alice", "api/token"]).stdout,
        "new-alice-token"
    );
    let rel = "sops/users/alice/secrets/api.yaml";
    assert_eq!(
        ws.sops_value(&ws.tmp.path().join("alice.agekey"), rel, "token")
            .as_deref(),
        Ok("new-alice-token")
    );
    ws.ok(&["check", "--user", "alice"]);
    ws.fails(
        &["get", "--user", "carol", "api/id"],
        2,
        "unknown user \"carol\"",
    );
    ws.fails(
        &["get", "--user", "alice", "nope/x"],
        2,
        "user alice does not use a generator \"nope\"",
    );
}

/// `check --user alice` fails (exit 1) on a file modified outside varsmith and on missing
/// outputs, and passes again once they are restored.
fn user_check_failures(ws: &Ws) {
    let rel = "sops/users/alice/secrets/gpg-pass.yaml";
    let path = ws.root.join(rel);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let at = bad
        .windows(4)
        .position(|w| w == b"ENC[")
        .expect("an encrypted value");
    bad[at + 20] = if bad[at + 20] == b'A' { b'B' } else { b'A' };
    std::fs::write(&path, &bad).unwrap();
    ws.fails(&["check", "--user", "alice"], 1, rel);
    std::fs::write(&path, &good).unwrap();
    let fact = ws.root.join("sops/users/alice/facts/api/id");
    std::fs::remove_file(&fact).unwrap();
    ws.fails(&["check", "--user", "alice"], 1, "fact id");
    std::fs::write(&fact, "api-id").unwrap();
    ws.ok(&["check", "--user", "alice"]);
}

/// `audit --user alice`: the store side of her three homes' netrc template holds one
/// placeholder and no secret; only her secrets and the shared one she uses are searched (3);
/// her secret planted in a scanned store is a LEAK naming `users/alice/…` (plain `audit` finds
/// it too: users' stores are searched), while m1's secret planted there is not hers to report.
fn user_audit(ws: &Ws) {
    let store = ws.tmp.path().join("audit-store");
    std::fs::create_dir_all(&store).unwrap();
    let store_arg = store.to_str().unwrap();
    let r = ws.ok(&["audit", "--user", "alice", "--store", store_arg]);
    for (attr, _) in HOMES {
        let home = attr
            .strip_suffix(".config")
            .unwrap_or(attr)
            .replace('"', "");
        let line = r
            .stdout
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "template netrc of {home} (user alice): store side /nix/store/"
                ))
            })
            .unwrap_or_else(|| panic!("no template line for {home}: {}", r.stdout));
        assert!(
            line.ends_with("-netrc.drv: placeholders only (1 placeholder(s), no secret value)"),
            "{line}"
        );
    }
    let r = ws.ok(&[
        "audit",
        "--user",
        "alice@stibnite",
        "--store",
        store_arg,
        "--json",
    ]);
    let j: Value = serde_json::from_str(&r.stdout).expect("audit --json");
    assert_eq!(j["counts"]["secrets"], json!(3), "{j}");
    assert_eq!(j["clean"], json!(true), "{j}");
    let t = j["templates"].as_array().unwrap();
    assert_eq!(t.len(), 3, "{j}");
    assert!(
        t.iter()
            .all(|t| t["placeholdersOnly"] == json!(true) && t["placeholders"] == json!(1)),
        "{j}"
    );
    // A leak of alice's secret and of m1's, planted in the scanned store.
    let pass = ws
        .sops_value(
            &ws.admin_key,
            "sops/users/alice/secrets/gpg-pass.yaml",
            "pass",
        )
        .unwrap();
    let m1 = ws
        .sops_value(&ws.admin_key, "sops/machines/m1/secrets/api.yaml", "token")
        .unwrap();
    std::fs::write(store.join("aaaa-leak"), format!("x {pass} y {m1} z")).unwrap();
    ws.fails(
        &["audit", "--user", "alice", "--store", store_arg],
        1,
        "users/alice/gpg-pass/pass",
    );
    let r = ws.varsmith(&["audit", "--user", "alice", "--store", store_arg]);
    assert!(!r.stdout.contains("m1/api/token"), "{}", r.stdout);
    let r = ws.varsmith(&["audit", "--store", store_arg]);
    assert!(
        r.code == Some(1)
            && r.stdout.contains("users/alice/gpg-pass/pass")
            && r.stdout.contains("m1/api/token"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    std::fs::remove_file(store.join("aaaa-leak")).unwrap();
    ws.fails(
        &["audit", "--user", "carol", "--store", store_arg],
        2,
        "unknown user \"carol\"",
    );
}

/// A user generator depending on a machine's own generator is refused (exit 2) naming the
/// definition, the user, the generator and the machine; nothing is written.
fn machine_dependency_refused(ws: &Ws) {
    let m1 = ws.root.join("m1.nix");
    let text = std::fs::read_to_string(&m1).unwrap();
    std::fs::write(
        &m1,
        text.replacen(
            "{\n  imports",
            "{\n  varsmith.generators.host-only = { files.x = { }; script = \"printf x > $out/x\"; };\n  imports",
            1,
        ),
    )
    .unwrap();
    let alice = ws.root.join("alice.nix");
    let text = std::fs::read_to_string(&alice).unwrap();
    std::fs::write(
        &alice,
        text.replacen(
            "  varsmith.templates.netrc",
            "  varsmith.generators.leak = { files.y = { }; dependencies = [ \"host-only\" ]; script = \"cat $in/host-only/x > $out/y\"; };\n  varsmith.templates.netrc",
            1,
        ),
    )
    .unwrap();
    git(&ws.root, &["add", "-A"]);
    ws.fails(
        &["generate", "--user", "alice"],
        2,
        "user alice: generator leak: depends on \"host-only\", a generator of machine m1",
    );
    assert!(!ws.root.join("sops/users/alice/secrets/leak.yaml").exists());
}

/// `varsmith user add alice --age …` writes her key.json; an admin's name with another key, an
/// SSH public key given as `--age`, and both options at once are refused (exit 2, nothing
/// written).
fn user_add(ws: &Ws, alice: &str) {
    let r = ws.varsmith(&["user", "add", "alice", "--age", alice]);
    assert!(r.ok, "{}", r.stderr);
    assert!(r.stderr.contains("user alice added"), "{}", r.stderr);
    let kj: Value =
        serde_json::from_slice(&std::fs::read(ws.root.join("sops/users/alice/key.json")).unwrap())
            .unwrap();
    assert_eq!(
        kj,
        json!([{"publickey": alice, "type": "age", "source": "age"}])
    );
    for (args, msg) in [
        (
            vec!["user", "add", "admin", "--age", alice],
            "admin is an admin with another key",
        ),
        (
            vec!["user", "add", "carol", "--age", "ssh-ed25519 AAAA"],
            "--age takes an age recipient",
        ),
        (vec!["user", "add", "alice", "--age", "age1qqqq"], "--age:"),
    ] {
        let r = ws.varsmith(&args);
        assert!(!r.ok && r.stderr.contains(msg), "{args:?}: {}", r.stderr);
    }
    assert!(!ws.root.join("sops/users/carol").exists());
    git(&ws.root, &["add", "-A"]);
}

/// Re-registered from an SSH ed25519 key (`--ssh-key file.pub --replace`), alice's homes
/// decrypt with `sops.age.sshKeyPaths = [ ~/.ssh/id_ed25519 ]` and no age key file.
fn ssh_user(ws: &Ws) {
    let key = ws.tmp.path().join("alice_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let pubfile = key.with_extension("pub");
    let r = ws.varsmith(&[
        "user",
        "add",
        "alice",
        "--ssh-key",
        pubfile.to_str().unwrap(),
    ]);
    assert!(
        !r.ok
            && r.stderr
                .contains("registered with another key; pass --replace"),
        "{}",
        r.stderr
    );
    let r = ws.varsmith(&[
        "user",
        "add",
        "alice",
        "--replace",
        "--ssh-key",
        pubfile.to_str().unwrap(),
    ]);
    assert!(r.ok, "{}", r.stderr);
    let line = std::fs::read_to_string(&pubfile).unwrap();
    let want = varsmith::keys::ssh_to_age::public_to_age(&line).unwrap();
    let kj: Value =
        serde_json::from_slice(&std::fs::read(ws.root.join("sops/users/alice/key.json")).unwrap())
            .unwrap();
    assert_eq!(
        kj,
        json!([{"publickey": want, "type": "age", "source": "ssh"}])
    );
    git(&ws.root, &["add", "-A"]);
    let v = ws.eval_json(HOMES[0].0, HOME_VIEW);
    assert_eq!(v["sshKeyPaths"], json!(["/home/alice/.ssh/id_ed25519"]));
    assert_eq!(v["keyFile"], Value::Null);
}

/// `deploy --home USER@HOST`: on a remote HOST, the flake goes to `ssh-ng://USER@<HOST's
/// address>` and `home-manager switch --flake "$src#USER@HOST"` runs there over ssh as USER
/// (`--dry-run` prints both, runs nothing); on this machine, home-manager runs here with the
/// exact argv (a recording stand-in). A HOST that is not a machine is exit 2.
#[test]
fn deploy_home_argv() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ws");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("varsmith.yaml"),
        "admins:\n  admin: age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n\
         machines:\n  stibnite:\n    target: admin@stibnite.example.org\n    system: aarch64-darwin\n\
         \x20 here:\n    target: root@localhost\n",
    )
    .unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = tmp.path().join("argv.log");
    let stand_in = bin.join("home-manager");
    std::fs::write(
        &stand_in,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$(basename \"$0\")\" \"$@\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let vs = |args: &[&str]| {
        let mut c = crate::util::sops::varsmith(&tmp.path().join("home"));
        c.arg("-C").arg(&root).args(args).env("PATH", &path);
        c.output().expect("varsmith")
    };

    let out = vs(&["deploy", "--home", "alice@stibnite", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# home alice@stibnite (1 machines)", "{text}");
    assert_eq!(
        lines[1], "nix flake archive --json --to ssh-ng://alice@stibnite.example.org .",
        "{text}"
    );
    assert!(
        lines[2].starts_with("ssh ")
            && lines[2].contains("alice@stibnite.example.org")
            && lines[2]
                .contains("home-manager switch --flake \"$src#\"alice@stibnite --show-trace")
            && !lines[2].contains("sudo")
            && lines[2].ends_with("# stdin: the .path printed by the line above"),
        "{text}"
    );
    assert!(!log.exists(), "the dry run ran something");

    let out = vs(&["deploy", "--home", "alice@here", "--no-show-trace"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "home-manager\nswitch\n--flake\n.#alice@here\n"
    );

    for (home, msg) in [
        ("alice@nowhere", "unknown machine \"nowhere\""),
        ("alice", "expected USER@HOST"),
    ] {
        let out = vs(&["deploy", "--home", home, "--dry-run"]);
        assert_eq!(out.status.code(), Some(2), "{home}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(msg),
            "{home}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A per-home store (`varsmith.perHome = true; homeName = "alice@quartz"`): `generate --user
/// alice@quartz` writes sops/users/alice/homes/alice@quartz/ only (not alice's shared store), a
/// generator of that home depending on the home's own `api` and on the shared `seed` reads both
/// (real sops: alice decrypts, bob does not), the home's sops.secrets point at the per-home
/// files, `check` and `audit --user alice@quartz` pass; a dependency on an undeclared,
/// unshared generator is exit 2 naming the user, the generator and the dependency.
#[test]
fn home_manager_per_home_store() {
    let Some(kit) = kit_and_sops() else { return };
    let ws = Ws::new(&kit);
    let flake = ws.root.join("flake.nix");
    let text = std::fs::read_to_string(&flake).unwrap();
    let quartz = r#"homeConfigurations."alice@quartz" = (import "${home-manager}/lib" { inherit lib; }).homeManagerConfiguration {
      pkgs = import hm-pkgs-stub { system = "x86_64-linux"; };
      modules = alice ++ [ ./quartz.nix ];
    };
    homeConfigurations."alice@stibnite" ="#;
    let patched = text.replacen(r#"homeConfigurations."alice@stibnite" ="#, quartz, 1);
    assert_ne!(patched, text);
    std::fs::write(&flake, patched).unwrap();
    std::fs::write(
        ws.root.join("quartz.nix"),
        r#"{
  home.username = "alice";
  home.homeDirectory = "/home/alice";
  varsmith.perHome = true;
  varsmith.homeName = "alice@quartz";
  varsmith.generators.mix = {
    files.x = { };
    dependencies = [ "api" "seed" ];
    runtimeInputs = [ (import ./tools.nix) ];
    script = ''printf '%s+%s' "$(cat $in/api/token)" "$(cat $in/seed/seed)" > $out/x'';
  };
}
"#,
    )
    .unwrap();
    git(&ws.root, &["add", "-A"]);
    ws.generate(&["m1"]);
    let alice_key = ws.tmp.path().join("alice.agekey");
    let alice = varsmith::keys::keygen::append_admin_key(&alice_key).expect("keygen");
    let bob_key = ws.tmp.path().join("bob.agekey");
    varsmith::keys::keygen::append_admin_key(&bob_key).expect("keygen");
    ws.ok(&["user", "add", "alice", "--age", &alice]);
    // Missing: the per-home home's activation names the command for its own store.
    let r = ws.eval(
        "homeConfigurations.\"alice@quartz\".config.home.activation.varsmith-check.data",
        "",
        true,
    );
    assert!(
        !r.ok
            && r.stderr.contains(
                "varsmith: user alice: generator mix is missing (missing: never generated): run `varsmith generate --user alice@quartz`\n"
            ),
        "{}",
        r.stderr
    );

    let r = ws.ok(&["generate", "--user", "alice@quartz"]);
    assert!(
        r.stderr.contains("generated 3 of 3 planned generator runs"),
        "{}",
        r.stderr
    );
    let home = "sops/users/alice/homes/alice@quartz";
    for f in [
        "secrets/api.yaml",
        "secrets/gpg-pass.yaml",
        "secrets/mix.yaml",
        "facts/api/id",
        "state/mix.json",
    ] {
        assert!(ws.root.join(home).join(f).is_file(), "{home}/{f}");
    }
    assert!(
        !ws.root.join("sops/users/alice/secrets").exists(),
        "alice's shared store written"
    );
    let token = ws
        .sops_value(&alice_key, &format!("{home}/secrets/api.yaml"), "token")
        .expect("alice decrypts her per-home token");
    let seed = ws
        .sops_value(&alice_key, "sops/shared/secrets/seed.yaml", "seed")
        .expect("alice decrypts the shared seed");
    let mix = format!("{home}/secrets/mix.yaml");
    assert_eq!(
        ws.sops_value(&alice_key, &mix, "x"),
        Ok(format!("{token}+{seed}"))
    );
    assert!(
        !ws.opens(&bob_key, &mix, "x"),
        "bob decrypts alice's per-home secret"
    );
    assert!(!ws.opens(&ws.tmp.path().join("m1.agekey"), &mix, "x"));

    let v = ws.eval_json("homeConfigurations.\"alice@quartz\".config", HOME_VIEW);
    assert_eq!(
        v["status"],
        json!({"api": null, "gpg-pass": null, "mix": null, "seed": null}),
        "{v}"
    );
    assert_eq!(v["check"], json!(false), "{v}");
    assert_eq!(
        v["secrets"]["varsmith/mix/x"]["path"],
        json!("/home/alice/.config/sops-nix/secrets/varsmith/mix/x")
    );
    let file = v["secrets"]["varsmith/mix/x"]["file"].as_str().unwrap();
    assert!(file.ends_with("-varsmith-mix.yaml"), "{file}");
    // The home's sopsFile is the per-home file (copied to the store as it is).
    let r = ws.eval(
        "homeConfigurations.\"alice@quartz\".config.sops.secrets.\"varsmith/mix/x\".sopsFile",
        "",
        false,
    );
    assert!(r.ok, "{}", r.stderr);
    let copied = std::fs::read_to_string(r.stdout.trim()).unwrap();
    assert_eq!(copied, std::fs::read_to_string(ws.root.join(&mix)).unwrap());
    ws.ok(&["check", "--user", "alice@quartz"]);
    let store = ws.tmp.path().join("audit-store");
    std::fs::create_dir_all(&store).unwrap();
    let r = ws.ok(&[
        "audit",
        "--user",
        "alice@quartz",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with(
                "template netrc of homeConfigurations.alice@quartz (user alice@quartz): store side "
            ) && l.ends_with(": placeholders only (1 placeholder(s), no secret value)")),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("homeConfigurations.alice@stibnite"),
        "{}",
        r.stdout
    );

    // A dependency neither the home nor anyone shares: exit 2, nothing written.
    let q = ws.root.join("quartz.nix");
    let text = std::fs::read_to_string(&q).unwrap();
    std::fs::write(
        &q,
        text.replace("[ \"api\" \"seed\" ]", "[ \"api\" \"nowhere\" ]"),
    )
    .unwrap();
    git(&ws.root, &["add", "-A"]);
    let before = std::fs::read(ws.root.join(&mix)).unwrap();
    ws.fails(&["generate", "--user", "alice@quartz"], 2, "generator mix");
    ws.fails(&["generate", "--user", "alice@quartz"], 2, "\"nowhere\"");
    assert_eq!(std::fs::read(ws.root.join(&mix)).unwrap(), before);

    // A credential in a home on darwin (launchd, no systemd user units) fails that home.
    let a = ws.root.join("alice.nix");
    let text = std::fs::read_to_string(&a).unwrap();
    let patched = text.replace(
        "lib.mkIf (!pkgs.stdenv.hostPlatform.isDarwin) { mail-sync = \"gpg-pass\"; }",
        "{ mail-sync = \"gpg-pass\"; }",
    );
    assert_ne!(patched, text);
    std::fs::write(&a, patched).unwrap();
    git(&ws.root, &["add", "-A"]);
    let r = ws.eval(
        "darwinConfigurations.d1.config.home-manager.users.alice.home.activation.varsmith-check.data",
        "",
        true,
    );
    assert!(
        !r.ok
            && r.stderr.contains(
                "varsmith: user alice: generators.gpg-pass.files.pass.credentials is set, but a home-manager home on darwin has no systemd user units (launchd passes no credential): remove it"
            ),
        "{}",
        r.stderr
    );
}
