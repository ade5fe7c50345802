//! Atomic file replacement: temp file on the same filesystem, fsync, rename, fsync directory.
//! After a crash at any instant the path holds either the old or the new whole content.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Error, io_err};

/// Atomically replaces `path` (inside the workspace at `root`) with `bytes`, mode 0644,
/// creating parent directories. The temp file is staged in `sops/.tmp`, which the next run
/// sweeps if this process is killed mid-write.
pub fn write_atomic(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tmp = temp_in(&super::temp_dir(root), path, bytes, 0o644)?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    persist(tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Renames a temp file onto `path`.
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), Error> {
    tmp.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Prefix of temp files beside their destination: `.varsmith-tmp-<pid>-…`.
pub const TEMP_PREFIX: &str = ".varsmith-tmp-";

/// Removes temp files in `dir` (and `sops/.tmp`) left by varsmith processes that no longer exist (killed
/// mid-write). They only ever hold ciphertext or public facts, but should not linger.
pub fn sweep_stale_temps(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !crate::pid_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A temp file in `dir` that will become `path`, holding `bytes` with `mode`.
fn temp_in(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<tempfile::NamedTempFile, Error> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err(path))?;
    Ok(tmp)
}

/// Several files replaced together: contents are written to temp files and flushed to disk with
/// one `syncfs` before any rename, then renamed in the order they were staged. A crash leaves
/// each path with its old or its new whole content; the renames reach the disk with the next
/// sync (see [`sync_dir_tree`]).
pub struct Batch {
    staged: Vec<(tempfile::NamedTempFile, std::path::PathBuf)>,
    temp_dir: std::path::PathBuf,
}

impl Batch {
    /// An empty batch whose temp files go to `temp_dir` (on the same filesystem as the
    /// destinations), so that one directory holds whatever a killed run left behind.
    pub fn in_dir(temp_dir: &Path) -> Self {
        Batch {
            staged: Vec::new(),
            temp_dir: temp_dir.to_path_buf(),
        }
    }

    /// Writes `bytes` to a temp file beside `path` (mode `mode`), to be renamed on commit.
    pub fn stage(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let tmp = temp_in(&self.temp_dir, path, bytes, mode)?;
        self.staged.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Flushes every staged content, then renames each into place in staging order.
    pub fn commit(self) -> Result<(), Error> {
        if let Some((first, path)) = self.staged.first() {
            syncfs(first.as_file(), path)?;
        }
        for (tmp, path) in self.staged {
            persist(tmp, &path)?;
        }
        Ok(())
    }
}

/// `syncfs(2)` on the filesystem holding `file`.
fn syncfs(file: &std::fs::File, path: &Path) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs on a valid open file descriptor.
    if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
        return Err(io_err(path)(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Makes every rename under `dir` durable (one `syncfs` of its filesystem).
pub fn sync_dir_tree(dir: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(dir).map_err(io_err(dir))?;
    syncfs(&f, dir)
}
