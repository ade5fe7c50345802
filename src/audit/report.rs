//! Findings, counts, and their human and JSON renderings. Nothing here ever holds a value.
//!
//! # Verdict
//!
//! The audit *fails closed*: it is clean only when nothing leaked, every sops file is fully
//! encrypted, and everything in scope was searched: no file that could not be read (or
//! decompressed in full) and no sops file the identities could not decrypt. A partial audit
//! is "not clean" unless [`Report::allow_partial`] is set (`--allow-partial`); what was not
//! covered is listed either way.

use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Encoding;
use super::keys::KeyKind;
use super::layers::Layers;
use super::own::NotExcused;
use super::referrers::Referrers;

/// Where a leak was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file inside a nix store path.
    Store {
        /// The store path (`/nix/store/<hash>-<name>`).
        store_path: PathBuf,
        /// The file (the store path itself when it is a file).
        file: PathBuf,
    },
    /// A file in the workspace's working tree (or any scanned file outside a store).
    File {
        /// The file.
        path: PathBuf,
    },
    /// The name of a store path (`/nix/store/<hash>-<name>`) itself.
    StoreName {
        /// The store path.
        store_path: PathBuf,
    },
    /// A blob in the workspace's git history.
    GitBlob {
        /// The commit that added the blob, when it could be determined.
        commit: Option<String>,
        /// The path the blob had in that history.
        path: String,
        /// The blob's object id.
        blob: String,
    },
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Store { file, .. } => write!(f, "{}", file.display()),
            Location::File { path } => write!(f, "{}", path.display()),
            Location::StoreName { store_path } => write!(f, "name of {}", store_path.display()),
            Location::GitBlob { commit, path, blob } => match commit {
                Some(c) => write!(f, "git {c}:{path}"),
                None => write!(f, "git blob {blob} ({path})"),
            },
        }
    }
}

/// One occurrence of one secret in one encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where.
    pub location: Location,
    /// Byte offset in the file or blob.
    pub offset: u64,
    /// The var: `<host>/<generator>/<file>` or `shared/<generator>/<file>`.
    pub var: String,
    /// How the value appears.
    pub encoding: Encoding,
    /// The layers (compressions, archive members) the file was opened through, outermost
    /// first; the offset is then in the innermost decoded stream. Empty: the file's bytes.
    pub layers: Layers,
}

/// Private key material found, whatever its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFinding {
    /// Where.
    pub location: Location,
    /// Byte offset where the key starts (in the decompressed stream when compressed).
    pub offset: u64,
    /// What kind of key.
    pub kind: KeyKind,
    /// How the key's marker appears.
    pub encoding: Encoding,
    /// The layers the file was opened through (see [`Finding::layers`]).
    pub layers: Layers,
    /// Set when a key in a test or documentation location is counted after all (one of the
    /// workspace's keys, or not checkable): see `super::own`. None by default.
    pub not_excused: Option<NotExcused>,
}

/// `raw`, `base64, alignment 1`, `raw in gzip`, or `raw in gzip in tar member a.gz in gzip`.
fn how(encoding: &Encoding, layers: &Layers) -> String {
    if layers.is_empty() {
        encoding.to_string()
    } else {
        format!("{encoding} in {layers}")
    }
}

/// Directory names under which a store path's key material is an upstream example (sops-nix's
/// test keys, a package's documentation), not a leak of this fleet.
const EXAMPLE_DIRS: &[&str] = &[
    "test",
    "tests",
    "test-assets",
    "testdata",
    "test-data",
    "fixtures",
    "examples",
    "doc",
    "docs",
];

impl KeyFinding {
    /// Key material in a test or documentation file inside a store path (`…/test-assets/…`,
    /// `…/docs/…`, a `*.md` file): listed in the report, not counted against the verdict.
    /// Every NixOS system using sops-nix has its test keys in its derivation closure. Never
    /// true for a key `super::own` marked (the workspace's own keys).
    pub(crate) fn is_example(&self) -> bool {
        if self.not_excused.is_some() {
            return false;
        }
        let Location::Store { store_path, file } = &self.location else {
            return false;
        };
        let Ok(rel) = file.strip_prefix(store_path) else {
            return false;
        };
        let doc = rel
            .extension()
            .is_some_and(|e| matches!(e.to_str(), Some("md" | "rst" | "adoc" | "org")));
        doc || rel.components().any(|c| {
            c.as_os_str()
                .to_str()
                .is_some_and(|n| EXAMPLE_DIRS.contains(&n))
        })
    }
}

/// A leaf of a sops file that is not encrypted although it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaintextLeaf {
    /// The sops file, relative to the workspace.
    pub file: PathBuf,
    /// The key path, joined with `:` as sops does for its AAD (list items as `[i]`).
    pub key: String,
}

/// The outcome of an audit.
#[derive(Debug, Default)]
pub struct Report {
    /// Leaked values.
    pub findings: Vec<Finding>,
    /// Private key material of any origin.
    pub keys: Vec<KeyFinding>,
    /// Reference chains of the leaking store paths (findings and keys).
    pub referrers: Vec<Referrers>,
    /// Plaintext leaves in sops files (`--repo`).
    pub plaintext: Vec<PlaintextLeaf>,
    /// Vars too short to search.
    pub skipped_short: Vec<String>,
    /// sops files the identities could not decrypt, with the reason.
    pub not_readable: Vec<(String, String)>,
    /// Number of secrets searched.
    pub secrets: usize,
    /// Number of unique patterns searched.
    pub patterns: usize,
    /// The matcher engine.
    pub engine: &'static str,
    /// What was scanned: `store DIR`, `closure of N paths`, `repo`.
    pub scopes: Vec<String>,
    /// Files scanned.
    pub files: u64,
    /// Git blobs scanned.
    pub blobs: u64,
    /// Bytes scanned.
    pub bytes: u64,
    /// Compressed files also searched decompressed.
    pub compressed_files: u64,
    /// Decompressed bytes searched.
    pub decompressed_bytes: u64,
    /// Accept a partial audit (`--allow-partial`): what was not covered is still listed, but
    /// does not make the verdict "not clean".
    pub allow_partial: bool,
    /// Files or objects that could not be read (path: error); they are not searched.
    pub errors: Vec<String>,
    /// Files with more occurrences than listed (path, occurrences not listed).
    pub truncated: Vec<(String, u64)>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl Report {
    /// True when everything in scope was searched: no file left unread and no sops file
    /// left undecrypted.
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty() && self.not_readable.is_empty()
    }

    /// The verdict (see the module docs): nothing leaked, no key material, every sops file
    /// fully encrypted, and the audit complete (or [`Report::allow_partial`]).
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
            && self.keys.iter().all(KeyFinding::is_example)
            && self.plaintext.is_empty()
            && (self.is_complete() || self.allow_partial)
    }

    /// Sorts findings for stable output.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (
                a.location.to_string(),
                a.offset,
                &a.var,
                a.encoding.to_string(),
            )
                .cmp(&(
                    b.location.to_string(),
                    b.offset,
                    &b.var,
                    b.encoding.to_string(),
                ))
        });
        self.keys.sort_by(|a, b| {
            (a.location.to_string(), a.offset, a.kind).cmp(&(
                b.location.to_string(),
                b.offset,
                b.kind,
            ))
        });
        self.plaintext
            .sort_by(|a, b| (&a.file, &a.key).cmp(&(&b.file, &b.key)));
        self.errors.sort();
    }

    /// Writes the human-readable report: one `LEAK` / `PRIVATE KEY` / `PLAINTEXT` line each,
    /// the reference chains, what was not covered, then a summary and the verdict.
    pub fn write_human(&self, w: &mut impl Write) -> io::Result<()> {
        for f in &self.findings {
            let how = how(&f.encoding, &f.layers);
            writeln!(
                w,
                "LEAK {} offset {}: {} ({how})",
                f.location, f.offset, f.var
            )?;
        }
        for (path, more) in &self.truncated {
            writeln!(w, "LEAK {path}: {more} more occurrences not listed")?;
        }
        for k in &self.keys {
            let how = how(&k.encoding, &k.layers);
            let note = match (k.is_example(), k.not_excused) {
                (true, _) => {
                    " [in a test or documentation file of the store path: listed, not counted]"
                }
                (false, Some(why)) => why.note(),
                (false, None) => "",
            };
            writeln!(
                w,
                "PRIVATE KEY {} offset {}: {} ({how}){note}",
                k.location, k.offset, k.kind
            )?;
        }
        for p in &self.plaintext {
            let file = p.file.display();
            writeln!(w, "PLAINTEXT {file} key {}: not encrypted", p.key)?;
        }
        self.write_referrers(w)?;
        for (file, why) in &self.not_readable {
            writeln!(w, "not covered: sops file {file} not readable: {why}")?;
        }
        for e in &self.errors {
            writeln!(w, "not covered: {e}")?;
        }
        self.write_summary(w)?;
        self.write_verdict(w)
    }

    fn write_referrers(&self, w: &mut impl Write) -> io::Result<()> {
        for r in &self.referrers {
            for c in &r.chains {
                let chain: Vec<String> = c.paths.iter().map(|p| p.display().to_string()).collect();
                let root = c
                    .root
                    .as_deref()
                    .map(|l| format!(" (GC root {l})"))
                    .unwrap_or_default();
                writeln!(w, "  referrers: {}{root}", chain.join(" <- "))?;
            }
            if let Some(note) = &r.note {
                writeln!(w, "  referrers of {}: {note}", r.store_path.display())?;
            }
        }
        Ok(())
    }

    fn write_summary(&self, w: &mut impl Write) -> io::Result<()> {
        let gib = self.bytes as f64 / f64::from(1u32 << 30);
        let scopes = if self.scopes.is_empty() {
            "nothing scanned".to_string()
        } else {
            self.scopes.join(", ")
        };
        writeln!(
            w,
            "audit ({scopes}): {} secrets as {} patterns ({}); {} files ({} compressed, {:.2} GiB \
             decompressed), {} git blobs, {gib:.2} GiB in {:.2} s",
            self.secrets,
            self.patterns,
            self.engine,
            self.files,
            self.compressed_files,
            self.decompressed_bytes as f64 / f64::from(1u32 << 30),
            self.blobs,
            self.seconds
        )?;
        if !self.skipped_short.is_empty() {
            writeln!(
                w,
                "skipped {} vars shorter than {} bytes (not searched): {}",
                self.skipped_short.len(),
                super::MIN_SECRET_LEN,
                self.skipped_short.join(", ")
            )?;
        }
        if self.secrets == 0 {
            writeln!(
                w,
                "warning: no secret was searched (none readable with the given identities)"
            )?;
        }
        Ok(())
    }

    fn write_verdict(&self, w: &mut impl Write) -> io::Result<()> {
        let partial = format!(
            "{} files or objects not scanned, {} sops files not readable with the given identities",
            self.errors.len(),
            self.not_readable.len()
        );
        let keys = self.keys.iter().filter(|k| !k.is_example()).count();
        let found = self.findings.len() + keys + self.plaintext.len();
        if found > 0 {
            writeln!(
                w,
                "not clean: found {} leaks, {keys} private keys and {} plaintext sops values",
                self.findings.len(),
                self.plaintext.len()
            )?;
        }
        match (found, self.is_complete(), self.allow_partial) {
            (0, true, _) => writeln!(w, "clean: no leak found"),
            (0, false, true) => writeln!(w, "clean (partial, allowed): no leak found; {partial}"),
            (0, false, false) => writeln!(
                w,
                "not clean: the audit is partial: {partial} (--allow-partial accepts this)"
            ),
            (_, true, _) => Ok(()),
            (_, false, _) => writeln!(w, "also partial: {partial}"),
        }
    }

    /// The report as JSON (for CI). Top level: `clean` (the verdict), `complete`,
    /// `allow_partial`, `findings` and `keys` (each with `kind` of location, `path`,
    /// `store_path`, `offset`, `encoding`, `alignment`, `line`, `compression` (the outermost), `layers` (outermost
    /// first), and `var` or
    /// `key`), `referrers` (`store_path`, `chains` of `root` and `paths`, `note`),
    /// `plaintext`, `skipped`, `not_readable`, `errors`, `truncated`, `counts`, `engine`,
    /// `scopes`, `seconds`.
    pub fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let mut v = json!({
                    "offset": f.offset,
                    "var": f.var,
                });
                encoding_json(&mut v, &f.encoding, &f.layers);
                location_json(&mut v, &f.location);
                v
            })
            .collect();
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|k| {
                let mut v =
                    json!({"offset": k.offset, "key": k.kind.name(), "example": k.is_example()});
                encoding_json(&mut v, &k.encoding, &k.layers);
                location_json(&mut v, &k.location);
                v
            })
            .collect();
        let plaintext: Vec<Value> = self
            .plaintext
            .iter()
            .map(|p| json!({"file": p.file.to_string_lossy(), "key": p.key}))
            .collect();
        let not_readable: Vec<Value> = self
            .not_readable
            .iter()
            .map(|(f, why)| json!({"file": f, "reason": why}))
            .collect();
        json!({
            "clean": self.is_clean(),
            "complete": self.is_complete(),
            "allow_partial": self.allow_partial,
            "findings": findings,
            "keys": keys,
            "referrers": self.referrers.iter().map(referrers_json).collect::<Vec<_>>(),
            "plaintext": plaintext,
            "skipped": {
                "count": self.skipped_short.len(),
                "min_len": super::MIN_SECRET_LEN,
                "vars": self.skipped_short,
            },
            "not_readable": not_readable,
            "errors": self.errors,
            "truncated": self
                .truncated
                .iter()
                .map(|(path, more)| json!({"path": path, "not_listed": more}))
                .collect::<Vec<_>>(),
            "counts": self.counts_json(),
            "engine": self.engine,
            "scopes": self.scopes,
            "seconds": self.seconds,
        })
    }

    fn counts_json(&self) -> Value {
        json!({
            "secrets": self.secrets,
            "patterns": self.patterns,
            "files": self.files,
            "compressed_files": self.compressed_files,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "decompressed_bytes": self.decompressed_bytes,
            "findings": self.findings.len(),
            "keys": self.keys.len(),
            "plaintext": self.plaintext.len(),
            "skipped": self.skipped_short.len(),
            "not_readable": self.not_readable.len(),
            "errors": self.errors.len(),
        })
    }
}

fn encoding_json(v: &mut Value, encoding: &Encoding, layers: &Layers) {
    v["encoding"] = json!(encoding.name());
    v["alignment"] = json!(encoding.alignment());
    v["line"] = json!(encoding.line());
    v["compression"] = json!(layers.outermost_compression().map(|c| c.name()));
    v["layers"] = json!(layers.names());
}

fn location_json(v: &mut Value, location: &Location) {
    match location {
        Location::Store { store_path, file } => {
            v["kind"] = json!("store");
            v["store_path"] = json!(store_path.to_string_lossy());
            v["path"] = json!(file.to_string_lossy());
        }
        Location::StoreName { store_path } => {
            v["kind"] = json!("store-name");
            v["store_path"] = json!(store_path.to_string_lossy());
            v["path"] = json!(store_path.to_string_lossy());
        }
        Location::File { path } => {
            v["kind"] = json!("file");
            v["path"] = json!(path.to_string_lossy());
        }
        Location::GitBlob { commit, path, blob } => {
            v["kind"] = json!("git");
            v["commit"] = json!(commit);
            v["path"] = json!(path);
            v["blob"] = json!(blob);
        }
    }
}

fn referrers_json(r: &Referrers) -> Value {
    let chains: Vec<Value> = r
        .chains
        .iter()
        .map(|c| {
            json!({
                "root": c.root,
                "paths": c.paths.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"store_path": r.store_path.to_string_lossy(), "chains": chains, "note": r.note})
}

#[cfg(test)]
mod example_keys {
    use super::*;

    fn key(store: &str, file: &str) -> KeyFinding {
        KeyFinding {
            location: Location::Store {
                store_path: PathBuf::from(store),
                file: PathBuf::from(file),
            },
            offset: 0,
            kind: KeyKind::Age,
            encoding: Encoding::Raw,
            layers: Layers::default(),
            not_excused: None,
        }
    }

    #[test]
    fn upstream_test_and_doc_keys_are_listed_not_counted() {
        let s = "/nix/store/aaaa-source";
        assert!(key(s, "/nix/store/aaaa-source/pkgs/x/test-assets/age-keys.txt").is_example());
        assert!(key(s, "/nix/store/aaaa-source/README.md").is_example());
        assert!(!key(s, "/nix/store/aaaa-source/admin.agekey").is_example());
        assert!(!key("/nix/store/bbbb-etc", "/nix/store/bbbb-etc/ssh/key").is_example());
        let mut r = Report::default();
        r.keys.push(key(s, "/nix/store/aaaa-source/README.md"));
        assert!(r.is_clean());
        r.keys
            .push(key(s, "/nix/store/aaaa-source/secrets/admin.agekey"));
        assert!(!r.is_clean());
        let mut own = key(s, "/nix/store/aaaa-source/docs/keys.txt");
        own.not_excused = Some(NotExcused::OwnKey);
        assert!(!own.is_example());
    }
}
