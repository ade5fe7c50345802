//! One generator run: a fresh 0700 temporary directory on tmpfs with `$in`, `$prompts` and an
//! empty `$out`, the script under `bash -euo pipefail` inside bubblewrap (no network, no host
//! home, no workspace, read-only system directories, cleared environment), then a strict check
//! of `$out`: every declared file present as a regular file, nothing else. The directory is
//! removed on every exit path (success, failure, panic, and Ctrl-C through [`cancel_all`]).

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indexmap::IndexMap;
use zeroize::Zeroizing;

use crate::workspace::Generator;

/// Raw bytes by file name.
pub type Files = IndexMap<String, Zeroizing<Vec<u8>>>;

/// Errors of one run. Messages name the generator (and machine) but never an output value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// bubblewrap is missing or unusable and `--no-sandbox` was not given.
    #[error(
        "bubblewrap (bwrap) is not usable here: {0}. Install bubblewrap, allow unprivileged user namespaces, or pass --no-sandbox to run generators unsandboxed"
    )]
    NoSandbox(String),
    /// A runtime input is not on PATH.
    #[error("{who}: runtime input {cmd:?} not found on PATH")]
    MissingInput {
        /// machine/generator.
        who: String,
        /// The command.
        cmd: String,
    },
    /// The temporary directory could not be prepared or read.
    #[error("{who}: {what}: {source}")]
    Io {
        /// machine/generator.
        who: String,
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The script exited non-zero (or was killed).
    #[error("{who}: script failed ({status}){stderr}")]
    Script {
        /// machine/generator.
        who: String,
        /// Exit status description.
        status: String,
        /// The tail of the script's stderr, indented.
        stderr: String,
    },
    /// `$out` does not hold exactly the declared regular files.
    #[error("{who}: {msg}")]
    Outputs {
        /// machine/generator.
        who: String,
        /// What is wrong.
        msg: String,
    },
    /// The run was interrupted (Ctrl-C / SIGTERM).
    #[error("{0}: interrupted")]
    Interrupted(String),
}

static CANCELLED: AtomicBool = AtomicBool::new(false);
static CHILDREN: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// Marks every run as cancelled and terminates the running scripts (called from the signal
/// handler). Runs then fail with [`Error::Interrupted`] and remove their directories.
pub fn cancel_all() {
    CANCELLED.store(true, Ordering::SeqCst);
    if let Ok(guard) = CHILDREN.lock()
        && let Some(set) = guard.as_ref()
    {
        for &pid in set {
            // SAFETY: kill(2) on the process group of a child we spawned (each script runs
            // in its own group); at worst the group is already gone.
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
    }
}

/// True once [`cancel_all`] was called.
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// What one run needs.
pub struct RunSpec<'a> {
    /// The definition.
    pub generator: &'a Generator,
    /// The machine (None for shared generators).
    pub machine: Option<&'a str>,
    /// Dependencies' outputs: dep name -> file -> bytes (secrets and facts alike).
    pub inputs: &'a IndexMap<String, Files>,
    /// Prompt answers by prompt name.
    pub prompts: &'a Files,
    /// Run inside bubblewrap (false only with `--no-sandbox`).
    pub sandbox: bool,
}

impl RunSpec<'_> {
    fn who(&self) -> String {
        match self.machine {
            Some(m) => format!("machine {m}, generator {}", self.generator.name),
            None => format!("shared generator {}", self.generator.name),
        }
    }
}

/// The directory where run directories are made: `$XDG_RUNTIME_DIR`, else `/dev/shm`, else the
/// system temp dir.
pub fn tmpfs_base() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)
        && x.is_dir()
    {
        return x;
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// Prefix of run directories: `varsmith-run-<pid>-…`.
pub const RUN_DIR_PREFIX: &str = "varsmith-run-";

/// Removes run directories left behind by varsmith processes that no longer exist (killed with
/// SIGKILL, power loss). Returns how many were removed.
pub fn sweep_stale_run_dirs() -> usize {
    let mut removed = 0;
    let mut bases = vec![tmpfs_base(), std::env::temp_dir()];
    bases.dedup();
    for base in bases {
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(RUN_DIR_PREFIX) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            let alive = crate::pid_alive(pid);
            let owned = e.metadata().is_ok_and(|m| {
                std::os::unix::fs::MetadataExt::uid(&m) == unsafe { libc::geteuid() }
            });
            if !alive && owned && std::fs::remove_dir_all(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// Finds `cmd` on PATH (or checks an absolute path).
pub fn which(cmd: &str) -> Option<PathBuf> {
    if cmd.starts_with('/') {
        let p = PathBuf::from(cmd);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(cmd)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Checks a generator's runtime inputs before anything runs.
pub fn check_runtime_inputs(g: &Generator, who: &str) -> Result<(), Error> {
    for cmd in &g.runtime_inputs {
        if which(cmd).is_none() {
            return Err(Error::MissingInput {
                who: who.to_string(),
                cmd: cmd.clone(),
            });
        }
    }
    Ok(())
}

/// Checks once that bubblewrap can start a sandbox here.
pub fn probe_bwrap() -> Result<(), Error> {
    let Some(bwrap) = which("bwrap") else {
        return Err(Error::NoSandbox("bwrap not found on PATH".into()));
    };
    let out = Command::new(bwrap)
        .args([
            "--unshare-all",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::NoSandbox(e.to_string()))?;
    if !out.status.success() {
        return Err(Error::NoSandbox(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

fn io(who: &str, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let who = who.to_string();
    let what = what.into();
    move |source| Error::Io { who, what, source }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

/// Paths inside the sandbox.
const IN: &str = "/vars/in";
const OUT: &str = "/vars/out";
const PROMPTS: &str = "/vars/prompts";
const HOME: &str = "/home/varsmith";

/// Runs one generator and returns its outputs.
pub fn run(spec: &RunSpec<'_>) -> Result<Files, Error> {
    let who = spec.who();
    if cancelled() {
        return Err(Error::Interrupted(who));
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{RUN_DIR_PREFIX}{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(tmpfs_base())
        .map_err(io(&who, "creating the run directory"))?;
    let base = tmp.path();
    let (in_dir, out_dir, prompts_dir, etc_dir) = (
        base.join("in"),
        base.join("out"),
        base.join("prompts"),
        base.join("etc"),
    );
    for d in [&in_dir, &out_dir, &prompts_dir, &etc_dir] {
        std::fs::create_dir(d).map_err(io(&who, "creating the run directory"))?;
    }
    for (dep, files) in spec.inputs {
        let d = in_dir.join(dep);
        std::fs::create_dir(&d).map_err(io(&who, format!("creating $in/{dep}")))?;
        for (f, bytes) in files {
            write_private(&d.join(f), bytes).map_err(io(&who, format!("writing $in/{dep}/{f}")))?;
        }
    }
    for (p, bytes) in spec.prompts {
        write_private(&prompts_dir.join(p), bytes)
            .map_err(io(&who, format!("writing $prompts/{p}")))?;
    }
    let path_env = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
    let machine = spec.machine.unwrap_or("");
    let mut cmd;
    if spec.sandbox {
        // Identity files for tools that look the user up (ssh-keygen).
        std::fs::write(
            etc_dir.join("passwd"),
            format!("root:x:0:0:root:{HOME}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
        )
        .map_err(io(&who, "writing etc/passwd"))?;
        std::fs::write(etc_dir.join("group"), "root:x:0:\nnogroup:x:65534:\n")
            .map_err(io(&who, "writing etc/group"))?;
        cmd = Command::new("bwrap");
        cmd.args([
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
        for dir in [
            "/usr",
            "/bin",
            "/sbin",
            "/lib",
            "/lib64",
            "/lib32",
            "/nix/store",
        ] {
            // On merged-/usr systems /bin, /lib… are symlinks: recreate them instead of
            // mounting (each mount costs bwrap time on every run).
            match std::fs::read_link(dir) {
                Ok(target) => {
                    cmd.arg("--symlink").arg(target).arg(dir);
                }
                Err(_) => {
                    cmd.args(["--ro-bind-try", dir, dir]);
                }
            }
        }
        for dir in [
            "/run/current-system",
            "/etc/ssl/openssl.cnf",
            "/etc/ssl/certs",
            "/etc/alternatives",
            "/etc/ld.so.cache",
            "/etc/localtime",
            "/etc/static",
            "/etc/pki",
        ] {
            cmd.args(["--ro-bind-try", dir, dir]);
        }
        cmd.arg("--ro-bind")
            .arg(etc_dir.join("passwd"))
            .arg("/etc/passwd");
        cmd.arg("--ro-bind")
            .arg(etc_dir.join("group"))
            .arg("/etc/group");
        cmd.args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
        cmd.args(["--dir", HOME]);
        cmd.arg("--ro-bind").arg(&in_dir).arg(IN);
        cmd.arg("--ro-bind").arg(&prompts_dir).arg(PROMPTS);
        cmd.arg("--bind").arg(&out_dir).arg(OUT);
        cmd.args(["--chdir", HOME, "--"]);
        cmd.args([
            "/bin/bash",
            "-euo",
            "pipefail",
            "-c",
            &spec.generator.script,
        ]);
        cmd.env_clear()
            .env("PATH", &path_env)
            .env("in", IN)
            .env("out", OUT)
            .env("prompts", PROMPTS)
            .env("machine", machine)
            .env("HOME", HOME)
            .env("LANG", &lang);
    } else {
        let home = base.join("home");
        std::fs::create_dir(&home).map_err(io(&who, "creating $HOME"))?;
        cmd = Command::new("bash");
        cmd.args(["-euo", "pipefail", "-c", &spec.generator.script]);
        cmd.current_dir(&home)
            .env_clear()
            .env("PATH", &path_env)
            .env("in", &in_dir)
            .env("out", &out_dir)
            .env("prompts", &prompts_dir)
            .env("machine", machine)
            .env("HOME", &home)
            .env("LANG", &lang);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group: Ctrl-C reaches varsmith, which then kills the whole group.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().map_err(io(&who, "starting the script"))?;
    let pid = child.id();
    if let Ok(mut g) = CHILDREN.lock() {
        g.get_or_insert_with(HashSet::new).insert(pid);
    }
    let output = child.wait_with_output();
    if let Ok(mut g) = CHILDREN.lock()
        && let Some(set) = g.as_mut()
    {
        set.remove(&pid);
    }
    let output = output.map_err(io(&who, "waiting for the script"))?;
    if cancelled() {
        return Err(Error::Interrupted(who));
    }
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        let stderr = if tail.is_empty() {
            String::new()
        } else {
            format!(":\n    {}", tail.join("\n    "))
        };
        return Err(Error::Script {
            who,
            status: output.status.to_string(),
            stderr,
        });
    }
    collect_outputs(spec.generator, &out_dir, &who)
}

/// Reads `$out`: exactly the declared files, each a regular file.
fn collect_outputs(g: &Generator, out_dir: &Path, who: &str) -> Result<Files, Error> {
    let bad = |msg: String| Error::Outputs {
        who: who.to_string(),
        msg,
    };
    let mut found = HashSet::new();
    for entry in std::fs::read_dir(out_dir).map_err(io(who, "reading $out"))? {
        let entry = entry.map_err(io(who, "reading $out"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(io(who, format!("reading $out/{name}")))?;
        let kind = if meta.file_type().is_symlink() {
            "a symlink"
        } else if meta.is_dir() {
            "a directory"
        } else if !meta.is_file() {
            "not a regular file"
        } else {
            ""
        };
        if !g.files.contains_key(&name) {
            let what = if kind.is_empty() { "a file" } else { kind };
            return Err(bad(format!(
                "$out/{name} is {what} the generator does not declare (declared: {})",
                g.files.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if !kind.is_empty() {
            return Err(bad(format!("$out/{name} is {kind}, not a regular file")));
        }
        found.insert(name);
    }
    let mut files = IndexMap::new();
    for name in g.files.keys() {
        // A persisted prompt's answer is added by the caller when the script does not copy it.
        if !found.contains(name) && g.prompts.get(name).is_some_and(|p| p.persist) {
            continue;
        }
        if !found.contains(name) {
            return Err(bad(format!(
                "declared file {name} was not produced in $out"
            )));
        }
        let mut f = std::fs::File::open(out_dir.join(name))
            .map_err(io(who, format!("reading $out/{name}")))?;
        let mut buf = Zeroizing::new(Vec::new());
        f.read_to_end(&mut buf)
            .map_err(io(who, format!("reading $out/{name}")))?;
        files.insert(name.clone(), buf);
    }
    Ok(files)
}
