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

/// Runs `git -C root ARGS --pathspec-from-file=- --pathspec-file-nul` with `paths` on stdin
/// (NUL-separated, taken literally): a fleet writes tens of thousands of files, more than an
/// argument list holds.
fn git(root: &Path, step: &str, args: &[&str], paths: &[&PathBuf]) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let fail = |msg: String| Error {
        step: step.into(),
        dir: root.to_path_buf(),
        msg,
    };
    let mut child = crate::child::command("git")
        .arg("--literal-pathspecs")
        .arg("-C")
        .arg(root)
        .args(args)
        .args(["--pathspec-from-file=-", "--pathspec-file-nul"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut list = Vec::new();
    for p in paths {
        list.extend_from_slice(p.as_os_str().as_bytes());
        list.push(0);
    }
    let stdin = child.stdin.take();
    // Written from a thread, so a git that fills its stderr pipe first cannot block us.
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&list);
        }
    });
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let _ = writer.join();
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

/// The marker of staging owed (`sops/.tmp/git-stage-owed`): made before a run writes
/// anything in a git workspace, removed once what it wrote is staged. Left behind by a run
/// killed in between or whose staging failed, so the next `generate`, even one with nothing
/// to run, stages every stored file again ([`Owed`]). Never swept (not a temp file's name).
const OWED: &str = "git-stage-owed";

/// Staging a `generate` owes the repository (see [`OWED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owed {
    /// Nothing: the workspace is not in git, or the marker is absent and nothing was written.
    Nothing,
    /// This run's marker: stage what it writes.
    Written,
    /// An earlier run's marker: stage every stored file (`sops/` but its `.tmp`, `.sops.yaml`).
    Everything,
}

fn owed_path(ws: &Workspace) -> PathBuf {
    super::temp_dir(&ws.root).join(OWED)
}

/// What the workspace owes from earlier runs: [`Owed::Everything`] when the marker is there
/// (one `stat`; called under the workspace lock), else [`Owed::Nothing`].
pub(crate) fn owed(ws: &Workspace) -> Owed {
    if super::fs::exists_nofollow(&ws.root, &owed_path(ws)) {
        Owed::Everything
    } else {
        Owed::Nothing
    }
}

/// Marks staging as owed before this run writes (only in a git repository): what `owed`
/// becomes. An earlier run's marker stays [`Owed::Everything`].
pub(crate) fn owe(ws: &Workspace, owed: Owed) -> Result<Owed, super::Error> {
    if owed != Owed::Nothing || git_toplevel(&ws.root).is_none() {
        return Ok(owed);
    }
    super::write_atomic(&ws.root, &owed_path(ws), b"")?;
    Ok(Owed::Written)
}

/// Stages what `owed` says besides `written` ([`stage`]) and clears the marker once that
/// worked; on failure the marker stays for the next run.
pub(crate) fn settle(
    ws: &Workspace,
    owed: Owed,
    written: &[PathBuf],
    commit: bool,
) -> Result<(), Error> {
    let mut paths = written.to_vec();
    if owed == Owed::Everything {
        paths.extend(stored_files(&ws.root));
        paths.sort();
        paths.dedup();
    }
    stage(ws, &paths, commit)?;
    if owed != Owed::Nothing {
        let fail = |e: super::fs::Error| Error {
            step: "clear the staging marker".into(),
            dir: ws.root.clone(),
            msg: e.to_string(),
        };
        let (dir, name) = super::fs::parent_of(&ws.root, &owed_path(ws), false).map_err(fail)?;
        dir.remove_file(&name).map_err(fail)?;
    }
    Ok(())
}

/// Every regular file varsmith keeps: under `sops/` (but its `.tmp`), and `.sops.yaml`.
/// Symlinks and unreadable directories are left out (never followed).
fn stored_files(root: &Path) -> Vec<PathBuf> {
    use super::fs::{Dir, Entry};
    let mut out = Vec::new();
    if matches!(
        Dir::root(root).and_then(|d| d.entry(std::ffi::OsStr::new(".sops.yaml"))),
        Ok(Entry::File)
    ) {
        out.push(root.join(".sops.yaml"));
    }
    let mut stack = vec![root.join("sops")];
    while let Some(d) = stack.pop() {
        let Ok(Some(dir)) = Dir::open_existing(root, &d) else {
            continue;
        };
        let Ok(entries) = dir.entries() else {
            continue;
        };
        for (name, e) in entries {
            let p = d.join(&name);
            match e {
                Entry::Dir if p != super::temp_dir(root) => stack.push(p),
                Entry::File => out.push(p),
                _ => {}
            }
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// More path bytes than an argument list holds (2 MiB on Linux): staged all the same.
    #[test]
    fn stages_more_paths_than_an_argument_list_holds() {
        let Ok(status) = std::process::Command::new("git")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
        else {
            return;
        };
        assert!(status.success());
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert!(
            std::process::Command::new("git")
                .args(["init", "-q"])
                .current_dir(root)
                .status()
                .unwrap()
                .success()
        );
        let mut dir = root.to_path_buf();
        for c in 'a'..='o' {
            dir.push(c.to_string().repeat(250));
        }
        std::fs::create_dir_all(&dir).unwrap();
        let paths: Vec<PathBuf> = (0..600)
            .map(|i| {
                let p = dir.join(format!("{i:03}{}", "f".repeat(240)));
                std::fs::write(&p, b"x").unwrap();
                p
            })
            .collect();
        let total: usize = paths.iter().map(|p| p.as_os_str().len() + 1).sum();
        assert!(total > 2 << 20, "{total} bytes");
        let refs: Vec<&PathBuf> = paths.iter().collect();
        git(
            root,
            "add --intent-to-add",
            &["add", "--intent-to-add"],
            &refs,
        )
        .unwrap();
        let out = std::process::Command::new("git")
            .args(["ls-files", "-z"])
            .current_dir(root)
            .output()
            .unwrap();
        assert_eq!(
            out.stdout
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .count(),
            600
        );
    }
}
