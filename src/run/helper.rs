//! varsmith itself as a tool of generator scripts: `varsmith zerotier …` (and any other
//! subcommand that needs no workspace) works in every script, sandboxed or not, with no
//! package the user may lack.
//!
//! * The binary is the running executable, resolved once per process (for a program that
//!   embeds the library, e.g. a test, the one given to [`use_binary`]; an executable that is
//!   not named `varsmith` gives no helper rather than itself).
//! * In the sandbox it is bound read-only at [`SANDBOX_BIN`], its directory first on the
//!   script's `PATH` (before a Nix generator's pinned inputs too). Run as root, the sandbox's
//!   unprivileged uid must reach the binary's path on the host; when it cannot (a checkout
//!   under `/root`, a 0750 home), the binary is copied once per process into a plaintext-style
//!   directory on tmpfs given to that uid (removed at exit, on a signal, or by the next run's
//!   sweep), and that copy is bound.
//! * With `--no-sandbox` the run directory gets `bin/varsmith`, a symlink to the binary, first
//!   on `PATH`: the script sees varsmith and nothing else of the binary's directory.
//!
//! The binary's libraries come from the system directories the sandbox binds anyway (`/usr`,
//! `/lib…`, `/nix/store`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::identity::RunIdentity;
use crate::process::tmpfs::PlaintextDir;

/// Where the binary appears inside the sandbox.
pub const SANDBOX_BIN: &str = "/run/varsmith/bin/varsmith";
/// Its directory, first on the sandboxed script's `PATH`.
pub const SANDBOX_BIN_DIR: &str = "/run/varsmith/bin";

static CHOSEN: OnceLock<PathBuf> = OnceLock::new();
static HELPER: OnceLock<Option<PathBuf>> = OnceLock::new();
/// What the sandbox binds: the helper's path, or its copy.
static SANDBOX_SOURCE: OnceLock<PathBuf> = OnceLock::new();
/// The directory holding the copy, if one was made.
static COPY_DIR: Mutex<Option<PlaintextDir>> = Mutex::new(None);

/// Uses `path` as the helper binary instead of the running executable. Only the first call
/// before the first run counts (the helper is resolved once).
pub fn use_binary(path: impl Into<PathBuf>) {
    let _ = CHOSEN.set(path.into());
}

fn helper() -> Option<&'static Path> {
    HELPER.get_or_init(resolve).as_deref()
}

fn resolve() -> Option<PathBuf> {
    if let Some(path) = CHOSEN.get() {
        return path.is_file().then(|| path.clone());
    }
    let path = std::env::current_exe().ok()?;
    (path.file_name()? == "varsmith" && path.is_file()).then_some(path)
}

/// Can a uid that is neither owner nor group reach and run `path` (o+x on it and on every
/// directory above it)?
fn reachable_by_others(path: &Path) -> bool {
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    real.ancestors().all(|p| {
        p.metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

/// The path the sandbox binds: the helper itself when the sandbox's uid can reach it, else a
/// copy made once (see the module documentation).
fn sandbox_source(helper: &Path) -> PathBuf {
    SANDBOX_SOURCE
        .get_or_init(|| {
            let id = RunIdentity::current();
            if !id.drop_root || reachable_by_others(helper) {
                return helper.to_path_buf();
            }
            copy_for(helper, (id.uid, id.gid)).unwrap_or_else(|| helper.to_path_buf())
        })
        .clone()
}

/// Copies the running binary (or the chosen one) into a new tmpfs directory owned by `owner`.
fn copy_for(helper: &Path, owner: (u32, u32)) -> Option<PathBuf> {
    let dir = PlaintextDir::new(Some(owner)).ok()?;
    let copy = dir.path().join("varsmith");
    let from = if CHOSEN.get().is_some() {
        helper.to_path_buf()
    } else {
        // The running binary itself, even if its path has been replaced since it started.
        PathBuf::from("/proc/self/exe")
    };
    std::fs::copy(&from, &copy).ok()?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o555)).ok()?;
    if let Ok(mut slot) = COPY_DIR.lock() {
        *slot = Some(dir);
    }
    Some(copy)
}

/// Removes the copy made for the sandbox, if any (call once the last run is over).
pub fn release() {
    if let Ok(mut slot) = COPY_DIR.lock() {
        slot.take();
    }
}

/// Whether scripts get a `varsmith` command.
pub fn available() -> bool {
    helper().is_some()
}

/// Adds the read-only bind of the helper to a bubblewrap command line (nothing without a
/// helper), for a sandbox without the prepared root (which shows the helper itself,
/// `super::skeleton`).
pub(crate) fn bind(cmd: &mut super::spawn::Spec) {
    let Some(h) = helper() else { return };
    cmd.args(["--dir", SANDBOX_BIN_DIR, "--ro-bind"])
        .arg(sandbox_source(h))
        .arg(SANDBOX_BIN);
}

/// The host file the sandbox shows at [`SANDBOX_BIN`]: the helper or its copy (`None`
/// without a helper).
pub(crate) fn source() -> Option<PathBuf> {
    helper().map(sandbox_source)
}

/// The sandboxed script's `PATH`: the helper's directory, then `path`.
pub(crate) fn sandbox_path(path: &str) -> String {
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
    std::os::unix::fs::symlink(h, dir.join("varsmith"))
}

/// For `--no-sandbox`: the script's `PATH`, `dir` (see [`link`]) first.
pub(crate) fn unsandboxed_path(dir: &Path, path: &str) -> String {
    if available() {
        prepend(&dir.display().to_string(), path)
    } else {
        path.to_string()
    }
}
