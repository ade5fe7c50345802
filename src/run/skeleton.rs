//! The sandbox's root directory, prepared once per process and bound read-only at `/` by every
//! run (`super::bwrap`): one mount instead of one per configuration file, plus the read-only
//! remount of bubblewrap's own root that it makes unnecessary. Each bind costs bubblewrap a
//! mount, a re-read of `/proc/self/mountinfo` and a remount, on every run.
//!
//! It holds: `/etc/passwd` and `/etc/group` naming the run's uid; the host's configuration
//! files the usual tools need (`SYSTEM_FILES` of `super::bwrap`), copied; the merged-/usr
//! symlinks (`/bin -> usr/bin`…); and an empty mountpoint for everything bound or mounted on
//! top (`/usr`, `/nix/store`, `/dev`, `/proc`, `/tmp`, `$HOME`, `/vars/…`), and the helper
//! binary (`super::helper`): a symlink to it when it is installed in a bound system directory,
//! else a mountpoint bound read-only by [`Root::args`].
//!
//! Invariants:
//! * It shows the sandbox no more than the binds it replaces: a configuration file that is a
//!   symlink resolving into a bound system directory becomes a symlink to that resolved path;
//!   a regular file or a directory tree is copied only if it holds nothing but directories,
//!   regular files and symlinks (kept as symlinks, as a bind shows them), at most
//!   [`MAX_COPY_ENTRIES`] entries and [`MAX_COPY_BYTES`] bytes; the copies keep their mode
//!   bits minus write and set-id bits, so a file the sandbox's uid could not read on the host
//!   stays unreadable. Anything else (too big, another file type, unreadable here) is bound as
//!   before, with its mountpoint made here.
//! * A system path that does not exist when the root is made is not made visible later in the
//!   process (no mountpoint for it); it is a snapshot, as the configuration files are.
//! * It lives in a plaintext-style directory on tmpfs given to the sandbox's uid (as the
//!   helper's copy, `super::helper`), its content owned by varsmith; removed by [`release`],
//!   on a signal, or by the next run's sweep. Made again on demand after [`release`].
//! * Any failure to make it leaves the runs on the old command line (a bind per file, the
//!   files `passwd` and `group` from memory, a read-only remount of `/`).

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::process::tmpfs::PlaintextDir;

/// Most entries copied from one configuration directory (else it is bound).
pub(crate) const MAX_COPY_ENTRIES: usize = 4096;
/// Most bytes copied from one configuration file or directory (else it is bound).
pub(crate) const MAX_COPY_BYTES: u64 = 16 << 20;

/// The prepared root and the bubblewrap arguments that use it.
pub(crate) struct Root {
    /// `--ro-bind ROOT /`, then the system directories', the bound files' and the helper's
    /// binds.
    pub args: Vec<OsString>,
    /// Whose uid/gid `passwd` and `group` name, and the helper's presence: what it was made
    /// for.
    key: Key,
}

#[derive(Clone, PartialEq, Eq)]
struct Key {
    uid: u32,
    gid: u32,
    drop_root: bool,
    helper: Option<PathBuf>,
}

struct Made {
    root: Arc<Root>,
    _dir: PlaintextDir,
}

static ROOT: Mutex<Option<Made>> = Mutex::new(None);

/// What the sandbox's root is made from.
pub(crate) struct Spec<'a> {
    /// The run identity.
    pub id: &'a super::identity::RunIdentity,
    /// `(directory, resolved symlink target)`: system directories, `None` target when bound.
    pub system_dirs: &'a [(&'a str, Option<PathBuf>)],
    /// Configuration files and directories to copy (or bind).
    pub system_files: &'a [&'a str],
    /// Mountpoints of directories mounted on top.
    pub mount_dirs: &'a [&'a str],
    /// The helper binary, if any: where it appears, and the host file shown there (a
    /// symlink to it when it lies in a bound system directory, else a bind).
    pub helper: Option<(&'a str, PathBuf)>,
}

/// The prepared root for `spec`, made on first use (or again after [`release`], or for
/// another identity); `None` when it cannot be made.
pub(crate) fn get(spec: &Spec<'_>) -> Option<Arc<Root>> {
    let key = Key {
        uid: spec.id.uid,
        gid: spec.id.gid,
        drop_root: spec.id.drop_root,
        helper: spec.helper.as_ref().map(|(_, source)| source.clone()),
    };
    let mut slot = ROOT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = slot.as_ref()
        && m.root.key == key
        && m._dir.path().exists()
    {
        return Some(m.root.clone());
    }
    *slot = None;
    let made = make(spec, key).ok()?;
    let root = made.root.clone();
    *slot = Some(made);
    Some(root)
}

/// Removes the prepared root, if any (call once the last run is over).
pub(crate) fn release() {
    if let Ok(mut slot) = ROOT.lock() {
        slot.take();
    }
}

fn make(spec: &Spec<'_>, key: Key) -> std::io::Result<Made> {
    let owner = spec.id.drop_root.then_some((spec.id.uid, spec.id.gid));
    let dir = PlaintextDir::new(owner).map_err(std::io::Error::other)?;
    let root = dir.path().join("root");
    mkdirs(&root)?;
    let mut args: Vec<OsString> = vec!["--ro-bind".into(), root.clone().into(), "/".into()];
    for (d, target) in spec.system_dirs {
        match target {
            Some(t) => std::os::unix::fs::symlink(t, inside(&root, d))?,
            None => {
                if std::fs::metadata(d).is_ok_and(|m| m.is_dir()) {
                    mkdirs(&inside(&root, d))?;
                    args.extend(["--ro-bind-try", d, d].map(Into::into));
                }
            }
        }
    }
    let bound: Vec<&str> = spec
        .system_dirs
        .iter()
        .filter(|(d, t)| t.is_none() && std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
        .map(|(d, _)| *d)
        .collect();
    for f in spec.system_files {
        if std::fs::symlink_metadata(f).is_err() {
            continue;
        }
        let dest = inside(&root, f);
        if let Some(parent) = dest.parent() {
            mkdirs(parent)?;
        }
        if place(f, &dest, &bound).is_err() {
            // Bound as before: clear what a partial copy left, make the mountpoint.
            let _ = crate::process::tmpfs::remove_tree(&dest);
            let _ = std::fs::remove_file(&dest);
            if std::fs::metadata(f).is_ok_and(|m| m.is_dir()) {
                mkdirs(&dest)?;
            } else {
                std::fs::File::create(&dest)?;
            }
            args.extend(["--ro-bind-try", f, f].map(Into::into));
        }
    }
    for d in spec.mount_dirs {
        mkdirs(&inside(&root, d))?;
    }
    if let Some((f, source)) = &spec.helper {
        let dest = inside(&root, f);
        if let Some(parent) = dest.parent() {
            mkdirs(parent)?;
        }
        match std::fs::canonicalize(source) {
            // Installed under /usr or /nix/store: visible already, no mount needed.
            Ok(real) if bound.iter().any(|d| real.starts_with(d)) => {
                std::os::unix::fs::symlink(&real, &dest)?;
            }
            _ => {
                std::fs::File::create(&dest)?;
                args.extend([
                    "--ro-bind".into(),
                    source.clone().into_os_string(),
                    (*f).into(),
                ]);
            }
        }
    }
    let etc = root.join("etc");
    mkdirs(&etc)?;
    write_file(
        &etc.join("passwd"),
        spec.id.passwd(super::bwrap::HOME).as_bytes(),
    )?;
    write_file(&etc.join("group"), spec.id.group().as_bytes())?;
    Ok(Made {
        root: Arc::new(Root { args, key }),
        _dir: dir,
    })
}

/// `path` (absolute) under `root`.
fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn mkdirs(p: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
}

fn write_file(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(p, bytes)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o444))
}

/// Puts host path `f` at `dest`: a symlink to its resolved path when that lies in a bound
/// system directory, else a copy (see the module documentation); `Err` means "bind it".
fn place(f: &str, dest: &Path, bound: &[&str]) -> std::io::Result<()> {
    let real = std::fs::canonicalize(f)?;
    let is_link = std::fs::symlink_metadata(f)?.file_type().is_symlink();
    if is_link && bound.iter().any(|d| real.starts_with(d)) {
        return std::os::unix::fs::symlink(&real, dest);
    }
    let mut budget = (MAX_COPY_ENTRIES, MAX_COPY_BYTES);
    copy(&real, dest, &mut budget)
}

/// Copies `from` (followed if a symlink at the top) to `to`: directories, regular files and
/// symlinks only, within `budget` (entries, bytes).
fn copy(from: &Path, to: &Path, budget: &mut (usize, u64)) -> std::io::Result<()> {
    let refuse = |what: &str| Err(std::io::Error::other(format!("{}: {what}", from.display())));
    budget.0 = match budget.0.checked_sub(1) {
        Some(n) => n,
        None => return refuse("too many entries"),
    };
    let meta = std::fs::metadata(from)?;
    let mode = meta.mode() & 0o555;
    if meta.is_dir() {
        std::fs::create_dir(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            let (src, dst) = (e.path(), to.join(e.file_name()));
            let t = e.file_type()?;
            if t.is_symlink() {
                budget.0 = match budget.0.checked_sub(1) {
                    Some(n) => n,
                    None => return refuse("too many entries"),
                };
                std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
            } else if t.is_dir() || t.is_file() {
                copy(&src, &dst, budget)?;
            } else {
                return refuse("not a file, directory or symlink");
            }
        }
        // Searchable by its owner here while the tree is made and removed; read-only anyway.
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode | 0o700))
    } else if meta.is_file() {
        budget.1 = match budget.1.checked_sub(meta.len()) {
            Some(n) => n,
            None => return refuse("too big"),
        };
        let bytes = std::fs::read(from)?;
        std::fs::write(to, &bytes)?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode))
    } else {
        refuse("not a file, directory or symlink")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of directories, files and symlinks is copied (symlinks kept, write bits
    /// dropped); a FIFO or a tree over the budget is refused (then bound).
    #[test]
    fn copies_plain_trees_and_refuses_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f"), b"data").unwrap();
        std::fs::set_permissions(src.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::os::unix::fs::symlink("sub/f", src.join("link")).unwrap();
        let dst = t.path().join("dst");
        copy(&src, &dst, &mut (MAX_COPY_ENTRIES, MAX_COPY_BYTES)).unwrap();
        assert_eq!(std::fs::read(dst.join("link")).unwrap(), b"data");
        assert_eq!(
            std::fs::read_link(dst.join("link")).unwrap(),
            Path::new("sub/f")
        );
        let mode = std::fs::metadata(dst.join("sub/f")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o440);

        assert!(copy(&src, &t.path().join("small"), &mut (2, MAX_COPY_BYTES)).is_err());
        assert!(copy(&src, &t.path().join("tiny"), &mut (MAX_COPY_ENTRIES, 3)).is_err());
        let fifo = std::ffi::CString::new(src.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        assert!(
            copy(
                &src,
                &t.path().join("withfifo"),
                &mut (MAX_COPY_ENTRIES, MAX_COPY_BYTES)
            )
            .is_err()
        );
    }
}
