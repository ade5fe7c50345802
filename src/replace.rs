//! Atomic replacement of one file by path, for files outside the workspace's `sops/` tree (a
//! file named on the command line, `~/.ssh/known_hosts`, a target root being installed, the
//! eval cache). Files under the workspace root go through `store::write_atomic` instead, which
//! also refuses symlinks at every component.
//!
//! The guarantee: a reader sees the old or the new whole file, and after return the new
//! content survives a power loss. The bytes go to a fresh temporary file in the same directory
//! (created 0600), which gets its final mode, is fsynced, renamed over `path`, and then the
//! directory is fsynced so the rename itself is durable. On error the temporary file is
//! removed and `path` is untouched. A leaf module.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The mode the replaced file gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Exactly this mode (permission bits), whatever the old file had.
    Fixed(u32),
    /// The old file's permissions when it exists, else this mode.
    KeepOr(u32),
}

/// Replaces `path` with `bytes` (see the module doc for the guarantee). The temporary file is
/// named `<prefix><random>` in `path`'s directory (the current directory for a bare name).
/// Errors are the failing step's I/O error; the caller names the file.
pub(crate) fn replace_file(
    path: &Path,
    bytes: &[u8],
    mode: Mode,
    prefix: &str,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let perms = match (mode, std::fs::metadata(path)) {
        (Mode::KeepOr(_), Ok(meta)) => meta.permissions(),
        (Mode::Fixed(m) | Mode::KeepOr(m), _) => std::fs::Permissions::from_mode(m),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().set_permissions(perms)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_with_the_mode_asked_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        replace_file(&f, b"one", Mode::Fixed(0o640), ".t.").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o640);
        replace_file(&f, b"two", Mode::KeepOr(0o600), ".t.").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(mode(&f), 0o640, "KeepOr keeps the old file's mode");
        let g = d.path().join("g");
        replace_file(&g, b"x", Mode::KeepOr(0o600), ".t.").unwrap();
        assert_eq!(mode(&g), 0o600);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2);
    }
}
