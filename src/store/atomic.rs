//! Atomic file replacement, symlink-safe: contents go to temp files in `sops/.tmp` (on the
//! same filesystem as the destinations, swept of dead runs' leftovers), are flushed to disk
//! (one group flush, [`super::durable`]), then renamed into place with `renameat` relative to
//! directory descriptors reached without following symlinks ([`super::fs`]). After a crash at
//! any instant each path holds either its old or its new whole content.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::Error;
use super::fs::{self, Dir};

/// Prefix of temp files: `.varsmith-tmp-<pid>-<random>`.
pub(super) const TEMP_PREFIX: &str = ".varsmith-tmp-";

/// Mode of every file varsmith writes in the workspace (ciphertext, facts, manifests).
pub(super) const FILE_MODE: u32 = 0o644;

/// Atomically replaces `path` (inside the workspace at `root`) with `bytes`, mode 0644,
/// creating parent directories.
pub(crate) fn write_atomic(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut b = Batch::new(root);
    b.stage(path, bytes, FILE_MODE)?;
    b.commit()
}

/// Removes temp files in `dir` left by varsmith processes that no longer exist (killed
/// mid-write). They only ever hold ciphertext or public facts, but should not linger.
pub(crate) fn sweep_stale_temps(root: &Path) {
    let Ok(dir) = Dir::open(root, &super::temp_dir(root), false) else {
        return;
    };
    let Ok(names) = dir.names() else {
        return;
    };
    for name in names {
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !crate::process::pid_alive(pid) {
            let _ = dir.remove_file(&name);
        }
    }
}

/// Gives `sops/.tmp` a `.gitignore` of `*` when it has none: the lock and temp files are
/// never a repository's content (`git add -A`, `git status` leave them out). Made by the
/// first write (never by a command that writes nothing). Best effort.
fn ignore_in_git(dir: &Dir) {
    use std::io::Write;
    let name = std::ffi::OsStr::new(".gitignore");
    if matches!(dir.entry(name), Ok(fs::Entry::Missing))
        && let Ok(mut f) = dir.create_new(name, 0o644)
    {
        let _ = f.write_all(b"*\n");
    }
}

struct Staged {
    temp: OsString,
    dir: Dir,
    name: OsString,
}

/// Several files replaced together: contents are written to temp files and flushed to disk
/// once before any rename, then renamed in the order they were staged, then staged removals
/// happen. Temp files of a batch dropped without commit are removed.
pub(crate) struct Batch {
    root: PathBuf,
    tmp: Option<Dir>,
    staged: Vec<Staged>,
    removals: Vec<(Dir, OsString)>,
}

impl Batch {
    /// An empty batch for the workspace at `root`.
    pub(crate) fn new(root: &Path) -> Self {
        Batch {
            root: root.to_path_buf(),
            tmp: None,
            staged: Vec::new(),
            removals: Vec::new(),
        }
    }

    fn tmp_dir(&mut self) -> Result<&Dir, Error> {
        if self.tmp.is_none() {
            let dir = Dir::open(&self.root, &super::temp_dir(&self.root), true)?;
            ignore_in_git(&dir);
            self.tmp = Some(dir);
        }
        self.tmp.as_ref().ok_or_else(|| Error::Outside {
            path: super::temp_dir(&self.root),
        })
    }

    /// Writes `bytes` to a temp file that will become `path` (mode `mode`).
    pub(crate) fn stage(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
        let (dir, name) = fs::parent_of(&self.root, path, true)?;
        dir.expect_file_or_missing(&name)?;
        let temp: OsString = format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            super::commit::new_run_id()
        )
        .into();
        let tmp = self.tmp_dir()?;
        let mut f = tmp.create_new(&temp, mode)?;
        let r = fs::write_all(&mut f, bytes, path, false);
        self.staged.push(Staged { temp, dir, name });
        Ok(r?)
    }

    /// Removes the regular file `path` on commit (after the renames). Returns false (and
    /// stages nothing) when it does not exist.
    pub(crate) fn remove(&mut self, path: &Path) -> Result<bool, Error> {
        let (dir, name) = match fs::parent_of(&self.root, path, false) {
            Ok(x) => x,
            Err(fs::Error::Io { cause: source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        };
        if dir.expect_file_or_missing(&name)? == fs::Entry::Missing {
            return Ok(false);
        }
        self.removals.push((dir, name));
        Ok(true)
    }

    /// Moves `other`'s staged files and removals to the end of this batch (both stage in
    /// `sops/.tmp`), so several prepared runs become visible in one commit.
    pub(crate) fn append(&mut self, mut other: Batch) {
        if self.tmp.is_none() {
            self.tmp = other.tmp.take();
        }
        self.staged.append(&mut other.staged);
        self.removals.append(&mut other.removals);
    }

    /// Flushes every staged content, then renames each into place in staging order, then
    /// removes what was staged for removal.
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        if !self.staged.is_empty() {
            let tmp = self.tmp_dir()?;
            super::durable::flush(tmp)?;
        }
        let Some(tmp) = self.tmp.take() else {
            return self.remove_staged();
        };
        let staged = std::mem::take(&mut self.staged);
        let mut rest = staged.into_iter();
        while let Some(s) = rest.next() {
            crate::process::fault::point("commit.rename");
            if let Err(e) = s.dir.rename_in(&tmp, &s.temp, &s.name) {
                let _ = tmp.remove_file(&s.temp);
                for r in rest {
                    let _ = tmp.remove_file(&r.temp);
                }
                return Err(e.into());
            }
        }
        self.tmp = Some(tmp);
        self.remove_staged()
    }

    fn remove_staged(&mut self) -> Result<(), Error> {
        for (dir, name) in std::mem::take(&mut self.removals) {
            dir.remove_file(&name)?;
        }
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            for s in &self.staged {
                let _ = tmp.remove_file(&s.temp);
            }
        }
    }
}

/// Makes every rename under `root` durable (one flush of its filesystem).
pub(crate) fn sync_dir_tree(root: &Path) -> Result<(), Error> {
    super::durable::flush(&Dir::root(root)?)
}
