//! Reading the workspace's definition files (`varsmith.yaml`, `generators/*.yaml`,
//! `machines/<m>/generators/*.yaml`) the way `sops/` is read: relative to a descriptor of the
//! root, never through a symlink at any component below it ([`crate::confined`]), at most
//! [`super::bounds::MAX_BYTES`], UTF-8. A cloned workspace or a pull request can put
//! `generators/zz.yaml -> ~/.config/sops/age/keys.txt` there; it is refused, naming the file,
//! and its target is never opened.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::Error;
use crate::confined::{self, Entry};

/// Turns a confined-file error into a workspace error (exit 2) naming the file.
fn from_confined(e: confined::Error) -> Error {
    match e {
        confined::Error::Symlink { path } => Error::Invalid {
            path,
            msg: "is a symlink; varsmith never reads workspace files through symlinks (replace it with the real file)".into(),
        },
        confined::Error::Io { path, cause: source } => Error::Io { path, cause: source },
        confined::Error::Malformed { path, msg } => Error::Invalid { path, msg },
        confined::Error::NotADirectory { path } => Error::Invalid {
            path,
            msg: "not a directory".into(),
        },
        confined::Error::NotAFile { path } => Error::Invalid {
            path,
            msg: "not a regular file".into(),
        },
        confined::Error::Outside { path } => Error::Invalid {
            path,
            msg: "outside the workspace".into(),
        },
    }
}

/// The text of the workspace file `path` (absolute, under `root`); `Ok(None)` when it or a
/// parent directory is missing.
pub(crate) fn text(root: &Path, path: &Path) -> Result<Option<String>, Error> {
    let max = super::bounds::MAX_BYTES as u64;
    let Some(bytes) = confined::read(root, path, max).map_err(from_confined)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::Invalid {
            path: path.to_path_buf(),
            msg: "not UTF-8 text".into(),
        })
}

/// The `*.yaml` definitions in `dir` (absolute, under `root`) as (stem, path, text), sorted by
/// stem; empty when `dir` is missing. A symlink (the directory, a component above it, or an
/// entry) is an error naming it.
pub(crate) fn yaml_files(root: &Path, dir: &Path) -> Result<Vec<(String, PathBuf, String)>, Error> {
    let d = match confined::Dir::open(root, dir, false) {
        Ok(d) => d,
        Err(confined::Error::Io { cause: source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(Vec::new());
        }
        Err(e) => return Err(from_confined(e)),
    };
    let mut out = Vec::new();
    for name in d.names().map_err(from_confined)? {
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".yaml")) else {
            continue;
        };
        let path = dir.join(&name);
        match d.entry(&name).map_err(from_confined)? {
            Entry::Symlink => return Err(from_confined(confined::Error::Symlink { path })),
            Entry::File => {}
            _ => continue,
        }
        if let Some(t) = text(root, &path)? {
            out.push((stem.to_string(), path, t));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The repository's top level, if the workspace is inside one (and git exists).
pub(crate) fn git_toplevel(root: &Path) -> Option<PathBuf> {
    let out = crate::child::command("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--show-toplevel"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then(|| PathBuf::from(s))
}
