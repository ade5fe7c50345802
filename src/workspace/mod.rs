//! The workspace: `varsmith.yaml` (inventory) and generator definitions, validated.

pub(crate) mod bounds;
pub mod definitions;
pub(crate) mod gen_table;
pub mod generator;
pub(crate) mod inventory;
pub(crate) mod inventory_edit;
pub(crate) mod names;
pub(crate) mod nix;
mod nix_cache;
mod nix_trace;
mod owner;
pub(crate) mod quote;
pub(crate) mod read;
pub(crate) mod stored;
pub(crate) mod users;

use std::path::{Path, PathBuf};

pub use definitions::{Definitions, HOST_KEY_GENERATOR, HOST_KEY_PUB, HOST_KEY_PUBS};
pub use generator::{FileSpec, Generator, NeededFor, Prompt, PromptType};
pub use inventory::{Backend, DeploySettings, Inventory, Machine};
pub use owner::Owner;

/// The inventory's file name.
pub const INVENTORY_FILE: &str = "varsmith.yaml";

/// Errors in the workspace's definitions. All are exit code 2 and name the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `varsmith.yaml` in the directory or any parent.
    #[error(
        "no {INVENTORY_FILE} found in {0} or any parent directory (run `varsmith init` or pass -C DIR)"
    )]
    NotFound(PathBuf),
    /// A definition file could not be read.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A definition file is malformed or invalid.
    #[error("{path}: {msg}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the machine and generator where they apply.
        msg: String,
    },
}

impl crate::error::HasKind for Error {
    /// Definition errors are always bad input (exit 2).
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Usage
    }
}

/// A loaded workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The directory holding `varsmith.yaml`.
    pub root: PathBuf,
    /// The parsed inventory (flake machines merged in by `Workspace::with_flake`).
    pub inventory: Inventory,
    /// Machines defined in the flake (empty for a YAML-only workspace).
    pub flake: Vec<nix::NixMachine>,
    /// Machines described both in `varsmith.yaml` and by the flake: allowed when both give the
    /// same generators with the same definitions (checked with the definitions).
    pub in_both: Vec<String>,
    /// home-manager homes of the flake that import varsmith's home-manager module (standalone
    /// and integrated; empty for a YAML-only workspace), read in the machines' batched
    /// evaluation.
    pub homes: Vec<nix::NixHome>,
    /// Set when the flake did not evaluate and the machines were read from the stored layout
    /// instead (`Workspace::with_flake_or_stored`); `None` otherwise.
    pub(crate) stored: Option<stored::Stored>,
}

impl Workspace {
    /// Finds the workspace: `dir` if given, else the current directory upward.
    pub(crate) fn discover(dir: Option<&Path>) -> Result<Workspace, Error> {
        let root = find_root(dir)?;
        Workspace::load(&root)
    }

    /// Loads the workspace rooted at `root`.
    pub fn load(root: &Path) -> Result<Workspace, Error> {
        let path = root.join(INVENTORY_FILE);
        let text = read::text(root, &path)?.ok_or_else(|| Error::Io {
            path: path.clone(),
            cause: std::io::ErrorKind::NotFound.into(),
        })?;
        bounds::check_yaml(&text).map_err(|msg| Error::Invalid {
            path: path.clone(),
            msg,
        })?;
        let inventory: Inventory = if text.trim().is_empty() {
            Inventory::default()
        } else {
            yaml_serde::from_str(&text).map_err(|e| Error::Invalid {
                path: path.clone(),
                msg: quote::parser_message(&e.to_string()),
            })?
        };
        Ok(Workspace {
            root: root.to_path_buf(),
            inventory,
            flake: Vec::new(),
            in_both: Vec::new(),
            homes: Vec::new(),
            stored: None,
        })
    }

    /// The flake output machine `name` builds (`.#<attr>`): its `nixosConfigurations` /
    /// `darwinConfigurations` attribute when that differs from its `machineName`, else `name`.
    pub(crate) fn flake_attr<'a>(&'a self, name: &'a str) -> &'a str {
        self.flake
            .iter()
            .find(|m| m.machine_name == name)
            .map_or(name, |m| {
                m.attr.split_once('.').map_or(m.attr.as_str(), |(_, a)| a)
            })
    }

    /// The machine called `name`, or an error naming where machines are defined
    /// (`varsmith.yaml`, or `flake.nix` in a flake workspace).
    pub fn machine(&self, name: &str) -> Result<&Machine, Error> {
        let file = if nix::is_flake(&self.root) {
            "flake.nix"
        } else {
            INVENTORY_FILE
        };
        self.inventory
            .machines
            .get(name)
            .ok_or_else(|| Error::Invalid {
                path: self.root.join(file),
                msg: self.inventory.unknown_machine(name),
            })
    }

    /// Where machine `name` is defined: its flake configuration's attribute
    /// (`nixosConfigurations.<attr>`) when the flake alone defines it, else `None`
    /// (`varsmith.yaml`, or read from the stored layout).
    pub(crate) fn flake_config(&self, name: &str) -> Option<&str> {
        if self.in_both.iter().any(|m| m == name) {
            return None;
        }
        self.flake
            .iter()
            .find(|m| m.machine_name == name)
            .map(|m| m.attr.as_str())
    }

    /// How to make machine `machine` (or, with `None`, some machine) use generator `g`, where
    /// machines are defined: `varsmith.generators.<g> = { };` in its configuration for a flake
    /// machine, `varsmith machine generators add` for a `varsmith.yaml` one.
    pub(crate) fn declare_hint(&self, machine: Option<&str>, g: &str) -> String {
        let nix = format!("`varsmith.generators.{g} = {{ }};`");
        match machine {
            Some(m) if self.is_stored(m) => format!(
                "machine {m}'s configuration is unknown: the flake does not evaluate; fix it, then declare {nix} there"
            ),
            Some(m) => match self.flake_config(m) {
                Some(attr) => format!("declare {nix} in {attr}"),
                None => format!("add it with `varsmith machine generators add {m} {g}`"),
            },
            None => {
                let yaml = self
                    .inventory
                    .machines
                    .keys()
                    .any(|m| self.flake_config(m).is_none() && !self.is_stored(m));
                match (self.flake.is_empty(), yaml) {
                    (true, _) => format!(
                        "add it to a machine's generators: `varsmith machine generators add MACHINE {g}`"
                    ),
                    (false, false) => format!("declare {nix} in a machine's configuration"),
                    (false, true) => format!(
                        "declare {nix} in a machine's configuration, or `varsmith machine generators add MACHINE {g}` for a machine of {INVENTORY_FILE}"
                    ),
                }
            }
        }
    }
}

/// Finds the directory holding `varsmith.yaml`: `dir` itself if given, else the current
/// directory and its parents.
pub(crate) fn find_root(dir: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(d) = dir {
        if d.join(INVENTORY_FILE).is_file() {
            return Ok(d.to_path_buf());
        }
        return Err(Error::NotFound(d.to_path_buf()));
    }
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        path: PathBuf::from("."),
        cause: source,
    })?;
    let mut cur: &Path = &cwd;
    loop {
        if cur.join(INVENTORY_FILE).is_file() {
            return Ok(cur.to_path_buf());
        }
        match cur.parent() {
            Some(p) => cur = p,
            None => return Err(Error::NotFound(cwd)),
        }
    }
}

impl Workspace {
    /// Loads and validates every generator definition the workspace uses.
    pub fn definitions(&self) -> Result<Definitions, Error> {
        definitions::load(self)
    }

    /// Adds the flake's machines (a flake workspace; cached, see `nix`). A name given twice
    /// (two configurations, or a configuration and `varsmith.yaml`) is an error naming both.
    pub(crate) fn with_flake(self) -> Result<Workspace, Error> {
        self.with_flake_for(&[])
    }

    /// [`Workspace::with_flake`] for a command on the machines `focus` only (empty: all): see
    /// `nix::machines_for` for which configurations are then evaluated.
    pub(crate) fn with_flake_for(self, focus: &[String]) -> Result<Workspace, Error> {
        if !nix::is_flake(&self.root) {
            return Ok(self);
        }
        let flake = nix::machines_for(&self.root, focus)?;
        self.merge_flake(flake)
    }

    /// `Workspace::with_flake`, except that a flake that does not evaluate gives the machines
    /// of the stored layout instead (`stored`); `stored` then holds the error. A refused
    /// import-from-derivation stays an error (its message names the opt-in). For commands
    /// that can work without definitions' scripts (`get`, `list`, `rekey`).
    pub(crate) fn with_flake_or_stored(self) -> Result<Workspace, Error> {
        if !nix::is_flake(&self.root) {
            return Ok(self);
        }
        match nix::machines(&self.root) {
            Ok(flake) => self.merge_flake(flake),
            // A refused import-from-derivation is not a broken flake: say how to allow it.
            Err(e) if nix::is_ifd_refusal(&e.to_string()) => Err(e),
            Err(e) => self.with_stored(&e),
        }
    }

    /// Merges the flake's machines and homes into the workspace (see `Workspace::with_flake`).
    fn merge_flake(mut self, flake: nix::Flake) -> Result<Workspace, Error> {
        let nix::Flake { machines, homes } = flake;
        for h in homes.iter().filter(|h| h.error.is_none()) {
            names::check_component(&h.user_name)
                .and_then(|()| {
                    if h.user_name.contains('@') {
                        Err(format!("{:?} contains '@'", h.user_name))
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| Error::Invalid {
                    path: self.root.join("flake.nix"),
                    msg: format!("{}: varsmith.userName {e}", h.attr),
                })?;
        }
        self.homes = homes;
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        for m in &machines {
            let name = &m.machine_name;
            names::check_component(name).map_err(|e| Error::Invalid {
                path: self.root.join("flake.nix"),
                msg: format!("{}: machineName {e}", m.attr),
            })?;
            if let Some(other) = seen.insert(name.clone(), m.attr.clone()) {
                return Err(Error::Invalid {
                    path: self.root.join("flake.nix"),
                    msg: format!(
                        "machine {name} is defined twice: by {other} and by {}",
                        m.attr
                    ),
                });
            }
            if self.inventory.machines.contains_key(name) {
                self.in_both.push(name.clone());
                continue;
            }
            let backend = match m.deploy.backend.as_deref() {
                None => None,
                Some(b) => Some(
                    serde_json::from_value(serde_json::Value::String(b.into())).map_err(|_| {
                        Error::Invalid {
                            path: self.root.join("flake.nix"),
                            msg: format!("{}: unknown deploy backend {b:?}", m.attr),
                        }
                    })?,
                ),
            };
            let system = m.system.clone().unwrap_or_else(|| {
                if m.darwin {
                    "aarch64-darwin"
                } else {
                    "x86_64-linux"
                }
                .to_string()
            });
            let machine = Machine {
                target: m.deploy.target_host.clone(),
                system,
                tags: m.deploy.tags.clone(),
                generators: m.generators.keys().cloned().collect(),
                deploy: backend,
            };
            self.inventory.machines.insert(name.clone(), machine);
        }
        self.inventory.deploy.order =
            fleet_order(&self.root, &self.inventory.deploy.order, &machines)?;
        self.flake = machines;
        Ok(self)
    }
}

/// The fleet's `deploy.order`: `varsmith.yaml`'s, else the one the flake's configurations
/// state (`varsmith.deploy.order`, usually set once in a module every machine imports). Every
/// non-empty statement must be the same list: the order is one for the whole fleet, so two
/// different ones are an error naming where each comes from.
fn fleet_order(
    root: &Path,
    yaml: &[String],
    machines: &[nix::NixMachine],
) -> Result<Vec<String>, Error> {
    let mut first: Option<(String, &[String])> =
        (!yaml.is_empty()).then(|| (format!("{INVENTORY_FILE} (deploy.order)"), yaml));
    for m in machines.iter().filter(|m| !m.deploy.order.is_empty()) {
        let here = format!("{}'s varsmith.deploy.order", m.attr);
        match &first {
            None => first = Some((here, &m.deploy.order)),
            Some((there, order)) if *order != m.deploy.order.as_slice() => {
                return Err(Error::Invalid {
                    path: root.join("flake.nix"),
                    msg: format!(
                        "the deploy order differs: {there} is {order:?} but {here} is {:?}; the order is the whole fleet's, so state it once (a module every machine imports) or the same everywhere",
                        m.deploy.order
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, o)| o.to_vec()).unwrap_or_default())
}
