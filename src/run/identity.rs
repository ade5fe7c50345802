//! Who a generator runs as.
//!
//! Run as an ordinary user, the sandbox keeps that uid (bubblewrap maps it into a new user
//! namespace, with no capabilities). Run as root, uid 0 would stay the host's root inside any
//! user namespace (it owns `/proc/sys`), so varsmith first drops to a dedicated unprivileged
//! uid/gid, [`SANDBOX_ID`] (or `VARSMITH_SANDBOX_UID`), and the run directory is given to it.

/// The uid and gid the root-dropped sandbox runs as by default: unlikely to be used by any
/// account (above the 16-bit range and the usual subuid ranges).
pub const SANDBOX_ID: u32 = 0x7FFF_F000;

/// Environment variable overriding [`SANDBOX_ID`].
pub const SANDBOX_ID_ENV: &str = "VARSMITH_SANDBOX_UID";

/// The identity of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunIdentity {
    /// uid inside and outside the sandbox.
    pub uid: u32,
    /// gid inside and outside the sandbox.
    pub gid: u32,
    /// True when varsmith (root) drops to `uid`/`gid` before starting bubblewrap.
    pub drop_root: bool,
}

impl RunIdentity {
    /// The identity for this process: itself, or the sandbox id when running as root.
    pub fn current() -> RunIdentity {
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid != 0 {
            return RunIdentity {
                uid,
                gid,
                drop_root: false,
            };
        }
        let id = std::env::var(SANDBOX_ID_ENV)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|&v| v != 0)
            .unwrap_or(SANDBOX_ID);
        RunIdentity {
            uid: id,
            gid: id,
            drop_root: true,
        }
    }

    /// `/etc/passwd` for the sandbox: root, the run's user and nobody.
    pub fn passwd(&self, home: &str) -> String {
        let mut s = String::from("root:x:0:0:root:/root:/bin/sh\n");
        if self.uid != 0 {
            s.push_str(&format!(
                "varsmith:x:{}:{}:varsmith:{home}:/bin/sh\n",
                self.uid, self.gid
            ));
        }
        s.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        s
    }

    /// `/etc/group` for the sandbox.
    pub fn group(&self) -> String {
        let mut s = String::from("root:x:0:\n");
        if self.gid != 0 {
            s.push_str(&format!("varsmith:x:{}:\n", self.gid));
        }
        s.push_str("nogroup:x:65534:\n");
        s
    }
}
