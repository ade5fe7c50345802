//! The `varsmith` command line: clap arguments ([`args`]), one handler file per group of
//! subcommands, and the one map from error kind to exit code. `src/main.rs` only calls [`main`].

pub mod args;
mod audit_cmd;
mod core_cmd;
mod remote_cmd;
mod sops_cmd;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, CmdResult, Command};

/// Parses the command line, runs it, prints errors and returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(exit_code(&err) as u8)
        }
    }
}

/// Runs the parsed command line and returns the exit code.
pub fn run(cli: Cli) -> CmdResult {
    let ctx = core_cmd::Context::new(cli.dir.clone(), cli.identity.clone());
    match cli.command {
        Command::Sops(cmd) => sops_cmd::run(&ctx, cmd),
        Command::PushKeys(a) => remote_cmd::push_keys(&ctx, a),
        Command::Bootstrap(a) => remote_cmd::bootstrap(&ctx, a),
        Command::Deploy(a) => remote_cmd::deploy(&ctx, a),
        Command::Audit(a) => audit_cmd::run(&ctx, a),
        other => core_cmd::run(&ctx, other),
    }
}

/// Maps an error to the process exit code: 2 for bad input or definitions, else the code the
/// library error carries, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<crate::workspace::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::sops::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::keys::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<crate::UsageError>() {
            let _ = e;
            return crate::EXIT_USAGE;
        }
        if let Some(e) = cause.downcast_ref::<clap::Error>() {
            let _ = e;
            return crate::EXIT_USAGE;
        }
    }
    crate::EXIT_PROBLEM
}
