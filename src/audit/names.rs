//! Secrets inside store path *names*: `nix-store --add-fixed` of a file named after a value,
//! or a derivation whose `name` interpolates one, puts the value into `/nix/store/<hash>-<name>`
//! where no file content holds it. Every scanned store path's name is searched with the same
//! matcher (store names allow `[A-Za-z0-9+._?=-]`, so raw, hex and URL-safe base64 forms are
//! the ones that can occur).
//!
//! A store path whose name holds a secret must not be printed: [`Redactor`] replaces its name
//! by [`WITHHELD`] (the hash part still identifies it: `ls -d /nix/store/<hash>-*`) in every
//! path and message of the report.

use std::path::{Path, PathBuf};

use super::scan::{Hit, Matcher};

/// The store paths directly under `store` (`.links` and other dot entries left out), sorted,
/// and the errors of listing it.
pub(crate) fn store_paths(store: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    match std::fs::read_dir(store) {
        Ok(rd) => {
            for entry in rd {
                match entry {
                    Ok(e) if !e.file_name().as_encoded_bytes().starts_with(b".") => {
                        paths.push(e.path())
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(format!("{}: {e}", store.display())),
                }
            }
        }
        Err(e) => errors.push(format!("{}: {e}", store.display())),
    }
    paths.sort();
    (paths, errors)
}

/// Searches the names of `paths`; returns each hit with its store path.
pub(crate) fn scan_names(paths: &[PathBuf], matcher: &Matcher) -> Vec<(PathBuf, Hit)> {
    let mut out = Vec::new();
    for path in paths {
        let Some(name) = path.file_name() else {
            continue;
        };
        matcher.find(name.as_encoded_bytes(), |hit| out.push((path.clone(), hit)));
    }
    out
}

/// What replaces the name of a store path that holds a secret.
pub(crate) const WITHHELD: &str = "<name withheld: it holds a secret>";

/// `<store>/<hash>-<name>` with the name replaced by `WITHHELD`.
pub fn redacted(store_path: &Path) -> PathBuf {
    let name = store_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hash = name.split('-').next().unwrap_or_default();
    let parent = store_path.parent().unwrap_or(Path::new(""));
    parent.join(format!("{hash}-{WITHHELD}"))
}

/// Rewrites paths under store paths whose names hold a secret.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    /// (store path, its redacted form), longest first.
    map: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for `store_paths`.
    pub(crate) fn new(store_paths: &[PathBuf]) -> Redactor {
        let mut map: Vec<(String, String)> = store_paths
            .iter()
            .map(|p| (p.display().to_string(), redacted(p).display().to_string()))
            .collect();
        map.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        map.dedup();
        Redactor { map }
    }

    /// True when nothing is redacted.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `text` with every redacted store path replaced.
    pub(crate) fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.map {
            if out.contains(from.as_str()) {
                out = out.replace(from.as_str(), to);
            }
        }
        out
    }

    /// `path` with a redacted store path prefix replaced.
    pub(crate) fn path(&self, path: &Path) -> PathBuf {
        PathBuf::from(self.text(&path.to_string_lossy()))
    }
}
