//! Issue 22 item 13: the template's quick start. The first minute, without evaluating
//! anything: `varsmith init` completes the template's `varsmith.yaml` (no admin yet) instead
//! of refusing it, `admin add` never evaluates the flake (admins live in YAML), a generate
//! with no admin says so before asking any prompt, and `sops/.tmp/` is git-ignored. Then the
//! whole walk on the offline kit: `nix flake init -t <varsmith>`, the quick start's commands
//! as the template's flake.nix states them, and a green `nix flake check`.

use crate::util::common::*;

use std::path::Path;
use std::process::Command;

fn template() -> tempfile::TempDir {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("nix/template");
    let dir = tempfile::tempdir().unwrap();
    for f in ["flake.nix", "varsmith.yaml", ".gitignore"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn varsmith(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("HOME", dir.join("home"))
        .env_remove("SOPS_AGE_KEY")
        .env("SOPS_AGE_KEY_FILE", dir.join("home/keys.txt"))
        .output()
        .unwrap()
}

const ALICE: &str = "age1wqpj236clhpuxcv77ua76s5lplvjxywf4zlye7y2trhfkztm9unqdn53dz";

#[test]
fn init_accepts_the_template_and_admin_add_needs_no_flake() {
    let t = template();
    let o = varsmith(t.path(), &["init", "--admin", "you", "--recipient", ALICE]);
    assert!(o.status.success(), "init: {}", stderr(&o));
    let inv = std::fs::read_to_string(t.path().join("varsmith.yaml")).unwrap();
    assert!(inv.contains(&format!("you: {ALICE}")), "{inv}");
    let mirror = std::fs::read_to_string(t.path().join("varsmith.admins.json")).unwrap();
    assert!(mirror.contains(ALICE), "{mirror}");
    // A second init is refused: the file has an admin now.
    let o = varsmith(t.path(), &["init", "--admin", "x", "--recipient", ALICE]);
    assert_eq!(o.status.code(), Some(2));

    // The flake cannot evaluate (its varsmith input is not reachable): admin add still works.
    std::fs::write(t.path().join("flake.nix"), "{ this is not nix").unwrap();
    let o = varsmith(
        t.path(),
        &[
            "admin",
            "add",
            "bob",
            "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
        ],
    );
    assert!(o.status.success(), "admin add: {}", stderr(&o));
}

#[test]
fn template_ignores_sops_tmp() {
    let t = template();
    let ignore = std::fs::read_to_string(t.path().join(".gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "sops/.tmp/"), "{ignore}");
}

/// With no admin, generate says so before any prompt is asked (a prompt without a terminal
/// would otherwise be the error).
#[test]
fn generate_without_admin_says_so_before_prompts() {
    if !require("bwrap") {
        return;
    }
    let ws = Ws::new("admins: {}\nmachines:\n  m1:\n    generators: [asks]\n");
    ws.generator(
        "asks",
        "prompts:\n  word: { type: hidden }\nfiles:\n  s: { deploy: false }\nscript: |\n  cat $prompts/word > $out/s\n",
    );
    let o = ws.run(&["generate", "m1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no admin yet") && !stderr(&o).contains("prompt word"),
        "{}",
        stderr(&o)
    );
}

/// The varsmith flake as a user fetches it (flake.nix, flake.lock, nix/), outside git.
fn varsmith_flake(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir).unwrap();
    for f in ["flake.nix", "flake.lock"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    crate::util::nix::copy_dir(&src.join("nix"), &dir.join("nix"));
}

/// The stand-in for the template's nixpkgs (tests/util/nix_fixtures/template-nixpkgs): the
/// kit's 2020 nixpkgs with what the template needs of a current one.
fn stand_in_nixpkgs(dir: &Path, kit: &Path) {
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/util/nix_fixtures/template-nixpkgs");
    std::fs::create_dir_all(dir).unwrap();
    let flake = std::fs::read_to_string(src.join("flake.nix")).unwrap();
    std::fs::write(
        dir.join("flake.nix"),
        flake.replace("@KIT@", &kit.display().to_string()),
    )
    .unwrap();
    std::fs::copy(src.join("offline.nix"), dir.join("offline.nix")).unwrap();
}

/// The template's inputs pointed at the kit: varsmith at this worktree's flake, its nixpkgs at
/// the stand-in, sops-nix at the 2021 sops-nix (the template's own inputs follow them).
fn walk_flags(vs: &Path, nixpkgs: &Path, kit: &Path) -> Vec<String> {
    let mut v = crate::util::nix::offline_flags();
    for (input, url) in [
        ("varsmith", format!("path:{}", vs.display())),
        ("varsmith/nixpkgs", format!("path:{}", nixpkgs.display())),
        (
            "varsmith/sops-nix",
            format!("file://{}/sops-nix-2021-12.tar.gz", kit.display()),
        ),
        (
            "varsmith/nix-darwin",
            format!("file://{}/nix-darwin-2026-06.tar.gz", kit.display()),
        ),
    ] {
        v.extend(["--override-input".to_string(), input.to_string(), url]);
    }
    v
}

fn nix(args: &[&str]) -> Command {
    let mut c = Command::new("nix");
    c.args(["--extra-experimental-features", "nix-command flakes"])
        .args(args);
    c
}

fn git_in(dir: &Path, args: &[&str]) {
    crate::util::nix::git(dir, args);
}

/// The quick start's commands, in order, as the template's flake.nix states them (the lines
/// of its header comment that run `varsmith`, `git` or `nix`).
fn quick_start(flake: &str) -> Vec<String> {
    flake
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
        .collect()
}

/// `nix flake init -t <varsmith>` into a fresh git repository, then the template's quick start
/// step by step, ending with a green `nix flake check` (and a clean keyless `varsmith check`).
/// The first command needs neither nix nor the network: it runs with a `nix` on PATH that
/// fails and records being called.
#[test]
fn template_walk_from_flake_init_to_a_green_flake_check() {
    let Some(kit) = crate::util::nix::Kit::find() else {
        return;
    };
    let Some(kit_dir) = kit.dir.clone() else {
        crate::util::ci::skipped("the template walk needs the offline kit's tarballs");
        return;
    };
    if !crate::util::ci::require_all(&["bwrap", "git", "ssh-keygen", "openssl"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (vs, nixpkgs, fleet, home) = (
        tmp.path().join("varsmith"),
        tmp.path().join("nixpkgs"),
        tmp.path().join("fleet"),
        tmp.path().join("home"),
    );
    varsmith_flake(&vs);
    stand_in_nixpkgs(&nixpkgs, &kit_dir);
    std::fs::create_dir_all(&fleet).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    git_in(&fleet, &["init", "-q"]);
    let o = nix(&["flake", "init", "-t", &format!("path:{}", vs.display())])
        .current_dir(&fleet)
        .output()
        .unwrap();
    assert!(o.status.success(), "nix flake init: {}", stderr(&o));
    for f in ["flake.nix", "varsmith.yaml", ".gitignore"] {
        assert!(fleet.join(f).is_file(), "the template lacks {f}");
    }
    git_in(&fleet, &["add", "-A"]);

    let flake = std::fs::read_to_string(fleet.join("flake.nix")).unwrap();
    let steps = quick_start(&flake);
    assert_eq!(
        steps,
        [
            "varsmith init --admin you",
            "varsmith generate my-host",
            "git add -A && nix flake check"
        ],
        "the template's quick start changed: update this walk\n{flake}"
    );

    // A `nix` that fails and records each call: the first command must not evaluate anything.
    let stub = tmp.path().join("stub");
    std::fs::create_dir_all(&stub).unwrap();
    let called = tmp.path().join("nix-called");
    std::fs::write(
        stub.join("nix"),
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", called.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(stub.join("nix"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        stub.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let flags = shlex::try_join(
        walk_flags(&vs, &nixpkgs, &kit_dir)
            .iter()
            .map(String::as_str),
    )
    .unwrap();
    let varsmith = |args: &[&str], offline_first: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C")
            .arg(&fleet)
            .args(args)
            .env("HOME", &home)
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("XDG_CONFIG_HOME")
            .env("XDG_CACHE_HOME", tmp.path().join("cache"));
        if offline_first {
            c.env("PATH", &path).env_remove("VARSMITH_NIX_FLAGS");
        } else {
            c.env("VARSMITH_NIX_FLAGS", &flags);
        }
        c.output().unwrap()
    };

    // 1. varsmith init --admin you: a new admin key, no nix, no network.
    let o = varsmith(&["init", "--admin", "you"], true);
    assert!(o.status.success(), "init: {}", stderr(&o));
    assert!(
        !called.exists(),
        "init ran nix: {}",
        std::fs::read_to_string(&called).unwrap_or_default()
    );
    assert!(home.join(".config/sops/age/keys.txt").is_file());

    // 2. varsmith generate my-host: the machine and its generators come from the flake.
    let o = varsmith(&["generate", "my-host"], false);
    assert!(o.status.success(), "generate: {}", stderr(&o));
    for f in [
        "secrets/openssh.yaml",
        "secrets/password.yaml",
        "secrets/admin/password.yaml",
        "key.json",
    ] {
        assert!(
            fleet.join("sops/machines/my-host").join(f).is_file(),
            "{f} missing"
        );
    }
    // Generators' scratch space never shows up in git.
    let o = Command::new("git")
        .arg("-C")
        .arg(&fleet)
        .args(["check-ignore", "-q", "sops/.tmp/run/x"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sops/.tmp/ is not ignored by the template's .gitignore"
    );

    // 3. git add -A && nix flake check: green.
    git_in(&fleet, &["add", "-A"]);
    let o = nix(&["flake", "check"])
        .args(walk_flags(&vs, &nixpkgs, &kit_dir))
        .arg(&fleet)
        .output()
        .unwrap();
    assert!(o.status.success(), "nix flake check: {}", stderr(&o));

    // And the keyless gate agrees.
    let o = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(&fleet)
        .args(["check"])
        .env("HOME", tmp.path().join("nobody"))
        .env("SOPS_AGE_KEY_FILE", "")
        .env_remove("SOPS_AGE_KEY")
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .env("VARSMITH_NIX_FLAGS", &flags)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "varsmith check: {}{}",
        stdout(&o),
        stderr(&o)
    );
}
