//! `deploy --dry-activate` of a nix-darwin machine is a preview that never activates
//! (issue 23, item 3), run against nix-darwin's real `darwin-rebuild` script from the offline
//! kit, with stand-ins for what it calls (`nix`, `nix-env`, and the built system's
//! `activate`): it builds, runs the activation's checks only (`checkActivation=1`), changes no
//! profile, and shows what would change with `nix store diff-closures`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::remote::{deploy_dir, require_as_root, script, write_inventory};

/// The kit's nix-darwin tarball: `$VARSMITH_NIX_KIT` (scripts/test.sh sets it), else the
/// development machines' `/work/shared/nix`.
fn kit_tarball() -> PathBuf {
    std::env::var_os("VARSMITH_NIX_KIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/nix"))
        .join("nix-darwin-2026-06.tar.gz")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The kit's `darwin-rebuild.sh`, its `@…@` placeholders filled in as nix-darwin's package does.
fn kit_darwin_rebuild(dir: &Path, bin: &Path) -> PathBuf {
    let kit = kit_tarball();
    if !kit.is_file() {
        assert!(
            !crate::util::remote::in_ci(),
            "CI=true and {} is missing",
            kit.display()
        );
        crate::util::ci::skipped(&format!("{} missing", kit.display()));
        return PathBuf::new();
    }
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&kit)
        .arg("-C")
        .arg(dir)
        .args(["--wildcards", "*/pkgs/nix-tools/darwin-rebuild.sh"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let src =
        std::fs::read_to_string(dir.join("nix-darwin/pkgs/nix-tools/darwin-rebuild.sh")).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let body = src
        .replace("@shell@", "/usr/bin/bash")
        .replace("@path@", &path)
        .replace("@nixPath@", "")
        .replace("@profile@", &dir.join("profile").to_string_lossy());
    let p = bin.join("darwin-rebuild");
    script(&p, &body);
    p
}

#[test]
fn the_darwin_preview_checks_and_diffs_but_never_activates() {
    if !require_as_root(&["bash", "jq", "tar"]) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let d = scratch.path();
    let bin = d.join("bin");
    std::fs::create_dir(&bin).unwrap();
    if kit_darwin_rebuild(d, &bin).as_os_str().is_empty() {
        return;
    }
    let log = d.join("calls.log");
    let system = d.join("system");
    std::fs::create_dir(&system).unwrap();
    script(
        &system.join("activate"),
        &format!(
            "#!/bin/sh\necho \"activate checkActivation=${{checkActivation:-}}\" >> '{}'\n",
            log.display()
        ),
    );
    script(
        &bin.join("nix"),
        &format!(
            r#"#!/bin/sh
echo "nix $*" >> '{log}'
case " $* " in
  *" build --json "*) echo '[{{"outputs":{{"out":"{sys}"}}}}]' ;;
  *" --print-out-paths "*) echo '{sys}' ;;
  *" store diff-closures "*) echo 'hello: 2.10 → 2.12, +12.0 KiB' ;;
esac
"#,
            log = log.display(),
            sys = system.display()
        ),
    );
    script(
        &bin.join("nix-env"),
        &format!("#!/bin/sh\necho \"nix-env $*\" >> '{}'\n", log.display()),
    );
    let ws = deploy_dir();
    write_inventory(
        ws.path(),
        "machines:\n  mac:\n    target: localhost\n    system: aarch64-darwin\n",
    );
    let mut path = vec![bin.clone()];
    path.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    let out = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.path())
        .args(["deploy", "mac", "--dry-activate", "--no-check"])
        .env("PATH", std::env::join_paths(path).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines,
        [
            "nix --extra-experimental-features nix-command flakes build --json --show-trace --no-link -- .#darwinConfigurations.mac.system",
            "activate checkActivation=1",
            "nix --extra-experimental-features nix-command flakes build --no-link --print-out-paths .#darwinConfigurations.mac.system",
            &format!(
                "nix --extra-experimental-features nix-command flakes store diff-closures /run/current-system {}",
                system.display()
            ),
        ],
        "{calls}"
    );
    assert!(!calls.contains("nix-env"), "the profile changed: {calls}");
    assert!(!d.join("profile").exists());
    let shown = text(&out.stdout) + &text(&out.stderr);
    assert!(shown.contains("preview only, nothing activated"), "{shown}");
    assert!(shown.contains("hello: 2.10 → 2.12"), "{shown}");

    // The dry run prints that script, and a remote target gets it over ssh.
    let dry = Command::new(env!("CARGO_BIN_EXE_varsmith"))
        .arg("-C")
        .arg(ws.path())
        .args([
            "deploy",
            "mac",
            "root@mac.example.org",
            "--dry-activate",
            "--dry-run",
            "--no-check",
        ])
        .output()
        .unwrap();
    let dry = text(&dry.stdout);
    assert!(dry.contains("darwin-rebuild check --flake"), "{dry}");
    assert!(!dry.contains("darwin-rebuild switch"), "{dry}");
}
