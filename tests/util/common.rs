//! Shared helpers for the core integration tests: temporary workspaces, running the binary,
//! and the real tools' availability (a missing tool fails in CI, skips elsewhere).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::ci;
pub use ci::{in_ci, require};

/// A temporary workspace with an admin key.
pub struct Ws {
    pub dir: tempfile::TempDir,
    /// Private run-directory base (XDG_RUNTIME_DIR of every run), on tmpfs when available.
    pub runtime: tempfile::TempDir,
    pub key: PathBuf,
    pub recipient: String,
}

impl Ws {
    /// A workspace whose varsmith.yaml is `inventory` with `ADMIN` replaced by a fresh admin
    /// recipient.
    pub fn new(inventory: &str) -> Ws {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("admin.agekey");
        let recipient = varsmith::keys::keygen::append_admin_key(&key).expect("keygen");
        std::fs::write(
            dir.path().join("varsmith.yaml"),
            inventory.replace("ADMIN", &recipient),
        )
        .expect("write inventory");
        let runtime = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").expect("runtime dir")
        } else {
            tempfile::tempdir().expect("runtime dir")
        };
        Ws {
            dir,
            runtime,
            key,
            recipient,
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `generators/<name>.yaml`.
    pub fn generator(&self, name: &str, text: &str) {
        let d = self.root().join("generators");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join(format!("{name}.yaml")), text).expect("write generator");
    }

    /// Runs varsmith in the workspace with the admin identity.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, b"")
    }

    /// Runs varsmith with `stdin` as input.
    pub fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn varsmith");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        child.wait_with_output().expect("wait")
    }

    /// The varsmith command for `args`, with the admin identity and a private run directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_varsmith"));
        c.arg("-C")
            .arg(self.root())
            .args(args)
            .env("SOPS_AGE_KEY_FILE", &self.key)
            .env_remove("SOPS_AGE_KEY")
            .env("XDG_RUNTIME_DIR", self.runtime.path())
            .env("HOME", self.root().join("home"));
        c
    }

    /// Names of the run directories left in the private run-directory base.
    pub fn leftover_run_dirs(&self) -> Vec<String> {
        std::fs::read_dir(self.runtime.path())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every file under the workspace with its bytes and mtime (to compare before/after).
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
        let mut out = Vec::new();
        fn walk(d: &Path, out: &mut Vec<(PathBuf, Vec<u8>, std::time::SystemTime)>) {
            let Ok(rd) = std::fs::read_dir(d) else { return };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if let Ok(m) = p.metadata() {
                    out.push((
                        p.clone(),
                        std::fs::read(&p).unwrap_or_default(),
                        m.modified().expect("mtime"),
                    ));
                }
            }
        }
        walk(self.root(), &mut out);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Decrypts with the real sops binary; returns stdout.
pub fn sops_decrypt(file: &Path, key: &Path) -> Output {
    Command::new("sops")
        .args(["decrypt"])
        .arg(file)
        .env("SOPS_AGE_KEY_FILE", key)
        .env_remove("SOPS_AGE_KEY")
        .output()
        .expect("run sops")
}
