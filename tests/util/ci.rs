//! The one answer every test gives to "are we in CI?" and "is this tool here?".
//!
//! CI is the environment variable `CI` set to `true` or `1` (`.ci/run` exports `CI=true`). In
//! CI a missing tool or prerequisite fails the test; elsewhere the test returns early and says
//! `skipped: <reason>` on stderr. That line is written to the stderr handle itself, not through
//! `eprintln!`, so the test harness's output capture does not swallow it: a plain `cargo test`
//! shows every skip. Each skip is also appended to `target/tmp/skipped.txt`, which
//! `scripts/test.sh` empties before the run and counts after it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// True when `CI` is `true` or `1`.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// The path of `tool` on PATH (an absolute path is checked as it is).
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.starts_with('/') {
        return Path::new(tool).is_file().then(|| PathBuf::from(tool));
    }
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|c| c.is_file())
    })
}

/// Is `tool` on PATH? In CI a missing tool panics; elsewhere it prints `skipped: no <tool>`.
pub fn require(tool: &str) -> bool {
    which(tool).is_some() || unavailable(&format!("no {tool}"))
}

/// Are all of `tools` on PATH? Names every missing one, as [`require`] does.
pub fn require_all(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    missing.is_empty() || unavailable(&format!("no {}", missing.join(", no ")))
}

/// A prerequisite (`why`: what is missing) is unavailable: panics in CI, else reports the skip
/// and returns false, so `if !(require(..) && ..) { return; }` reads naturally.
pub fn unavailable(why: &str) -> bool {
    if in_ci() {
        panic!("CI=true and a real component is unavailable: {why}");
    }
    skipped(why);
    false
}

/// Reports a skipped test visibly (past the harness's capture) and records it for the summary.
pub fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("skipped: {why} ({test})\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    // Set for integration tests only (this file is also a unit-test module of src/remote/tar.rs).
    let Some(tmp) = option_env!("CARGO_TARGET_TMPDIR") else {
        return;
    };
    let log = Path::new(tmp).join("skipped.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
