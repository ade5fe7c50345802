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
pub(crate) struct Node {
    /// A machine, or [`Owner::Shared`] for a generator with `share: true` (one node for the
    /// whole fleet).
    pub owner: Owner,
    /// The definition; one `Arc` is shared by every machine using it.
    pub generator: Arc<Generator>,
    /// Data dependencies (node indices), in the definition's order.
    pub deps: Vec<usize>,
    /// Order-only predecessors (the machine's host key generator).
    pub after: Vec<usize>,
    /// Definition fingerprint including the dependencies' fingerprints (hex).
    pub fingerprint: String,
    /// The definition's validation, shape and script hashes, computed once per definition
    /// (one `Arc` is shared by every machine using it).
    pub(crate) hashes: Arc<DefHashes>,
}

/// The hashes a manifest records of a definition ([`Generator::validation_hash`],
/// [`Generator::shape_hash`], [`Generator::script_hash`]).
#[derive(Debug)]
pub(crate) struct DefHashes {
    pub validation: Option<String>,
    pub shape: String,
    pub script: String,
}

impl DefHashes {
    fn of(g: &Generator) -> DefHashes {
        DefHashes {
            validation: g.validation_hash(),
            shape: g.shape_hash(),
            script: g.script_hash(),
        }
    }
}

/// The hashes of each distinct definition, computed once: a YAML definition is one `Arc`
/// shared by every machine using it, while every configuration of a flake evaluates its own
/// copy of a common module's generator (equal but for [`Generator::source`]).
#[derive(Default)]
struct DefMemo {
    /// By `Arc` address: the same definition again.
    by_ptr: HashMap<usize, Hashed>,
    /// By a hash of the name and script, then compared whole: an equal definition.
    by_content: HashMap<u64, Vec<(Arc<Generator>, Hashed)>>,
}

/// A definition's own fingerprint and [`DefHashes`].
type Hashed = (Arc<str>, Arc<DefHashes>);

impl DefMemo {
    /// The own fingerprint ([`Generator::own_fingerprint`]) and [`DefHashes`] of `def`.
    fn of(&mut self, def: &Arc<Generator>) -> Hashed {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let ptr = Arc::as_ptr(def) as usize;
        if let Some((own, h)) = self.by_ptr.get(&ptr) {
            return (Arc::clone(own), Arc::clone(h));
        }
        let key = BuildHasherDefault::<DefaultHasher>::default().hash_one((&def.name, &def.script));
        let same = self.by_content.entry(key).or_default();
        let found = same
            .iter()
            .find(|(g, _)| g.same_but_source(def))
            .map(|(_, (own, h))| (Arc::clone(own), Arc::clone(h)));
        let (own, h) = found.unwrap_or_else(|| {
            let own: Arc<str> = def.own_fingerprint().into();
            let h = Arc::new(DefHashes::of(def));
            same.push((Arc::clone(def), (Arc::clone(&own), Arc::clone(&h))));
            (own, h)
        });
        self.by_ptr.insert(ptr, (Arc::clone(&own), Arc::clone(&h)));
        (own, h)
    }
}

impl Node {
    /// The node's secrets files that exist, with `true` for the admins-only one.
    pub(crate) fn existing_secrets_files(&self, root: &Path) -> Vec<(PathBuf, bool)> {
        let g = &self.generator.name;
        [
            (self.owner.secrets_file(root, g), false),
            (self.owner.admin_secrets_file(root, g), true),
        ]
        .into_iter()
        .filter(|(p, _)| crate::confined::exists(root, p))
        .collect()
    }

    /// `machine/generator` or `shared/generator`, for messages.
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.owner, self.generator.name)
    }
}

/// One pass of [`Graph::build`]: the machine or user (`None`: the fleet's shared generators)
/// and its generators in dependency-first order.
type Pass<'a> = (Option<Owner>, &'a IndexMap<String, Arc<Generator>>);

/// The whole fleet's generator graph.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Nodes in a dependency-first order.
    pub nodes: Vec<Node>,
    index: HashMap<(Owner, String), usize>,
}

impl Graph {
    /// Builds the graph from validated definitions (which are acyclic).
    pub(crate) fn build(defs: &Definitions) -> Graph {
        let mut g = Graph::default();
        let mut hashed = DefMemo::default();
        // Shared generators first, fleet-wide: as in clan, a shared generator may depend on a
        // shared one that only other machines declare.
        let mut shared: IndexMap<String, Arc<Generator>> = IndexMap::new();
        for gens in defs.machines.values().chain(defs.users.values()) {
            for (name, def) in gens.iter().filter(|(_, d)| d.share) {
                shared.entry(name.clone()).or_insert_with(|| def.clone());
            }
        }
        let names: Vec<String> = shared.keys().cloned().collect();
        let shared = crate::workspace::definitions::dependency_first(&shared, &names);
        let mut passes: Vec<Pass<'_>> = vec![(None, &shared)];
        passes.extend(
            defs.machines
                .iter()
                .map(|(m, gens)| (Some(Owner::Machine(m.clone())), gens)),
        );
        passes.extend(
            defs.users
                .iter()
                .map(|(u, gens)| (Some(Owner::User(u.clone())), gens)),
        );
        for (m, gens) in passes {
            // `gens` is dependency-first, so dependencies always exist when we get to a node
            // (shared ones were all added first).
            for (name, def) in gens {
                let owner = match (def.share, &m) {
                    (true, _) => Owner::Shared,
                    (false, Some(m)) => m.clone(),
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
                        let downer = match (dshare, &m) {
                            (false, Some(m)) => m.clone(),
                            _ => Owner::Shared,
                        };
                        g.index.get(&(downer, d.clone())).copied()
                    })
                    .collect();
                // sha256 hex of own_hex ++ the dependencies' fingerprints (hex), in declared
                // order: `builtins.hashString "sha256" (own + lib.concatStrings depFps)` in Nix.
                let mut h = Sha256::new();
                let (own, hashes) = hashed.of(def);
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
                    hashes,
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
    pub(crate) fn find(&self, owner: &Owner, gen_name: &str) -> Option<usize> {
        self.index
            .get(&(owner.clone(), gen_name.to_string()))
            .copied()
    }

    /// Data dependents of each node.
    pub(crate) fn dependents(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for &d in &n.deps {
                out[d].push(i);
            }
        }
        out
    }

    /// Nodes of the given machines and home-manager users (owner keys of
    /// [`Definitions::users`]) plus the shared nodes any of them uses, in graph order. Linear in
    /// the nodes plus the selected owners' generators (a set lookup per node, no scan of
    /// `machines` per node).
    pub(crate) fn scope_of(
        &self,
        defs: &Definitions,
        machines: &[String],
        users: &[String],
    ) -> IndexSet<usize> {
        let selected: std::collections::HashSet<&str> =
            machines.iter().map(String::as_str).collect();
        let selected_users: std::collections::HashSet<&str> =
            users.iter().map(String::as_str).collect();
        let shared_used: std::collections::HashSet<&str> = machines
            .iter()
            .filter_map(|m| defs.machines.get(m))
            .chain(users.iter().filter_map(|u| defs.users.get(u)))
            .flat_map(|gens| gens.keys().map(String::as_str))
            .collect();
        let mut set = IndexSet::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let used = match &n.owner {
                Owner::Machine(m) => selected.contains(m.as_str()),
                Owner::User(u) => selected_users.contains(u.as_str()),
                Owner::Shared => shared_used.contains(n.generator.name.as_str()),
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
pub(crate) enum Reason {
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
pub(crate) const NEVER_GENERATED: &str = "never generated";

/// The stored state of one node, read from disk without decrypting anything: `None` when its
/// outputs are complete, from one run, of the current definition and of its dependencies'
/// current runs.
pub(crate) fn status(root: &Path, graph: &Graph, i: usize) -> Option<Reason> {
    let n = &graph.nodes[i];
    let g = &n.generator;
    let mpath = n.owner.manifest_file(root, &g.name);
    let man = match Manifest::load(root, &mpath) {
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
pub(crate) const SCRIPT_CHANGED: &str =
    "script changed since generation; not applied — `--regenerate` applies it, or set `validation`";

/// The notice for outputs recorded by a varsmith that fingerprinted the whole definition.
pub(crate) const LEGACY_CHANGED: &str = "script or validation changed since generation (recorded by an older varsmith); not applied — `--regenerate` applies it";

/// As clan: stale when the files (names, `secret`, `deploy`) or the `validation` changed. A
/// manifest of an older varsmith (format 1) records neither: its file lists are compared
/// ([`secrets_status`], [`facts_status`]) and nothing else, so nothing regenerates on upgrade.
fn definition_status(n: &Node, man: &Manifest) -> Option<Reason> {
    if man.format < crate::store::MANIFEST_FORMAT {
        return None;
    }
    let h = &n.hashes;
    if man.validation != h.validation || man.shape.as_deref() != Some(&h.shape) {
        return Some(Reason::Changed);
    }
    None
}

/// What changed since generation without making node `i` stale (a script edit), as one line;
/// `None` when nothing did or it has no outputs. Never decrypts anything.
pub(crate) fn notice(root: &Path, graph: &Graph, i: usize) -> Option<&'static str> {
    let n = &graph.nodes[i];
    let man = Manifest::load(root, &n.owner.manifest_file(root, &n.generator.name))
        .ok()
        .flatten()?;
    if man.format < crate::store::MANIFEST_FORMAT {
        return (man.fingerprint != n.fingerprint).then_some(LEGACY_CHANGED);
    }
    (man.script.as_deref() != Some(&n.hashes.script)).then_some(SCRIPT_CHANGED)
}

/// Every fact present and the one of the manifest's run.
fn facts_status(root: &Path, n: &Node, man: &Manifest) -> Option<Reason> {
    let g = &n.generator;
    let facts_dir = n.owner.facts_dir(root, &g.name);
    for (fname, _) in g.files.iter().filter(|(_, s)| !s.secret) {
        match crate::store::read_file_shared(root, &facts_dir.join(fname)) {
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
        // Read (and so cached for `read_run_id` below) rather than only looked at: a regular
        // file, missing, or an error naming the symlink or non-file found.
        match crate::store::read_file_shared(root, &path) {
            Ok(Some(_)) | Err(crate::store::Error::Malformed { .. }) => {}
            Err(
                e @ (crate::store::Error::Symlink { .. }
                | crate::store::Error::NotADirectory { .. }
                | crate::store::Error::NotAFile { .. }
                | crate::store::Error::Outside { .. }),
            ) => {
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
        let dm = Manifest::load(root, &dn.owner.manifest_file(root, &dn.generator.name))
            .ok()
            .flatten();
        match dm {
            Some(dm) if Some(&dm.run) == man.deps.get(&dn.generator.name) => {}
            _ => return Some(Reason::Stale(dn.label())),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MANIFEST_FORMAT;
    use crate::workspace::generator::parse_generator;

    /// A generator `name` from its YAML definition.
    pub(crate) fn def(name: &str, yaml: &str) -> Arc<Generator> {
        let source = PathBuf::from(format!("generators/{name}.yaml"));
        Arc::new(parse_generator(name, &source, yaml).expect("valid generator"))
    }

    /// Definitions where each machine needs `gens` (already dependency-first).
    pub(crate) fn defs(machines: &[(&str, &[&Arc<Generator>])]) -> Definitions {
        let mut d = Definitions {
            generators: IndexMap::new(),
            machines: IndexMap::new(),
            users: IndexMap::new(),
        };
        for (m, gens) in machines {
            let mut per = IndexMap::new();
            for g in *gens {
                d.generators.insert(g.name.clone(), Arc::clone(g));
                per.insert(g.name.clone(), Arc::clone(g));
            }
            d.machines.insert(m.to_string(), per);
        }
        d
    }

    /// The plaintext line recording a secrets file's run (`store::manifest::RUN_KEY`).
    const RUN_KEY: &str = "varsmith_run_unencrypted";

    const FACT: &str = "files: {pub: {secret: false}}\nscript: echo x > $out/pub\n";

    fn machine(m: &str) -> Owner {
        Owner::Machine(m.into())
    }

    #[test]
    fn shared_generators_are_one_node_and_per_machine_ones_one_per_machine() {
        let ca = def("ca", &format!("share: true\n{FACT}"));
        let cert = def("cert", &format!("dependencies: [ca]\n{FACT}"));
        let g = Graph::build(&defs(&[("a", &[&ca, &cert]), ("b", &[&ca, &cert])]));
        assert_eq!(g.nodes.len(), 3);
        let shared = g.find(&Owner::Shared, "ca").expect("shared node");
        let (ca_a, ca_b) = (g.find(&machine("a"), "cert"), g.find(&machine("b"), "cert"));
        assert_eq!(g.nodes[ca_a.unwrap()].deps, vec![shared]);
        assert_eq!(g.nodes[ca_b.unwrap()].deps, vec![shared]);
        assert_eq!(
            g.find(&machine("a"), "ca"),
            None,
            "a shared node has no machine owner"
        );
        // Dependency-first: the shared node comes before everything using it.
        assert!(shared < ca_a.unwrap() && shared < ca_b.unwrap());
        assert_eq!(g.dependents()[shared].len(), 2);
        assert_eq!(g.nodes[shared].label(), "shared/ca");
        assert_eq!(g.nodes[ca_a.unwrap()].label(), "a/cert");
    }

    #[test]
    fn equal_definitions_from_two_places_hash_alike_and_others_do_not() {
        // Each flake configuration evaluates its own copy of a module's generator.
        let copy = |m: &str, script: &str| {
            let mut g = (*def(
                "g",
                &format!("files: {{pub: {{secret: false}}}}\nscript: {script}\n"),
            ))
            .clone();
            g.source = PathBuf::from(format!(
                "flake:nixosConfigurations.{m}.config.varsmith.generators.g"
            ));
            Arc::new(g)
        };
        let (a, b, c) = (
            copy("a", "echo x"),
            copy("b", "echo x"),
            copy("c", "echo y"),
        );
        let g = Graph::build(&defs(&[("a", &[&a]), ("b", &[&b]), ("c", &[&c])]));
        let node = |m: &str| &g.nodes[g.find(&machine(m), "g").expect("node")];
        assert_eq!(node("a").fingerprint, node("b").fingerprint);
        assert!(Arc::ptr_eq(&node("a").hashes, &node("b").hashes));
        assert_ne!(node("a").fingerprint, node("c").fingerprint);
        assert_ne!(node("a").hashes.script, node("c").hashes.script);
        // As computed alone.
        let alone = Graph::build(&defs(&[("c", &[&c])]));
        assert_eq!(alone.nodes[0].fingerprint, node("c").fingerprint);
        assert_eq!(*node("b").generator.source, *b.source);
    }

    #[test]
    fn a_dependency_s_definition_is_part_of_the_fingerprint() {
        let base = def("base", FACT);
        let top = def("top", &format!("dependencies: [base]\n{FACT}"));
        let g1 = Graph::build(&defs(&[("a", &[&base, &top])]));
        let base2 = def(
            "base",
            "files: {pub: {secret: false}}\nscript: echo y > $out/pub\n",
        );
        let g2 = Graph::build(&defs(&[("a", &[&base2, &top])]));
        let fp = |g: &Graph, n: &str| {
            g.nodes[g.find(&machine("a"), n).unwrap()]
                .fingerprint
                .clone()
        };
        assert_ne!(fp(&g1, "base"), fp(&g2, "base"));
        assert_ne!(
            fp(&g1, "top"),
            fp(&g2, "top"),
            "the change reaches the dependent"
        );
        // Same definitions, same fingerprints (64 hex digits of sha256).
        let g3 = Graph::build(&defs(&[("a", &[&base, &top])]));
        assert_eq!(fp(&g1, "top"), fp(&g3, "top"));
        assert_eq!(fp(&g1, "top").len(), 64);
    }

    #[test]
    fn the_host_key_comes_first_for_generators_with_deployed_secrets_only() {
        let hk = def(HOST_KEY_GENERATOR, "files: {key: {}}\nscript: x\n");
        let pw = def("pw", "files: {hash: {}}\nscript: x\n");
        let pubonly = def("pubonly", FACT);
        let g = Graph::build(&defs(&[("a", &[&hk, &pw, &pubonly])]));
        let hk_i = g.find(&machine("a"), HOST_KEY_GENERATOR).unwrap();
        assert_eq!(
            g.nodes[g.find(&machine("a"), "pw").unwrap()].after,
            vec![hk_i]
        );
        assert!(
            g.nodes[g.find(&machine("a"), "pubonly").unwrap()]
                .after
                .is_empty()
        );
        assert!(g.nodes[hk_i].after.is_empty(), "no edge to itself");
        assert!(
            g.nodes[hk_i].deps.is_empty(),
            "order-only, not a data dependency"
        );
    }

    #[test]
    fn scope_takes_a_machine_s_nodes_and_the_shared_ones_it_uses() {
        let ca = def("ca", &format!("share: true\n{FACT}"));
        let own = def("own", FACT);
        let d = defs(&[("a", &[&ca, &own]), ("b", &[&own])]);
        let g = Graph::build(&d);
        let labels = |ms: &[&str]| -> Vec<String> {
            let ms: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
            g.scope_of(&d, &ms, &[])
                .iter()
                .map(|&i| g.nodes[i].label())
                .collect()
        };
        assert_eq!(labels(&["b"]), vec!["b/own"]);
        assert_eq!(labels(&["a"]), vec!["shared/ca", "a/own"]);
        assert!(labels(&[]).is_empty());
    }

    /// A workspace root holding machine `a`'s outputs of `g` as a run `run` recorded them.
    struct Stored {
        dir: tempfile::TempDir,
    }

    impl Stored {
        fn new() -> Stored {
            Stored {
                dir: tempfile::tempdir().expect("tempdir"),
            }
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        fn write(&self, path: &Path, bytes: &[u8]) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }

        /// Writes the fact `pub` = `value` and a manifest of `g` recording `recorded` as its hash.
        fn commit(&self, g: &Generator, value: &[u8], recorded: &[u8], run: &str) -> Manifest {
            let owner = machine("a");
            self.write(&owner.facts_dir(self.root(), &g.name).join("pub"), value);
            let man = Manifest {
                run: run.into(),
                fingerprint: String::new(),
                deps: IndexMap::new(),
                facts: [("pub".to_string(), hex::encode(Sha256::digest(recorded)))].into(),
                secrets: Vec::new(),
                admin_secrets: Vec::new(),
                generated: "2026-01-01T00:00:00Z".into(),
                format: MANIFEST_FORMAT,
                validation: g.validation_hash(),
                shape: Some(g.shape_hash()),
                script: Some(g.script_hash()),
                files: IndexMap::new(),
            };
            self.save(&g.name, &man);
            man
        }

        fn save(&self, gen_name: &str, man: &Manifest) {
            let path = machine("a").manifest_file(self.root(), gen_name);
            self.write(&path, &man.to_bytes());
        }
    }

    fn one(g: &Arc<Generator>) -> Graph {
        Graph::build(&defs(&[("a", &[g])]))
    }

    #[test]
    fn status_up_to_date_missing_and_torn() {
        let g = def("g", FACT);
        let graph = one(&g);
        let s = Stored::new();
        assert_eq!(
            status(s.root(), &graph, 0),
            Some(Reason::Missing(NEVER_GENERATED.into()))
        );
        s.commit(&g, b"v1", b"v1", "r1");
        assert_eq!(status(s.root(), &graph, 0), None, "complete and current");
        assert_eq!(notice(s.root(), &graph, 0), None);
        s.commit(&g, b"edited by hand", b"v1", "r1");
        assert!(
            matches!(status(s.root(), &graph, 0), Some(Reason::Torn(w)) if w.contains("fact pub"))
        );
        std::fs::remove_file(machine("a").facts_dir(s.root(), "g").join("pub")).unwrap();
        assert_eq!(
            status(s.root(), &graph, 0),
            Some(Reason::Missing("fact pub".into()))
        );
    }

    #[test]
    fn a_script_edit_is_a_notice_and_a_validation_or_files_change_is_stale() {
        let g = def("g", FACT);
        let s = Stored::new();
        s.commit(&g, b"v", b"v", "r1");
        let edited = def(
            "g",
            "files: {pub: {secret: false}}\nscript: echo other > $out/pub\n",
        );
        let graph = one(&edited);
        assert_eq!(
            status(s.root(), &graph, 0),
            None,
            "clan: a script edit does not regenerate"
        );
        assert_eq!(notice(s.root(), &graph, 0), Some(SCRIPT_CHANGED));

        let validated = def("g", &format!("validation: {{v: 2}}\n{FACT}"));
        assert_eq!(status(s.root(), &one(&validated), 0), Some(Reason::Changed));
        let reshaped = def(
            "g",
            "files: {pub: {secret: false}, more: {secret: false}}\nscript: x\n",
        );
        assert_eq!(status(s.root(), &one(&reshaped), 0), Some(Reason::Changed));
    }

    #[test]
    fn an_older_manifest_is_never_stale_for_its_definition_only_noticed() {
        let g = def("g", FACT);
        let graph = one(&g);
        let s = Stored::new();
        let mut man = s.commit(&g, b"v", b"v", "r1");
        man.format = 1;
        (man.validation, man.shape, man.script) = (None, None, None);
        man.fingerprint = graph.nodes[0].fingerprint.clone();
        s.save("g", &man);
        assert_eq!(status(s.root(), &graph, 0), None);
        assert_eq!(
            notice(s.root(), &graph, 0),
            None,
            "same whole-definition fingerprint"
        );
        man.fingerprint = "0".repeat(64);
        s.save("g", &man);
        assert_eq!(
            status(s.root(), &graph, 0),
            None,
            "nothing regenerates on upgrade"
        );
        assert_eq!(notice(s.root(), &graph, 0), Some(LEGACY_CHANGED));
    }

    #[test]
    fn outputs_made_from_an_older_run_of_a_dependency_are_stale() {
        let base = def("base", FACT);
        let top = def("top", &format!("dependencies: [base]\n{FACT}"));
        let graph = Graph::build(&defs(&[("a", &[&base, &top])]));
        let ti = graph.find(&machine("a"), "top").unwrap();
        let s = Stored::new();
        s.commit(&base, b"b", b"b", "base-run-1");
        let mut man = s.commit(&top, b"t", b"t", "top-run-1");
        man.deps.insert("base".into(), "base-run-1".into());
        s.save("top", &man);
        assert_eq!(status(s.root(), &graph, ti), None);
        s.commit(&base, b"b2", b"b2", "base-run-2");
        assert_eq!(
            status(s.root(), &graph, ti),
            Some(Reason::Stale("a/base".into()))
        );
    }

    #[test]
    fn a_secrets_file_of_another_run_is_torn_and_a_missing_one_missing() {
        let g = def("g", "files: {key: {}}\nscript: x\n");
        let graph = one(&g);
        let s = Stored::new();
        let mut man = s.commit(&g, b"", b"", "r1");
        man.facts.clear();
        man.secrets = vec!["key".into()];
        s.save("g", &man);
        let file = machine("a").secrets_file(s.root(), "g");
        assert!(
            matches!(status(s.root(), &graph, 0), Some(Reason::Missing(w)) if w.starts_with("secrets file"))
        );
        s.write(&file, format!("key: x\n{RUN_KEY}: r0\n").as_bytes());
        assert!(
            matches!(status(s.root(), &graph, 0), Some(Reason::Torn(w)) if w.contains("run r1"))
        );
        s.write(&file, format!("key: x\n{RUN_KEY}: r1\n").as_bytes());
        assert_eq!(status(s.root(), &graph, 0), None);
        man.secrets = vec!["other".into()];
        s.save("g", &man);
        assert_eq!(
            status(s.root(), &graph, 0),
            Some(Reason::Changed),
            "declared names differ"
        );
    }
}
