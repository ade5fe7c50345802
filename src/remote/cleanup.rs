//! Removal of private temporary directories on Ctrl-C and SIGTERM.
//!
//! Normal exits, errors and panics are covered by [`tempfile::TempDir`]'s `Drop`; a signal
//! would skip it, so directories registered here are also removed by a ctrlc handler that then
//! exits with status 130.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// Keeps a directory registered for removal on a signal while it lives.
#[derive(Debug)]
pub struct SignalGuard {
    path: PathBuf,
}

impl SignalGuard {
    /// Registers `path` (and installs the handler on first use). If another part of the
    /// process already installed a ctrlc handler, only `Drop`-based cleanup remains.
    pub fn register(path: &Path) -> SignalGuard {
        HANDLER.call_once(|| {
            let _ = ctrlc::set_handler(|| {
                if let Ok(dirs) = DIRS.lock() {
                    for d in dirs.iter() {
                        let _ = std::fs::remove_dir_all(d);
                    }
                }
                std::process::exit(130);
            });
        });
        if let Ok(mut dirs) = DIRS.lock() {
            dirs.push(path.to_path_buf());
        }
        SignalGuard {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for SignalGuard {
    fn drop(&mut self) {
        if let Ok(mut dirs) = DIRS.lock() {
            dirs.retain(|d| d != &self.path);
        }
    }
}

/// A directory for private temporary files, on tmpfs where one exists: `$XDG_RUNTIME_DIR`,
/// else `/dev/shm`, else the system temporary directory (the `bool` is false then).
pub fn private_tmp_base() -> (PathBuf, bool) {
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        let p = PathBuf::from(x);
        if p.is_absolute() && p.is_dir() {
            return (p, true);
        }
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return (shm.to_path_buf(), true);
    }
    (std::env::temp_dir(), false)
}
