//! One generator run: a fresh 0700 plaintext directory on tmpfs with `$in`, `$prompts` and an
//! empty `$out`, the script under `bash -euo pipefail` inside bubblewrap (`super::bwrap`),
//! bounded in time, output size, `/tmp` size and (as root) processes (`Limits`), then a strict
//! check of `$out` (`super::outputs`). The directory is removed on every exit path (success,
//! failure, panic, and SIGINT/SIGTERM through `crate::process::signals`).
//!
//! As root, the script runs as a dedicated unprivileged uid ([`super::identity`]). With
//! `--no-sandbox` the script runs directly, still with a cleared environment, a private `$HOME`
//! and a private `TMPDIR` inside the run directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::capture;
use super::identity::RunIdentity;
use super::limits::Limits;
use super::spawn::{Limit, Spec};
use super::supervise::Ended;
use crate::process::signals;
use crate::process::tmpfs::PlaintextDir;
use crate::workspace::Generator;

pub use crate::secret::Files;

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
    /// No tmpfs for the plaintext directory.
    #[error("{who}: {cause}")]
    Tmpfs {
        /// machine/generator.
        who: String,
        /// Why.
        cause: crate::process::tmpfs::Error,
    },
    /// The temporary directory could not be prepared or read.
    #[error("{who}: {what}: {cause}")]
    Io {
        /// machine/generator.
        who: String,
        /// What was being done.
        what: String,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The script exited non-zero (or was killed).
    #[error("{who}: script failed ({status}){stderr}")]
    Script {
        /// machine/generator.
        who: String,
        /// Exit status description.
        status: String,
        /// The tail of the script's stderr, secrets redacted, controls escaped, indented.
        stderr: String,
    },
    /// The script ran longer than the time limit.
    #[error("{who}: script killed after the time limit of {secs} s{stderr}")]
    Timeout {
        /// machine/generator.
        who: String,
        /// The limit.
        secs: u64,
        /// As in [`Error::Script`].
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

impl crate::error::HasKind for Error {
    /// Interrupted, usage for a missing input, else failed.
    fn kind(&self) -> crate::error::Kind {
        match self {
            Error::Interrupted(_) => crate::error::Kind::Interrupted,
            Error::MissingInput { .. } => crate::error::Kind::Usage,
            _ => crate::error::Kind::Failed,
        }
    }
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
    /// Time, size and process limits.
    pub limits: Limits,
}

impl RunSpec<'_> {
    fn who(&self) -> String {
        match self.machine {
            Some(m) => format!("machine {m}, generator {}", self.generator.name),
            None => format!("shared generator {}", self.generator.name),
        }
    }

    /// Every secret value the script could print: its inputs and prompt answers.
    fn known_secrets(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = self.prompts.values().map(|b| b.as_bytes()).collect();
        for files in self.inputs.values() {
            v.extend(files.values().map(|b| b.as_bytes()));
        }
        v
    }
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

/// The script's PATH: exactly the pinned inputs' `bin/` directories for a Nix generator, else
/// the host's.
fn script_path(g: &Generator) -> String {
    match &g.pinned {
        Some(inputs) => inputs
            .iter()
            .map(|i| format!("{}/bin", i.out))
            .collect::<Vec<_>>()
            .join(":"),
        None => std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
    }
}

/// Checks a generator's runtime inputs before anything runs (for a Nix generator: that they
/// are realised).
pub(crate) fn check_runtime_inputs(g: &Generator, who: &str) -> Result<(), Error> {
    if let Some(inputs) = &g.pinned {
        if let Some(i) = inputs.iter().find(|i| !Path::new(&i.out).exists()) {
            return Err(Error::MissingInput {
                who: who.to_string(),
                cmd: format!("{} ({})", i.name, i.out),
            });
        }
        return Ok(());
    }
    for cmd in &g.runtime_inputs {
        if cmd == "varsmith" && super::helper::available() {
            continue;
        }
        if which(cmd).is_none() {
            return Err(Error::MissingInput {
                who: who.to_string(),
                cmd: cmd.clone(),
            });
        }
    }
    Ok(())
}

/// Checks once that bubblewrap can start a sandbox here, as the runs' identity.
pub fn probe_bwrap() -> Result<(), Error> {
    let id = RunIdentity::current();
    super::bwrap::probe(id.drop_root.then_some((id.uid, id.gid))).map_err(Error::NoSandbox)
}

pub(crate) fn io(who: &str, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let who = who.to_string();
    let what = what.into();
    move |source| Error::Io {
        who,
        what,
        cause: source,
    }
}

/// Creates `path` (mode 0700, or 0600 for files written with `bytes`), owned by `owner`.
fn make(path: &Path, bytes: Option<&[u8]>, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match bytes {
        None => {
            std::fs::create_dir(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        }
        Some(b) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)?;
            f.write_all(b)?;
        }
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// The run directory's layout: `in/<dep>/<file>`, `prompts/<name>`, `out/`, and without the
/// sandbox `home/`, `tmp/` and `bin/varsmith` ([`super::helper`]).
struct Layout {
    dir: PlaintextDir,
}

impl Layout {
    fn part(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn prepare(spec: &RunSpec<'_>, id: &RunIdentity, who: &str) -> Result<Layout, Error> {
        let owner = (spec.sandbox && id.drop_root).then_some((id.uid, id.gid));
        let dir = PlaintextDir::new(owner).map_err(|source| Error::Tmpfs {
            who: who.to_string(),
            cause: source,
        })?;
        let l = Layout { dir };
        // The sandbox has its own `/etc`, `$HOME` and `/tmp` (`super::bwrap`).
        let parts: &[&str] = if spec.sandbox {
            &["in", "out", "prompts"]
        } else {
            &["in", "out", "prompts", "home", "tmp"]
        };
        for d in parts {
            make(&l.part(d), None, owner).map_err(io(who, "creating the run directory"))?;
        }
        for (dep, files) in spec.inputs {
            let d = l.part("in").join(dep);
            make(&d, None, owner).map_err(io(who, format!("creating $in/{dep}")))?;
            for (f, bytes) in files {
                make(&d.join(f), Some(bytes), owner)
                    .map_err(io(who, format!("writing $in/{dep}/{f}")))?;
            }
        }
        for (p, bytes) in spec.prompts {
            make(&l.part("prompts").join(p), Some(bytes), owner)
                .map_err(io(who, format!("writing $prompts/{p}")))?;
            // clan: a persisted prompt's answer is in $out before the script, which may
            // replace it ("leave empty to generate").
            if spec.generator.prompts.get(p).is_some_and(|x| x.persist) {
                make(&l.part("out").join(p), Some(bytes), owner)
                    .map_err(io(who, format!("writing $out/{p}")))?;
            }
        }
        if !spec.sandbox {
            super::helper::link(&l.part("bin")).map_err(io(who, "linking bin/varsmith"))?;
        }
        Ok(l)
    }
}

/// The command that runs the script, sandboxed or not. Standard input and output are
/// `/dev/null` (stdout is shown nowhere: discarded by the kernel rather than read by a
/// thread), standard error a pipe; the child leads a process group of its own, so a signal
/// reaching varsmith kills the whole group (`super::spawn`).
fn script_command(spec: &RunSpec<'_>, l: &Layout, id: &RunIdentity) -> Spec {
    let path_env = script_path(spec.generator);
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
    let machine = spec.machine.unwrap_or("");
    let script = &spec.generator.script;
    let mut cmd = if spec.sandbox {
        let (input, out, prompts) = (l.part("in"), l.part("out"), l.part("prompts"));
        let dirs = super::bwrap::HostDirs {
            input: (!spec.inputs.is_empty()).then_some(input.as_path()),
            out: &out,
            prompts: (!spec.prompts.is_empty()).then_some(prompts.as_path()),
        };
        let path_env = super::helper::sandbox_path(&path_env);
        let env = super::bwrap::ScriptEnv {
            path: &path_env,
            lang: &lang,
            machine,
        };
        let mut c = super::bwrap::command(&dirs, &env, &spec.limits, id, script);
        if id.drop_root {
            c.drop_to(id.uid, id.gid);
        }
        c
    } else {
        let path_env = super::helper::unsandboxed_path(&l.part("bin"), &path_env);
        let mut c = Spec::new(which("bash").unwrap_or_else(|| "bash".into()));
        c.args(["-euo", "pipefail", "-c", script])
            .cwd(l.part("home"))
            .env("PATH", &path_env)
            .env("in", l.part("in"))
            .env("out", l.part("out"))
            .env("prompts", l.part("prompts"))
            .env("machine", machine)
            .env("HOME", l.part("home"))
            .env("TMPDIR", l.part("tmp"))
            .env("LANG", &lang);
        c
    };
    apply_rlimits(&mut cmd, &spec.limits, spec.sandbox && id.drop_root);
    cmd
}

/// No core dumps, bounded file size, and (for the sandbox's own uid) bounded processes; set
/// in the child after the uid switch, before bwrap (or bash) is executed.
fn apply_rlimits(cmd: &mut Spec, limits: &Limits, own_uid: bool) {
    // One byte over the output limit: a file the limit cut short (its script ignoring SIGXFSZ
    // and EFBIG) is then over the limit and refused when read back, never silently truncated.
    cmd.rlimit(Limit::Core, 0)
        .rlimit(Limit::FileSize, limits.max_output.saturating_add(1));
    if own_uid {
        cmd.rlimit(Limit::Processes, limits.max_procs);
    }
}

/// The exit status, naming the output limit when the script (or one of its commands) hit it:
/// killed by SIGXFSZ, bash's exit code for that (128 + 25), or a file in `$out` at the limit.
fn describe_failure(status: std::process::ExitStatus, out: &Path, limits: &Limits) -> String {
    use std::os::unix::process::ExitStatusExt;
    let xfsz = status.signal() == Some(libc::SIGXFSZ)
        || status.code() == Some(128 + libc::SIGXFSZ)
        || std::fs::read_dir(out).is_ok_and(|rd| {
            rd.flatten().any(|e| {
                e.path()
                    .symlink_metadata()
                    .is_ok_and(|m| m.is_file() && m.len() >= limits.max_output)
            })
        });
    if xfsz {
        format!(
            "{status}: a file reached the output limit of {} bytes; raise it with --max-output",
            limits.max_output
        )
    } else {
        status.to_string()
    }
}

/// Runs one generator and returns its outputs.
pub fn run(spec: &RunSpec<'_>) -> Result<Files, Error> {
    let who = spec.who();
    if signals::interrupted() {
        return Err(Error::Interrupted(who));
    }
    let id = RunIdentity::current();
    let layout = Layout::prepare(spec, &id, &who)?;
    let cmd = script_command(spec, &layout, &id);
    let (ended, stderr) = super::supervise::supervise(&cmd, &spec.limits, &who)?;
    if signals::interrupted() {
        return Err(Error::Interrupted(who));
    }
    let shown = || capture::shown_stderr(&stderr, &spec.known_secrets());
    match ended {
        Ended::TimedOut => Err(Error::Timeout {
            who,
            secs: spec.limits.timeout.as_secs(),
            stderr: shown(),
        }),
        Ended::Exited(status) if !status.success() => Err(Error::Script {
            who,
            status: describe_failure(status, &layout.part("out"), &spec.limits),
            stderr: shown(),
        }),
        Ended::Exited(_) => super::outputs::collect(
            spec.generator,
            &layout.part("out"),
            &who,
            spec.limits.max_output,
        ),
    }
}
