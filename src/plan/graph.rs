//! The DAG over (owner, generator): shared generators are one node for the whole fleet. Edges
//! are data dependencies (outputs flow through `$in`, reruns propagate) and order-only edges
//! (a machine's host key is made before its other secrets, which are encrypted to it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};
use sha2::{Digest, Sha256};

use crate::store::{Manifest, read_run_id};
use crate::workspace::{Definitions, Generator, HOST_KEY_GENERATOR, Owner};

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

/// One pass of [`Graph::build`]: the machine (`None`: the fleet's shared generators) and its
/// generators in dependency-first order.
type Pass<'a> = (Option<&'a String>, &'a IndexMap<String, Arc<Generator>>);

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
        let mut own_fp: HashMap<usize, String> = HashMap::new();
        // Shared generators first, fleet-wide: as in clan, a shared generator may depend on a
        // shared one that only other machines declare.
        let mut shared: IndexMap<String, Arc<Generator>> = IndexMap::new();
        for gens in defs.machines.values() {
            for (name, def) in gens.iter().filter(|(_, d)| d.share) {
                shared.entry(name.clone()).or_insert_with(|| def.clone());
            }
        }
        let names: Vec<String> = shared.keys().cloned().collect();
        let shared = crate::workspace::definitions::dependency_first(&shared, &names);
        let mut passes: Vec<Pass<'_>> = vec![(None, &shared)];
        passes.extend(defs.machines.iter().map(|(m, gens)| (Some(m), gens)));
        for (m, gens) in passes {
            // `gens` is dependency-first, so dependencies always exist when we get to a node
            // (shared ones were all added first).
            for (name, def) in gens {
                let owner = match (def.share, m) {
                    (true, _) => Owner::Shared,
                    (false, Some(m)) => Owner::Machine(m.clone()),
                    (false, None) => continue,
                };
                if g.index.contains_key(&(owner.clone(), name.clone())) {
                    continue;
                }
                let deps: Vec<usize> = def
                    .dependencies
                    .iter()
                    .filter_map(|d| {
                        // Not declared here: a shared generator of another machine (clan).
                        let dshare = gens.get(d).map(|x| x.share).unwrap_or(true);
                        let downer = match (dshare, m) {
                            (false, Some(m)) => Owner::Machine(m.clone()),
                            _ => Owner::Shared,
                        };
                        g.index.get(&(downer, d.clone())).copied()
                    })
                    .collect();
                // sha256 hex of own_hex ++ the dependencies' fingerprints (hex), in declared
                // order: `builtins.hashString "sha256" (own + lib.concatStrings depFps)` in Nix.
                let mut h = Sha256::new();
                // One definition (Arc) is shared by every machine using it: hash it once.
                let own = own_fp
                    .entry(Arc::as_ptr(def) as usize)
                    .or_insert_with(|| def.own_fingerprint());
                h.update(own.as_bytes());
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

/// The stored state of one node, read from disk without decrypting anything: `None` when its
/// outputs are complete, from one run, of the current definition and of its dependencies'
/// current runs.
pub fn status(root: &Path, graph: &Graph, i: usize) -> Option<Reason> {
    let n = &graph.nodes[i];
    let g = &n.generator;
    let mpath = n.owner.manifest_file(root, &g.name);
    let man = match Manifest::read(root, &mpath) {
        Ok(Some(m)) => m,
        Ok(None) => return Some(Reason::Missing(NEVER_GENERATED.into())),
        Err(e) => return Some(Reason::Torn(e.to_string())),
    };
    definition_status(n, &man)
        .or_else(|| facts_status(root, n, &man))
        .or_else(|| secrets_status(root, n, &man))
        .or_else(|| deps_status(root, graph, n, &man))
}

/// The notice `check` and `generate --plan` show for a script edited since generation.
pub const SCRIPT_CHANGED: &str =
    "script changed since generation; not applied — `--regenerate` applies it, or set `validation`";

/// The notice for outputs recorded by a varsmith that fingerprinted the whole definition.
pub const LEGACY_CHANGED: &str = "script or validation changed since generation (recorded by an older varsmith); not applied — `--regenerate` applies it";

/// As clan: stale when the files (names, `secret`, `deploy`) or the `validation` changed. A
/// manifest of an older varsmith (format 1) records neither: its file lists are compared
/// ([`secrets_status`], [`facts_status`]) and nothing else, so nothing regenerates on upgrade.
fn definition_status(n: &Node, man: &Manifest) -> Option<Reason> {
    let g = &n.generator;
    if man.format < crate::store::MANIFEST_FORMAT {
        return None;
    }
    if man.validation != g.validation_hash() || man.shape.as_deref() != Some(&g.shape_hash()) {
        return Some(Reason::Changed);
    }
    None
}

/// What changed since generation without making node `i` stale (a script edit), as one line;
/// `None` when nothing did or it has no outputs. Never decrypts anything.
pub fn notice(root: &Path, graph: &Graph, i: usize) -> Option<&'static str> {
    let n = &graph.nodes[i];
    let man = Manifest::read(root, &n.owner.manifest_file(root, &n.generator.name))
        .ok()
        .flatten()?;
    if man.format < crate::store::MANIFEST_FORMAT {
        return (man.fingerprint != n.fingerprint).then_some(LEGACY_CHANGED);
    }
    (man.script.as_deref() != Some(&n.generator.script_hash())).then_some(SCRIPT_CHANGED)
}

/// Every fact present and the one of the manifest's run.
fn facts_status(root: &Path, n: &Node, man: &Manifest) -> Option<Reason> {
    let g = &n.generator;
    let facts_dir = n.owner.facts_dir(root, &g.name);
    for (fname, _) in g.files.iter().filter(|(_, s)| !s.secret) {
        match crate::store::read_file(root, &facts_dir.join(fname)) {
            Ok(Some(bytes)) => {
                let h = hex::encode(Sha256::digest(&bytes));
                if man.facts.get(fname) != Some(&h) {
                    return Some(Reason::Torn(format!(
                        "fact {fname} is not the one of run {}",
                        man.run
                    )));
                }
            }
            Ok(None) => return Some(Reason::Missing(format!("fact {fname}"))),
            Err(e) => return Some(Reason::Torn(e.to_string())),
        }
    }
    None
}

/// Both secrets files (deployed, admins-only) present, holding the declared names, and of the
/// manifest's run.
fn secrets_status(root: &Path, n: &Node, man: &Manifest) -> Option<Reason> {
    let g = &n.generator;
    // An older varsmith stored a persisted prompt's answer admins-only; it stays valid where
    // it is until the generator is regenerated.
    let legacy = man.format < crate::store::MANIFEST_FORMAT;
    let moved = |f: &str| legacy && g.prompts.get(f).is_some_and(|p| p.persist);
    let names = |deploy: bool| -> Vec<String> {
        let mut v: Vec<String> = g
            .files
            .iter()
            .filter(|(f, s)| s.secret && s.deploy == deploy && !moved(f))
            .map(|(f, _)| f.clone())
            .collect();
        v.sort();
        v
    };
    for (names, recorded, path) in [
        (
            names(true),
            &man.secrets,
            n.owner.secrets_file(root, &g.name),
        ),
        (
            names(false),
            &man.admin_secrets,
            n.owner.admin_secrets_file(root, &g.name),
        ),
    ] {
        if names.is_empty() {
            continue;
        }
        let mut b: Vec<String> = recorded.iter().filter(|f| !moved(f)).cloned().collect();
        b.sort();
        if names != b {
            return Some(Reason::Changed);
        }
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        match crate::store::fs::parent_of(root, &path, false)
            .and_then(|(d, name)| d.expect_file_or_missing(&name))
        {
            Ok(crate::store::fs::Entry::File) => {}
            Err(e) if !matches!(e, crate::store::Error::Io { .. }) => {
                return Some(Reason::Torn(e.to_string()));
            }
            _ => return Some(Reason::Missing(format!("secrets file {shown}"))),
        }
        if read_run_id(root, &path).as_deref() != Some(man.run.as_str()) {
            return Some(Reason::Torn(format!(
                "{shown} is not the one of run {}",
                man.run
            )));
        }
    }
    None
}

/// Every dependency's current run is the one these outputs were made from.
fn deps_status(root: &Path, graph: &Graph, n: &Node, man: &Manifest) -> Option<Reason> {
    for &d in &n.deps {
        let dn = &graph.nodes[d];
        let dm = Manifest::read(root, &dn.owner.manifest_file(root, &dn.generator.name))
            .ok()
            .flatten();
        match dm {
            Some(dm) if Some(&dm.run) == man.deps.get(&dn.generator.name) => {}
            _ => return Some(Reason::Stale(dn.label())),
        }
    }
    None
}
