//! The store under hostile workspaces and concurrent, crashing or misconfigured runs: symlinks
//! at every component of the layout, two writers at once, a umask of 000, a SIGSEGV, a panic
//! in a run, a workspace inside a larger repository, a `.sops.yaml` that cannot be written,
//! and one exit code per kind of error whichever command meets it.

use crate::util::common::*;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const INV: &str = "admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [openssh, base]\n";

fn tools() -> bool {
    require("sops") && require("bwrap") && require("age") && require("git")
}

fn ws() -> Ws {
    let ws = Ws::new(INV);
    ws.generator(
        "base",
        "files:\n  s: {}\n  pub: { secret: false }\nscript: |\n  od -An -N16 -tx1 /dev/urandom | tr -d ' \\n' > $out/s\n  echo \"public-$machine\" > $out/pub\n",
    );
    ws
}

/// Every file under `dir` with its bytes and mode.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>, u32)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                walk(&p, out);
            }
            let bytes = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.push((p, bytes, m.permissions().mode()));
        }
    }
    walk(dir, &mut out);
    out.sort();
    out
}

/// The layout paths (relative to the workspace) a generate of m1 writes through.
const COMPONENTS: &[&str] = &[
    "sops",
    "sops/machines",
    "sops/machines/m1",
    "sops/machines/m1/facts",
    "sops/machines/m1/facts/base",
    "sops/machines/m1/facts/base/pub",
    "sops/machines/m1/secrets",
    "sops/machines/m1/secrets/base.yaml",
    "sops/machines/m1/state",
    "sops/machines/m1/state/base.json",
    "sops/machines/m1/key.json",
    "sops/.tmp",
    ".sops.yaml",
];

#[test]
fn a_symlink_at_any_component_is_refused_and_nothing_outside_changes() {
    if !tools() {
        return;
    }
    for rel in COMPONENTS {
        let ws = ws();
        // A first run creates the layout; then one component becomes a symlink to a victim
        // directory (or file) outside the workspace holding a canary.
        assert!(ws.run(&["generate"]).status.success(), "{rel}: first run");
        let victim = tempfile::tempdir().unwrap();
        std::fs::write(victim.path().join("canary"), b"keep me").unwrap();
        std::fs::write(victim.path().join("pub"), b"keep me").unwrap();
        std::fs::write(victim.path().join("base.yaml"), b"keep me").unwrap();
        std::fs::write(victim.path().join("base.json"), b"keep me").unwrap();
        let p = ws.root().join(rel);
        let is_dir = p.is_dir();
        if is_dir {
            std::fs::remove_dir_all(&p).unwrap();
            std::os::unix::fs::symlink(victim.path(), &p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink(victim.path().join("canary"), &p).unwrap();
        }
        let before = tree(victim.path());
        let o = ws.run(&["generate", "--regenerate", "--rotate-host-key"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{rel}: {err}");
        assert!(err.contains("symlink"), "{rel}: {err}");
        assert!(
            err.contains(rel),
            "{rel}: the message names the path: {err}"
        );
        assert_eq!(before, tree(victim.path()), "{rel}: the victim changed");
        // `check` does not say ok about it either (the .sops.yaml / .tmp links aside, which
        // hold no var).
        if !matches!(
            *rel,
            ".sops.yaml" | "sops/.tmp" | "sops/machines/m1/key.json"
        ) {
            let o = ws.run(&["check"]);
            assert_ne!(o.status.code(), Some(0), "{rel}: check said ok");
        }
    }
}

#[test]
fn two_concurrent_generates_never_tear_anything() {
    if !tools() {
        return;
    }
    let ws = ws();
    assert!(ws.run(&["generate"]).status.success());
    for round in 0..20 {
        let spawn = || {
            ws.command(&["generate", "--regenerate", "-g", "base"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "round {round}: {}", stderr(&a));
        assert!(b.status.success(), "round {round}: {}", stderr(&b));
        let o = ws.run(&["check"]);
        assert_eq!(o.status.code(), Some(0), "round {round}: {}", stdout(&o));
    }
}

#[test]
fn a_second_writer_waits_and_names_the_holder() {
    if !tools() {
        return;
    }
    let ws = ws();
    assert!(ws.run(&["generate"]).status.success());
    // Hold the lock from here (flock on the lock file), start a writer, read its stderr until
    // it says it waits, then release: it finishes.
    let lock = std::fs::File::open(ws.root().join("sops/.tmp/lock")).unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut child = ws
        .command(&["generate", "--regenerate", "-g", "base"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert!(line.contains("waiting for the workspace lock"), "{line}");
    assert!(
        line.contains(&format!("pid {}", std::process::id())),
        "{line}"
    );
    drop(lock);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
}

#[test]
fn umask_000_creates_nothing_group_or_world_writable() {
    if !tools() {
        return;
    }
    let ws = ws();
    let mut c = ws.command(&["generate"]);
    // SAFETY: umask in the child before exec.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for (p, _, mode) in tree(&ws.root().join("sops")) {
        assert_eq!(
            mode & 0o022,
            0,
            "{} is mode {:o}",
            p.display(),
            mode & 0o7777
        );
    }
    let sops_yaml = std::fs::metadata(ws.root().join(".sops.yaml")).unwrap();
    assert_eq!(sops_yaml.permissions().mode() & 0o022, 0);
}

#[test]
fn a_segfaulting_varsmith_leaves_no_core() {
    if !tools() {
        return;
    }
    let ws = ws();
    let cwd = tempfile::tempdir().unwrap();
    let mut c = ws.command(&["generate"]);
    c.current_dir(cwd.path())
        .env("VARSMITH_FAULT", "generate.prepared:1:segv");
    // SAFETY: setrlimit in the child before exec: cores allowed unless varsmith forbids them.
    unsafe {
        c.pre_exec(|| {
            let inf = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &inf);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.signal(), Some(libc::SIGSEGV), "{}", stderr(&o));
    assert!(!o.status.core_dumped(), "a core was dumped");
    let cores: Vec<_> = std::fs::read_dir(cwd.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("core"))
        .collect();
    assert!(cores.is_empty(), "{cores:?}");
}

#[test]
fn a_panicking_run_fails_cleanly_and_the_rest_goes_on() {
    if !tools() {
        return;
    }
    let ws = ws();
    let o = ws
        .command(&["generate", "--jobs", "1"])
        .env("VARSMITH_FAULT", "generate.prepared:1:panic")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("panicked"), "{err}");
    // The first run (the host key) panicked, its dependents were skipped, and a rerun fixes it.
    assert!(err.contains("skipped m1/base"), "{err}");
    assert!(ws.run(&["generate"]).status.success());
    assert_eq!(ws.run(&["check"]).status.code(), Some(0));
}

#[test]
fn a_workspace_inside_a_repository_is_staged_and_git_failures_fail() {
    if !tools() {
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .env("HOME", repo.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
    };
    git(&["init", "-q"]);
    let ws = ws();
    let sub = repo.path().join("fleet");
    std::fs::create_dir(&sub).unwrap();
    for f in ["varsmith.yaml", "admin.agekey"] {
        std::fs::copy(ws.root().join(f), sub.join(f)).unwrap();
    }
    std::fs::create_dir(sub.join("generators")).unwrap();
    std::fs::copy(
        ws.root().join("generators/base.yaml"),
        sub.join("generators/base.yaml"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_varsmith"))
            .arg("-C")
            .arg(&sub)
            .args(args)
            .env("SOPS_AGE_KEY_FILE", sub.join("admin.agekey"))
            .env("XDG_RUNTIME_DIR", ws.runtime.path())
            .env("HOME", repo.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
    };
    let o = run(&["generate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st = stdout(&git(&["status", "--porcelain"]));
    assert!(
        st.contains(" A fleet/sops/machines/m1/secrets/base.yaml"),
        "{st}"
    );
    // --commit with no git identity: git refuses, and so does varsmith (exit 1, git's message).
    let o = run(&["generate", "--regenerate", "-g", "base", "--commit"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("git commit failed"), "{err}");
}

#[test]
fn an_unwritable_sops_yaml_is_reported() {
    if !tools() {
        return;
    }
    let ws = ws();
    std::fs::create_dir(ws.root().join(".sops.yaml")).unwrap();
    let o = ws.run(&["generate"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(".sops.yaml"), "{err}");
}

#[test]
fn a_malformed_secrets_file_exits_2_through_every_command_and_says_it_once() {
    if !tools() {
        return;
    }
    let ws = ws();
    assert!(ws.run(&["generate"]).status.success());
    let f = ws.root().join("sops/machines/m1/secrets/base.yaml");
    std::fs::write(&f, "s: [unclosed\n").unwrap();
    for args in [
        vec!["get", "m1", "base/s"],
        vec!["sops", "decrypt", f.to_str().unwrap()],
        vec!["rekey"],
    ] {
        let o = ws.run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        let mut seen = std::collections::HashSet::new();
        for l in &lines {
            let msg = l
                .trim_start_matches("error: ")
                .trim_start_matches("  caused by: ");
            assert!(seen.insert(msg), "{args:?}: repeated message: {err}");
        }
    }
}

#[test]
fn nesting_100000_deep_and_alias_bombs_exit_2_at_once() {
    let deep = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12u8 {
        let (p, c) = ((b'a' + i - 1) as char, (b'a' + i) as char);
        bomb.push_str(&format!(
            "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        ));
    }
    let cases = [
        ("varsmith.yaml", format!("admins: {deep}\n"), None),
        ("varsmith.yaml", format!("{bomb}admins: *l\n"), None),
        (
            "generators/g.yaml",
            format!("validation: {deep}\nscript: x\n"),
            Some(()),
        ),
        (
            "generators/g.yaml",
            format!("{bomb}validation: *l\nscript: x\n"),
            Some(()),
        ),
    ];
    for (file, text, is_generator) in cases {
        let ws = Ws::new("admins:\n  alice: ADMIN\nmachines:\n  m1:\n    generators: [g]\n");
        if is_generator.is_some() {
            std::fs::create_dir_all(ws.root().join("generators")).unwrap();
        }
        std::fs::write(ws.root().join(file), &text).unwrap();
        let before = ws.snapshot();
        let mut child = ws
            .command(&["generate"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A hang detector only (the run takes milliseconds): no timing is asserted.
        let pid = child.id() as i32;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let guard = std::thread::spawn(move || {
            std::thread::park_timeout(std::time::Duration::from_secs(60));
            if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                // SAFETY: signalling our own child, not yet reaped (wait has not returned).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let err_pipe = child.stderr.take().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut { err_pipe }, &mut err).unwrap();
        // Mark done before reaping, so the guard never signals a reused pid.
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        guard.thread().unpark();
        let status = child.wait().unwrap();
        let o = std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: err.into_bytes(),
        };
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{file}: {err}");
        assert!(err.contains(file), "{file}: {err}");
        assert!(
            err.contains("nested deeper") || err.contains("aliases"),
            "{file}: {err}"
        );
        assert_eq!(before, ws.snapshot(), "{file}: something was written");
    }
}
