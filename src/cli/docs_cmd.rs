//! `varsmith completions SHELL` and `varsmith man`: shell completion scripts (clap_complete) and
//! the man page (clap_mangen), both generated from the same clap definition the parser uses, so
//! they never drift from the real options. The flake package runs them at build time.

use std::io::Write;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::args::{Cli, CmdResult};

/// `varsmith completions`
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: Shell,
}

/// `varsmith man`
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The page of one subcommand (e.g. `generate`) instead of the main page.
    pub command: Option<String>,
}

/// Prints the completion script for `a.shell` to stdout.
pub fn completions(a: CompletionsArgs) -> CmdResult {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "varsmith", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(crate::EXIT_OK)
}

/// Prints the man page (roff) of varsmith, or of one subcommand, to stdout.
pub fn man(a: ManArgs) -> CmdResult {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match &a.command {
        None => cmd,
        Some(name) => {
            let known: Vec<String> = cmd
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            let sub = cmd.find_subcommand(name).cloned().ok_or_else(|| {
                crate::UsageError::new(crate::suggest::unknown(
                    "command",
                    name,
                    known.iter().map(String::as_str),
                ))
            })?;
            // The subcommand's page is named `varsmith-<sub>`, as git's are. clap wants a
            // 'static name without its `string` feature: one small leak in a one-shot command.
            let title: &'static str = Box::leak(format!("varsmith-{name}").into_boxed_str());
            sub.name(title)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(crate::EXIT_OK)
}
