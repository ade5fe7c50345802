//! Command handlers: each file maps one group of subcommands onto library calls.

mod audit_cmd;
mod core_cmd;
mod remote_cmd;
pub(crate) mod sops_cmd;

use crate::{Cli, CmdResult, Command};

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
        if let Some(e) = cause.downcast_ref::<varsmith::workspace::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<varsmith::sops::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<varsmith::keys::Error>() {
            return e.exit_code();
        }
        if let Some(e) = cause.downcast_ref::<varsmith::UsageError>() {
            let _ = e;
            return varsmith::EXIT_USAGE;
        }
        if let Some(e) = cause.downcast_ref::<clap::Error>() {
            let _ = e;
            return varsmith::EXIT_USAGE;
        }
    }
    varsmith::EXIT_PROBLEM
}
