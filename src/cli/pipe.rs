//! A closed stdout (`varsmith audit --json | head`) ends the process quietly with exit 0, as
//! ripgrep does: Rust ignores SIGPIPE, so a write to a closed pipe is an `EPIPE` error, which
//! commands return like any other error ([`is_broken_pipe`]), or a panic of `println!`, which
//! [`install_hook`] keeps quiet and [`catch`] turns into a normal return (so destructors still
//! zeroize and clean up).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// The start of the panic message of `print!`/`println!` when stdout fails.
const PRINT_PANIC: &str = "failed printing to stdout";

/// Is this a `print!` panic caused by a closed pipe?
fn is_pipe_panic(payload: &(dyn std::any::Any + Send)) -> bool {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    msg.is_some_and(|m| m.starts_with(PRINT_PANIC) && m.contains("Broken pipe"))
}

/// Installs a panic hook that says nothing for a `println!` into a closed pipe and defers to
/// the previous hook for every other panic.
pub(super) fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_pipe_panic(info.payload()) {
            previous(info);
        }
    }));
}

/// Runs `f`; a `println!` panic on a closed pipe becomes `Ok(None)`, other panics go on.
pub(super) fn catch<T>(f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) if is_pipe_panic(payload.as_ref()) => None,
        Err(payload) => resume_unwind(payload),
    }
}

/// Is any error of the chain an I/O error of kind `BrokenPipe`?
pub(super) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|e| e.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}
