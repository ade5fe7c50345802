//! Where each var lives under `sops/`.

use std::path::{Path, PathBuf};

use crate::workspace::Owner;

/// Where an owner's files live under `sops/` (the type itself is [`crate::workspace::Owner`]).
impl Owner {
    /// `sops/machines/<host>`, `sops/users/<user>` (a per-home owner `<user>@<host>`:
    /// `sops/users/<user>/homes/<user>@<host>`) or `sops/shared`.
    pub fn base(&self, root: &Path) -> PathBuf {
        match self {
            Owner::Machine(m) => root.join("sops/machines").join(m),
            Owner::User(u) => match u.split_once('@') {
                Some((user, _)) => root.join("sops/users").join(user).join("homes").join(u),
                None => root.join("sops/users").join(u),
            },
            Owner::Shared => root.join("sops/shared"),
        }
    }

    /// The sops YAML holding the generator's deployed secrets.
    pub fn secrets_file(&self, root: &Path, gen_name: &str) -> PathBuf {
        self.base(root)
            .join("secrets")
            .join(format!("{gen_name}.yaml"))
    }

    /// The sops YAML holding the generator's `deploy: false` secrets (admins only).
    pub(crate) fn admin_secrets_file(&self, root: &Path, gen_name: &str) -> PathBuf {
        self.base(root)
            .join("secrets/admin")
            .join(format!("{gen_name}.yaml"))
    }

    /// The directory of the generator's public facts.
    pub(crate) fn facts_dir(&self, root: &Path, gen_name: &str) -> PathBuf {
        self.base(root).join("facts").join(gen_name)
    }

    /// The generator's manifest (written last when outputs are committed).
    pub(crate) fn manifest_file(&self, root: &Path, gen_name: &str) -> PathBuf {
        self.base(root)
            .join("state")
            .join(format!("{gen_name}.json"))
    }
}

/// `sops/machines/<host>/key.json`.
pub(crate) fn host_key_json(root: &Path, host: &str) -> PathBuf {
    root.join("sops/machines").join(host).join("key.json")
}

/// `sops/users/<admin>/key.json`.
pub(crate) fn admin_key_json(root: &Path, admin: &str) -> PathBuf {
    root.join("sops/users").join(admin).join("key.json")
}
