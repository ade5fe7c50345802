//! `--json` output: the one writer of JSON documents to stdout, and errors as JSON.
//!
//! With `--json`, a command that fails still prints one JSON document on stdout,
//! `{"error": {"message", "causes", "kind", "exit_code"}}`, where `kind` is `usage` (exit 2:
//! bad invocation or bad definitions), `failed` (exit 1) or `interrupted` (exit 130); the
//! human message goes to stderr as without `--json`. The shapes are documented in the README
//! ("JSON output").

use std::io::Write;

use serde::Serialize;

use super::args::Command;

/// Did the user ask for JSON? True for every command whose arguments have `--json`; for a
/// command line clap rejected, true when `--json` is among the raw arguments.
pub(super) fn wanted(cmd: &Command) -> bool {
    match cmd {
        Command::Generate(a) => a.json,
        Command::Check(a) => a.json,
        Command::List(a) => a.json,
        Command::Audit(a) => a.json,
        Command::Deploy(a) => a.remote.json,
        Command::PushKeys(a) => a.remote.json,
        Command::Bootstrap(a) => a.remote.json,
        _ => false,
    }
}

/// For an argument list clap rejected: is `--json` among the arguments (before any `--`)?
pub(super) fn wanted_raw() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Writes `value` as pretty JSON and a newline to stdout.
pub(super) fn print<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The `kind` of an exit code.
fn kind_of(code: i32) -> &'static str {
    match code {
        crate::EXIT_USAGE => "usage",
        crate::error::EXIT_INTERRUPTED => "interrupted",
        _ => "failed",
    }
}

#[derive(Serialize)]
struct ErrorDoc<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    causes: Vec<String>,
    kind: &'static str,
    exit_code: i32,
}

/// Prints `message` (and `causes`) as the JSON error document on stdout; a failure to write
/// is ignored (the human message is on stderr anyway).
pub(super) fn print_error(message: &str, causes: Vec<String>, code: i32) {
    let scrub = crate::workspace::quote::scrub_keys;
    let message = &scrub(message);
    let causes = causes.iter().map(|c| scrub(c)).collect();
    let doc = ErrorDoc {
        error: ErrorBody {
            message,
            causes,
            kind: kind_of(code),
            exit_code: code,
        },
    };
    let _ = print(&doc);
}

/// [`print_error`] for an error chain: the first message, then each cause that adds text.
pub(super) fn print_anyhow(err: &anyhow::Error, code: i32) {
    let message = err.to_string();
    let mut shown = message.clone();
    let mut causes = Vec::new();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !shown.contains(&c) {
            causes.push(c.clone());
            shown = c;
        }
    }
    print_error(&message, causes, code);
}
