//! Git integration: new files are staged with `git add --intent-to-add` (flakes only see
//! tracked files); with `--commit`, one commit of exactly the written paths.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::workspace::Workspace;

/// Stages `paths` (intent-to-add) in a git workspace, and commits them when `commit` is set.
/// Does nothing outside git.
pub fn stage(ws: &Workspace, paths: &[PathBuf], commit: bool) {
    if !ws.root.join(".git").exists() || paths.is_empty() {
        return;
    }
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if !existing.is_empty() {
        let _ = Command::new("git")
            .arg("-C")
            .arg(&ws.root)
            .args(["add", "--intent-to-add", "--"])
            .args(&existing)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    if commit {
        let _ = Command::new("git")
            .arg("-C")
            .arg(&ws.root)
            .args(["add", "-A", "--"])
            .args(paths)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("git")
            .arg("-C")
            .arg(&ws.root)
            .args(["commit", "-q", "-m", "varsmith generate", "--"])
            .args(paths)
            .stdout(Stdio::null())
            .status();
    }
}
