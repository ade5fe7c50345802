//! A flake workspace whose flake does not evaluate (issue 22): `get`, `list` and `rekey` work
//! from what varsmith itself stored instead of failing.
//!
//! Machines are `varsmith.yaml`'s plus every `sops/machines/<m>/` directory ("stored
//! machines"). A stored machine's generators are the manifests under its `state/`, each file's
//! kind taken from the manifest (`secrets`: deployed secret, `admin_secrets`: admins only,
//! `facts`: public). A shared generator (`sops/shared/state/<g>.json`) belongs to a stored
//! machine when one of the machine's manifests depends on it (`deps`) or the machine's host
//! recipients are recorded recipients of its deployed file. Owner, group, mode, dependencies
//! and staleness are not stored: they are unknown, and these definitions never run a script
//! (their `script` is empty; `generate` and `check` refuse a workspace in this state).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use super::generator::{Generator, RawFile, parse_files};
use super::{Error, Machine, Workspace};
use crate::store::{self, Manifest, Owner};

/// Why the flake's machines are not known, and which machines were read from the layout.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The evaluation error, shortened to Nix's own first error line(s).
    pub(crate) error: String,
    /// Machines of `sops/machines/` that `varsmith.yaml` does not have, in name order.
    pub(crate) machines: Vec<String>,
}

/// The first lines of Nix's error in an evaluation failure (`error: …` and at most two lines
/// after it), without warnings, traces hints or the surrounding varsmith context.
pub(crate) fn summary(err: &str) -> String {
    let lines: Vec<&str> = err
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| !l.starts_with("warning:") && !l.starts_with("(use '--show-trace'"))
        .collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("error:"))
        .unwrap_or(0);
    let mut out: Vec<&str> = lines.iter().skip(start).take(3).copied().collect();
    if out.first().is_some_and(|l| *l == "error:") && out.len() > 1 {
        out.remove(0);
    }
    out.join(" ")
}

fn invalid(path: &Path, msg: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Sorted `(generator, manifest)` of `owner`'s `state/*.json` (hidden names skipped).
fn manifests(root: &Path, owner: &Owner) -> Result<Vec<(String, Manifest)>, Error> {
    let dir = owner.base(root).join("state");
    let names = match store::fs::Dir::open(root, &dir, false) {
        Ok(d) => d.names().map_err(|e| invalid(&dir, e.to_string()))?,
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for n in names {
        let n = n.to_string_lossy();
        let Some(g) = n.strip_suffix(".json").filter(|g| !g.starts_with('.')) else {
            continue;
        };
        let path = owner.manifest_file(root, g);
        if let Some(m) = Manifest::read(root, &path).map_err(|e| invalid(&path, e.to_string()))? {
            out.push((g.to_string(), m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The definition a manifest implies: its files with their kinds, nothing else known.
fn generator(name: &str, source: PathBuf, m: &Manifest, share: bool) -> Result<Generator, Error> {
    let file = |secret: bool, deploy: bool| {
        Some(RawFile {
            secret: Some(secret),
            deploy: Some(deploy),
            ..Default::default()
        })
    };
    let mut raw = IndexMap::new();
    for f in &m.secrets {
        raw.insert(f.clone(), file(true, true));
    }
    for f in &m.admin_secrets {
        raw.insert(f.clone(), file(true, false));
    }
    for f in m.facts.keys() {
        raw.insert(f.clone(), file(false, true));
    }
    let files = parse_files(name, raw).map_err(|e| invalid(&source, e))?;
    Ok(Generator {
        name: name.to_string(),
        source,
        description: String::new(),
        share,
        dependencies: Vec::new(),
        runtime_inputs: Vec::new(),
        prompts: IndexMap::new(),
        files,
        validation: serde_json::Value::Null,
        script: String::new(),
        pinned: Some(Vec::new()),
        script_refs: Vec::new(),
    })
}

impl Workspace {
    /// Adds the stored machines (see the module docs) after the flake failed to evaluate with
    /// `error`; `self.stored` says so from now on.
    pub(crate) fn with_stored(mut self, error: &Error) -> Result<Workspace, Error> {
        let mut machines = Vec::new();
        let dirs = store::sopsfiles::machine_dirs(&self.root)
            .map_err(|e| invalid(&self.root.join("sops/machines"), e.to_string()))?;
        for m in dirs {
            if self.inventory.machines.contains_key(&m) {
                continue;
            }
            let gens = manifests(&self.root, &Owner::Machine(m.clone()))?;
            self.inventory.machines.insert(
                m.clone(),
                Machine {
                    target: None,
                    system: "x86_64-linux".into(),
                    tags: Vec::new(),
                    generators: gens.into_iter().map(|(g, _)| g).collect(),
                    deploy: None,
                },
            );
            machines.push(m);
        }
        self.stored = Some(Stored {
            error: summary(&error.to_string()),
            machines,
        });
        Ok(self)
    }

    /// Is `name` a machine read from the stored layout (its flake configuration unknown)?
    pub(crate) fn is_stored(&self, name: &str) -> bool {
        self.stored
            .as_ref()
            .is_some_and(|s| s.machines.iter().any(|m| m == name))
    }
}

/// The stored machines' generators, added to `machines` (the YAML machines' definitions): a
/// shared generator a YAML machine also uses keeps that machine's definition.
pub(crate) fn add(
    ws: &Workspace,
    machines: &mut IndexMap<String, IndexMap<String, Arc<Generator>>>,
) -> Result<(), Error> {
    let Some(stored) = &ws.stored else {
        return Ok(());
    };
    let mut shared: IndexMap<String, Arc<Generator>> = machines
        .values()
        .flat_map(|gens| gens.iter().filter(|(_, g)| g.share))
        .map(|(n, g)| (n.clone(), g.clone()))
        .collect();
    let shared_manifests = manifests(&ws.root, &Owner::Shared)?;
    for (g, man) in &shared_manifests {
        if !shared.contains_key(g) {
            let src = Owner::Shared.manifest_file(&ws.root, g);
            shared.insert(g.clone(), Arc::new(generator(g, src, man, true)?));
        }
    }
    for m in &stored.machines {
        let owner = Owner::Machine(m.clone());
        let own = manifests(&ws.root, &owner)?;
        let hosts = store::host_recipients(&ws.root, m)
            .map_err(|e| invalid(&ws.root.join("sops/machines").join(m), e.to_string()))?;
        let mut gens = IndexMap::new();
        for (g, man) in &shared_manifests {
            let depended = own.iter().any(|(_, o)| o.deps.contains_key(g));
            let deployed = store::record_key(&ws.root, &Owner::Shared.secrets_file(&ws.root, g));
            let reads = man
                .files
                .get(&deployed)
                .is_some_and(|r| r.recipients.iter().any(|x| hosts.contains(x)));
            if depended || reads {
                gens.insert(g.clone(), shared[g].clone());
            }
        }
        for (g, man) in &own {
            let src = owner.manifest_file(&ws.root, g);
            gens.insert(g.clone(), Arc::new(generator(g, src, man, false)?));
        }
        machines.insert(m.clone(), gens);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summary_is_nix_error_without_warnings() {
        let e = "/w/flake.nix: evaluating nixosConfigurations failed:\nwarning: Git tree '/w' is dirty\nerror: broken on purpose\n(use '--show-trace' to show detailed location information)";
        assert_eq!(summary(e), "error: broken on purpose");
        let e = "x failed:\nerror:\n       … while evaluating\n\n       error: undefined variable 'y'\n       at /w/flake.nix:3:5:";
        assert_eq!(
            summary(e),
            "error: undefined variable 'y' at /w/flake.nix:3:5:"
        );
    }
}
