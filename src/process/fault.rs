//! Deterministic fault points for the crash tests (debug builds only).
//!
//! `VARSMITH_FAULT=<point>:<n>:<action>` makes the `n`-th (1-based) passage through `point` in
//! this process `kill` itself with SIGKILL, `panic`, or `segv` (raise SIGSEGV). Release builds
//! compile every point to nothing.

/// A named fault point.
#[cfg(debug_assertions)]
pub(crate) fn point(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: AtomicU64 = AtomicU64::new(0);
    let Ok(spec) = std::env::var("VARSMITH_FAULT") else {
        return;
    };
    let mut it = spec.splitn(3, ':');
    let (Some(p), Some(n), Some(action)) = (it.next(), it.next(), it.next()) else {
        return;
    };
    if p != name {
        return;
    }
    let hit = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    if n.parse::<u64>().ok() != Some(hit) {
        return;
    }
    match action {
        "panic" => panic!("fault point {name} hit"),
        // SAFETY: the default action (std's handler would swallow a raised SIGSEGV), then
        // the signal, as a crash would deliver it.
        "segv" => unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        },
        // SAFETY: as above.
        _ => unsafe {
            libc::raise(libc::SIGKILL);
        },
    }
}

/// A named fault point (nothing in release builds).
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn point(_name: &str) {}
