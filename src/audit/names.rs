//! Secrets inside store path *names*: `nix-store --add-fixed` of a file named after a value,
//! or a derivation whose `name` interpolates one, puts the value into `/nix/store/<hash>-<name>`
//! where no file content holds it. Every scanned store path's name is searched with the same
//! matcher (store names allow `[A-Za-z0-9+._?=-]`, so raw, hex and URL-safe base64 forms are
//! the ones that can occur).

use std::path::{Path, PathBuf};

use super::scan::{Hit, Matcher};

/// The store paths directly under `store` (`.links` and other dot entries left out), sorted,
/// and the errors of listing it.
pub fn store_paths(store: &Path) -> (Vec<PathBuf>, Vec<String>) {
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
pub fn scan_names(paths: &[PathBuf], matcher: &Matcher) -> Vec<(PathBuf, Hit)> {
    let mut out = Vec::new();
    for path in paths {
        let Some(name) = path.file_name() else {
            continue;
        };
        matcher.find(name.as_encoded_bytes(), |hit| out.push((path.clone(), hit)));
    }
    out
}
