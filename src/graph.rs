//! The DAG over (owner, generator): shared generators are one node for the whole fleet. Edges
//! are data dependencies (outputs flow through `$in`, reruns propagate) and order-only edges
//! (a machine's host key is made before its other secrets, which are encrypted to it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexSet;
use sha2::{Digest, Sha256};

use crate::store::{Manifest, Owner, read_run_id};
use crate::workspace::{Definitions, Generator, HOST_KEY_GENERATOR};

/// One (owner, generator) pair.
#[derive(Debug, Clone)]
pub struct Node {
    /// Whose outputs.
    pub owner: Owner,
    /// The definition.
    pub generator: Arc<Generator>,
    /// Data dependencies (node indices), in the definition's order.
    pub deps: Vec<usize>,
    /// Order-only predecessors (the machine's host key generator).
    pub after: Vec<usize>,
    /// Definition fingerprint including the dependencies' fingerprints (hex).
    pub fingerprint: String,
}

impl Node {
    /// The node's secrets files that exist, with `true` for the admins-only one.
    pub fn existing_secrets_files(&self, root: &Path) -> Vec<(PathBuf, bool)> {
        let g = &self.generator.name;
        [
            (self.owner.secrets_file(root, g), false),
            (self.owner.admin_secrets_file(root, g), true),
        ]
        .into_iter()
        .filter(|(p, _)| p.exists())
        .collect()
    }

    /// `machine/generator` or `shared/generator`, for messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.owner, self.generator.name)
    }
}

/// The whole fleet's generator graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Nodes in a dependency-first order.
    pub nodes: Vec<Node>,
    index: HashMap<(Owner, String), usize>,
}

impl Graph {
    /// Builds the graph from validated definitions (which are acyclic).
    pub fn build(defs: &Definitions) -> Graph {
        let mut g = Graph::default();
        for (m, gens) in &defs.machines {
            // `gens` is dependency-first, so dependencies always exist when we get to a node.
            for (name, def) in gens {
                let owner = if def.share {
                    Owner::Shared
                } else {
                    Owner::Machine(m.clone())
                };
                if g.index.contains_key(&(owner.clone(), name.clone())) {
                    continue;
                }
                let deps: Vec<usize> = def
                    .dependencies
                    .iter()
                    .filter_map(|d| {
                        let dshare = gens.get(d).map(|x| x.share).unwrap_or(false);
                        let downer = if dshare {
                            Owner::Shared
                        } else {
                            Owner::Machine(m.clone())
                        };
                        g.index.get(&(downer, d.clone())).copied()
                    })
                    .collect();
                // sha256 hex of own_hex ++ the dependencies' fingerprints (hex), in declared
                // order: `builtins.hashString "sha256" (own + lib.concatStrings depFps)` in Nix.
                let mut h = Sha256::new();
                h.update(def.own_fingerprint().as_bytes());
                for &d in &deps {
                    h.update(g.nodes[d].fingerprint.as_bytes());
                }
                let fingerprint = hex::encode(h.finalize());
                let idx = g.nodes.len();
                g.nodes.push(Node {
                    owner: owner.clone(),
                    generator: def.clone(),
                    deps,
                    after: Vec::new(),
                    fingerprint,
                });
                g.index.insert((owner, name.clone()), idx);
            }
        }
        // Order-only edges: the host key first, then everything of that machine with secrets
        // for the host (and shared ones with deployed secrets, for every machine using them).
        for (m, gens) in &defs.machines {
            let Some(&hk) = g
                .index
                .get(&(Owner::Machine(m.clone()), HOST_KEY_GENERATOR.to_string()))
            else {
                continue;
            };
            for (name, def) in gens {
                if name == HOST_KEY_GENERATOR || !def.has_deployed_secrets() {
                    continue;
                }
                let owner = if def.share {
                    Owner::Shared
                } else {
                    Owner::Machine(m.clone())
                };
                if let Some(&i) = g.index.get(&(owner, name.clone()))
                    && !g.nodes[i].deps.contains(&hk)
                    && !g.nodes[i].after.contains(&hk)
                {
                    g.nodes[i].after.push(hk);
                }
            }
        }
        g
    }

    /// The node for (owner, generator), if any.
    pub fn find(&self, owner: &Owner, gen_name: &str) -> Option<usize> {
        self.index
            .get(&(owner.clone(), gen_name.to_string()))
            .copied()
    }

    /// Data dependents of each node.
    pub fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &d in &n.deps {
                out[d].push(i);
            }
        }
        out
    }

    /// Nodes of the given machines plus the shared nodes they use, in graph order.
    pub fn scope(&self, defs: &Definitions, machines: &[String]) -> IndexSet<usize> {
        let mut set = IndexSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let used = match &n.owner {
                Owner::Machine(m) => machines.contains(m),
                Owner::Shared => machines.iter().any(|m| {
                    defs.machines
                        .get(m)
                        .is_some_and(|g| g.contains_key(&n.generator.name))
                }),
            };
            if used {
                set.insert(i);
            }
        }
        set
    }
}

/// Why a node is (or would be) run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Never generated, or some output file is missing.
    Missing(String),
    /// The definition (script, validation, files, a dependency's definition) changed.
    Changed,
    /// Its stored files come from different runs (a crash between writes, or a hand edit).
    Torn(String),
    /// A dependency was regenerated after it.
    Stale(String),
    /// Asked for with `--regenerate`.
    Forced,
    /// A dependency runs in this plan.
    DependencyRuns(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Missing(what) => write!(f, "missing: {what}"),
            Reason::Changed => write!(f, "definition changed"),
            Reason::Torn(what) => write!(f, "torn: {what}"),
            Reason::Stale(dep) => write!(f, "older than its dependency {dep}"),
            Reason::Forced => write!(f, "--regenerate"),
            Reason::DependencyRuns(dep) => write!(f, "dependency {dep} runs"),
        }
    }
}

/// The detail of [`Reason::Missing`] for a generator that has no outputs at all.
pub const NEVER_GENERATED: &str = "never generated";

/// The stored state of one node, read from disk without decrypting anything.
pub fn status(root: &Path, graph: &Graph, i: usize) -> Option<Reason> {
    let n = &graph.nodes[i];
    let g = &n.generator;
    let mpath = n.owner.manifest_file(root, &g.name);
    let man = match Manifest::read(&mpath) {
        Ok(Some(m)) => m,
        Ok(None) => return Some(Reason::Missing(NEVER_GENERATED.into())),
        Err(e) => return Some(Reason::Torn(e.to_string())),
    };
    if man.fingerprint != n.fingerprint {
        return Some(Reason::Changed);
    }
    let facts_dir = n.owner.facts_dir(root, &g.name);
    let mut deployed = Vec::new();
    let mut admin = Vec::new();
    for (fname, spec) in &g.files {
        if spec.secret {
            if spec.deploy {
                deployed.push(fname.clone());
            } else {
                admin.push(fname.clone());
            }
            continue;
        }
        let p = facts_dir.join(fname);
        match std::fs::read(&p) {
            Ok(bytes) => {
                let h = hex::encode(Sha256::digest(&bytes));
                if man.facts.get(fname) != Some(&h) {
                    return Some(Reason::Torn(format!(
                        "fact {fname} is not the one of run {}",
                        man.run
                    )));
                }
            }
            Err(_) => return Some(Reason::Missing(format!("fact {fname}"))),
        }
    }
    for (names, recorded, path) in [
        (&deployed, &man.secrets, n.owner.secrets_file(root, &g.name)),
        (
            &admin,
            &man.admin_secrets,
            n.owner.admin_secrets_file(root, &g.name),
        ),
    ] {
        if names.is_empty() {
            continue;
        }
        let mut a = names.clone();
        let mut b = recorded.clone();
        a.sort();
        b.sort();
        if a != b {
            return Some(Reason::Changed);
        }
        if !path.exists() {
            return Some(Reason::Missing(format!(
                "secrets file {}",
                path.strip_prefix(root).unwrap_or(&path).display()
            )));
        }
        if read_run_id(&path).as_deref() != Some(man.run.as_str()) {
            return Some(Reason::Torn(format!(
                "{} is not the one of run {}",
                path.strip_prefix(root).unwrap_or(&path).display(),
                man.run
            )));
        }
    }
    for &d in &n.deps {
        let dn = &graph.nodes[d];
        let dm = Manifest::read(&dn.owner.manifest_file(root, &dn.generator.name))
            .ok()
            .flatten();
        let recorded = man.deps.get(&dn.generator.name);
        match dm {
            Some(dm) if Some(&dm.run) == recorded => {}
            _ => return Some(Reason::Stale(dn.label())),
        }
    }
    None
}
