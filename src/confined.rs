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
//! Reads ([`read`]) are one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, one `fstat`, one
//! `read` and one `close` per file. While a command holds a [`ReadCache`] (no-op `generate`,
//! `check`: by default none is active), a file is read once and answered from memory after;
//! its docs say why that is sound (every write empties it; taking the workspace lock makes
//! each entry be re-checked with `fstatat` against the inode, size, mtime and ctime it was
//! read with).
//!
//! A leaf module: the store (writes) and the workspace readers (definitions, inventory) both
//! build on it, and it depends on neither.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

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
        let fd = rustix::fs::openat(&self.fd, c.as_c_str(), flags, mode);
        cache::invalidate();
        let fd = fd.map_err(|e| io_err(&path, e))?;
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
        let r = rustix::fs::renameat(&src.fd, cf.as_c_str(), &self.fd, ct.as_c_str());
        cache::invalidate();
        r.map_err(|e| io_err(&path, e))
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
        let r = rustix::fs::unlinkat(&self.fd, c.as_c_str(), AtFlags::empty());
        cache::invalidate();
        r.map_err(|e| io_err(&path, e))?;
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

    /// Names in this directory with what each is (as [`Dir::entry`] says, not following a
    /// symlink), without `.` and `..`, in the kernel's order: the type the directory listing
    /// gives, and a `stat` only for a name it does not type (`DT_UNKNOWN`).
    pub(crate) fn entries(&self) -> Result<Vec<(OsString, Entry)>, Error> {
        let dir = rustix::fs::Dir::read_from(&self.fd).map_err(|e| io_err(&self.path, e))?;
        let mut out = Vec::new();
        for ent in dir {
            let ent = ent.map_err(|e| io_err(&self.path, e))?;
            let b = ent.file_name().to_bytes();
            if b == b"." || b == b".." {
                continue;
            }
            let name = OsStr::from_bytes(b).to_os_string();
            let e = match ent.file_type() {
                FileType::RegularFile => Entry::File,
                FileType::Directory => Entry::Dir,
                FileType::Symlink => Entry::Symlink,
                FileType::Unknown => self.entry(&name)?,
                _ => Entry::Other,
            };
            out.push((name, e));
        }
        Ok(out)
    }

    /// Opens the existing directory `dir` (absolute, under `root`); `Ok(None)` when it or a
    /// parent is missing. A symlink or non-directory on the way is an error naming it.
    pub(crate) fn open_existing(root: &Path, dir: &Path) -> Result<Option<Dir>, Error> {
        if let Ok(rel) = dir.strip_prefix(root)
            && !rel.as_os_str().is_empty()
        {
            match beneath(root_fd(root)?, rel, OFlags::DIRECTORY | OFlags::RDONLY) {
                Ok(fd) => {
                    return Ok(Some(Dir {
                        fd,
                        path: dir.to_path_buf(),
                    }));
                }
                Err(Errno::NOENT) => return Ok(None),
                // A symlink, a file on the way, an old kernel: the walk names it.
                Err(_) => {}
            }
        }
        match Dir::open(root, dir, false) {
            Ok(d) => Ok(Some(d)),
            Err(Error::Io { cause, .. }) if cause.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
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
/// a parent directory is missing. While a [`ReadCache`] for `root` is active, a path already
/// read (or found missing) is answered from it.
pub(crate) fn read(root: &Path, path: &Path, max: u64) -> Result<Option<Vec<u8>>, Error> {
    if !cache::active(root) {
        return read_uncached(root, path, max).map(|r| r.map(|(b, _)| b));
    }
    Ok(read_shared(root, path, max)?.map(|b| b.to_vec()))
}

/// [`read`] without a copy: the cached bytes themselves while a [`ReadCache`] is active.
pub(crate) fn read_shared(root: &Path, path: &Path, max: u64) -> Result<Option<Arc<[u8]>>, Error> {
    let Some(found) = cache::lookup(root, path) else {
        return read_uncached(root, path, max).map(|r| r.map(|(b, _)| Arc::from(b)));
    };
    match found {
        cache::Lookup::Hit(bytes) => match bytes {
            Some(b) if b.len() as u64 > max => Err(Error::Malformed {
                path: path.to_path_buf(),
                msg: format!("larger than {max} bytes"),
            }),
            b => Ok(b),
        },
        cache::Lookup::Miss(epoch) => {
            let r = read_uncached(root, path, max)?;
            if r.is_none() {
                // Missing: when its directory is missing too, so is every other file there
                // (the admins-only secrets of a machine that has none), known without a call.
                if let Some(parent) = path.parent()
                    && let Ok(rel) = parent.strip_prefix(root)
                    && !rel.as_os_str().is_empty()
                    && let Err(Errno::NOENT) =
                        beneath(root_fd(root)?, rel, OFlags::PATH | OFlags::DIRECTORY)
                {
                    cache::insert_missing_dir(root, parent, epoch);
                }
            }
            let r = r.map(|(b, id)| (Arc::<[u8]>::from(b), id));
            cache::insert(root, path, epoch, r.as_ref().map(|(b, id)| (b, *id)));
            Ok(r.map(|(b, _)| b))
        }
    }
}

/// What `parse` makes of the file at `path` ([`read_shared`]), `Ok(None)` when it is missing.
/// While a [`ReadCache`] is active the result is kept with the cached bytes and given again
/// for as long as those bytes are (a file read again, or any write, parses anew); a `T` is
/// only ever given for the very bytes it was parsed from. Errors are never kept.
pub(crate) fn read_parsed<T, E>(
    root: &Path,
    path: &Path,
    max: u64,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<Option<Arc<T>>, E>
where
    T: Send + Sync + 'static,
    E: From<Error>,
{
    let Some(bytes) = read_shared(root, path, max)? else {
        return Ok(None);
    };
    if let Some(t) = cache::parsed::<T>(root, path, &bytes) {
        return Ok(Some(t));
    }
    let t = Arc::new(parse(&bytes)?);
    cache::keep_parsed(root, path, &bytes, Arc::clone(&t));
    Ok(Some(t))
}

/// Whether `path` (under `root`) exists without following a final symlink, as
/// `std::fs::symlink_metadata(path).is_ok()` says. While a [`ReadCache`] is active the file is
/// read (and cached) instead: a regular file read exists; one found missing (`ENOENT` from
/// the symlink-refusing `openat2`: a component is missing, no symlink crossed before it) does
/// not, as `symlink_metadata` also finds; anything else is asked of `symlink_metadata`.
pub(crate) fn exists_nofollow(root: &Path, path: &Path) -> bool {
    match cache_exists(root, path) {
        Some(present) => present,
        None => std::fs::symlink_metadata(path).is_ok(),
    }
}

/// Whether `path` (under `root`) exists following symlinks, as [`Path::exists`] says; answered
/// through an active [`ReadCache`] as [`exists_nofollow`] is.
pub(crate) fn exists(root: &Path, path: &Path) -> bool {
    match cache_exists(root, path) {
        Some(present) => present,
        None => path.exists(),
    }
}

/// `Some(exists)` when an active cache can tell (reading the file into it), else `None`.
fn cache_exists(root: &Path, path: &Path) -> Option<bool> {
    if !cache::active(root) {
        return None;
    }
    // Larger files (none varsmith writes) are looked at by `stat` instead.
    const MAX: u64 = 64 * 1024 * 1024;
    match read(root, path, MAX) {
        Ok(r) => Some(r.is_some()),
        Err(_) => None,
    }
}

/// What identifies one version of a file's content: `(dev, ino, size, mtime, ctime)` (times
/// in nanoseconds). `None` when its times are too recent to tell a later change in the same
/// clock tick apart.
type FileId = Option<(u64, u64, u64, i128, i128)>;

/// The [`FileId`] of `st` (taken at the read, whose time is now).
fn file_id(st: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    let (mtime, ctime) = (
        ns(st.mtime(), st.mtime_nsec()),
        ns(st.ctime(), st.ctime_nsec()),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    // As git's "racily clean" entries: a change within the same tick as the time recorded
    // would keep it; two seconds covers every filesystem's timestamp granularity but FAT's.
    const RACY_NS: i128 = 2_000_000_000;
    (mtime < now - RACY_NS && ctime < now - RACY_NS).then_some((
        st.dev(),
        st.ino(),
        st.size(),
        mtime,
        ctime,
    ))
}

pub(crate) use cache::{ReadCache, recheck as recheck_cached_reads};

/// The per-command read cache ([`ReadCache`]).
mod cache {
    use std::any::Any;
    use std::collections::HashMap;
    use std::ffi::{OsStr, OsString};
    use std::hash::{BuildHasher, RandomState};
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, RwLock};

    use rustix::fs::{AtFlags, FileType, OFlags};
    use rustix::io::Errno;

    use super::FileId;

    /// At most this many bytes of file contents are kept (beyond it, reads are not cached).
    const MAX_BYTES: usize = 512 * 1024 * 1024;

    /// Files are spread over this many independently locked shards, so the threads of the
    /// parallel status pass rarely wait for each other.
    const SHARDS: usize = 32;

    struct Entry {
        /// `None`: found missing.
        bytes: Option<Arc<[u8]>>,
        /// What [`super::read_parsed`] made of `bytes` (one type per file).
        parsed: Option<Arc<dyn Any + Send + Sync>>,
        id: FileId,
        /// The [`Cache::checked`] it was read or last re-checked at.
        checked: u64,
    }

    /// What is known of directories, as of the current [`Cache::checked`].
    #[derive(Default)]
    struct Dirs {
        /// Directories found missing.
        missing: HashMap<OsString, ()>,
        /// Directories opened to re-check their files (`None`: missing).
        opened: HashMap<OsString, Option<Arc<OwnedFd>>>,
    }

    struct Cache {
        root: PathBuf,
        /// Bumped by every write: a read that began before one is not inserted. Bumped before
        /// the shards are emptied, and compared under the shard's lock by [`insert`].
        epoch: AtomicU64,
        /// Bumped by [`recheck`]: entries of an older one are checked before use.
        checked: AtomicU64,
        bytes: AtomicUsize,
        /// Picks a file's shard.
        hasher: RandomState,
        /// Files by the path's bytes. Lock order: a shard, then `dirs`.
        shards: Vec<Mutex<HashMap<OsString, Entry>>>,
        dirs: Mutex<Dirs>,
    }

    impl Cache {
        fn shard(&self, path: &Path) -> MutexGuard<'_, HashMap<OsString, Entry>> {
            let i = (self.hasher.hash_one(path.as_os_str().as_bytes()) as usize) % SHARDS;
            self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
        }

        fn dirs(&self) -> MutexGuard<'_, Dirs> {
            self.dirs.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    static CACHE: RwLock<Option<Cache>> = RwLock::new(None);

    /// The active cache for `root`, if any (the guard keeps it alive, not locked).
    fn active_for(root: &Path) -> Option<std::sync::RwLockReadGuard<'static, Option<Cache>>> {
        let g = CACHE.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref().is_some_and(|c| c.root == root).then_some(g)
    }

    fn any_active() -> Option<std::sync::RwLockReadGuard<'static, Option<Cache>>> {
        let g = CACHE.read().unwrap_or_else(|e| e.into_inner());
        g.is_some().then_some(g)
    }

    /// Contents of the workspace's files as this process read them, for the span of one
    /// command's read-mostly phase (a no-op `generate`, a `check`), so a file several steps
    /// look at (a manifest, a secrets file, a machine's `key.json`) is opened once.
    ///
    /// Sound because it never outlives what it caches. It lives in this process's memory only
    /// (nothing is persisted or shared with another process). Every write, rename or removal
    /// this process makes in the workspace ([`super::Dir::create_new`],
    /// [`super::Dir::rename_in`], [`super::Dir::remove_file`]) empties it, and a read that
    /// raced with such a write is not inserted. Other varsmith processes write only under the
    /// exclusive workspace lock; when this process takes the lock ([`recheck`]), what it read
    /// before is used again only after checking, with one `fstatat` relative to its directory
    /// (opened with `openat2` refusing symlinks, so nothing outside the workspace is looked
    /// at), that the name still holds the same inode with the same size, mtime and ctime — or,
    /// for a file found missing, is still missing. A file whose times were within two seconds
    /// of its read is read again instead (a change in the same timestamp tick could keep them).
    /// Only successful results are kept (a file read in full, or `ENOENT` from the
    /// symlink-refusing `openat2`); an error (a symlink, a non-file, a larger-than-allowed
    /// file) is never cached, so it is found again each time. What a hand edit during the
    /// command changes is seen as of the first read, as if that edit came a moment later.
    /// Inactive (every read goes to disk) unless a guard is alive.
    #[derive(Debug)]
    pub(crate) struct ReadCache {
        owner: bool,
    }

    impl ReadCache {
        /// Starts caching reads under `root` until the guard is dropped (a guard taken while
        /// another is alive does nothing).
        pub(crate) fn begin(root: &Path) -> ReadCache {
            let mut c = CACHE.write().unwrap_or_else(|e| e.into_inner());
            if c.is_some() {
                return ReadCache { owner: false };
            }
            *c = Some(Cache {
                root: root.to_path_buf(),
                epoch: AtomicU64::new(0),
                checked: AtomicU64::new(0),
                bytes: AtomicUsize::new(0),
                hasher: RandomState::new(),
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                dirs: Mutex::new(Dirs::default()),
            });
            ReadCache { owner: true }
        }
    }

    impl Drop for ReadCache {
        fn drop(&mut self) {
            if self.owner {
                let old = CACHE.write().unwrap_or_else(|e| e.into_inner()).take();
                drop(old);
            }
        }
    }

    /// Forgets everything cached (a write in the workspace).
    pub(crate) fn invalidate() {
        let Some(g) = any_active() else { return };
        let Some(c) = g.as_ref() else { return };
        // First the epoch: a read racing with this write then finds it changed when it
        // inserts, whether before or after its shard is emptied.
        c.epoch.fetch_add(1, Ordering::SeqCst);
        for s in &c.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        *c.dirs() = Dirs::default();
        c.bytes.store(0, Ordering::SeqCst);
    }

    /// Makes every cached result be checked against the disk before its next use (the
    /// workspace lock was taken: another process may have written before).
    pub(crate) fn recheck() {
        let Some(g) = any_active() else { return };
        let Some(c) = g.as_ref() else { return };
        let mut d = c.dirs();
        *d = Dirs::default();
        c.checked.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether a cache for `root` is active.
    pub(super) fn active(root: &Path) -> bool {
        active_for(root).is_some()
    }

    pub(super) enum Lookup {
        /// Cached: the contents, or `None` when found missing.
        Hit(Option<Arc<[u8]>>),
        /// Not cached: read it and [`insert`] it with this epoch.
        Miss(u64),
    }

    /// `None` when no cache is active for `root`.
    pub(super) fn lookup(root: &Path, path: &Path) -> Option<Lookup> {
        let g = active_for(root)?;
        let c = g.as_ref()?;
        // The epoch before the shard is looked at: a write after it makes the insert a no-op.
        let epoch = c.epoch.load(Ordering::SeqCst);
        let checked = c.checked.load(Ordering::SeqCst);
        let mut files = c.shard(path);
        let key = path.as_os_str();
        if let Some(e) = files.get(key) {
            if e.checked == checked {
                return Some(Lookup::Hit(e.bytes.clone()));
            }
        } else {
            let parent = path.parent().map(Path::as_os_str);
            let missing = parent.is_some_and(|p| c.dirs().missing.contains_key(p));
            return Some(if missing {
                Lookup::Hit(None)
            } else {
                Lookup::Miss(epoch)
            });
        }
        Some(if still_same(c, &files, path) {
            let e = files.get_mut(key)?;
            e.checked = checked;
            Lookup::Hit(e.bytes.clone())
        } else {
            if let Some(e) = files.remove(key) {
                c.bytes
                    .fetch_sub(e.bytes.map_or(0, |b| b.len()), Ordering::SeqCst);
            }
            Lookup::Miss(epoch)
        })
    }

    /// Whether the cached entry of `path` still describes the disk (see [`ReadCache`]).
    fn still_same(c: &Cache, files: &HashMap<OsString, Entry>, path: &Path) -> bool {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let Ok(rel) = parent.strip_prefix(&c.root) else {
            return false;
        };
        let Some(e) = files.get(path.as_os_str()) else {
            return false;
        };
        let mut dirs = c.dirs();
        if !dirs.opened.contains_key(parent.as_os_str()) {
            let dir = if rel.as_os_str().is_empty() {
                super::root_fd(&c.root)
                    .ok()
                    .and_then(|fd| fd.try_clone_to_owned().ok())
            } else {
                let Ok(fd) = super::root_fd(&c.root) else {
                    return false;
                };
                match super::beneath(fd, rel, OFlags::PATH | OFlags::DIRECTORY) {
                    Ok(fd) => Some(fd),
                    Err(Errno::NOENT) => None,
                    Err(_) => return false,
                }
            };
            dirs.opened
                .insert(parent.as_os_str().to_os_string(), dir.map(Arc::new));
        }
        let Some(Some(dir)) = dirs.opened.get(parent.as_os_str()) else {
            // The directory is gone (or a component of it, no symlink crossed): so is the file.
            return e.bytes.is_none();
        };
        let dir = Arc::clone(dir);
        // The stat itself runs without the directories' lock (only this shard's is held).
        drop(dirs);
        let Ok(cname) = std::ffi::CString::new(name.as_bytes()) else {
            return false;
        };
        match rustix::fs::statat(&*dir, cname.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
            // The `stat` field types differ between platforms.
            #[allow(clippy::unnecessary_cast)]
            Ok(st) => {
                let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
                let now = (
                    st.st_dev as u64,
                    st.st_ino as u64,
                    st.st_size as u64,
                    ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
                    ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
                );
                e.bytes.is_some()
                    && FileType::from_raw_mode(st.st_mode as _) == FileType::RegularFile
                    && e.id == Some(now)
            }
            Err(Errno::NOENT) => e.bytes.is_none(),
            Err(_) => false,
        }
    }

    /// Caches what a read that began at `epoch` found (the contents and their [`FileId`], or
    /// `None`: missing), unless a write came since.
    pub(super) fn insert(
        root: &Path,
        path: &Path,
        epoch: u64,
        found: Option<(&Arc<[u8]>, FileId)>,
    ) {
        let Some(g) = active_for(root) else { return };
        let Some(c) = g.as_ref() else { return };
        let mut files = c.shard(path);
        if c.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        let len = found.map_or(0, |(b, _)| b.len());
        if c.bytes.load(Ordering::SeqCst) + len > MAX_BYTES {
            return;
        }
        let entry = Entry {
            bytes: found.map(|(b, _)| Arc::clone(b)),
            parsed: None,
            id: found.and_then(|(_, id)| id),
            checked: c.checked.load(Ordering::SeqCst),
        };
        c.bytes.fetch_add(len, Ordering::SeqCst);
        if let Some(old) = files.insert(path.as_os_str().to_os_string(), entry) {
            c.bytes
                .fetch_sub(old.bytes.map_or(0, |b| b.len()), Ordering::SeqCst);
        }
    }

    /// The parsed `T` kept with `path`'s cached bytes, when those are `bytes` themselves.
    pub(super) fn parsed<T: Send + Sync + 'static>(
        root: &Path,
        path: &Path,
        bytes: &Arc<[u8]>,
    ) -> Option<Arc<T>> {
        let g = active_for(root)?;
        let files = g.as_ref()?.shard(path);
        let e = files.get(path.as_os_str())?;
        if !e.bytes.as_ref().is_some_and(|b| Arc::ptr_eq(b, bytes)) {
            return None;
        }
        Arc::clone(e.parsed.as_ref()?).downcast::<T>().ok()
    }

    /// Keeps `t`, parsed from `bytes`, with `path`'s cached bytes when those are `bytes`.
    pub(super) fn keep_parsed<T: Send + Sync + 'static>(
        root: &Path,
        path: &Path,
        bytes: &Arc<[u8]>,
        t: Arc<T>,
    ) {
        let Some(g) = active_for(root) else { return };
        let Some(c) = g.as_ref() else { return };
        let mut files = c.shard(path);
        if let Some(e) = files.get_mut(path.as_os_str())
            && e.bytes.as_ref().is_some_and(|b| Arc::ptr_eq(b, bytes))
        {
            e.parsed = Some(t);
        }
    }

    /// Records that directory `dir` was found missing by a lookup that began at `epoch`.
    pub(super) fn insert_missing_dir(root: &Path, dir: &Path, epoch: u64) {
        let Some(g) = active_for(root) else { return };
        let Some(c) = g.as_ref() else { return };
        let mut d = c.dirs();
        if c.epoch.load(Ordering::SeqCst) == epoch {
            d.missing.insert(OsStr::new(dir).to_os_string(), ());
        }
    }
}

/// [`read`] from disk: the contents and their [`FileId`].
fn read_uncached(root: &Path, path: &Path, max: u64) -> Result<Option<(Vec<u8>, FileId)>, Error> {
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
    read_opened(f, path, max).map(Some)
}

/// Reads `f` (opened without following symlinks) when it is a regular file.
fn read_opened(f: File, path: &Path, max: u64) -> Result<(Vec<u8>, FileId), Error> {
    let meta = f.metadata().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    })?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let id = file_id(&meta);
    Ok((read_bounded(f, meta.len(), path, max)?, id))
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
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    let mut buf = vec![0u8; len as usize + 1];
    // One read for a file of the size `fstat` gave: asked for one byte more, the kernel
    // stopping at exactly that size is the end of the file (no second read to see it).
    let n = loop {
        match (&f).read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
    };
    buf.truncate(n);
    if n as u64 != len {
        // Grown or shrunk since: read on to the end.
        f.take(max + 1 - n as u64)
            .read_to_end(&mut buf)
            .map_err(io)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Only what is read is asserted (never whether the cache answered): tests in other
    /// threads of this process may own the one cache or empty it meanwhile.
    #[test]
    fn cached_reads_see_writes_and_changes_made_before_the_lock() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        let (dir, file) = (root.join("a"), root.join("a/f"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&file, "one").unwrap();
        let _c = ReadCache::begin(root);
        assert_eq!(
            read(root, &file, 100).unwrap().as_deref(),
            Some(&b"one"[..])
        );
        // Another process writes, then this one takes the lock.
        std::fs::write(&file, "two").unwrap();
        cache::recheck();
        assert_eq!(
            read(root, &file, 100).unwrap().as_deref(),
            Some(&b"two"[..])
        );
        // This process writes: the next read sees it at once.
        let d2 = Dir::open(root, &dir, false).unwrap();
        let mut f = d2.create_new(OsStr::new("t"), 0o600).unwrap();
        f.write_all(b"three").unwrap();
        d2.rename_in(&d2, OsStr::new("t"), OsStr::new("f")).unwrap();
        assert_eq!(
            read(root, &file, 100).unwrap().as_deref(),
            Some(&b"three"[..])
        );
        assert!(exists_nofollow(root, &file) && exists(root, &file));
        // A bound smaller than the cached contents is still an error.
        assert!(matches!(read(root, &file, 2), Err(Error::Malformed { .. })));
    }

    #[test]
    fn a_missing_directory_made_before_the_lock_is_seen() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        let (x, y) = (root.join("m/admin/x"), root.join("m/admin/y"));
        let _c = ReadCache::begin(root);
        assert_eq!(read(root, &x, 100).unwrap(), None);
        assert_eq!(read(root, &y, 100).unwrap(), None);
        assert!(!exists(root, &y) && !exists_nofollow(root, &y));
        std::fs::create_dir_all(root.join("m/admin")).unwrap();
        std::fs::write(&y, "y").unwrap();
        cache::recheck();
        assert_eq!(read(root, &y, 100).unwrap().as_deref(), Some(&b"y"[..]));
        assert_eq!(read(root, &x, 100).unwrap(), None);
    }

    #[test]
    fn a_symlink_is_refused_with_and_without_the_cache() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        std::fs::create_dir_all(root.join("s")).unwrap();
        std::fs::write(root.join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink(root.join("outside"), root.join("s/f")).unwrap();
        let f = root.join("s/f");
        assert!(matches!(read(root, &f, 100), Err(Error::Symlink { .. })));
        let _c = ReadCache::begin(root);
        for _ in 0..2 {
            assert!(matches!(read(root, &f, 100), Err(Error::Symlink { .. })));
        }
        assert!(exists_nofollow(root, &f), "as symlink_metadata says");
    }

    #[test]
    fn a_file_is_read_whole_in_one_read_or_on_to_its_end() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        for len in [0usize, 1, 4096, 100_000] {
            let p = root.join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&p, &bytes).unwrap();
            assert_eq!(read(root, &p, 1 << 20).unwrap(), Some(bytes));
        }
        let f = File::open(root.join("f4096")).unwrap();
        // A size hint smaller than the file (it grew since `fstat`): read on to the end.
        assert_eq!(
            read_bounded(f, 10, Path::new("f"), 1 << 20).unwrap().len(),
            4096
        );
        let f = File::open(root.join("f4096")).unwrap();
        assert!(matches!(
            read_bounded(f, 10, Path::new("f"), 100),
            Err(Error::Malformed { .. })
        ));
    }
}
