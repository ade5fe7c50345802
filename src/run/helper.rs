//! varsmith itself as a tool of generator scripts: `varsmith zerotier …` (and any other
//! subcommand that needs no workspace) works in every script, sandboxed or not, with no
//! package the user may lack.
//!
//! * The binary is the running executable, resolved once per process (for a program that
//!   embeds the library, e.g. a test, the one given to [`use_binary`]; an executable that is
//!   not named `varsmith` gives no helper rather than itself).
//! * In the sandbox it is bound read-only at [`SANDBOX_BIN`], its directory first on the
//!   script's `PATH` (before a Nix generator's pinned inputs too). The bind goes through a
//!   descriptor varsmith opened, so it works whatever the sandbox uid may traverse on the host
//!   (a checkout under `/root`), and bubblewrap closes the descriptor before the script starts.
//! * With `--no-sandbox` the run directory gets `bin/varsmith`, a symlink to the binary, first
//!   on `PATH`: the script sees varsmith and nothing else of the binary's directory.
//!
//! The binary's libraries come from the system directories the sandbox binds anyway (`/usr`,
//! `/lib…`, `/nix/store`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where the binary appears inside the sandbox.
pub const SANDBOX_BIN: &str = "/run/varsmith/bin/varsmith";
/// Its directory, first on the sandboxed script's `PATH`.
pub const SANDBOX_BIN_DIR: &str = "/run/varsmith/bin";

/// The resolved helper: its path on the host and an open descriptor of it.
struct Helper {
    path: PathBuf,
    file: File,
}

static CHOSEN: OnceLock<PathBuf> = OnceLock::new();
static HELPER: OnceLock<Option<Helper>> = OnceLock::new();

/// Uses `path` as the helper binary instead of the running executable. Only the first call
/// before the first run counts (the helper is resolved once).
pub fn use_binary(path: impl Into<PathBuf>) {
    let _ = CHOSEN.set(path.into());
}

fn helper() -> Option<&'static Helper> {
    HELPER.get_or_init(resolve).as_ref()
}

fn resolve() -> Option<Helper> {
    if let Some(path) = CHOSEN.get() {
        let file = File::open(path).ok()?;
        return Some(Helper {
            path: path.clone(),
            file,
        });
    }
    let path = std::env::current_exe().ok()?;
    if path.file_name()? != "varsmith" {
        return None;
    }
    // The running binary itself, even if its path has been replaced since it started.
    let file = File::open("/proc/self/exe")
        .or_else(|_| File::open(&path))
        .ok()?;
    Some(Helper { path, file })
}

/// Whether scripts get a `varsmith` command.
pub fn available() -> bool {
    helper().is_some()
}

/// Adds the read-only bind of the helper to a bubblewrap command line (nothing without a
/// helper). The descriptor is inherited by bubblewrap only, which closes it after the mount.
/// A bubblewrap older than 0.5 (no `--ro-bind-fd`) binds the path instead, which then has to
/// be reachable by the sandbox uid.
pub fn bind(cmd: &mut Command) {
    let Some(h) = helper() else { return };
    cmd.args(["--dir", SANDBOX_BIN_DIR]);
    if !bwrap_binds_fds() {
        cmd.arg("--ro-bind").arg(&h.path).arg(SANDBOX_BIN);
        return;
    }
    let fd = h.file.as_raw_fd();
    cmd.arg("--ro-bind-fd").arg(fd.to_string()).arg(SANDBOX_BIN);
    let keep = move || {
        // SAFETY: fcntl is async-signal-safe; it clears close-on-exec on the child's own copy
        // of a descriptor that stays open for the life of the process.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure only calls an async-signal-safe function.
    unsafe { std::os::unix::process::CommandExt::pre_exec(cmd, keep) };
}

/// Does this host's bubblewrap have `--ro-bind-fd` (0.5 and later)? Asked once.
fn bwrap_binds_fds() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        let bwrap = super::sandbox::which("bwrap").unwrap_or_else(|| "bwrap".into());
        Command::new(bwrap)
            .arg("--help")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("--ro-bind-fd"))
    })
}

/// The sandboxed script's `PATH`: the helper's directory, then `path`.
pub fn sandbox_path(path: &str) -> String {
    if available() {
        prepend(SANDBOX_BIN_DIR, path)
    } else {
        path.to_string()
    }
}

/// `dir:path`, or `dir` alone for an empty `path` (an empty entry would mean the current
/// directory).
fn prepend(dir: &str, path: &str) -> String {
    if path.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}:{path}")
    }
}

/// For `--no-sandbox`: creates `dir` holding `varsmith`, a symlink to the helper (nothing
/// without a helper).
pub fn link(dir: &Path) -> std::io::Result<()> {
    let Some(h) = helper() else { return Ok(()) };
    std::fs::create_dir(dir)?;
    std::os::unix::fs::symlink(&h.path, dir.join("varsmith"))
}

/// For `--no-sandbox`: the script's `PATH`, `dir` (see [`link`]) first.
pub fn unsandboxed_path(dir: &Path, path: &str) -> String {
    if available() {
        prepend(&dir.display().to_string(), path)
    } else {
        path.to_string()
    }
}
