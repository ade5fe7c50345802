//! The bubblewrap command line of one run.
//!
//! Inside: a new user, pid, network, ipc, uts and cgroup namespace with no capabilities and no
//! further user namespaces; read-only system directories and `/nix/store`; `/proc` of its own
//! pid namespace with `/proc/sys` and `/proc/sysrq-trigger` read-only; no `/sys`; a minimal
//! read-only `/dev`; `/etc/passwd` and `/etc/group` naming the run's uid; `$prompts` read-only,
//! `$in` (a private copy, writable as clan's) and `$out` writable; varsmith itself at [`super::helper::SANDBOX_BIN`]; the
//! environment cleared except `PATH`, `in`, `out`, `prompts`, `machine`, `HOME`, `LANG`,
//! `TMPDIR`; a fresh session keyring and a seccomp filter denying the keyring system calls
//! (`run::seccomp`).
//!
//! Writable places, all bounded: `/tmp`, `$HOME` and `/dev/shm` are private tmpfs mounts of
//! [`Limits::max_tmp`] bytes each; the sandbox's root is read-only: a directory prepared once
//! per process and bound read-only (`super::skeleton`: `/etc`, the merged-/usr symlinks and
//! the mountpoints), or, when that cannot be made, bubblewrap's own tmpfs remounted read-only
//! once set up; `/dev` is remounted read-only once set up. `$out` is a bind of the host run directory (the outputs
//! must outlive the sandbox): each file there is bounded by `RLIMIT_FSIZE`
//! ([`Limits::max_output`]) and the run by its time limit.

use std::path::Path;

use super::identity::RunIdentity;
use super::limits::Limits;
use super::spawn::Spec;

/// Paths inside the sandbox.
pub(crate) const IN: &str = "/vars/in";
/// `$out` inside the sandbox.
pub(crate) const OUT: &str = "/vars/out";
/// `$prompts` inside the sandbox.
pub(crate) const PROMPTS: &str = "/vars/prompts";
/// `$HOME` inside the sandbox.
pub(crate) const HOME: &str = "/home/varsmith";

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
pub(crate) struct HostDirs<'a> {
    /// `$in`; `None` when empty (then a private tmpfs, writable and bounded as `/tmp`).
    pub input: Option<&'a Path>,
    /// `$out`.
    pub out: &'a Path,
    /// `$prompts`; `None` when empty (then the prepared root's empty read-only directory).
    pub prompts: Option<&'a Path>,
}

/// The environment of the script.
pub(crate) struct ScriptEnv<'a> {
    /// `PATH`.
    pub path: &'a str,
    /// `LANG`.
    pub lang: &'a str,
    /// `$machine` (empty for shared generators).
    pub machine: &'a str,
}

/// `bwrap … -- /bin/bash -euo pipefail -c SCRIPT`, with the keyring and the descriptors
/// bubblewrap reads set up in its child ([`isolate_keyrings`]).
pub(crate) fn command(
    dirs: &HostDirs<'_>,
    env: &ScriptEnv<'_>,
    limits: &Limits,
    id: &RunIdentity,
    script: &str,
) -> Spec {
    let host = host_setup();
    let mut cmd = Spec::new(&host.bwrap);
    cmd.args([
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]);
    let helper = super::helper::source().map(|s| (super::helper::SANDBOX_BIN, s));
    let system_dirs: Vec<(&str, Option<std::path::PathBuf>)> = host
        .system_dirs
        .iter()
        .map(|(d, t)| (*d, t.clone()))
        .collect();
    let root = super::skeleton::get(&super::skeleton::Spec {
        id,
        system_dirs: &system_dirs,
        system_files: SYSTEM_FILES,
        mount_dirs: &["/dev", "/proc", "/tmp", HOME, IN, OUT, PROMPTS],
        helper,
    });
    // Without the prepared root: a bind per file, `passwd` and `group` from memory files,
    // `/` remounted read-only at the end.
    let (passwd, group) = match &root {
        Some(r) => {
            cmd.args(&r.args);
            (None, None)
        }
        None => {
            cmd.args(&host.system_args);
            for f in SYSTEM_FILES {
                cmd.args(["--ro-bind-try", f, f]);
            }
            cmd.args([
                "--perms",
                "0444",
                "--file",
                &PASSWD_FD.to_string(),
                "/etc/passwd",
            ]);
            cmd.args([
                "--perms",
                "0444",
                "--file",
                &GROUP_FD.to_string(),
                "/etc/group",
            ]);
            (
                Some(id.passwd(HOME).into_bytes()),
                Some(id.group().into_bytes()),
            )
        }
    };
    let size = limits.max_tmp.to_string();
    cmd.args(["--dev", "/dev"]);
    cmd.args([
        "--size",
        &size,
        "--tmpfs",
        "/dev/shm",
        "--remount-ro",
        "/dev",
    ]);
    cmd.args(["--proc", "/proc"]);
    cmd.args(["--ro-bind", "/proc/sys", "/proc/sys"]);
    cmd.args([
        "--ro-bind-try",
        "/proc/sysrq-trigger",
        "/proc/sysrq-trigger",
    ]);
    cmd.args(["--size", &size, "--tmpfs", "/tmp"]);
    cmd.args(["--size", &size, "--tmpfs", HOME]);
    // A private copy, writable as clan's (`ssh-keygen -s`, `openssl -CAcreateserial`).
    // An empty `$in` or `$prompts` needs no bind (each bind costs bwrap a mountinfo parse).
    match dirs.input {
        Some(input) => {
            cmd.arg("--bind").arg(input).arg(IN);
        }
        None => {
            cmd.args(["--size", &size, "--tmpfs", IN]);
        }
    }
    match dirs.prompts {
        Some(prompts) => {
            cmd.arg("--ro-bind").arg(prompts).arg(PROMPTS);
        }
        // Without the prepared root, an empty directory that `--remount-ro /` makes read-only.
        None if root.is_none() => {
            cmd.args(["--dir", PROMPTS]);
        }
        None => {}
    }
    cmd.arg("--bind").arg(dirs.out).arg(OUT);
    if root.is_none() {
        super::helper::bind(&mut cmd);
    }
    if root.is_none() {
        cmd.args(["--remount-ro", "/"]);
    }
    cmd.args(["--seccomp", &super::seccomp::SECCOMP_FD.to_string()]);
    isolate_keyrings(&mut cmd, passwd, group);
    cmd.args(["--chdir", HOME, "--"]);
    cmd.args(["/bin/bash", "-euo", "pipefail", "-c", script]);
    cmd.env("PATH", env.path)
        .env("in", IN)
        .env("out", OUT)
        .env("prompts", PROMPTS)
        .env("machine", env.machine)
        .env("HOME", HOME)
        .env("TMPDIR", "/tmp")
        .env("LANG", env.lang);
    cmd
}

/// Removes the sandbox's prepared root directory (`super::skeleton`), if any; call once the
/// last run is over.
pub(crate) fn release() {
    super::skeleton::release();
}

/// What every run's command line takes from the host, looked up once per process: bwrap on
/// the host's PATH (the script's PATH may be a pinned one) and the system directories (a
/// symlink's target when recreated as a symlink).
struct HostSetup {
    bwrap: std::path::PathBuf,
    system_dirs: Vec<(&'static str, Option<std::path::PathBuf>)>,
    /// Their bubblewrap arguments without the prepared root.
    system_args: Vec<std::ffi::OsString>,
}

fn host_setup() -> &'static HostSetup {
    static SETUP: std::sync::OnceLock<HostSetup> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| {
        let bwrap = super::sandbox::which("bwrap").unwrap_or_else(|| "bwrap".into());
        let mut system_args: Vec<std::ffi::OsString> = Vec::new();
        let mut system_dirs = Vec::new();
        for dir in SYSTEM_DIRS {
            // On merged-/usr systems /bin, /lib… are symlinks: recreate them instead of
            // mounting (each mount costs bwrap time on every run).
            match std::fs::read_link(dir) {
                Ok(target) if points_into_bound_dir(dir, &target) => {
                    system_args.extend(["--symlink".into(), target.clone().into(), (*dir).into()]);
                    system_dirs.push((*dir, Some(target)));
                }
                _ => {
                    system_args.extend(["--ro-bind-try", dir, dir].map(Into::into));
                    system_dirs.push((*dir, None));
                }
            }
        }
        HostSetup {
            bwrap,
            system_dirs,
            system_args,
        }
    })
}

/// Does the symlink `dir -> target` resolve, inside the sandbox, into another system directory
/// that is bound itself (e.g. `/bin -> usr/bin`)? Only then is it recreated as a symlink; any
/// other target (absolute elsewhere, `..`, a symlink to a symlink) is bound as the host sees it.
fn points_into_bound_dir(dir: &str, target: &Path) -> bool {
    use std::path::Component;
    if target
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return false;
    }
    let resolved = Path::new("/").join(target);
    SYSTEM_DIRS.iter().any(|d| {
        *d != dir
            && resolved.starts_with(d)
            && std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir())
    })
}

/// Descriptors of `/etc/passwd` and `/etc/group`'s contents in bwrap (`--file`).
const PASSWD_FD: i32 = 11;
const GROUP_FD: i32 = 12;

/// In the child before bwrap runs (`super::spawn`): a fresh session keyring, the seccomp
/// filter's descriptor ([`super::seccomp`]) and the `passwd` and `group` files' ([`PASSWD_FD`],
/// [`GROUP_FD`]). The keyring is joined after the uid switch, so it belongs to the sandbox's
/// uid.
fn isolate_keyrings(cmd: &mut Spec, passwd: Option<Vec<u8>>, group: Option<Vec<u8>>) {
    static PROGRAM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let program: &'static [u8] = PROGRAM.get_or_init(super::seccomp::program);
    cmd.fresh_keyring()
        .memfd(c"varsmith-seccomp", program, super::seccomp::SECCOMP_FD);
    if let Some(passwd) = passwd {
        cmd.memfd(c"varsmith-passwd", passwd, PASSWD_FD);
    }
    if let Some(group) = group {
        cmd.memfd(c"varsmith-group", group, GROUP_FD);
    }
}

/// Checks once that bubblewrap can start a sandbox here, as the identity runs will use.
pub(crate) fn probe(drop_to: Option<(u32, u32)>) -> Result<(), String> {
    let Some(bwrap) = super::sandbox::which("bwrap") else {
        return Err("bwrap not found on PATH".into());
    };
    let mut cmd = crate::child::command(bwrap);
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
