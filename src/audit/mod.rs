//! Searching the nix store, system closures and the repo for leaked secret values and for
//! private key material of any origin.
//!
//! The pipeline has one module per step:
//!
//! * `collect`: decrypts every sops file of the workspace the identities can read into a list
//!   of [`Secret`]s (the only step that knows about sops).
//! * `patterns` (with `encode` and `keys`): expands each secret into the byte patterns
//!   a leak usually takes: raw, string-escaped (`.drv`, JSON), CRLF line endings, hex (lower
//!   and upper case), base64 (standard and URL-safe, all three alignments, and wrapped at 64
//!   columns or more), UTF-16LE/BE, and each line of a multi-line value; and adds the
//!   markers of age, PEM/OpenSSH and WireGuard private keys. Values under
//!   [`MIN_SECRET_LEN`] bytes are skipped and counted, never searched silently.
//! * `scan` (with `sample` and `confirm`): one shared matcher (a SIMD packed searcher
//!   for few patterns, a sampling prefilter and daachorse for many) that reports the
//!   occurrences starting in an owned range of a buffer, after the checks some patterns need.
//! * `stream`: streams and files in bounded memory (chunks, or mapped windows whose pages
//!   are released); `decompress`: gzip, xz, lzma, zstd and bzip2 decoders; `layers` (with
//!   `archive`): nested compression and tar / zip members opened to a bounded depth and
//!   size, each decoded stream searched.
//! * `walk`: the parallel directory walk over a store (skipping `/nix/store/.links`, one
//!   scan per inode) or a list of store paths; `names`: the store paths' names.
//! * `nix`: closures of store paths via `nix-store -qR`; `referrers`: the chains of
//!   references from GC roots and closure tops down to each leaking store path.
//! * `repo`: the workspace's plaintext files, every blob of its git history, and the check
//!   that every sops file is fully encrypted.
//! * `tidy`: merges findings that describe one leak and withholds store path names that
//!   hold a secret; `report`: findings, counts, the fail-closed verdict, and the human and
//!   JSON renderings.
//!
//! Findings name where (store path or repo file and commit), the byte offset, the var (or key
//! kind) and the encoding. No function of this module prints, logs or returns a secret value
//! or pattern.
//!
//! # Memory hygiene
//!
//! Secret values and the expanded patterns live in [`zeroize::Zeroizing`] buffers. The
//! automatons of `aho-corasick` and `daachorse` keep their own copy of the patterns (in
//! transition tables, not as contiguous strings in the case of daachorse) that cannot be
//! zeroized on drop: that is a known limitation of using those crates. Scan buffers, which may
//! hold a leaked value read back from disk, are zeroized when a walker thread finishes.

pub(crate) mod archive;
pub(crate) mod collect;
pub(crate) mod confirm;
pub(crate) mod decompress;
pub(crate) mod encode;
pub(crate) mod homes;
pub(crate) mod keys;
pub(crate) mod layers;
pub(crate) mod names;
pub(crate) mod nix;
pub(crate) mod own;
pub(crate) mod patterns;
pub(crate) mod referrers;
pub(crate) mod repo;
pub(crate) mod report;
pub(crate) mod sample;
pub(crate) mod scan;
pub(crate) mod stream;
pub(crate) mod tidy;
pub(crate) mod walk;

use std::path::{Path, PathBuf};
use std::time::Instant;

use zeroize::Zeroizing;

pub use collect::Collected;
pub(crate) use collect::collect_secrets;
pub use decompress::Compression;
pub use keys::KeyKind;
pub use layers::{Layer, Layers};
pub use names::redacted;
pub use patterns::{Encoding, PatternSet};
pub use report::{Finding, KeyFinding, Location, Report};
pub use scan::{Hit, Matcher};
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
    #[error("{path}: {cause}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
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
    /// Walk options (threads, decompression).
    pub walk: WalkOptions,
    /// Turns the prefilters off (a plain automaton over every byte), for comparison.
    pub no_sampling: bool,
    /// Skips the reference chains of leaking store paths (default: computed for paths under
    /// [`REAL_STORE`]).
    pub no_referrers: bool,
    /// The workspace whose keys (admins', hosts') are counted even in a store path's test or
    /// documentation files (`own`). None (the default): no key is known to be the fleet's.
    pub workspace: Option<PathBuf>,
}

/// The store directory whose paths have reference chains (`nix-store` knows them).
pub const REAL_STORE: &str = "/nix/store";

/// Runs the audit for `secrets` over what `opts` selects. The report's `not_readable` and
/// `allow_partial` are left for the caller (who collected the secrets) to fill.
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
    if let Some(store) = &opts.store {
        scan_store(&mut report, &matcher, store, opts);
    }
    let mut tops = Vec::new();
    if !opts.closure.is_empty() {
        let paths = nix::closure(&opts.closure)?;
        scan_closure(&mut report, &matcher, &paths, opts);
        tops = opts.closure.clone();
    }
    if let Some(root) = &opts.repo {
        scan_repo(&mut report, &matcher, root, opts)?;
    }
    if let Some(ws) = &opts.workspace {
        own::mark(&mut report, &own::workspace_recipients(ws));
    }
    tidy::drop_covered_lines(&mut report);
    tidy::drop_utf16_shadows(&mut report);
    report.sort();
    report.findings.dedup();
    report.keys.dedup();
    if !opts.no_referrers {
        add_referrers(&mut report, &tops);
    }
    tidy::redact_names(&mut report);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn scan_store(report: &mut Report, matcher: &Matcher, store: &PathBuf, opts: &AuditOptions) {
    report.scopes.push(format!("store {}", store.display()));
    let outcome = walk::scan_roots(
        std::slice::from_ref(store),
        matcher,
        &walk::prune_store_links,
        &opts.walk,
    );
    add_walk(report, matcher, outcome, &|p| store_location(store, p));
    let (paths, errors) = names::store_paths(store);
    report.errors.extend(errors);
    add_names(report, matcher, &paths);
}

fn scan_closure(report: &mut Report, matcher: &Matcher, paths: &[PathBuf], opts: &AuditOptions) {
    report
        .scopes
        .push(format!("closure: {} store paths", paths.len()));
    let outcome = walk::scan_roots(paths, matcher, &|_| false, &opts.walk);
    add_walk(
        report,
        matcher,
        outcome,
        &|p| match paths.iter().find(|sp| p.starts_with(sp)) {
            Some(sp) => Location::Store {
                store_path: sp.clone(),
                file: p.to_path_buf(),
            },
            None => Location::File {
                path: p.to_path_buf(),
            },
        },
    );
    add_names(report, matcher, paths);
}

fn scan_repo(
    report: &mut Report,
    matcher: &Matcher,
    root: &Path,
    opts: &AuditOptions,
) -> Result<(), Error> {
    report.scopes.push(format!("repo {}", root.display()));
    let outcome = repo::scan_worktree(root, matcher, &opts.walk);
    add_walk(report, matcher, outcome, &|p| Location::File {
        path: p.strip_prefix(root).unwrap_or(p).to_path_buf(),
    });
    if repo::is_git_repo(root) {
        let history = repo::scan_history(root, matcher)?;
        report.blobs += history.blobs;
        report.bytes += history.bytes;
        report.truncated.extend(history.truncated);
        for hit in history.hits {
            let location = Location::GitBlob {
                commit: hit.commit.clone(),
                path: hit.path.clone(),
                blob: hit.blob.clone(),
            };
            push_hit(report, matcher, hit.hit, Layers::default(), location);
        }
    }
    report.plaintext = repo::check_sops_files(root)?;
    Ok(())
}

fn add_names(report: &mut Report, matcher: &Matcher, paths: &[PathBuf]) {
    for (store_path, hit) in names::scan_names(paths, matcher) {
        push_hit(
            report,
            matcher,
            hit,
            Layers::default(),
            Location::StoreName { store_path },
        );
    }
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
    report.compressed_files += outcome.compressed_files;
    report.decompressed_bytes += outcome.decompressed_bytes;
    report.errors.extend(outcome.errors);
    report.truncated.extend(
        outcome
            .truncated
            .iter()
            .map(|(p, n)| (locate(p).to_string(), *n)),
    );
    for raw in outcome.hits {
        push_hit(report, matcher, raw.hit, raw.layers, locate(&raw.path));
    }
}

/// Turns one confirmed hit into a finding (a known secret) or a key finding.
fn push_hit(report: &mut Report, matcher: &Matcher, hit: Hit, layers: Layers, location: Location) {
    let set = matcher.pattern_set();
    let Some(origin) = set.origins(hit.pattern).get(hit.origin) else {
        return;
    };
    match origin.source {
        patterns::Source::Secret(index) => report.findings.push(Finding {
            location,
            offset: hit.offset,
            var: set.labels().get(index).cloned().unwrap_or_default(),
            encoding: origin.encoding,
            layers,
        }),
        patterns::Source::Key(kind) => report.keys.push(KeyFinding {
            location,
            offset: hit.offset,
            kind,
            encoding: origin.encoding,
            layers,
            not_excused: None,
        }),
    }
}

/// Adds the reference chains of every leaking path under [`REAL_STORE`].
fn add_referrers(report: &mut Report, tops: &[PathBuf]) {
    let store = Path::new(REAL_STORE);
    let mut leaks: Vec<PathBuf> = report
        .findings
        .iter()
        .map(|f| &f.location)
        .chain(report.keys.iter().map(|k| &k.location))
        .filter_map(|l| match l {
            Location::Store { store_path, .. } | Location::StoreName { store_path } => {
                Some(store_path.clone())
            }
            _ => None,
        })
        .filter(|p| p.parent() == Some(store))
        .collect();
    leaks.sort();
    leaks.dedup();
    if !leaks.is_empty() {
        report.referrers = referrers::referrers(store, &leaks, tops);
    }
}
