//! Shared helpers for the sops integration tests (real `sops`, `age`, `varsmith` binaries).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::ci;
pub use ci::require;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// tests/fixtures/sops/<name>.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/sops").join(name)
}

/// sops/<rel> (interop vectors).
pub fn vector(rel: &str) -> PathBuf {
    root().join("sops").join(rel)
}

/// A command with a clean sops/age environment: HOME is an empty temp dir, no SOPS_* keys.
pub fn clean(cmd: &str, home: &Path) -> Command {
    let mut c = Command::new(cmd);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SOPS_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    c
}

/// `varsmith` with a clean environment.
pub fn varsmith(home: &Path) -> Command {
    clean(env!("CARGO_BIN_EXE_varsmith"), home)
}

/// `sops decrypt [args] file` with `key` as SOPS_AGE_KEY_FILE.
pub fn sops_decrypt(home: &Path, key: &Path, args: &[&str], file: &Path) -> Output {
    clean("sops", home)
        .env("SOPS_AGE_KEY_FILE", key)
        .arg("decrypt")
        .args(args)
        .arg(file)
        .output()
        .expect("run sops")
}

/// `varsmith sops decrypt file` with `key` as SOPS_AGE_KEY_FILE.
pub fn vs_decrypt(home: &Path, key: &Path, file: &Path) -> Output {
    varsmith(home)
        .env("SOPS_AGE_KEY_FILE", key)
        .args(["sops", "decrypt"])
        .arg(file)
        .output()
        .expect("run varsmith")
}

/// The age recipient of an identity file (`age-keygen -y`).
pub fn recipient_of(key: &Path) -> String {
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(key)
        .output()
        .expect("age-keygen");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Loads identities from one key file.
pub fn ids(key: &Path) -> varsmith::keys::Identities {
    let mut ids = varsmith::keys::Identities::new();
    ids.add_text(
        &std::fs::read(key).unwrap(),
        varsmith::keys::IdentitySource::File(key.to_path_buf()),
    )
    .unwrap();
    ids
}

/// Asserts success and returns stdout.
pub fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd` (stdin from `input`), with a wall-clock guard that only detects hangs: after
/// `guard` the child is killed and the test fails. Returns the output and the elapsed time.
pub fn run_guarded(
    mut cmd: Command,
    input: &[u8],
    guard: std::time::Duration,
) -> (Output, std::time::Duration) {
    use std::io::Write;
    use std::process::Stdio;
    let start = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(guard) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the command did not finish within {guard:?} (hang?)");
        }
    };
    let _ = feeder.join();
    (out, start.elapsed())
}
