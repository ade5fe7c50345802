//! `varsmith.yaml`: admins, machines, tags and deploy settings.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The parsed inventory file (`varsmith.yaml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Admin name to age recipient (`age1…` or an `ssh-ed25519` line). Admins may decrypt
    /// everything.
    #[serde(default)]
    pub admins: IndexMap<String, String>,
    /// Machines by name, in file order.
    #[serde(default)]
    pub machines: IndexMap<String, Machine>,
    /// Fleet-wide deploy settings.
    #[serde(default)]
    pub deploy: DeploySettings,
}

/// One machine of the fleet.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// SSH target for push-keys and deploy; defaults to `root@<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nix system, e.g. `x86_64-linux` or `aarch64-darwin`.
    #[serde(default = "default_system")]
    pub system: String,
    /// Free-form tags (used by `deploy.order`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Generators this machine needs, by name.
    #[serde(default)]
    pub generators: Vec<String>,
    /// Per-machine deploy backend override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Backend>,
}

impl Inventory {
    /// The error text for a machine name that is not in the inventory, in the one wording of
    /// `suggest::unknown`: `unknown machine "cinabar" (did you mean "cinnabar"?)`.
    pub(crate) fn unknown_machine(&self, name: &str) -> String {
        crate::suggest::unknown("machine", name, self.machines.keys().map(String::as_str))
    }
}

fn default_system() -> String {
    "x86_64-linux".to_string()
}

impl Machine {
    /// True for nix-darwin machines (`*-darwin` systems).
    pub(crate) fn is_darwin(&self) -> bool {
        self.system.ends_with("-darwin")
    }

    /// The SSH target of machine `name`: its `target`, else `root@<name>`.
    pub(crate) fn target_or_default(&self, name: &str) -> String {
        self.target
            .clone()
            .unwrap_or_else(|| format!("root@{name}"))
    }
}

/// Fleet-wide deploy settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeploySettings {
    /// The default backend (`nixos-rebuild` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Stages that deploy first, in this order: `tag:NAME`, `os:nixos`, `os:darwin`,
    /// `machine:NAME`, or a bare name (a machine if one has it, else a tag).
    #[serde(default)]
    pub order: Vec<String>,
}

/// A deployment tool.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// `nixos-rebuild switch --flake .#HOST --target-host …`
    NixosRebuild,
    /// `nh os switch …`
    Nh,
    /// `darwin-rebuild switch --flake .#HOST`
    DarwinRebuild,
    /// `clan machines update HOST`
    Clan,
}
