//! Helpers for tests/nix_module.rs: the offline kit, the example fleet as a scratch flake
//! workspace, and `nix eval` with the kit's inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// nix/generators.json as it must be: every generators/*.yaml as JSON, with only the keys the
/// file sets, in the module's camelCase, keys sorted, pretty-printed.
pub fn bundled_json(dir: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read generators/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let mut all = serde_json::Map::new();
    for p in names {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = yaml_serde::from_str(&text).expect("bundled YAML");
        all.insert(name, camel(v));
    }
    let mut out = serde_json::to_string_pretty(&sorted(serde_json::Value::Object(all))).unwrap();
    out.push('\n');
    out
}

fn camel(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let k = match k.as_str() {
                        "runtime_inputs" => "runtimeInputs".to_string(),
                        "needed_for" => "neededFor".to_string(),
                        _ => k,
                    };
                    // Free-form values keep their keys.
                    let v = if k == "validation" { v } else { camel(v) };
                    (k, v)
                })
                .collect(),
        ),
        other => other,
    }
}

fn sorted(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<_> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

/// The fleet flake's inputs and the kit tarball overriding each.
/// The nix options of every offline evaluation here: no substituters, no sandbox.
pub const OFFLINE: [&str; 6] = [
    "--option",
    "substituters",
    "",
    "--option",
    "sandbox",
    "false",
];

/// [`OFFLINE`] plus `--no-write-lock-file` (the scratch flakes' inputs are overridden).
pub fn offline_flags() -> Vec<String> {
    OFFLINE
        .iter()
        .chain(&["--no-write-lock-file"])
        .map(|s| s.to_string())
        .collect()
}

const KIT_INPUTS: [(&str, &str); 5] = [
    ("nixpkgs", "nixpkgs-2020-07.tar.gz"),
    ("sops-nix", "sops-nix-2021-12.tar.gz"),
    ("nixpkgs-darwin", "nixpkgs-lib-2026-06.tar.gz"),
    ("sops-nix-darwin", "sops-nix-2026-06.tar.gz"),
    ("nix-darwin", "nix-darwin-2026-06.tar.gz"),
];

/// The offline kit (`../shared/nix`, or `$VARSMITH_NIX_KIT`): tarballs used as the fleet
/// flake's inputs through `--override-input`.
pub struct Kit {
    /// The kit directory; `None`: the flake's pinned inputs (network), `VARSMITH_NIX_PINNED=1`.
    pub dir: Option<PathBuf>,
}

fn skip_or_fail(why: &str) -> Option<Kit> {
    super::ci::unavailable(why);
    None
}

impl Kit {
    /// The kit, or `None` (test skipped, reason printed) outside CI when nix or the kit is
    /// missing; in CI (`CI=true`) a missing nix or kit fails.
    pub fn find() -> Option<Kit> {
        let nix_ok = Command::new("nix")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !nix_ok {
            return skip_or_fail("nix is missing (install Debian's nix-bin: scripts/deps.sh)");
        }
        let dir = std::env::var_os("VARSMITH_NIX_KIT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/nix"));
        if dir.join("nixpkgs-2020-07.tar.gz").is_file() {
            return Some(Kit {
                dir: Some(dir.canonicalize().expect("kit path")),
            });
        }
        if std::env::var("VARSMITH_NIX_PINNED").as_deref() == Ok("1") {
            eprintln!(
                "no kit at {}: using the flake's pinned inputs",
                dir.display()
            );
            return Some(Kit { dir: None });
        }
        skip_or_fail(&format!(
            "the offline Nix kit is missing at {} (set VARSMITH_NIX_KIT, or VARSMITH_NIX_PINNED=1 to use the pinned inputs over the network)",
            dir.display()
        ))
    }

    /// The same options as [`Kit::nix`] for varsmith's own `nix eval` (`VARSMITH_NIX_FLAGS`).
    pub fn flags(&self) -> String {
        let mut v = offline_flags();
        if let Some(dir) = &self.dir {
            for (input, tarball) in KIT_INPUTS {
                v.push("--override-input".into());
                v.push(input.to_string());
                v.push(format!("file://{}", dir.join(tarball).display()));
            }
        }
        shlex::try_join(v.iter().map(String::as_str)).expect("flags")
    }

    /// `nix <sub…>` with flakes on, no substituters, no sandbox, and the kit's inputs.
    pub fn nix(&self, sub: &[&str]) -> Command {
        let mut c = Command::new("nix");
        c.args(sub)
            .args(["--extra-experimental-features", "nix-command flakes"])
            .args(["--option", "substituters", ""])
            .args(["--option", "sandbox", "false"])
            .arg("--no-write-lock-file");
        if let Some(dir) = &self.dir {
            for (input, tarball) in KIT_INPUTS {
                c.arg("--override-input")
                    .arg(input)
                    .arg(format!("file://{}", dir.join(tarball).display()));
            }
        }
        c
    }
}

/// Output of a command, with stderr for messages.
pub struct Run {
    pub ok: bool,
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(mut c: Command) -> Run {
    let o = c.output().expect("spawn");
    Run {
        ok: o.status.success(),
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A scratch copy of the example fleet flake (with this worktree's nix/ at `../../nix`, as in
/// the repository), a git repository so that the flake sees exactly the tracked files and the
/// ones `varsmith generate` staged with intent-to-add; the admin key lives outside it.
pub struct Fleet {
    pub tmp: tempfile::TempDir,
    pub runtime: tempfile::TempDir,
    pub kit: Kit,
    pub key: PathBuf,
    /// The workspace (…/repo/examples/fleet).
    pub ws: PathBuf,
    /// The random value of the `marker` test generator's secret.
    pub marker: String,
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dst = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dst);
        } else {
            std::fs::copy(&p, &dst).unwrap();
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Fleet {
    /// The flake reference of the workspace.
    pub fn flake(&self) -> String {
        self.ws.display().to_string()
    }

    /// `varsmith generate ARGS…`, then stages what it wrote: the CLI stages new files with
    /// intent-to-add only when the workspace is the git root, and this one is a subdirectory
    /// (as examples/fleet is in the repository).
    pub fn generate(&self, args: &[&str]) {
        let mut all = vec!["generate"];
        all.extend_from_slice(args);
        let r = self.varsmith(&all);
        assert!(r.ok, "varsmith {all:?} failed:\n{}", r.stderr);
        git(self.ws.parent().unwrap().parent().unwrap(), &["add", "-A"]);
    }

    /// varsmith in the workspace with the admin key and the test prompts.
    pub fn varsmith(&self, args: &[&str]) -> Run {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C")
            .arg(&self.ws)
            .args(args)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env_remove("SOPS_AGE_KEY")
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("HOME", self.tmp.path().join("home"))
            .env("VARSMITH_PROMPT_MARKER_VALUE", &self.marker)
            .env("VARSMITH_PROMPT_TRICKY_SEED", "seed\tvalue")
            .env("VARSMITH_NIX_FLAGS", self.kit.flags());
        run(c)
    }

    /// `nix eval --json <flake>#<attr> --apply <apply>`, parsed; panics with Nix's message.
    pub fn eval_json(&self, attr: &str, apply: &str) -> serde_json::Value {
        let r = self.eval(attr, apply, true);
        assert!(r.ok, "nix eval {attr} failed:\n{}", r.stderr);
        serde_json::from_str(&r.stdout).expect("nix eval --json output")
    }

    /// `nix flake check` of the workspace, not asserting success.
    pub fn flake_check(&self) -> Run {
        let mut c = self.kit.nix(&["flake", "check"]);
        c.arg(self.flake());
        run(c)
    }

    /// `nix eval` (`--json` or `--raw`), not asserting success.
    pub fn eval(&self, attr: &str, apply: &str, json: bool) -> Run {
        let mut c = self.kit.nix(&["eval"]);
        c.arg(if json { "--json" } else { "--raw" })
            .arg(format!("{}#{attr}", self.flake()));
        if !apply.is_empty() {
            c.args(["--apply", apply]);
        }
        run(c)
    }
}

impl Fleet {
    /// Lays out the scratch repository: repo/nix (this worktree's), repo/examples/fleet (the
    /// example fleet with a fresh admin key and the test additions), as a git repository.
    pub fn new(kit: Kit) -> Fleet {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tmp = tempfile::Builder::new()
            .prefix("varsmith-nix-")
            .tempdir()
            .unwrap();
        let runtime = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let repo = tmp.path().join("repo");
        copy_dir(&root.join("nix"), &repo.join("nix"));
        let ws = repo.join("examples/fleet");
        let fleet = root.join("examples/fleet");
        copy_dir(&fleet.join("machines"), &ws.join("machines"));
        for f in ["flake.nix", "flake.lock"] {
            std::fs::copy(fleet.join(f), ws.join(f)).unwrap();
        }
        let fixtures = root.join("tests/util/nix_fixtures");
        copy_dir(&fixtures.join("generators"), &ws.join("generators"));
        for f in ["test.nix", "marker.sh"] {
            std::fs::copy(fixtures.join(f), ws.join(f)).unwrap();
        }
        std::fs::write(
            ws.join("test-generators.json"),
            bundled_json(&ws.join("generators")),
        )
        .unwrap();
        // The test module goes next to each machine's module.
        let flake = std::fs::read_to_string(ws.join("flake.nix")).unwrap();
        let patched = flake
            .replace("./machines/nixos.nix", "./machines/nixos.nix ./test.nix")
            .replace("./machines/darwin.nix", "./machines/darwin.nix ./test.nix");
        assert_eq!(patched.matches("./test.nix").count(), 2, "flake.nix layout");
        std::fs::write(ws.join("flake.nix"), patched).unwrap();
        // A fresh throwaway admin key (outside the repository), and the test generators on
        // cinnabar.
        let key = tmp.path().join("admin.agekey");
        let recipient = varsmith::keys::keygen::append_admin_key(&key).expect("keygen");
        let inv = std::fs::read_to_string(fleet.join("varsmith.yaml")).unwrap();
        let demo = inv
            .lines()
            .find_map(|l| l.trim().strip_prefix("demo: "))
            .expect("demo admin")
            .to_string();
        let inv = inv.replace(&demo, &recipient).replace(
            "generators: [openssh, zerotier-controller,",
            "generators: [openssh, zerotier-controller, marker, tricky,",
        );
        assert!(inv.contains("marker, tricky"), "varsmith.yaml layout");
        std::fs::write(ws.join("varsmith.yaml"), inv).unwrap();
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "-A"]);
        let marker: String = {
            use rand::Rng;
            rand::thread_rng()
                .sample_iter(&rand::distributions::Alphanumeric)
                .take(40)
                .map(char::from)
                .collect()
        };
        Fleet {
            tmp,
            runtime,
            kit,
            key,
            ws,
            marker: format!("vsmarker{marker}"),
        }
    }

    /// Bytes of a workspace file.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.ws.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// The stored fingerprint of (owner, generator).
    pub fn stored_fingerprint(&self, machine: &str, generator: &str, shared: bool) -> String {
        let rel = if shared {
            format!("sops/shared/state/{generator}.json")
        } else {
            format!("sops/machines/{machine}/state/{generator}.json")
        };
        let v: serde_json::Value = serde_json::from_slice(&self.read(&rel)).unwrap();
        v["fingerprint"].as_str().unwrap().to_string()
    }
}
