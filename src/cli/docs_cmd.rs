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
    #[arg(conflicts_with = "out_dir")]
    pub command: Option<String>,
    /// Write every page (`varsmith.1` and `varsmith-<command>.1` for each subcommand) into this
    /// existing directory instead of printing one; an existing page there is replaced.
    /// (Not `--dir`: that is the global `-C/--dir` workspace option.)
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// Prints the completion script for `a.shell` to stdout.
pub(super) fn completions(a: CompletionsArgs) -> CmdResult {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "varsmith", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(crate::EXIT_OK)
}

/// Prints the man page (roff) of varsmith, or of one subcommand, to stdout; with `--out-dir`,
/// writes all of them there.
pub(super) fn man(a: ManArgs) -> CmdResult {
    let mut cmd = Cli::command();
    cmd.build();
    if let Some(dir) = &a.out_dir {
        return man_dir(cmd, dir);
    }
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
            sub_page(sub, name)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(crate::EXIT_OK)
}

/// A subcommand's page is named `varsmith-<sub>`, as git's are. clap wants a 'static name
/// without its `string` feature: one small leak per page in a one-shot command.
fn sub_page(sub: clap::Command, name: &str) -> clap::Command {
    let title: &'static str = Box::leak(format!("varsmith-{name}").into_boxed_str());
    sub.name(title)
}

/// Writes `varsmith.1` and one `varsmith-<sub>.1` per (non-hidden) subcommand into `dir`. This writes outside any workspace, by request: the pages
/// are documentation, never secrets.
fn man_dir(cmd: clap::Command, dir: &std::path::Path) -> CmdResult {
    if !dir.is_dir() {
        return Err(crate::UsageError::new(format!("{}: not a directory", dir.display())).into());
    }
    let mut pages = vec![("varsmith.1".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name().to_string();
        pages.push((format!("varsmith-{name}.1"), sub_page(sub.clone(), &name)));
    }
    for (file, page) in pages {
        let mut out = Vec::new();
        clap_mangen::Man::new(page).render(&mut out)?;
        let path = dir.join(&file);
        std::fs::write(&path, out)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(crate::EXIT_OK)
}
