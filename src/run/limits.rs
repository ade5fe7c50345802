//! Resource limits of one generator run. Defaults: 10 minutes, 16 MiB per output file,
//! 256 MiB for each of the sandbox's private tmpfs mounts (`/tmp`, `$HOME`, `/dev/shm`), 512
//! processes (for the root-dropped sandbox uid).

use std::time::Duration;

/// Limits applied to every generator run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit; the script's whole process tree is killed after it.
    pub timeout: Duration,
    /// Largest file a script may write (RLIMIT_FSIZE) and largest output read back.
    pub max_output: u64,
    /// Size of each of the sandbox's private tmpfs mounts: `/tmp`, `$HOME` and `/dev/shm`.
    pub max_tmp: u64,
    /// Processes of the sandbox uid (RLIMIT_NPROC; only when running as root, where the
    /// sandbox has a uid of its own).
    pub max_procs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(600),
            max_output: 16 * 1024 * 1024,
            max_tmp: 256 * 1024 * 1024,
            max_procs: 512,
        }
    }
}
