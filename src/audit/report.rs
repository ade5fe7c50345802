//! Findings, counts, and their human and JSON renderings. Nothing here ever holds a value.

use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Encoding;

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
    /// Files or objects that could not be read (path: error); they are not searched.
    pub errors: Vec<String>,
    /// Files with more occurrences than listed (path, occurrences not listed).
    pub truncated: Vec<(String, u64)>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl Report {
    /// True when nothing leaked and every sops file is fully encrypted.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty() && self.plaintext.is_empty()
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
        self.plaintext
            .sort_by(|a, b| (&a.file, &a.key).cmp(&(&b.file, &b.key)));
        self.errors.sort();
    }

    /// Writes the human-readable report: one `LEAK` / `PLAINTEXT` line each, then a summary.
    pub fn write_human(&self, w: &mut impl Write) -> io::Result<()> {
        for f in &self.findings {
            writeln!(
                w,
                "LEAK {} offset {}: {} ({})",
                f.location, f.offset, f.var, f.encoding
            )?;
        }
        for (path, more) in &self.truncated {
            writeln!(w, "LEAK {path}: {more} more occurrences not listed")?;
        }
        for p in &self.plaintext {
            writeln!(
                w,
                "PLAINTEXT {} key {}: not encrypted",
                p.file.display(),
                p.key
            )?;
        }
        for (file, why) in &self.not_readable {
            writeln!(w, "not readable: {file}: {why}")?;
        }
        for e in &self.errors {
            writeln!(w, "not scanned: {e}")?;
        }
        let gib = self.bytes as f64 / f64::from(1u32 << 30);
        writeln!(
            w,
            "audit ({}): {} secrets as {} patterns ({}); {} files, {} git blobs, {:.2} GiB in {:.2} s",
            if self.scopes.is_empty() {
                "nothing scanned".to_string()
            } else {
                self.scopes.join(", ")
            },
            self.secrets,
            self.patterns,
            self.engine,
            self.files,
            self.blobs,
            gib,
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
        if !self.not_readable.is_empty() {
            writeln!(
                w,
                "{} sops files not readable with the given identities (their vars were not searched)",
                self.not_readable.len()
            )?;
        }
        if self.secrets == 0 {
            writeln!(
                w,
                "warning: no secret was searched (none readable with the given identities)"
            )?;
        }
        if self.is_clean() {
            writeln!(w, "clean: no leak found")?;
        } else {
            writeln!(
                w,
                "found {} leaks and {} plaintext sops values",
                self.findings.len(),
                self.plaintext.len()
            )?;
        }
        Ok(())
    }

    /// The report as JSON (for CI).
    pub fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                let mut v = json!({
                    "offset": f.offset,
                    "var": f.var,
                    "encoding": f.encoding.name(),
                    "alignment": f.encoding.alignment(),
                });
                match &f.location {
                    Location::Store { store_path, file } => {
                        v["kind"] = json!("store");
                        v["store_path"] = json!(store_path.to_string_lossy());
                        v["path"] = json!(file.to_string_lossy());
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
            "findings": findings,
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
            "counts": {
                "secrets": self.secrets,
                "patterns": self.patterns,
                "files": self.files,
                "blobs": self.blobs,
                "bytes": self.bytes,
                "findings": self.findings.len(),
                "plaintext": self.plaintext.len(),
                "skipped": self.skipped_short.len(),
                "not_readable": self.not_readable.len(),
                "errors": self.errors.len(),
            },
            "engine": self.engine,
            "scopes": self.scopes,
            "seconds": self.seconds,
        })
    }
}
