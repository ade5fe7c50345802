//! clan-core's generator definitions, ported with only the rename `clan.core.vars.generators`
//! -> `varsmith.generators` (tests/fixtures/clan/clan.nix), run end to end on the offline Nix
//! kit: generate, check, real sops decrypts with the admin and the host key, `.path`/`.value`
//! in the NixOS evaluation, and a comment-only script edit that regenerates nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::nix::{Kit, copy_dir, git, run};

/// The ported definitions, by generator name (clan.nix), and whether each is a clan port.
const PORTED: &[&str] = &[
    "openssh",
    "root-password",
    "wireguard-keys-wg0",
    "wifi.home",
    "pki-root-ca",
    "cert-alpha",
    "state-version",
];

/// `sops` with a clean environment (no SOPS_* keys, HOME = `home`).
fn sops(home: &Path) -> Command {
    let mut c = Command::new("sops");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SOPS_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home);
    c
}

/// sops on PATH; missing, it fails in CI (CI=true) and skips elsewhere.
fn have_sops() -> bool {
    let found = Command::new("sops").arg("--version").output().is_ok();
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: sops is required"
    );
    found
}

struct Ws {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    key: PathBuf,
    ws: PathBuf,
    repo: PathBuf,
    kit: Kit,
}

impl Ws {
    fn new(kit: Kit) -> Ws {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tmp = tempfile::Builder::new()
            .prefix("varsmith-clan-")
            .tempdir()
            .unwrap();
        let repo = tmp.path().join("repo");
        copy_dir(&root.join("nix"), &repo.join("nix"));
        let ws = repo.join("ws");
        copy_dir(&root.join("tests/fixtures/clan"), &ws);
        let key = tmp.path().join("admin.agekey");
        let recipient = varsmith::keys::keygen::append_admin_key(&key).expect("keygen");
        std::fs::write(
            ws.join("varsmith.yaml"),
            format!("admins:\n  admin: {recipient}\n"),
        )
        .unwrap();
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "-A"]);
        Ws {
            _tmp: tmp,
            home,
            key,
            ws,
            repo,
            kit,
        }
    }

    fn varsmith(&self, args: &[&str]) -> crate::util::nix::Run {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C")
            .arg(&self.ws)
            .args(args)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env_remove("SOPS_AGE_KEY")
            .env("HOME", &self.home)
            .env("VARSMITH_NIX_FLAGS", self.kit.flags());
        run(c)
    }

    fn generate(&self, args: &[&str]) -> crate::util::nix::Run {
        let mut all = vec!["generate"];
        all.extend_from_slice(args);
        let r = self.varsmith(&all);
        git(&self.repo, &["add", "-A"]);
        r
    }

    fn eval(&self, attr: &str) -> serde_json::Value {
        let mut c = self.kit.nix(&["eval", "--json"]);
        c.arg(format!("{}#{attr}", self.ws.display()));
        let r = run(c);
        assert!(r.ok, "nix eval {attr}:\n{}", r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.ws.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// `sops decrypt --extract '["k"]' FILE` with the admin key.
    fn sops_admin(&self, rel: &str, k: &str) -> String {
        let o = sops(&self.home)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .args(["decrypt", "--extract", &format!("[\"{k}\"]")])
            .arg(self.ws.join(rel))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sops {rel} {k}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }
}

#[test]
fn clan_definitions_run_unchanged() {
    let Some(kit) = Kit::find() else { return };
    if !have_sops() {
        return;
    }
    let w = Ws::new(kit);
    let r = w.generate(&[
        "--prompt",
        "wifi.home.network-name=HomeNet",
        "--prompt",
        "wifi.home/password=correct horse",
        "--prompt",
        "root-password.password=",
    ]);
    assert!(r.ok, "generate:\n{}", r.stderr);
    // Every ported definition produced its outputs.
    let mut ran = 0;
    for g in PORTED {
        let shared = ["wifi.home", "pki-root-ca"].contains(g);
        let rel = if shared {
            format!("sops/shared/state/{g}.json")
        } else {
            format!("sops/machines/alpha/state/{g}.json")
        };
        if w.ws.join(&rel).exists() {
            ran += 1;
        } else {
            eprintln!("not generated: {g}");
        }
    }
    eprintln!("clan definitions run unchanged: {ran} of {}", PORTED.len());
    assert_eq!(ran, PORTED.len());
    let c = w.varsmith(&["check"]);
    assert!(c.ok, "check:\n{}{}", c.stdout, c.stderr);

    // Persisted prompts as clan: the answer in $out before the script, which replaced the empty
    // answer with a generated password; the hash is of the stored password.
    let pw = w.sops_admin(
        "sops/machines/alpha/secrets/admin/root-password.yaml",
        "password",
    );
    assert!(pw.split('-').count() == 6, "generated password: {pw:?}");
    let hash = w.sops_admin(
        "sops/machines/alpha/secrets/root-password.yaml",
        "password-hash",
    );
    let salt = hash.split('$').nth(2).unwrap();
    let again = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, &pw])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), hash);
    // Prompt-only shared generator: both implicit files deployed, values as given.
    assert_eq!(
        w.sops_admin("sops/shared/secrets/wifi.home.yaml", "network-name"),
        "HomeNet"
    );
    assert_eq!(
        w.sops_admin("sops/shared/secrets/wifi.home.yaml", "password"),
        "correct horse"
    );
    // -CAcreateserial wrote next to its input; the chain is the cert then the CA.
    let chain = w.read("sops/machines/alpha/facts/cert-alpha/alpha.fullchain.crt");
    assert!(chain.ends_with(&w.read("sops/shared/facts/pki-root-ca/ca.crt")));
    // The store path the script names was realised and ran.
    assert_eq!(
        w.read("sops/machines/alpha/facts/greeting/greeting"),
        "hello from the store\n"
    );
    // Shared across the fleet: beta's network id derives from alpha's identity.
    let id = w.read("sops/shared/facts/zt-identity/identity.public");
    assert_eq!(
        w.read("sops/shared/facts/zt-net-id/network-id"),
        format!("{id}ff0001")
    );

    // The host decrypts with its own (clan-named) ssh host key.
    let host_key = w.sops_admin("sops/machines/beta/secrets/openssh.yaml", "ssh.id_ed25519");
    // As sops-nix does with sshKeyPaths: the ssh host key converted to an age identity.
    let age = varsmith::keys::ssh_to_age::private_to_age(&host_key).unwrap();
    let hk = w.home.join("host.agekey");
    std::fs::write(&hk, format!("{}\n", age.as_str())).unwrap();
    let o = sops(&w.home)
        .env("SOPS_AGE_KEY_FILE", &hk)
        .args(["decrypt", "--extract", "[\"password\"]"])
        .arg(w.ws.join("sops/shared/secrets/wifi.home.yaml"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "host decrypt: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "correct horse");

    // .path and .value in the NixOS evaluation; every generator up to date there too.
    let gens = "nixosConfigurations.alpha.config.varsmith.generators";
    assert_eq!(
        w.eval(&format!(
            "{gens}.\"wireguard-keys-wg0\".files.publickey.value"
        )),
        serde_json::json!(w.read("sops/machines/alpha/facts/wireguard-keys-wg0/publickey"))
    );
    assert_eq!(
        w.eval(&format!("{gens}.\"wifi.home\".files.password.path")),
        serde_json::json!("/run/secrets/varsmith/wifi.home/password")
    );
    assert_eq!(
        w.eval("nixosConfigurations.alpha.config.system.stateVersion"),
        w.eval("nixosConfigurations.alpha.config.system.nixos.release")
    );
    let up_to_date = |m: &str| {
        let s = w.eval(&format!("nixosConfigurations.{m}.config.varsmith.status"));
        let stale: Vec<_> = s
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .collect();
        assert!(stale.is_empty(), "{m}: {stale:?}");
    };
    up_to_date("alpha");
    up_to_date("beta");

    // A comment-only script edit: a notice, nothing regenerates, check and the module agree.
    let clan = w.ws.join("clan.nix");
    let text = std::fs::read_to_string(&clan).unwrap().replace(
        "ssh-keygen -t ed25519 -N \"\" -C \"\" -f \"$out\"/ssh.id_ed25519\n",
        "# reformatted\n        ssh-keygen -t ed25519 -N \"\" -C \"\" -f \"$out\"/ssh.id_ed25519\n",
    );
    std::fs::write(&clan, text).unwrap();
    git(&w.repo, &["add", "-A"]);
    let before = w.read("sops/machines/alpha/secrets/openssh.yaml");
    let p = w.varsmith(&["generate", "--plan"]);
    assert!(p.ok, "{}", p.stderr);
    assert!(p.stdout.contains("nothing to do"), "{}", p.stdout);
    assert!(
        p.stdout
            .contains("alpha/openssh: notice: script changed since generation; not applied"),
        "{}",
        p.stdout
    );
    let c = w.varsmith(&["check"]);
    assert!(
        c.ok,
        "check after a comment edit:\n{}{}",
        c.stdout, c.stderr
    );
    assert!(c.stdout.contains("notice: script changed"), "{}", c.stdout);
    let r = w.generate(&[]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(w.read("sops/machines/alpha/secrets/openssh.yaml"), before);
    up_to_date("alpha");
}
