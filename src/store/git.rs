//! Git integration: new files are staged with `git add --intent-to-add` (flakes only see
//! tracked files); with `--commit`, one commit of exactly the written paths. Works when the
//! workspace is a subdirectory of a repository; every git failure is an error (with git's own
//! message), never silently ignored.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::workspace::Workspace;
use crate::workspace::read::git_toplevel;

/// A git step failed.
#[derive(Debug, thiserror::Error)]
#[error("git {step} failed in {}: {msg}", dir.display())]
pub(crate) struct Error {
    /// What was run (`add --intent-to-add`, `commit` …).
    pub step: String,
    /// The repository directory.
    pub dir: PathBuf,
    /// git's stderr (or the spawn error).
    pub msg: String,
}

fn git(root: &Path, step: &str, args: &[&str], paths: &[&PathBuf]) -> Result<(), Error> {
    let out = crate::child::command("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .arg("--")
        .args(paths)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error {
            step: step.into(),
            dir: root.to_path_buf(),
            msg: e.to_string(),
        })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        // Ignored paths: not an error of this run, but the flake will not see them.
        if step.starts_with("add") && msg.contains("ignored by one of your .gitignore files") {
            eprintln!(
                "warning: some written files are git-ignored, so a flake of this repository does not see them:\n{}",
                crate::term::escape_controls_keep_lines(msg.trim())
            );
            return Ok(());
        }
        return Err(Error {
            step: step.into(),
            dir: root.to_path_buf(),
            msg: crate::term::escape_controls(String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(())
}

/// Stages `paths` (intent-to-add) when the workspace is in a git repository, and commits them
/// when `commit` is set. Does nothing outside git.
pub(crate) fn stage(ws: &Workspace, paths: &[PathBuf], commit: bool) -> Result<(), Error> {
    if paths.is_empty() || git_toplevel(&ws.root).is_none() {
        return Ok(());
    }
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if !existing.is_empty() {
        git(
            &ws.root,
            "add --intent-to-add",
            &["add", "--intent-to-add"],
            &existing,
        )?;
    }
    if commit {
        let all: Vec<&PathBuf> = paths.iter().collect();
        git(&ws.root, "add", &["add", "-A"], &all)?;
        git(
            &ws.root,
            "commit",
            &["commit", "-q", "-m", "varsmith generate"],
            &all,
        )?;
    }
    Ok(())
}
