//! The `varsmith` command line: clap arguments (`args`), one handler file per group of
//! subcommands, and the one map from error kind to exit code. `src/main.rs` only calls [`main`].

pub(crate) mod args;
mod audit_cmd;
mod core_cmd;
mod deploy_cmd;
mod docs_cmd;
mod generate_out;
mod hey_cmd;
mod import_cmd;
mod init_key;
mod json_out;
mod list_cmd;
mod machine_cmd;
mod pipe;
mod remote_cmd;
mod remote_dry;
mod rotate_cmd;
mod set_input;
pub(crate) mod sops_cmd;
mod user_cmd;
mod zerotier_cmd;

use std::process::ExitCode;

use clap::Parser;

use crate::error::HasKind;

use args::{Cli, CmdResult, Command};

/// No core dumps (they would hold plaintext), no ptrace attach by other processes of the
/// same user, and a umask that never makes created paths group- or world-writable (paths in
/// the workspace get explicit modes anyway).
fn harden_process() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain process-attribute syscalls without pointers into Rust data beyond `zero`.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let old = libc::umask(0o077);
        libc::umask(old | 0o022);
    }
}

/// Prints an error and its causes, skipping a cause whose text the previous message already
/// shows (layers that embed their source's message).
fn print_error(err: &anyhow::Error) {
    let mut shown = err.to_string();
    let safe =
        |s: &str| crate::term::escape_controls_keep_lines(&crate::workspace::quote::scrub_keys(s));
    eprintln!("error: {}", safe(&shown));
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if shown.contains(&c) {
            continue;
        }
        eprintln!("  caused by: {}", safe(&c));
        shown = c;
    }
}

/// Parses the command line, runs it, prints errors and returns the exit code. After SIGINT or
/// SIGTERM the exit code is 130, whatever the children did.
pub fn main() -> ExitCode {
    harden_process();
    crate::process::signals::install();
    pipe::install_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { crate::EXIT_USAGE } else { 0 };
            if code != 0 && json_out::wanted_raw() {
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                json_out::print_error(first.trim_start_matches("error: "), Vec::new(), code);
            }
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let json = json_out::wanted(&cli.command);
    // Completions and the man page touch nothing (they also run inside the Nix build); `zerotier`
    // runs inside generator sandboxes: no workspace, no plaintext directories.
    if !matches!(
        cli.command,
        Command::Completions(_) | Command::Man(_) | Command::Zerotier(_)
    ) {
        crate::process::tmpfs::sweep_stale();
    }
    // A closed stdout ends the command quietly with 0 (see `pipe`).
    let code = match pipe::catch(|| run(cli)) {
        None => 0,
        Some(Ok(code)) => code,
        Some(Err(err)) if pipe::is_broken_pipe(&err) => 0,
        Some(Err(err)) => {
            let code = exit_code(&err);
            if !crate::process::signals::interrupted() {
                print_error(&err);
                if json {
                    json_out::print_anyhow(&err, code);
                }
            }
            code
        }
    };
    crate::run::helper::release();
    crate::run::bwrap::release();
    if crate::process::signals::interrupted() {
        return ExitCode::from(crate::error::EXIT_INTERRUPTED as u8);
    }
    ExitCode::from(code as u8)
}

/// Runs the parsed command line and returns the exit code.
pub fn run(cli: Cli) -> CmdResult {
    if cli.allow_ifd {
        crate::workspace::nix::allow_ifd();
    }
    if let Some(t) = cli.lock_timeout {
        crate::store::lock::set_timeout(t);
    }
    let ctx = core_cmd::Context::new(cli.dir.clone(), cli.identity.clone());
    crate::workspace::nix::set_eval_memory_mib(cli.eval_memory);
    match cli.command {
        Command::Sops(cmd) => sops_cmd::run(&ctx, cmd),
        Command::Import(cmd) => import_cmd::run(&ctx, cmd),
        Command::PushKeys(a) => remote_cmd::push_keys(&ctx, a),
        Command::Bootstrap(a) => remote_cmd::bootstrap(&ctx, a),
        Command::RotateHostKey(a) => rotate_cmd::run(&ctx, a),
        Command::Deploy(a) => deploy_cmd::run(&ctx, a),
        Command::Audit(a) => audit_cmd::run(&ctx, a),
        Command::Completions(a) => docs_cmd::completions(a),
        Command::Man(a) => docs_cmd::man(a),
        Command::Zerotier(cmd) => zerotier_cmd::run(cmd),
        Command::Rollback(a) => hey_cmd::rollback(&ctx, a),
        Command::Ssh(a) => hey_cmd::ssh(&ctx, a),
        Command::Sync(a) => hey_cmd::sync(&ctx, a),
        Command::Install(a) => hey_cmd::install(&ctx, a),
        Command::Init(a) => core_cmd::init(&ctx, a.admin, a.recipient, a.new_key),
        Command::Admin(a) => core_cmd::admin(&ctx, a),
        Command::Machine(m) => machine_cmd::run(&ctx, m),
        Command::User(u) => user_cmd::run(&ctx, u),
        Command::Generate(a) => core_cmd::generate(&ctx, a),
        Command::Check(a) => core_cmd::check(&ctx, (a.hosts, a.users), a.json, a.verbose),
        Command::List(a) => list_cmd::run(&ctx, a),
        Command::Get(a) => {
            let (t, var) = core_cmd::Target::of(a.host, a.var, a.user)?;
            core_cmd::get(&ctx, &t, &var)
        }
        Command::Set(a) => {
            let (t, var) = core_cmd::Target::of(a.host, a.var, a.user)?;
            core_cmd::set(&ctx, &t, &var, a.raw)
        }
        Command::Rekey(a) => core_cmd::rekey(&ctx, a.hosts, a.users),
    }
}

/// Maps an error to the process exit code: the [`Kind`](crate::error::Kind) of the first error
/// in the chain that has one, else 1. The only map from errors to exit codes: each error type
/// decides its own kind ([`HasKind`]); this lists the types the commands return.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(kind_of)
        .map_or(crate::EXIT_PROBLEM, |k| k.exit_code())
}

/// Every audit error (a file or command that could not be read, a matcher that could not be
/// built) is a failure to scan: exit 1, like a leak found.
impl HasKind for crate::audit::Error {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Failed
    }
}

/// The kind of one error of a chain, when its type has one.
fn kind_of(cause: &(dyn std::error::Error + 'static)) -> Option<crate::error::Kind> {
    macro_rules! kind_of_types {
        ($($t:ty),* $(,)?) => {
            $(if let Some(e) = cause.downcast_ref::<$t>() {
                return Some(e.kind());
            })*
        };
    }
    kind_of_types!(
        crate::workspace::Error,
        crate::sops::Error,
        crate::keys::Error,
        crate::remote::Error,
        crate::store::Error,
        crate::run::sandbox::Error,
        crate::zerotier::Error,
        crate::audit::Error,
        crate::UsageError,
        crate::error::Interrupted,
    );
    cause
        .is::<clap::Error>()
        .then_some(crate::error::Kind::Usage)
}
