//! Process-wide concerns shared by every layer: whether a pid is alive, signal handling and the
//! commit gate ([`signals`]), plaintext directories on tmpfs and their cleanup ([`tmpfs`]), and
//! test-only fault points ([`fault`]). A leaf module: it depends only on [`crate::error`].

pub(crate) mod fault;
pub(crate) mod signals;
pub(crate) mod tmpfs;

/// Does a process with this pid exist? (Used to tell leftovers of killed runs from live ones.)
pub(crate) fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) sends no signal; it only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
