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

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::Error;

/// Mode of every directory varsmith creates in the workspace.
pub const DIR_MODE: u32 = 0o755;

fn cstr(name: &std::ffi::OsStr, path: &Path) -> Result<CString, Error> {
    CString::new(name.as_bytes()).map_err(|_| Error::Malformed {
        path: path.to_path_buf(),
        msg: "path contains a NUL byte".into(),
    })
}

fn last_err(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::last_os_error(),
    }
}

/// An open directory inside the workspace, reached without following any symlink.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a name in a directory is (not following a symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Nothing there.
    Missing,
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink.
    Symlink,
    /// Anything else (fifo, socket, device).
    Other,
}

impl Dir {
    /// Opens the workspace root by path (a duplicate of a descriptor kept for the process).
    pub fn root(root: &Path) -> Result<Dir, Error> {
        use std::sync::Mutex;
        static ROOTS: Mutex<Vec<(PathBuf, OwnedFd)>> = Mutex::new(Vec::new());
        let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, fd)) = roots.iter().find(|(p, _)| p == root)
            && let Ok(dup) = fd.try_clone()
        {
            return Ok(Dir {
                fd: dup,
                path: root.to_path_buf(),
            });
        }
        let d = Dir::open_root_uncached(root)?;
        if let Ok(keep) = d.fd.try_clone() {
            roots.push((root.to_path_buf(), keep));
        }
        Ok(d)
    }

    fn open_root_uncached(root: &Path) -> Result<Dir, Error> {
        let c = cstr(root.as_os_str(), root)?;
        // SAFETY: open(2) with a valid C string; the fd is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(last_err(root));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Dir {
            fd,
            path: root.to_path_buf(),
        })
    }

    /// Opens `dir` (absolute, under `root`), creating missing components when `create`.
    pub fn open(root: &Path, dir: &Path, create: bool) -> Result<Dir, Error> {
        let rel = dir.strip_prefix(root).map_err(|_| Error::Outside {
            path: dir.to_path_buf(),
        })?;
        let root_dir = Dir::root(root)?;
        if rel.as_os_str().is_empty() {
            return Ok(root_dir);
        }
        // One syscall when the kernel resolves "beneath, no symlinks" itself; the walk below
        // creates what is missing and names the offending component otherwise.
        if let Some(fd) = beneath(&root_dir, rel, libc::O_DIRECTORY | libc::O_RDONLY) {
            return Ok(Dir {
                fd,
                path: dir.to_path_buf(),
            });
        }
        let mut cur = root_dir;
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

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Opens (or creates) the subdirectory `name`.
    fn child_dir(&self, name: &std::ffi::OsStr, create: bool) -> Result<Dir, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        for _ in 0..2 {
            let flags = libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY | libc::O_CLOEXEC;
            // SAFETY: openat relative to our directory fd.
            let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), flags) };
            if fd >= 0 {
                // SAFETY: a fresh descriptor we own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                return Ok(Dir { fd, path });
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ENOENT) if create => {
                    // SAFETY: mkdirat relative to our directory fd.
                    let rc =
                        unsafe { libc::mkdirat(self.raw(), c.as_ptr(), DIR_MODE as libc::mode_t) };
                    if rc != 0
                        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return Err(last_err(&path));
                    }
                    if rc == 0 {
                        // The umask may have narrowed (or a umask of 0 widened) the mode.
                        // SAFETY: fchmodat relative to our fd, not following symlinks.
                        unsafe {
                            libc::fchmodat(self.raw(), c.as_ptr(), DIR_MODE as libc::mode_t, 0)
                        };
                    }
                }
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                    return Err(match self.entry(name)? {
                        Entry::Symlink => Error::Symlink { path },
                        _ => Error::NotADirectory { path },
                    });
                }
                _ => return Err(Error::Io { path, source: err }),
            }
        }
        Err(last_err(&path))
    }

    /// What `name` is, without following a symlink.
    pub fn entry(&self, name: &std::ffi::OsStr) -> Result<Entry, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        // SAFETY: fstatat into a zeroed struct, relative to our fd, not following symlinks.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(Entry::Missing);
            }
            return Err(Error::Io { path, source: e });
        }
        Ok(match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Entry::File,
            libc::S_IFDIR => Entry::Dir,
            libc::S_IFLNK => Entry::Symlink,
            _ => Entry::Other,
        })
    }

    /// Fails unless `name` is missing or a regular file.
    pub fn expect_file_or_missing(&self, name: &std::ffi::OsStr) -> Result<Entry, Error> {
        let path = self.path.join(name);
        match self.entry(name)? {
            e @ (Entry::Missing | Entry::File) => Ok(e),
            Entry::Symlink => Err(Error::Symlink { path }),
            Entry::Dir | Entry::Other => Err(Error::NotAFile { path }),
        }
    }

    /// Creates a new file `name` (which must not exist) with exactly `mode`, for writing.
    pub fn create_new(&self, name: &std::ffi::OsStr, mode: u32) -> Result<File, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: openat relative to our fd; the result is owned below.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), flags, mode as libc::c_uint) };
        if fd < 0 {
            return Err(last_err(&path));
        }
        // SAFETY: a fresh descriptor we own.
        let f = unsafe { File::from_raw_fd(fd) };
        // SAFETY: fchmod on our own descriptor (the umask does not decide the mode).
        if unsafe { libc::fchmod(f.as_raw_fd(), mode as libc::mode_t) } != 0 {
            return Err(last_err(&path));
        }
        Ok(f)
    }

    /// Opens the regular file `name` for reading; `Ok(None)` when missing.
    pub fn open_file(&self, name: &std::ffi::OsStr) -> Result<Option<File>, Error> {
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: openat relative to our fd.
        let fd = unsafe { libc::openat(self.raw(), c.as_ptr(), flags) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(None),
                Some(libc::ELOOP) => Err(Error::Symlink { path }),
                _ => Err(Error::Io { path, source: e }),
            };
        }
        // SAFETY: a fresh descriptor we own.
        let f = unsafe { File::from_raw_fd(fd) };
        let meta = f.metadata().map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(Error::NotAFile { path });
        }
        Ok(Some(f))
    }

    /// Renames `from` in `src` onto `to` in this directory (replacing a regular file).
    pub fn rename_in(
        &self,
        src: &Dir,
        from: &std::ffi::OsStr,
        to: &std::ffi::OsStr,
    ) -> Result<(), Error> {
        let path = self.path.join(to);
        self.expect_file_or_missing(to)?;
        let (cf, ct) = (cstr(from, &path)?, cstr(to, &path)?);
        // SAFETY: renameat between two directory fds we own.
        if unsafe { libc::renameat(src.raw(), cf.as_ptr(), self.raw(), ct.as_ptr()) } != 0 {
            return Err(last_err(&path));
        }
        Ok(())
    }

    /// Removes the regular file `name` (a symlink there is an error); missing is fine.
    pub fn remove_file(&self, name: &std::ffi::OsStr) -> Result<bool, Error> {
        if self.expect_file_or_missing(name)? == Entry::Missing {
            return Ok(false);
        }
        let path = self.path.join(name);
        let c = cstr(name, &path)?;
        // SAFETY: unlinkat relative to our fd (never follows the final component).
        if unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) } != 0 {
            return Err(last_err(&path));
        }
        Ok(true)
    }

    /// Names in this directory.
    pub fn names(&self) -> Result<Vec<std::ffi::OsString>, Error> {
        // Read through /proc-free means: a fresh descriptor of "." relative to ours.
        let dot = self.child_dir(std::ffi::OsStr::new("."), false);
        let d = match dot {
            Ok(d) => d,
            Err(_) => return Err(last_err(&self.path)),
        };
        // SAFETY: fdopendir takes ownership of the duplicated descriptor.
        let dirp = unsafe { libc::fdopendir(d.fd.as_raw_fd()) };
        if dirp.is_null() {
            return Err(last_err(&self.path));
        }
        std::mem::forget(d.fd);
        let mut out = Vec::new();
        loop {
            // SAFETY: readdir on a valid DIR*; the entry is copied before the next call.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: d_name is a NUL-terminated array inside the entry.
            let name = unsafe { std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()) };
            let b = name.to_bytes();
            if b != b"." && b != b".." {
                out.push(std::ffi::OsStr::from_bytes(b).to_os_string());
            }
        }
        // SAFETY: closing the DIR* (and its descriptor) once.
        unsafe { libc::closedir(dirp) };
        Ok(out)
    }

    /// Flushes this directory's filesystem (`syncfs`; `fsync` of the directory elsewhere).
    pub fn sync_fs(&self) -> Result<(), Error> {
        #[cfg(target_os = "linux")]
        // SAFETY: syncfs on a valid descriptor.
        let rc = unsafe { libc::syncfs(self.raw()) };
        #[cfg(not(target_os = "linux"))]
        // SAFETY: fsync on a valid descriptor.
        let rc = unsafe { libc::fsync(self.raw()) };
        if rc != 0 {
            return Err(last_err(&self.path));
        }
        Ok(())
    }
}

/// `openat2(dir, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6+): `None` when
/// it fails for any reason (missing, a symlink, an old kernel), so the caller walks instead.
#[cfg(target_os = "linux")]
fn beneath(dir: &Dir, rel: &Path, flags: libc::c_int) -> Option<OwnedFd> {
    let c = CString::new(rel.as_os_str().as_bytes()).ok()?;
    // SAFETY: a zeroed open_how with the fields set; openat2 relative to our fd.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.raw(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor we own.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(not(target_os = "linux"))]
fn beneath(_dir: &Dir, _rel: &Path, _flags: libc::c_int) -> Option<OwnedFd> {
    None
}

/// Splits an absolute path under `root` into its parent directory (opened) and file name.
pub fn parent_of(
    root: &Path,
    path: &Path,
    create: bool,
) -> Result<(Dir, std::ffi::OsString), Error> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::Outside {
            path: path.to_path_buf(),
        });
    };
    Ok((Dir::open(root, parent, create)?, name.to_os_string()))
}

/// Reads the regular file at `path` (under `root`), at most `max` bytes; `Ok(None)` when it or
/// a parent directory is missing.
pub fn read(root: &Path, path: &Path, max: u64) -> Result<Option<Vec<u8>>, Error> {
    if let Ok(rel) = path.strip_prefix(root)
        && let Some(fd) = beneath(&Dir::root(root)?, rel, libc::O_RDONLY | libc::O_NONBLOCK)
    {
        let f = File::from(fd);
        let meta = f.metadata().map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
            });
        }
        return read_bounded(f, meta.len(), path, max).map(Some);
    }
    let (dir, name) = match parent_of(root, path, false) {
        Ok(x) => x,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
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
            source,
        })?;
    if buf.len() as u64 > max {
        return Err(too_big());
    }
    Ok(buf)
}

/// Writes all of `bytes` to `f` and flushes it to disk when `durable`.
pub fn write_all(f: &mut File, bytes: &[u8], path: &Path, durable: bool) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    f.write_all(bytes).map_err(io)?;
    if durable {
        f.sync_all().map_err(io)?;
    }
    Ok(())
}
