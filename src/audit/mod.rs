//! Searching the nix store, system closures and the repo for leaked secret values.
//!
//! The pipeline has one module per step:
//!
//! * [`collect`]: decrypts every sops file of the workspace the identities can read into a list
//!   of [`Secret`]s (the only step that knows about sops).
//! * [`patterns`]: expands each secret into the byte patterns a leak usually takes: raw,
//!   string-escaped (`.drv`, JSON), hex (lower and upper case) and base64 (standard and
//!   URL-safe, all three alignments). Values
//!   under [`MIN_SECRET_LEN`] bytes are skipped and counted, never searched silently.
//! * [`scan`]: one shared multi-pattern matcher chosen for the pattern count (aho-corasick up to
//!   [`scan::AHO_CORASICK_MAX_PATTERNS`] patterns, daachorse above), and the per-file search
//!   (buffered reads in chunks with overlap, mmap for big files).
//! * [`sample`]: a sampling prefilter in front of the automaton (one hashed 8-byte gram per up to
//!   16 bytes), so the automaton only runs near possible matches.
//! * [`walk`]: the parallel directory walk over a store (skipping `/nix/store/.links`, one scan
//!   per inode) or a list of store paths.
//! * [`nix`]: closures of store paths via `nix-store -qR`.
//! * [`repo`]: the workspace's plaintext files, every blob of its git history, and the check
//!   that every sops file is fully encrypted.
//! * [`report`]: findings, counts, and their human and JSON renderings.
//!
//! Findings name where (store path or repo file and commit), the byte offset, the var and the
//! encoding. No function of this module prints, logs or returns a secret value or pattern.
//!
//! # Memory hygiene
//!
//! Secret values and the expanded patterns live in [`zeroize::Zeroizing`] buffers. The
//! automatons of `aho-corasick` and `daachorse` keep their own copy of the patterns (in
//! transition tables, not as contiguous strings in the case of daachorse) that cannot be
//! zeroized on drop: that is a known limitation of using those crates. Scan buffers, which may
//! hold a leaked value read back from disk, are zeroized when a walker thread finishes.

pub mod collect;
pub mod nix;
pub mod patterns;
pub mod repo;
pub mod report;
pub mod sample;
pub mod scan;
pub mod walk;

use std::path::{Path, PathBuf};
use std::time::Instant;

use zeroize::Zeroizing;

pub use collect::{Collected, collect_secrets};
pub use patterns::{Encoding, PatternSet};
pub use report::{Finding, Location, Report};
pub use scan::Matcher;
pub use walk::WalkOptions;

/// Values shorter than this many bytes (after stripping a trailing newline) are not searched:
/// they would match by chance. They are counted and reported as skipped.
pub const MIN_SECRET_LEN: usize = 8;

/// One secret value to search for.
pub struct Secret {
    /// The var it belongs to: `<host>/<generator>/<file>` or `shared/<generator>/<file>`.
    pub label: String,
    /// The raw value.
    pub value: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Builds a secret from a label and its value.
    pub fn new(label: impl Into<String>, value: Zeroizing<Vec<u8>>) -> Self {
        Secret {
            label: label.into(),
            value,
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("label", &self.label)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

/// Runs `cmd` (described as `command` in errors) and returns its stdout; a failure to start or a
/// non-zero exit is an [`Error::Command`] carrying the command's stderr.
pub(crate) fn command_stdout(
    mut cmd: std::process::Command,
    command: String,
) -> Result<Vec<u8>, Error> {
    let out = cmd
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| Error::Command {
            command: command.clone(),
            msg: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            msg: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(out.stdout)
}

/// Errors of the audit. Messages name the file or command and never hold a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An external command (`nix-store`, `git`) failed or could not be started.
    #[error("{command}: {msg}")]
    Command {
        /// The command line, without any secret (none is ever passed).
        command: String,
        /// What went wrong, with the command's stderr.
        msg: String,
    },
    /// The matcher could not be built.
    #[error("building the pattern matcher: {0}")]
    Matcher(String),
}

/// What to scan.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// A whole store directory (`/nix/store`), skipping its `.links`.
    pub store: Option<PathBuf>,
    /// Store paths whose closures (`nix-store -qR`) are scanned.
    pub closure: Vec<PathBuf>,
    /// A workspace root: its working tree, git history, and sops files.
    pub repo: Option<PathBuf>,
    /// Walk options (threads).
    pub walk: WalkOptions,
    /// Turns the sampling prefilter off (the automaton alone), for comparison in benchmarks.
    pub no_sampling: bool,
}

/// Runs the audit for `secrets` over what `opts` selects. The report's `not_readable` is left
/// empty for the caller (who collected the secrets) to fill.
pub fn run(secrets: &[Secret], opts: &AuditOptions) -> Result<Report, Error> {
    let started = Instant::now();
    let set = PatternSet::new(secrets);
    let mut report = Report {
        skipped_short: set.skipped().to_vec(),
        secrets: set.labels().len(),
        patterns: set.len(),
        ..Report::default()
    };
    let matcher = Matcher::with_sampling(set, !opts.no_sampling)?;
    report.engine = matcher.engine_name();
    // With nothing to search (no readable secret), only the sops check below runs.
    let searching = !matcher.pattern_set().is_empty();
    if let Some(store) = opts.store.as_ref().filter(|_| searching) {
        report.scopes.push(format!("store {}", store.display()));
        let outcome = walk::scan_roots(
            std::slice::from_ref(store),
            &matcher,
            &walk::prune_store_links,
            &opts.walk,
        );
        add_walk(&mut report, &matcher, outcome, &|p| {
            store_location(store, p)
        });
    }
    if searching && !opts.closure.is_empty() {
        let paths = nix::closure(&opts.closure)?;
        report
            .scopes
            .push(format!("closure: {} store paths", paths.len()));
        let outcome = walk::scan_roots(&paths, &matcher, &|_| false, &opts.walk);
        add_walk(&mut report, &matcher, outcome, &|p| match paths
            .iter()
            .find(|sp| p.starts_with(sp))
        {
            Some(sp) => Location::Store {
                store_path: sp.clone(),
                file: p.to_path_buf(),
            },
            None => Location::File {
                path: p.to_path_buf(),
            },
        });
    }
    if let Some(root) = &opts.repo {
        report.scopes.push(format!("repo {}", root.display()));
        if searching {
            let outcome = repo::scan_worktree(root, &matcher, &opts.walk);
            add_walk(&mut report, &matcher, outcome, &|p| Location::File {
                path: p.strip_prefix(root).unwrap_or(p).to_path_buf(),
            });
        }
        if searching && repo::is_git_repo(root) {
            let history = repo::scan_history(root, &matcher)?;
            report.blobs += history.blobs;
            report.bytes += history.bytes;
            report.truncated.extend(history.truncated);
            for hit in history.hits {
                push_findings(&mut report, &matcher, hit.pattern, hit.offset, || {
                    Location::GitBlob {
                        commit: hit.commit.clone(),
                        path: hit.path.clone(),
                        blob: hit.blob.clone(),
                    }
                });
            }
        }
        report.plaintext = repo::check_sops_files(root)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.sort();
    report.findings.dedup();
    Ok(report)
}

fn store_location(store: &Path, file: &Path) -> Location {
    Location::Store {
        store_path: walk::store_path_of(store, file).unwrap_or_else(|| file.to_path_buf()),
        file: file.to_path_buf(),
    }
}

fn add_walk(
    report: &mut Report,
    matcher: &Matcher,
    outcome: walk::WalkOutcome,
    locate: &dyn Fn(&Path) -> Location,
) {
    report.files += outcome.files;
    report.bytes += outcome.bytes;
    report.errors.extend(outcome.errors);
    report.truncated.extend(
        outcome
            .truncated
            .iter()
            .map(|(p, n)| (locate(p).to_string(), *n)),
    );
    for hit in outcome.hits {
        push_findings(report, matcher, hit.pattern, hit.offset, || {
            locate(&hit.path)
        });
    }
}

fn push_findings(
    report: &mut Report,
    matcher: &Matcher,
    pattern: usize,
    offset: u64,
    location: impl Fn() -> Location,
) {
    let set = matcher.pattern_set();
    for origin in set.origins(pattern) {
        report.findings.push(Finding {
            location: location(),
            offset,
            var: set.labels().get(origin.secret).cloned().unwrap_or_default(),
            encoding: origin.encoding,
        });
    }
}
