//! Declared external secrets: sops files adopted with `varsmith import sops` (a sops-nix
//! `secrets/common.yaml` kept by hand). They live where varsmith's own files do
//! (`sops/machines/<host>/secrets/<name>.yaml`, `sops/shared/secrets/<name>.yaml`) and are
//! declared in `sops/external.json`:
//!
//! ```json
//! { "shared": ["common"], "machines": { "cinnabar": ["wifi"] } }
//! ```
//!
//! A declared file is never generated; `rekey` re-wraps it like every sops file (a shared one
//! to every machine of the inventory and the admins, a machine's one to that host and the
//! admins), and `check` verifies it (structure, recipients, MAC with an identity) without
//! calling it hand-made. A missing declaration file declares nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Error, Owner};

/// The declaration file, relative to the workspace root.
pub(crate) const FILE: &str = "sops/external.json";

/// The declared external secrets (names are file stems, without `.yaml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct External {
    /// Files under `sops/shared/secrets/`, encrypted to every machine and the admins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// Files under `sops/machines/<host>/secrets/`, by host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub machines: BTreeMap<String, Vec<String>>,
}

impl External {
    /// Reads `sops/external.json`; empty when it does not exist.
    pub(crate) fn read(root: &Path) -> Result<External, Error> {
        let path = root.join(FILE);
        let Some(bytes) = super::read_file_shared(root, &path)? else {
            return Ok(External::default());
        };
        serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
            path,
            msg: format!(
                "expected {{\"shared\": [\"name\"], \"machines\": {{\"host\": [\"name\"]}}}}: {e}"
            ),
        })
    }

    /// Whether `owner`'s secrets file `stem` is declared.
    pub(crate) fn declares(&self, owner: &Owner, stem: &str) -> bool {
        match owner {
            Owner::Shared => self.shared.iter().any(|s| s == stem),
            // Imports declare machines' and shared files only.
            Owner::User(_) => false,
            Owner::Machine(m) => self
                .machines
                .get(m)
                .is_some_and(|v| v.iter().any(|s| s == stem)),
        }
    }

    /// Adds a declaration (no duplicate).
    pub(crate) fn add(&mut self, owner: &Owner, stem: &str) {
        let list = match owner {
            Owner::Shared => &mut self.shared,
            Owner::User(_) => return,
            Owner::Machine(m) => self.machines.entry(m.clone()).or_default(),
        };
        if !list.iter().any(|s| s == stem) {
            list.push(stem.to_string());
            list.sort();
        }
    }

    /// Every declared (owner, secrets file path).
    pub(crate) fn files(&self, root: &Path) -> Vec<(Owner, String, PathBuf)> {
        let mut out = Vec::new();
        for s in &self.shared {
            out.push((
                Owner::Shared,
                s.clone(),
                Owner::Shared.secrets_file(root, s),
            ));
        }
        for (m, list) in &self.machines {
            let o = Owner::Machine(m.clone());
            for s in list {
                out.push((o.clone(), s.clone(), o.secrets_file(root, s)));
            }
        }
        out
    }

    /// Serialized (pretty JSON, trailing newline).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_and_round_trips() {
        let mut e = External::default();
        e.add(&Owner::Shared, "common");
        e.add(&Owner::Machine("a".into()), "wifi");
        e.add(&Owner::Shared, "common");
        assert!(e.declares(&Owner::Shared, "common"));
        assert!(e.declares(&Owner::Machine("a".into()), "wifi"));
        assert!(!e.declares(&Owner::Machine("b".into()), "wifi"));
        let back: External = serde_json::from_slice(&e.to_bytes()).unwrap();
        assert_eq!(back, e);
        let d = tempfile::tempdir().unwrap();
        assert_eq!(External::read(d.path()).unwrap(), External::default());
    }
}
