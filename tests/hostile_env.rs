//! A hostile flake, and `$EDITOR`, never receive key material (issue 19).
//!
//! The flake's definitions build a fixed-output derivation with
//! `impureEnvVars = [ "SOPS_AGE_KEY" … ]` through import-from-derivation, and list another one as
//! a runtime input; each builder writes its whole environment to a world-writable spy directory
//! (the builds run as a `nixbld` user with `sandbox = false`, so they can). With the admin's key
//! in `SOPS_AGE_KEY` (and a key file, and a prompt answer in the environment), `check`, `list`,
//! `generate` and `deploy --dry-run` never hand any of it to a builder; import-from-derivation
//! is refused with an error naming the opt-in, and with the opt-in it works, still without key.
//!
//! `sops edit` refuses to write the plaintext when neither `$XDG_RUNTIME_DIR` nor `/dev/shm` is
//! tmpfs (a private mount namespace binds a disk directory over `/dev/shm`), and the editor's
//! environment holds no key material.

use crate::util::common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// SHA-256 of the empty file: every spy derivation's output.
const EMPTY_SHA256: &str = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

fn random(tag: &str) -> String {
    use rand::Rng;
    let s: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{tag}{s}")
}

/// The flake: machine `m` with generator `spy` (a prompt, a runtime input that spies, and with
/// `ifd` a script read from a spying derivation). `nonce` makes every spy a new store path, so
/// its builder really runs.
fn flake(spy_dir: &Path, nonce: &str, ifd: bool) -> String {
    let ifd_script = if ifd {
        format!("builtins.readFile (spy \"ifd-{nonce}\")")
    } else {
        "\"\"".to_string()
    };
    format!(
        r#"{{
  outputs = {{ self }}: let
    sys = "x86_64-linux";
    spy = name: derivation {{
      inherit name; system = sys; builder = "/bin/sh";
      impureEnvVars = [ "SOPS_AGE_KEY" "SOPS_AGE_KEY_FILE" "SOPS_AGE_SSH_PRIVATE_KEY_FILE" "SOPS_AGE_KEY_CMD" "VARSMITH_PROMPT_SPY_SEED" ];
      outputHashMode = "flat"; outputHashAlgo = "sha256"; outputHash = "{EMPTY_SHA256}";
      args = [ "-c" "export -p > {spy}/${{name}}; : > $out" ];
    }};
  in {{
    nixosConfigurations.m = {{
      options.varsmith = {{ }};
      config.nixpkgs.system = sys;
      config.varsmith = {{
        machineName = "m";
        deploy = {{ targetHost = "root@m.example.org"; tags = [ ]; backend = null; }};
        generators.spy = {{
          share = false; dependencies = [ ]; validation = null;
          runtimeInputs = [ (spy "input-{nonce}") ];
          prompts.seed = {{ description = "seed"; type = "line"; persist = false; }};
          files.v = {{ secret = false; deploy = true; owner = "root"; group = "root"; mode = "0444"; neededFor = "services"; }};
          script = {ifd_script} + "echo ok > $out/v";
        }};
      }};
    }};
  }};
}}
"#,
        spy = spy_dir.display(),
    )
}

/// A flake workspace in git, the admin key in the environment, and a spy directory.
struct Hostile {
    ws: Ws,
    spy: tempfile::TempDir,
    cache: tempfile::TempDir,
    bin: tempfile::TempDir,
    /// The admin's `AGE-SECRET-KEY-1…` line.
    key_line: String,
    /// The prompt answer given in the environment.
    prompt: String,
}

impl Hostile {
    fn new() -> Hostile {
        let ws = Ws::new("admins:\n  alice: ADMIN\nmachines: {}\n");
        let key_line = std::fs::read_to_string(&ws.key)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .expect("an age identity")
            .to_string();
        let spy = tempfile::tempdir().unwrap();
        std::fs::set_permissions(spy.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let h = Hostile {
            ws,
            spy,
            cache: tempfile::tempdir().unwrap(),
            bin: tempfile::tempdir().unwrap(),
            key_line,
            prompt: random("promptvalue"),
        };
        h.nix_store_wrapper();
        h.git(&["init", "-q"]);
        h
    }

    /// A `nix-store` first on PATH that records its arguments.
    fn nix_store_wrapper(&self) {
        let real = Command::new("sh")
            .args(["-c", "command -v nix-store"])
            .output()
            .unwrap();
        let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
        let w = self.bin.path().join("nix-store");
        std::fs::write(
            &w,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\nexec {real} \"$@\"\n",
                self.bin.path().join("calls").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&w, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn nix_store_calls(&self) -> String {
        std::fs::read_to_string(self.bin.path().join("calls")).unwrap_or_default()
    }

    fn git(&self, args: &[&str]) {
        let o = Command::new("git")
            .args(args)
            .current_dir(self.ws.root())
            .output()
            .unwrap();
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
    }

    /// Writes the flake with a fresh nonce and stages it; returns the nonce.
    fn flake(&self, ifd: bool) -> String {
        let nonce = random("n");
        std::fs::write(
            self.ws.root().join("flake.nix"),
            flake(self.spy.path(), &nonce, ifd),
        )
        .unwrap();
        self.git(&["add", "flake.nix", "varsmith.yaml"]);
        nonce
    }

    /// varsmith with the key in `SOPS_AGE_KEY` and a key file, a prompt answer in the
    /// environment, and Nix offline.
    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut c = self.ws.command(args);
        c.env("SOPS_AGE_KEY", &self.key_line)
            .env("SOPS_AGE_KEY_CMD", "cat /dev/null")
            .env("VARSMITH_PROMPT_SPY_SEED", &self.prompt)
            .env("PATH", path)
            .env("XDG_CACHE_HOME", self.cache.path())
            .env_remove("VARSMITH_ALLOW_IFD")
            .env(
                "VARSMITH_NIX_FLAGS",
                "--option substituters '' --no-write-lock-file --option sandbox false",
            )
            .env(
                "NIX_CONFIG",
                "experimental-features = nix-command flakes\nsubstituters =\nsandbox = false",
            )
            .stdin(Stdio::null());
        c
    }

    /// The environment a spy builder recorded (`None`: it never ran).
    fn spied(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.spy.path().join(name)).ok()
    }

    /// `text` (varsmith's output) holds no key and no prompt answer.
    fn assert_clean(&self, what: &str, text: &str) {
        for (needle, label) in [
            (self.key_line.as_str(), "the admin key"),
            ("AGE-SECRET-KEY-1", "an age identity"),
            (self.prompt.as_str(), "the prompt answer"),
        ] {
            assert!(!text.contains(needle), "{what} holds {label}:\n{text}");
        }
    }

    /// A builder's recorded environment (`export -p`) holds no key material: the variables it
    /// asked for (`impureEnvVars`) are empty (Nix sets an absent one to "").
    fn assert_clean_env(&self, what: &str, env: &str) {
        self.assert_clean(what, env);
        let key_file = self.ws.key.display().to_string();
        assert!(
            !env.contains(&key_file),
            "{what} holds the key file's path:\n{env}"
        );
        for line in env.lines() {
            let Some(var) = line.strip_prefix("export ") else {
                continue;
            };
            if var.starts_with("SOPS_AGE_") || var.starts_with("VARSMITH_PROMPT_") {
                assert!(var.ends_with("=''"), "{what} holds {var}:\n{env}");
            }
        }
        // The builder did record its environment (nix sets `out` for every builder).
        assert!(env.contains("out="), "{what}: nothing recorded:\n{env}");
    }
}

fn tools() -> bool {
    require("nix") && require("git") && require("bwrap")
}

/// The four flake commands of the issue.
const COMMANDS: [&[&str]; 4] = [
    &["check"],
    &["list", "m"],
    &["generate"],
    &["deploy", "m", "--dry-run"],
];

#[test]
fn import_from_derivation_is_refused_with_the_opt_in_named() {
    if !tools() {
        return;
    }
    let h = Hostile::new();
    for args in COMMANDS {
        let nonce = h.flake(true);
        let o = h.run(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("import-from-derivation") && err.contains("--allow-ifd"),
            "{args:?}: {err}"
        );
        assert!(err.contains("VARSMITH_ALLOW_IFD=1"), "{args:?}: {err}");
        assert!(
            h.spied(&format!("ifd-{nonce}")).is_none(),
            "{args:?}: a builder ran during evaluation"
        );
        assert!(
            h.spied(&format!("input-{nonce}")).is_none(),
            "{args:?}: a runtime input was built"
        );
        h.assert_clean(&format!("{args:?} output"), &(stdout(&o) + &err));
    }
}

#[test]
fn no_builder_sees_the_key_with_or_without_ifd() {
    if !tools() {
        return;
    }
    let h = Hostile::new();
    // Opted in (the flag, then the variable): every command's evaluation builds the IFD spy.
    for (i, args) in COMMANDS.iter().enumerate() {
        let nonce = h.flake(true);
        let mut all: Vec<&str> = args.to_vec();
        let o = if i % 2 == 0 {
            all.insert(0, "--allow-ifd");
            h.run(&all)
        } else {
            h.command(args)
                .env("VARSMITH_ALLOW_IFD", "1")
                .output()
                .unwrap()
        };
        let text = stdout(&o) + &stderr(&o);
        assert!(
            !text.contains("import-from-derivation"),
            "{args:?} refused IFD despite the opt-in: {text}"
        );
        let env = h
            .spied(&format!("ifd-{nonce}"))
            .unwrap_or_else(|| panic!("{args:?}: the IFD builder did not run: {text}"));
        h.assert_clean_env(&format!("{args:?}: the IFD builder's environment"), &env);
        h.assert_clean(&format!("{args:?} output"), &text);
        if args[0] == "generate" {
            assert!(o.status.success(), "{text}");
            let env = h
                .spied(&format!("input-{nonce}"))
                .expect("the runtime input was realised");
            h.assert_clean_env("the runtime input builder's environment", &env);
        }
    }
    // Without IFD: the runtime input is realised by `generate`, with the `--option` settings
    // of VARSMITH_NIX_FLAGS (and not its flake-only flags).
    let nonce = h.flake(false);
    let o = h.run(&["generate", "--regenerate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let env = h
        .spied(&format!("input-{nonce}"))
        .expect("the runtime input was realised");
    h.assert_clean_env("the runtime input builder's environment", &env);
    let calls = h.nix_store_calls();
    let realise = calls
        .lines()
        .find(|l| l.starts_with("--realise"))
        .unwrap_or_else(|| panic!("no nix-store --realise: {calls}"));
    assert!(
        realise.contains("--option substituters  --option sandbox false"),
        "{realise}"
    );
    assert!(!realise.contains("--no-write-lock-file"), "{realise}");
    // Runtime inputs are realised before any identity is loaded: with an identity that does
    // not load, the input was still built first (by a child that never held a key).
    let nonce = h.flake(false);
    let o = h
        .command(&["generate", "--regenerate"])
        .env("SOPS_AGE_KEY", "AGE-SECRET-KEY-1NOTAKEY")
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        h.spied(&format!("input-{nonce}")).is_some(),
        "identities were loaded before the runtime inputs were realised: {}",
        stderr(&o)
    );
}

/// An encrypted YAML file of the workspace's admin, made by `varsmith sops encrypt`.
fn encrypted(ws: &Ws) -> PathBuf {
    let plain = ws.root().join("plain.yaml");
    std::fs::write(&plain, "password: hunter2\n").unwrap();
    let o = ws.run(&[
        "sops",
        "encrypt",
        "--age",
        &ws.recipient,
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = ws.root().join("secret.yaml");
    std::fs::write(&f, &o.stdout).unwrap();
    std::fs::remove_file(&plain).unwrap();
    f
}

/// An `$EDITOR` that records its environment and its file's directory in `log`.
fn spy_editor(dir: &Path, log: &Path) -> PathBuf {
    let ed = dir.join("editor.sh");
    std::fs::write(
        &ed,
        format!(
            "#!/bin/sh\nexport -p > {log}\ndirname \"$1\" > {log}.dir\necho 'more: x' >> \"$1\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&ed, std::fs::Permissions::from_mode(0o755)).unwrap();
    ed
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn entries(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sops_edit_refuses_a_disk_dev_shm() {
    if !(require("unshare") && require("mount")) {
        return;
    }
    if !is_root() {
        assert!(
            !in_ci(),
            "CI=true: this test needs root (a private mount namespace)"
        );
        crate::util::ci::skipped("needs root");
        return;
    }
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines: {}\n");
    let f = encrypted(&ws);
    let before = std::fs::read(&f).unwrap();
    // Disk directories (the workspace's filesystem is not tmpfs here, as asserted below).
    let disk_shm = ws.root().join("disk-shm");
    let disk_run = ws.root().join("disk-run");
    for d in [&disk_shm, &disk_run] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    let log = ws.root().join("editor.log");
    let ed = spy_editor(ws.root(), &log);
    let o = Command::new("unshare")
        .args([
            "-m",
            "--",
            "sh",
            "-c",
            r#"mount --bind "$1" /dev/shm && shift && exec "$@""#,
        ])
        .arg("sh")
        .arg(&disk_shm)
        .arg(env!("CARGO_BIN_EXE_varsmith"))
        .arg("sops")
        .arg("edit")
        .arg(&f)
        .env("SOPS_AGE_KEY_FILE", &ws.key)
        .env("XDG_RUNTIME_DIR", &disk_run)
        .env("EDITOR", &ed)
        .env("HOME", ws.root().join("home"))
        .env_remove("VARSMITH_ALLOW_DISK_TMP")
        .stdin(Stdio::null())
        .output()
        .expect("unshare");
    let err = stderr(&o);
    assert!(
        !err.contains("mount:") && !err.contains("unshare:"),
        "no private mount namespace here: {err}"
    );
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("tmpfs") && err.contains("/dev/shm is not on tmpfs"),
        "{err}"
    );
    assert!(!log.exists(), "the editor ran");
    assert!(entries(&disk_shm).is_empty(), "{:?}", entries(&disk_shm));
    assert!(entries(&disk_run).is_empty(), "{:?}", entries(&disk_run));
    assert_eq!(std::fs::read(&f).unwrap(), before);
}

#[test]
fn the_editor_gets_no_key_material() {
    let ws = Ws::new("admins:\n  alice: ADMIN\nmachines: {}\n");
    let f = encrypted(&ws);
    let key_line = std::fs::read_to_string(&ws.key)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string();
    let log = ws.root().join("editor.log");
    let ed = spy_editor(ws.root(), &log);
    let o = ws
        .command(&["sops", "edit", f.to_str().unwrap()])
        .env("SOPS_AGE_KEY", &key_line)
        .env("VARSMITH_PROMPT_A_B", "promptanswer")
        .env("EDITOR", &ed)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let env = std::fs::read_to_string(&log).expect("the editor ran");
    for needle in [
        key_line.as_str(),
        "SOPS_AGE_KEY",
        "VARSMITH_PROMPT_",
        "promptanswer",
    ] {
        assert!(
            !env.contains(needle),
            "the editor's environment holds {needle}:\n{env}"
        );
    }
    // The plaintext was in the run directory (tmpfs), and is gone.
    let dir = std::fs::read_to_string(format!("{}.dir", log.display())).unwrap();
    assert!(
        Path::new(dir.trim()).starts_with(ws.runtime.path()),
        "{dir} is not under {}",
        ws.runtime.path().display()
    );
    assert!(
        ws.leftover_run_dirs().is_empty(),
        "{:?}",
        ws.leftover_run_dirs()
    );
    let o = ws.run(&["sops", "decrypt", f.to_str().unwrap()]);
    assert_eq!(stdout(&o), "password: hunter2\nmore: x\n");
}
