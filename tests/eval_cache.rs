//! The flake-evaluation cache, with real `nix` (offline): a cache directory planted by another
//! user (or writable by others) is refused and the flake is evaluated for real; entries are
//! authenticated; the key covers what Nix copies (the whole git repository, not only the
//! workspace's subdirectory).
//!
//! The configurations are plain attribute sets shaped like an evaluated module system, so they
//! need no nixpkgs (as in `tests/flake_defs.rs`).

use crate::util::common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tools() -> bool {
    require("nix") && require("sops") && require("bwrap") && require("age") && require("git")
}

const NIX_CONFIG: &str =
    "experimental-features = nix-command flakes\nsubstituters =\nsandbox = false";

/// A flake of one machine `alpha` with an `openssh` host key and a public `hello` fact whose
/// generator comes from `gens` (a Nix expression for the generator attrset).
fn flake(gens: &str) -> String {
    format!(
        r#"{{
  outputs = {{ self }}: let
    sys = "x86_64-linux";
    link = name: tools: derivation {{
      inherit name; system = sys; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out/bin; for t in ${{tools}}; do ln -s $(command -v $t) $out/bin/; done" ];
    }};
    keygen = link "keygen" "ssh-keygen";
    coreutils = link "some-coreutils" "head od tr cat";
    file = secret: {{ inherit secret; deploy = true; owner = "root"; group = "root"; mode = "0400"; neededFor = "services"; }};
    hello = {gens};
  in {{
    nixosConfigurations.alpha = {{
      options.varsmith = {{ }};
      config.nixpkgs.system = sys;
      config.varsmith = {{
        machineName = "alpha";
        deploy = {{ targetHost = null; tags = [ ]; backend = null; }};
        generators = {{
          openssh = {{ share = false; dependencies = [ ]; validation = null; runtimeInputs = [ keygen ]; prompts = {{ }};
            files."ssh_host_ed25519_key" = file true; files."ssh_host_ed25519_key.pub" = file false;
            script = "ssh-keygen -q -t ed25519 -N '' -C '' -f $out/ssh_host_ed25519_key"; }};
          hello = {{ share = false; dependencies = [ ]; validation = hello.validation or null; runtimeInputs = [ coreutils ]; prompts = {{ }};
            files.pub = file false; script = hello.script; }};
        }};
      }};
    }};
  }};
}}
"#
    )
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
}

/// varsmith in the workspace `root` with cache base `cache`.
fn varsmith(ws: &Ws, root: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(root)
        .args(args)
        .env("SOPS_AGE_KEY_FILE", &ws.key)
        .env_remove("SOPS_AGE_KEY")
        .env("XDG_RUNTIME_DIR", ws.runtime.path())
        .env("HOME", ws.root().join("home"))
        .env("XDG_CACHE_HOME", cache)
        .env("NIX_CONFIG", NIX_CONFIG)
        .output()
        .unwrap()
}

/// A git workspace at the top of its repository with the flake of [`flake`].
fn workspace() -> Ws {
    let ws = Ws::new("admins:\n  alice: ADMIN\n");
    std::fs::write(
        ws.root().join("flake.nix"),
        flake(r#"{ script = "echo hello > $out/pub"; }"#),
    )
    .unwrap();
    git(ws.root(), &["init", "-q"]);
    git(ws.root(), &["add", "flake.nix", "varsmith.yaml"]);
    ws
}

/// The single cache entry (`flake-*.json`) under `cache/varsmith`.
fn entry(cache: &Path) -> PathBuf {
    std::fs::read_dir(cache.join("varsmith"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("flake-")
        })
        .expect("a cache entry")
}

/// An entry as an attacker who owns the cache directory writes it: MAC'd with his own key.
fn forge(dir: &Path, name: &str, body: &[u8]) {
    use hmac::{Hmac, Mac};
    let key = [7u8; 32];
    std::fs::write(dir.join("key"), key).unwrap();
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    m.update(name.as_bytes());
    m.update(&[0]);
    m.update(body);
    let mut out = hex::encode(m.finalize().into_bytes()).into_bytes();
    out.push(b'\n');
    out.extend_from_slice(body);
    std::fs::write(dir.join(name), out).unwrap();
}

/// The real entry's body with a generator `leak` added to alpha that copies the host's private
/// key into a public fact.
fn poisoned_body(real: &Path) -> Vec<u8> {
    let bytes = std::fs::read(real).unwrap();
    let nl = bytes.iter().position(|b| *b == b'\n').unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&bytes[nl + 1..]).unwrap();
    // Each distinct definition is stored once in `generators`; a machine names its own by
    // their index there.
    let m = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["machine"])
        .find(|m| m["machineName"] == "alpha")
        .unwrap();
    let hello = m["generators"]["hello"].as_u64().unwrap() as usize;
    let table = v["generators"].as_array_mut().unwrap();
    let mut leak = table[hello].clone();
    leak["dependencies"] = serde_json::json!(["openssh"]);
    leak["script"] = "cat $in/openssh/ssh_host_ed25519_key > $out/pub".into();
    table.push(leak);
    let at = table.len() - 1;
    let m = v["configs"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .map(|c| &mut c["machine"])
        .find(|m| m["machineName"] == "alpha")
        .unwrap();
    m["generators"]["leak"] = at.into();
    serde_json::to_vec(&v).unwrap()
}

fn chown_nobody(path: &Path) {
    let o = Command::new("chown")
        .args(["-R", "nobody"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "chown: {}", stderr(&o));
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_cache_planted_by_another_user_is_refused_and_its_generator_never_runs() {
    if !tools() {
        return;
    }
    if !is_root() {
        assert!(
            !in_ci(),
            "CI runs this as root (it plants a cache owned by nobody)"
        );
        crate::util::ci::skipped("needs root to plant a cache owned by another uid");
        return;
    }
    let ws = workspace();
    let root = ws.root().to_path_buf();
    // A real entry, made in a cache of our own: created 0700, key and entry 0600.
    let mine = tempfile::tempdir().unwrap();
    let o = varsmith(&ws, &root, mine.path(), &["generate", "--plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d = std::fs::metadata(mine.path().join("varsmith")).unwrap();
    assert_eq!(d.mode() & 0o777, 0o700);
    let real = entry(mine.path());
    for f in [real.clone(), mine.path().join("varsmith/key")] {
        assert_eq!(
            std::fs::metadata(&f).unwrap().mode() & 0o777,
            0o600,
            "{f:?}"
        );
    }
    // Another user created the shared cache base's directory first, with a valid-looking
    // entry for this workspace that adds a generator leaking the host key.
    let shared = tempfile::tempdir().unwrap();
    let planted = shared.path().join("varsmith");
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o700)).unwrap();
    let name = real.file_name().unwrap().to_string_lossy().into_owned();
    forge(&planted, &name, &poisoned_body(&real));
    chown_nobody(&planted);
    let o = varsmith(&ws, &root, shared.path(), &["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("not using the flake-evaluation cache") && err.contains("not by you"),
        "{err}"
    );
    assert!(
        !root.join("sops/machines/alpha/facts/leak").exists(),
        "{err}"
    );
    assert!(!root.join("sops/machines/alpha/state/leak.json").exists());
    assert_eq!(
        std::fs::read(root.join("sops/machines/alpha/facts/hello/pub")).unwrap(),
        b"hello\n"
    );
    // Nothing was written into the refused directory.
    assert_eq!(std::fs::read_dir(&planted).unwrap().count(), 2);
    let o = varsmith(&ws, &root, shared.path(), &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("leak"), "{}", stdout(&o));
}

#[test]
fn a_group_writable_cache_is_refused_and_a_tampered_entry_is_ignored() {
    if !tools() {
        return;
    }
    let ws = workspace();
    let root = ws.root().to_path_buf();
    let cache = tempfile::tempdir().unwrap();
    let o = varsmith(&ws, &root, cache.path(), &["generate", "--plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let real = entry(cache.path());
    // Tampered in place (our own directory, but without our key): ignored, evaluated again.
    let mut bytes = std::fs::read(&real).unwrap();
    let tag_len = bytes.iter().position(|b| *b == b'\n').unwrap();
    let body = poisoned_body(&real);
    bytes.truncate(tag_len + 1);
    bytes.extend_from_slice(&body);
    std::fs::write(&real, &bytes).unwrap();
    let o = varsmith(&ws, &root, cache.path(), &["generate", "--plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("alpha/leak"), "{}", stdout(&o));
    assert!(stdout(&o).contains("alpha/hello"), "{}", stdout(&o));
    // The directory made writable by the group: refused, said, still evaluated.
    let dir = cache.path().join("varsmith");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o770)).unwrap();
    let o = varsmith(&ws, &root, cache.path(), &["generate", "--plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("writable by group or others"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("alpha/hello"), "{}", stdout(&o));
}

#[test]
fn a_committed_change_outside_the_workspace_subdirectory_is_seen() {
    if !tools() {
        return;
    }
    // The repository: gens.nix at the top, the workspace (flake + varsmith.yaml) in fleet/.
    let ws = Ws::new("admins:\n  alice: ADMIN\n");
    let top = ws.root().to_path_buf();
    let fleet = top.join("fleet");
    std::fs::create_dir(&fleet).unwrap();
    std::fs::rename(top.join("varsmith.yaml"), fleet.join("varsmith.yaml")).unwrap();
    std::fs::write(fleet.join("flake.nix"), flake("import ../gens.nix")).unwrap();
    std::fs::write(
        top.join("gens.nix"),
        r#"{ script = "echo one > $out/pub"; }"#,
    )
    .unwrap();
    git(&top, &["init", "-q"]);
    git(
        &top,
        &["add", "gens.nix", "fleet/flake.nix", "fleet/varsmith.yaml"],
    );
    git(&top, &["commit", "-q", "-m", "fleet"]);
    let cache = tempfile::tempdir().unwrap();
    let o = varsmith(&ws, &fleet, cache.path(), &["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(fleet.join("sops/machines/alpha/facts/hello/pub")).unwrap(),
        b"one\n"
    );
    let o = varsmith(&ws, &fleet, cache.path(), &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // A committed change to ../gens.nix (its validation: a script edit alone is a notice).
    std::fs::write(
        top.join("gens.nix"),
        r#"{ script = "echo two > $out/pub"; validation = 2; }"#,
    )
    .unwrap();
    git(&top, &["commit", "-q", "-am", "two"]);
    let o = varsmith(&ws, &fleet, cache.path(), &["check"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("hello"), "{}", stdout(&o));
    let o = varsmith(&ws, &fleet, cache.path(), &["generate", "--plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("alpha/hello: definition changed"),
        "{}",
        stdout(&o)
    );
    let o = varsmith(&ws, &fleet, cache.path(), &["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(fleet.join("sops/machines/alpha/facts/hello/pub")).unwrap(),
        b"two\n"
    );
}

/// A fleet flake listing `machines/` with readDir, each machine's `hello` script from its own
/// directory's `default.nix`.
const FLEET: &str = r#"{
  outputs = { self }: let
    sys = "x86_64-linux";
    coreutils = derivation {
      name = "some-coreutils"; system = sys; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out/bin; for t in echo cat; do ln -s $(command -v $t) $out/bin/; done" ];
    };
    keygen = derivation {
      name = "keygen"; system = sys; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out/bin; ln -s $(command -v ssh-keygen) $out/bin/" ];
    };
    file = secret: { inherit secret; deploy = true; owner = "root"; group = "root"; mode = "0400"; neededFor = "services"; };
    mk = name: let m = import (./machines + "/${name}"); in {
      options.varsmith = { };
      config.nixpkgs.system = sys;
      config.varsmith = {
        machineName = name;
        deploy = { targetHost = null; tags = [ ]; backend = null; };
        generators.openssh = { share = false; dependencies = [ ]; validation = null; runtimeInputs = [ keygen ]; prompts = { };
          files."ssh_host_ed25519_key" = file true; files."ssh_host_ed25519_key.pub" = file false;
          script = "ssh-keygen -q -t ed25519 -N '' -C '' -f $out/ssh_host_ed25519_key"; };
        generators.hello = { share = false; dependencies = [ ]; validation = m.validation or null; runtimeInputs = [ coreutils ]; prompts = { };
          files.pub = file false; script = m.script; };
      };
    };
  in { nixosConfigurations = builtins.mapAttrs (n: _: mk n) (builtins.readDir ./machines); };
}
"#;

/// A workspace with an admin and the flake `flake`, and its root.
fn fleet_ws(flake: &str) -> (Ws, PathBuf) {
    let ws = Ws::new("admins:\n  alice: ADMIN\n");
    let root = ws.root().to_path_buf();
    std::fs::write(root.join("flake.nix"), flake).unwrap();
    (ws, root)
}

/// Writes `body` at `rel` under `root`, making its directories.
fn put(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// The `hello` fact of machine `m`.
fn hello(root: &Path, m: &str) -> String {
    std::fs::read_to_string(root.join(format!("sops/machines/{m}/facts/hello/pub"))).unwrap()
}

#[test]
fn only_the_machine_whose_own_files_changed_is_evaluated_again() {
    if !tools() {
        return;
    }
    let (ws, root) = fleet_ws(FLEET);
    let put = |rel: &str, body: &str| put(&root, rel, body);
    let script =
        |s: &str, v: u32| format!("{{ script = \"echo {s} > $out/pub\"; validation = {v}; }}\n");
    put("machines/alpha/default.nix", "import ./own.nix\n");
    put("machines/alpha/own.nix", &script("alpha1", 1));
    put("machines/beta/default.nix", &script("beta1", 1));
    // gamma borrows a file from alpha's directory: alpha's files are not alpha's alone.
    put("machines/gamma/default.nix", "import ../alpha/own.nix\n");
    git(&root, &["init", "-q"]);
    git(&root, &["add", "flake.nix", "varsmith.yaml", "machines"]);
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = varsmith(&ws, &root, cache.path(), args);
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        o
    };
    run(&["generate"]);
    assert_eq!(hello(&root, "beta"), "beta1\n");
    assert_eq!(hello(&root, "gamma"), "alpha1\n");

    // beta's own file: only beta is evaluated again, and its new definition is used.
    put("machines/beta/default.nix", &script("beta2", 2));
    let o = run(&["generate"]);
    assert!(
        stderr(&o).contains("re-evaluated 1 of 3 flake configurations"),
        "{}",
        stderr(&o)
    );
    assert_eq!(hello(&root, "beta"), "beta2\n");
    // Nothing changed: nothing evaluated, nothing said.
    let o = run(&["check"]);
    assert!(!stderr(&o).contains("evaluated"), "{}", stderr(&o));

    // alpha's file that gamma imports: both see the change (everything is evaluated).
    put("machines/alpha/own.nix", &script("alpha2", 2));
    let o = run(&["generate"]);
    assert!(!stderr(&o).contains("re-evaluated"), "{}", stderr(&o));
    assert_eq!(hello(&root, "alpha"), "alpha2\n");
    assert_eq!(hello(&root, "gamma"), "alpha2\n");

    // A file outside the machines' directories: everything again.
    put("machines/beta/default.nix", "import ../../shared.nix\n");
    put("shared.nix", &script("shared", 3));
    git(&root, &["add", "shared.nix"]);
    run(&["generate"]);
    assert_eq!(hello(&root, "beta"), "shared\n");
    put("shared.nix", &script("shared2", 4));
    let o = run(&["generate"]);
    assert!(!stderr(&o).contains("re-evaluated"), "{}", stderr(&o));
    assert_eq!(hello(&root, "beta"), "shared2\n");
    let o = run(&["check"]);
    assert_eq!(o.status.code(), Some(0));
}

/// [`FLEET`] with every `hello` script from the shared `lib.nix` (a global file: read by
/// every configuration), and a shared generator `wifi` on the machines whose directory says so.
const SHARING_FLEET: &str = r#"{
  outputs = { self }: let
    sys = "x86_64-linux";
    lib = import ./lib.nix;
    coreutils = derivation {
      name = "some-coreutils"; system = sys; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p $out/bin; for t in echo cat; do ln -s $(command -v $t) $out/bin/; done" ];
    };
    file = secret: { inherit secret; deploy = true; owner = "root"; group = "root"; mode = "0400"; neededFor = "services"; };
    gen = share: script: { inherit share script; dependencies = [ ]; validation = lib.tag; runtimeInputs = [ coreutils ]; prompts = { }; files.pub = file false; };
    mk = name: let m = import (./machines + "/${name}"); in {
      options.varsmith = { };
      config.nixpkgs.system = sys;
      config.varsmith = {
        machineName = name;
        deploy = { targetHost = null; tags = [ ]; backend = null; };
        generators = { hello = gen false "echo ${lib.tag}-${name} > $out/pub"; }
          // (if m.wifi then { wifi = gen true "echo ${lib.tag} > $out/pub"; } else { });
      };
    };
  in { nixosConfigurations = builtins.mapAttrs (n: _: mk n) (builtins.readDir ./machines); };
}
"#;

#[test]
fn a_selected_machine_is_evaluated_with_its_sharers_only_when_shared_files_change() {
    if !tools() {
        return;
    }
    let (ws, root) = fleet_ws(SHARING_FLEET);
    let put = |rel: &str, body: &str| put(&root, rel, body);
    put("lib.nix", "{ tag = \"one\"; }\n");
    for (m, wifi) in [
        ("alpha", true),
        ("beta", true),
        ("gamma", false),
        ("delta", false),
    ] {
        put(
            &format!("machines/{m}/default.nix"),
            &format!("{{ wifi = {wifi}; }}\n"),
        );
    }
    git(&root, &["init", "-q"]);
    git(
        &root,
        &["add", "flake.nix", "varsmith.yaml", "lib.nix", "machines"],
    );
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = varsmith(&ws, &root, cache.path(), args);
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        stderr(&o)
    };
    run(&["generate"]);
    assert_eq!(hello(&root, "delta"), "one-delta\n");

    // The shared file changed: `generate gamma` evaluates gamma alone (it shares nothing).
    put("lib.nix", "{ tag = \"two\"; }\n");
    let err = run(&["generate", "gamma"]);
    assert!(
        err.contains("evaluated 1 of 4 flake configurations (the selected machines"),
        "{err}"
    );
    assert_eq!(hello(&root, "gamma"), "two-gamma\n");
    assert_eq!(hello(&root, "delta"), "one-delta\n");

    // alpha shares `wifi` with beta: both are evaluated, and the shared value is the new one.
    let err = run(&["generate", "alpha"]);
    assert!(
        err.contains("re-evaluated 2 of 4 flake configurations") && err.contains("1 other(s)"),
        "{err}"
    );
    assert_eq!(hello(&root, "alpha"), "two-alpha\n");
    assert_eq!(
        std::fs::read_to_string(root.join("sops/shared/facts/wifi/pub")).unwrap(),
        "two\n"
    );

    // A command on the whole fleet evaluates what is left, and sees the new definition.
    let err = run(&["generate"]);
    assert!(
        err.contains("re-evaluated 1 of 4 flake configurations"),
        "{err}"
    );
    assert_eq!(hello(&root, "delta"), "two-delta\n");
    let o = varsmith(&ws, &root, cache.path(), &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A machine added (and the shared file changed): the fleet-wide steps must see it, so
    // everything is evaluated even for one selected machine.
    put("lib.nix", "{ tag = \"three\"; }\n");
    put("machines/epsilon/default.nix", "{ wifi = true; }\n");
    git(&root, &["add", "machines"]);
    let err = run(&["generate", "gamma"]);
    assert!(!err.contains("(the selected machines"), "{err}");
    assert_eq!(hello(&root, "gamma"), "three-gamma\n");
    let err = run(&["generate"]);
    assert!(!err.contains("evaluated"), "{err}");
    assert_eq!(hello(&root, "epsilon"), "three-epsilon\n");
}
