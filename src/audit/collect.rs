//! Collecting the secrets to search for: every sops secret file of the workspace that the
//! identities can decrypt (all machines and shared), through [`crate::sops::decrypt_flat`].

use std::path::{Path, PathBuf};

use crate::keys::Identities;
use crate::sops::{self, Format};

use super::{Error, Secret};

/// The secrets of a workspace and what could not be read.
#[derive(Debug, Default)]
pub struct Collected {
    /// Every decrypted secret value, labelled `<host>/<generator>/<file>`,
    /// `users/<user>/<generator>/<file>` (a per-home home: `users/<user>@<host>/…`) or
    /// `shared/<generator>/<file>`.
    pub secrets: Vec<Secret>,
    /// sops files decrypted.
    pub files: usize,
    /// sops files the identities could not decrypt (relative path, reason). Their vars are not
    /// searched; the report counts them.
    pub not_readable: Vec<(String, String)>,
}

/// The sops secret files of the workspace at `root` with their label prefix
/// (`<host>`, `users/<user>`, `users/<user>@<host>` or `shared`) and generator name, sorted.
pub(crate) fn secret_files(root: &Path) -> Result<Vec<(PathBuf, String, String)>, Error> {
    let mut out = Vec::new();
    let mut dirs: Vec<(PathBuf, String)> = Vec::new();
    let machines = root.join("sops/machines");
    match std::fs::read_dir(&machines) {
        Ok(rd) => {
            for entry in rd {
                let entry = entry.map_err(|source| Error::Io {
                    path: machines.clone(),
                    cause: source,
                })?;
                let host = entry.file_name().to_string_lossy().into_owned();
                dirs.push((entry.path().join("secrets"), host.clone()));
                // `deploy: false` secrets (admins only).
                dirs.push((entry.path().join("secrets/admin"), host));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                path: machines,
                cause: source,
            });
        }
    }
    for (dir, key) in user_dirs(root)? {
        dirs.push((dir.join("secrets"), format!("users/{key}")));
        dirs.push((dir.join("secrets/admin"), format!("users/{key}")));
    }
    dirs.push((root.join("sops/shared/secrets"), "shared".to_string()));
    dirs.push((root.join("sops/shared/secrets/admin"), "shared".to_string()));
    for (dir, prefix) in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd {
            let entry = entry.map_err(|source| Error::Io {
                path: dir.clone(),
                cause: source,
            })?;
            let path = entry.path();
            let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if !is_yaml || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let generator = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((path, prefix.clone(), generator));
        }
    }
    out.sort();
    Ok(out)
}

/// Each home-manager user's store (`sops/users/<user>`) and per-home store
/// (`sops/users/<user>/homes/<user>@<host>`) with its owner key (`<user>`, `<user>@<host>`).
/// Admins' key folders without outputs add nothing (their `secrets/` does not exist).
fn user_dirs(root: &Path) -> Result<Vec<(PathBuf, String)>, Error> {
    let mut out = Vec::new();
    let users = root.join("sops/users");
    for (dir, name) in subdirs(&users)? {
        for (home, home_name) in subdirs(&dir.join("homes"))? {
            out.push((home, home_name));
        }
        out.push((dir, name));
    }
    Ok(out)
}

/// The directories directly under `dir` with their names (none when `dir` does not exist).
fn subdirs(dir: &Path) -> Result<Vec<(PathBuf, String)>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                cause: source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            cause: source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push((
                entry.path(),
                entry.file_name().to_string_lossy().into_owned(),
            ));
        }
    }
    Ok(out)
}

/// Decrypts every secret file of the workspace at `root` that `ids` can read. Keys ending in
/// `_unencrypted` are varsmith's plaintext metadata and are left out.
pub(crate) fn collect_secrets(root: &Path, ids: &Identities) -> Result<Collected, Error> {
    let mut collected = Collected::default();
    for (path, prefix, generator) in secret_files(root)? {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            cause: source,
        })?;
        match sops::decrypt_flat(&bytes, Format::Yaml, ids, &rel) {
            Ok(map) => {
                collected.files += 1;
                for (key, value) in map {
                    if key.ends_with("_unencrypted") {
                        continue;
                    }
                    collected
                        .secrets
                        .push(Secret::new(format!("{prefix}/{generator}/{key}"), value));
                }
            }
            Err(e) => collected.not_readable.push((rel, e.to_string())),
        }
    }
    Ok(collected)
}
