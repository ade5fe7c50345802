//! The bubblewrap command line of one run.
//!
//! Inside: a new user, pid, network, ipc, uts and cgroup namespace with no capabilities and no
//! further user namespaces; read-only system directories and `/nix/store`; `/proc` of its own
//! pid namespace with `/proc/sys` and `/proc/sysrq-trigger` read-only; no `/sys`; a minimal
//! `/dev`; a size-limited private `/tmp`; `/etc/passwd` and `/etc/group` naming the run's uid;
//! `$prompts` read-only, `$in` (a private copy) and `$out` writable; varsmith itself at
//! [`super::helper::SANDBOX_BIN`]; the environment cleared except `PATH`, `in`, `out`,
//! `prompts`, `machine`, `HOME`, `LANG`, `TMPDIR`.

use std::path::Path;
use std::process::Command;

use super::limits::Limits;

/// Paths inside the sandbox.
pub const IN: &str = "/vars/in";
/// `$out` inside the sandbox.
pub const OUT: &str = "/vars/out";
/// `$prompts` inside the sandbox.
pub const PROMPTS: &str = "/vars/prompts";
/// `$HOME` inside the sandbox.
pub const HOME: &str = "/home/varsmith";

/// System directories bound read-only (or recreated as symlinks on merged-/usr systems).
const SYSTEM_DIRS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/lib32",
    "/nix/store",
];

/// Files and directories of the host's configuration the usual tools need.
const SYSTEM_FILES: &[&str] = &[
    "/run/current-system",
    "/etc/ssl/openssl.cnf",
    "/etc/ssl/certs",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/static",
    "/etc/pki",
];

/// The run directory's parts on the host.
pub struct HostDirs<'a> {
    /// `$in`.
    pub input: &'a Path,
    /// `$out`.
    pub out: &'a Path,
    /// `$prompts`.
    pub prompts: &'a Path,
    /// Holds `passwd` and `group`.
    pub etc: &'a Path,
}

/// The environment of the script.
pub struct ScriptEnv<'a> {
    /// `PATH`.
    pub path: &'a str,
    /// `LANG`.
    pub lang: &'a str,
    /// `$machine` (empty for shared generators).
    pub machine: &'a str,
}

/// `bwrap … -- /bin/bash -euo pipefail -c SCRIPT`.
pub fn command(dirs: &HostDirs<'_>, env: &ScriptEnv<'_>, limits: &Limits, script: &str) -> Command {
    // Resolved on the host's PATH: the script's PATH (set below) may be a pinned one.
    let bwrap = super::sandbox::which("bwrap").unwrap_or_else(|| "bwrap".into());
    let mut cmd = Command::new(bwrap);
    cmd.args([
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]);
    for dir in SYSTEM_DIRS {
        // On merged-/usr systems /bin, /lib… are symlinks: recreate them instead of mounting
        // (each mount costs bwrap time on every run).
        match std::fs::read_link(dir) {
            Ok(target) => {
                cmd.arg("--symlink").arg(target).arg(dir);
            }
            Err(_) => {
                cmd.args(["--ro-bind-try", dir, dir]);
            }
        }
    }
    for f in SYSTEM_FILES {
        cmd.args(["--ro-bind-try", f, f]);
    }
    cmd.arg("--ro-bind")
        .arg(dirs.etc.join("passwd"))
        .arg("/etc/passwd");
    cmd.arg("--ro-bind")
        .arg(dirs.etc.join("group"))
        .arg("/etc/group");
    cmd.args(["--dev", "/dev", "--proc", "/proc"]);
    cmd.args(["--ro-bind", "/proc/sys", "/proc/sys"]);
    cmd.args([
        "--ro-bind-try",
        "/proc/sysrq-trigger",
        "/proc/sysrq-trigger",
    ]);
    cmd.args(["--size", &limits.max_tmp.to_string(), "--tmpfs", "/tmp"]);
    cmd.args(["--dir", HOME]);
    // A private copy, writable as clan's (`ssh-keygen -s`, `openssl -CAcreateserial`).
    cmd.arg("--bind").arg(dirs.input).arg(IN);
    cmd.arg("--ro-bind").arg(dirs.prompts).arg(PROMPTS);
    cmd.arg("--bind").arg(dirs.out).arg(OUT);
    super::helper::bind(&mut cmd);
    cmd.args(["--chdir", HOME, "--"]);
    cmd.args(["/bin/bash", "-euo", "pipefail", "-c", script]);
    cmd.env_clear()
        .env("PATH", env.path)
        .env("in", IN)
        .env("out", OUT)
        .env("prompts", PROMPTS)
        .env("machine", env.machine)
        .env("HOME", HOME)
        .env("TMPDIR", "/tmp")
        .env("LANG", env.lang);
    cmd
}

/// Checks once that bubblewrap can start a sandbox here, as the identity runs will use.
pub fn probe(drop_to: Option<(u32, u32)>) -> Result<(), String> {
    let Some(bwrap) = super::sandbox::which("bwrap") else {
        return Err("bwrap not found on PATH".into());
    };
    let mut cmd = Command::new(bwrap);
    cmd.args([
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--",
        "true",
    ])
    .stdin(std::process::Stdio::null());
    if let Some((uid, gid)) = drop_to {
        std::os::unix::process::CommandExt::uid(&mut cmd, uid);
        std::os::unix::process::CommandExt::gid(&mut cmd, gid);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(())
}
