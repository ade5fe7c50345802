//! Symlink-safe file operations under the workspace root.
//!
//! The workspace may arrive through `git clone` holding symlinks anywhere (`facts/x -> ~/.ssh`).
//! Every path below the root is therefore reached one component at a time with
//! `openat(O_NOFOLLOW | O_DIRECTORY)` from a descriptor of the root; files are created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` and an explicit `fchmod` (whatever the umask), renamed with
//! `renameat` and removed with `unlinkat` relative to their directory's descriptor. A symlink
//! at any component, or where a file is expected, is an error naming the path; nothing outside
//! the workspace is ever read, written or removed. Directories are created mode 0755.
//!
//! The root itself is opened by path (following symlinks there is the user's choice: `-C`).
//!
//! A leaf module: the store (writes) and the workspace readers (definitions, inventory) both
//! build on it, and it depends on neither.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use std::path::PathBuf as ErrPath;

/// Errors of a confined file operation; every variant names the path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read, written, created or removed.
    #[error("{path}: {cause}")]
    Io {
        /// The path the failing call concerned.
        path: ErrPath,
        /// The error of that call (never re-read from `errno`).
        cause: std::io::Error,
    },
    /// A path that cannot be used as given (a NUL byte, a file over the size limit).
    #[error("{path}: {msg}")]
    Malformed {
        /// The offending path.
        path: ErrPath,
        /// What is wrong with it.
        msg: String,
    },
    /// A symlink where the workspace must hold a directory or a file.
    #[error(
        "{path}: is a symlink; varsmith never reads or writes through symlinks in the workspace (remove it, or replace it with the real file)"
    )]
    Symlink {
        /// The symlink.
        path: ErrPath,
    },
    /// A file where a directory must be.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The non-directory.
        path: ErrPath,
    },
    /// A directory or special file where a regular file must be.
    #[error("{path}: not a regular file")]
    NotAFile {
        /// The non-file.
        path: ErrPath,
    },
    /// A path outside the workspace (absolute elsewhere, or with `..` components).
    #[error("{path}: outside the workspace")]
    Outside {
        /// The refused path.
        path: ErrPath,
    },
}

/// Mode of every directory varsmith creates in the workspace (whatever the umask).
pub(crate) const DIR_MODE: u32 = 0o755;

fn cstr(name: &OsStr, path: &Path) -> Result<CString, Error> {
    CString::new(name.as_bytes()).map_err(|_| Error::Malformed {
        path: path.to_path_buf(),
        msg: "path contains a NUL byte".into(),
    })
}

/// The error of the call that just failed (carried, never re-read from `errno`).
fn io_err(path: &Path, e: Errno) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        cause: e.into(),
    }
}

/// An open directory inside the workspace, reached without following any symlink.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a name in a directory is (not following a symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// No entry by that name (`ENOENT`).
    Missing,
    /// A regular file itself (a symlink to one is [`Entry::Symlink`]).
    File,
    /// A directory itself (a symlink to one is [`Entry::Symlink`]).
    Dir,
    /// A symlink (never followed).
    Symlink,
    /// Anything else (fifo, socket, device).
    Other,
}

impl Dir {
    /// Opens the workspace root by path (a duplicate of the descriptor [`root_fd`] keeps).
    pub(crate) fn root(root: &Path) -> Result<Dir, Error> {
        let fd = root_fd(root)?.try_clone_to_owned().map_err(|e| Error::Io {
            path: root.to_path_buf(),
            cause: e,
        })?;
        Ok(Dir {
            fd,
            path: root.to_path_buf(),
        })
    }

    fn open_root_uncached(root: &Path) -> Result<Dir, Error> {
        let c = cstr(root.as_os_str(), root)?;
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let fd =
            rustix::fs::open(c.as_c_str(), flags, Mode::empty()).map_err(|e| io_err(root, e))?;
        Ok(Dir {
            fd,
            path: root.to_path_buf(),
        })
    }

    /// Opens `dir` (absolute, under `root`), creating missing components when `create`.
    pub(crate) fn open(root: &Path, dir: &Path, create: bool) -> Result<Dir, Error> {
        let rel = dir.strip_prefix(root).map_err(|_| Error::Outside {
            path: dir.to_path_buf(),
        })?;
        if rel.as_os_str().is_empty() {
            return Dir::root(root);
        }
        // One syscall when the kernel resolves "beneath, no symlinks" itself; the walk below
        // creates what is missing and names the offending component otherwise.
        if let Ok(fd) = beneath(root_fd(root)?, rel, OFlags::DIRECTORY | OFlags::RDONLY) {
            return Ok(Dir {
                fd,
                path: dir.to_path_buf(),
            });
        }
        let mut cur = Dir::root(root)?;
        for comp in rel.components() {
            let Component::Normal(name) = comp else {
                return Err(Error::Outside {
                    path: dir.to_path_buf(),
                });
            };
            cur = cur.child_dir(name, create)?;
        }
        Ok(cur)
    }

    /// Opens (or, when `create`, makes with [`DIR_MODE`]) the subdirectory `name`.
    fn child_dir(&self, name: &OsStr, create: bool) -> Result<Dir, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
        let mut created = false;
        let mut last = Errno::NOENT;
        for _ in 0..2 {
            let e = match rustix::fs::openat(&self.fd, c.as_c_str(), flags, Mode::empty()) {
                Ok(fd) => {
                    if created {
                        // The umask may have narrowed (or a umask of 0 widened) the mode; set
                        // it on the descriptor, so a name swapped meanwhile is never chmodded.
                        let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE));
                    }
                    return Ok(Dir { fd, path });
                }
                Err(e) => e,
            };
            match e {
                Errno::NOENT if create => created = self.make_dir(&c, &path)?,
                Errno::LOOP | Errno::NOTDIR => {
                    return Err(match self.entry(name)? {
                        Entry::Symlink => Error::Symlink { path },
                        _ => Error::NotADirectory { path },
                    });
                }
                _ => return Err(io_err(&path, e)),
            }
            last = e;
        }
        Err(io_err(&path, last))
    }

    /// `mkdirat` with [`DIR_MODE`]: `Ok(true)` when made here, `Ok(false)` when another
    /// process made it first.
    fn make_dir(&self, c: &CStr, path: &Path) -> Result<bool, Error> {
        match rustix::fs::mkdirat(&self.fd, c, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) => Ok(false),
            Err(e) => Err(io_err(path, e)),
        }
    }

    /// What `name` is, without following a symlink.
    pub(crate) fn entry(&self, name: &OsStr) -> Result<Entry, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        let st = match rustix::fs::statat(&self.fd, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(Entry::Missing),
            Err(e) => return Err(io_err(&path, e)),
        };
        Ok(match FileType::from_raw_mode(st.st_mode as _) {
            FileType::RegularFile => Entry::File,
            FileType::Directory => Entry::Dir,
            FileType::Symlink => Entry::Symlink,
            _ => Entry::Other,
        })
    }

    /// Fails unless `name` is missing or a regular file.
    pub(crate) fn expect_file_or_missing(&self, name: &OsStr) -> Result<Entry, Error> {
        let path = self.path.join(name);
        match self.entry(name)? {
            e @ (Entry::Missing | Entry::File) => Ok(e),
            Entry::Symlink => Err(Error::Symlink { path }),
            Entry::Dir | Entry::Other => Err(Error::NotAFile { path }),
        }
    }

    /// Creates a new file `name` (which must not exist) with exactly `mode`, for writing.
    pub(crate) fn create_new(&self, name: &OsStr, mode: u32) -> Result<File, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mode = Mode::from_raw_mode(mode);
        let fd = rustix::fs::openat(&self.fd, c.as_c_str(), flags, mode)
            .map_err(|e| io_err(&path, e))?;
        // The umask does not decide the mode.
        rustix::fs::fchmod(&fd, mode).map_err(|e| io_err(&path, e))?;
        Ok(File::from(fd))
    }

    /// Opens the regular file `name` for reading; `Ok(None)` when missing.
    pub(crate) fn open_file(&self, name: &OsStr) -> Result<Option<File>, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&self.fd, c.as_c_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(Error::Symlink { path }),
            Err(e) => return Err(io_err(&path, e)),
        };
        let f = File::from(fd);
        let meta = f.metadata().map_err(|source| Error::Io {
            path: path.clone(),
            cause: source,
        })?;
        if !meta.is_file() {
            return Err(Error::NotAFile { path });
        }
        Ok(Some(f))
    }

    /// Renames `from` in `src` onto `to` in this directory (replacing a regular file).
    pub(crate) fn rename_in(&self, src: &Dir, from: &OsStr, to: &OsStr) -> Result<(), Error> {
        let path = self.path.join(to);
        self.expect_file_or_missing(to)?;
        let (cf, ct) = (cstr(from, &path)?, cstr(to, &path)?);
        rustix::fs::renameat(&src.fd, cf.as_c_str(), &self.fd, ct.as_c_str())
            .map_err(|e| io_err(&path, e))
    }

    /// Removes the regular file `name` (a symlink there is an error); `Ok(false)` when it was
    /// already missing.
    pub(crate) fn remove_file(&self, name: &OsStr) -> Result<bool, Error> {
        if self.expect_file_or_missing(name)? == Entry::Missing {
            return Ok(false);
        }
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        // unlinkat never follows the final component.
        rustix::fs::unlinkat(&self.fd, c.as_c_str(), AtFlags::empty())
            .map_err(|e| io_err(&path, e))?;
        Ok(true)
    }

    /// Names in this directory, without `.` and `..`, in the kernel's order.
    pub(crate) fn names(&self) -> Result<Vec<OsString>, Error> {
        // A fresh descriptor of "." relative to ours, so reading does not move our offset.
        let dir = rustix::fs::Dir::read_from(&self.fd).map_err(|e| io_err(&self.path, e))?;
        let mut out = Vec::new();
        for ent in dir {
            let ent = ent.map_err(|e| io_err(&self.path, e))?;
            let b = ent.file_name().to_bytes();
            if b != b"." && b != b".." {
                out.push(OsStr::from_bytes(b).to_os_string());
            }
        }
        Ok(out)
    }

    /// Flushes this directory's filesystem (`syncfs`; `fsync` of the directory elsewhere).
    pub(crate) fn sync_fs(&self) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        let r = rustix::fs::syncfs(&self.fd);
        #[cfg(not(target_os = "linux"))]
        let r = rustix::fs::fsync(&self.fd);
        r.map_err(|e| io_err(&self.path, e))
    }
}

/// The workspace root's directory descriptor, opened once per root path and kept for the
/// process (a handful of roots at most), so the hot paths neither reopen nor duplicate it.
fn root_fd(root: &Path) -> Result<BorrowedFd<'static>, Error> {
    use std::sync::Mutex;
    static ROOTS: Mutex<Vec<(PathBuf, &'static OwnedFd)>> = Mutex::new(Vec::new());
    let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, fd)) = roots.iter().find(|(p, _)| p == root) {
        return Ok(fd.as_fd());
    }
    let fd: &'static OwnedFd = Box::leak(Box::new(Dir::open_root_uncached(root)?.fd));
    roots.push((root.to_path_buf(), fd));
    Ok(fd.as_fd())
}

/// `openat2(dir, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6+). `ENOENT`
/// means a component is missing (a symlink component is `ELOOP` under `NO_SYMLINKS`, never
/// `ENOENT`); any other error (a symlink, an old kernel, a bad name) makes the caller walk
/// instead, which names the offending component.
#[cfg(target_os = "linux")]
fn beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    use rustix::fs::ResolveFlags;
    let c = CString::new(rel.as_os_str().as_bytes()).map_err(|_| Errno::INVAL)?;
    rustix::fs::openat2(
        dir,
        c.as_c_str(),
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
}

#[cfg(not(target_os = "linux"))]
fn beneath(_dir: BorrowedFd<'_>, _rel: &Path, _flags: OFlags) -> Result<OwnedFd, Errno> {
    Err(Errno::NOSYS)
}

/// Splits an absolute path under `root` into its parent directory (opened) and file name.
pub(crate) fn parent_of(root: &Path, path: &Path, create: bool) -> Result<(Dir, OsString), Error> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Outside {
            path: path.to_path_buf(),
        });
    };
    Ok((Dir::open(root, parent, create)?, name.to_os_string()))
}

/// Reads the regular file at `path` (under `root`), at most `max` bytes; `Ok(None)` when it or
/// a parent directory is missing.
pub(crate) fn read(root: &Path, path: &Path, max: u64) -> Result<Option<Vec<u8>>, Error> {
    if let Ok(rel) = path.strip_prefix(root) {
        let fd = match beneath(root_fd(root)?, rel, OFlags::RDONLY | OFlags::NONBLOCK) {
            Ok(fd) => Some(fd),
            Err(Errno::NOENT) => return Ok(None),
            Err(_) => None,
        };
        if let Some(fd) = fd {
            return read_opened(File::from(fd), path, max).map(Some);
        }
    }
    let (dir, name) = match parent_of(root, path, false) {
        Ok(x) => x,
        Err(Error::Io { cause: source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let Some(f) = dir.open_file(&name)? else {
        return Ok(None);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    read_bounded(f, len, path, max).map(Some)
}

/// Reads `f` (opened without following symlinks) when it is a regular file.
fn read_opened(f: File, path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let meta = f.metadata().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    read_bounded(f, meta.len(), path, max)
}

/// Reads at most `max` bytes of `f`, whose size is `len` (a hint: it may change).
fn read_bounded(f: File, len: u64, path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    let too_big = || Error::Malformed {
        path: path.to_path_buf(),
        msg: format!("larger than {max} bytes"),
    };
    if len > max {
        return Err(too_big());
    }
    let mut buf = Vec::with_capacity(len as usize + 1);
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
    if buf.len() as u64 > max {
        return Err(too_big());
    }
    Ok(buf)
}

/// Writes all of `bytes` to `f` and flushes it to disk when `durable`.
pub(crate) fn write_all(
    f: &mut File,
    bytes: &[u8],
    path: &Path,
    durable: bool,
) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    f.write_all(bytes).map_err(io)?;
    if durable {
        f.sync_all().map_err(io)?;
    }
    Ok(())
}
