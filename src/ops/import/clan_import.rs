//! `varsmith import clan`: a clan workspace's vars as this workspace's committed outputs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::clan::{self, Source, Tree};
use super::{Report, admins, rel};
use crate::UsageError;
use crate::keys::Identities;
use crate::plan::{Graph, Node};
use crate::secret::Files;
use crate::store::lock::{Mode, WorkspaceLock};
use crate::store::{self, Batch, Commit, KeyJsonEntry, Manifest, Owner};
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, HOST_KEY_PUB, Workspace};

/// One generator to import: its node and where clan keeps each of its files.
struct Item {
    node: usize,
    files: BTreeMap<String, Source>,
}

/// Imports the clan workspace at `dir` into `ws` (see the module docs of [`super`]).
pub(crate) fn clan(
    ws: &Workspace,
    dir: &Path,
    ids: &Identities,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let _lock = if dry_run {
        None
    } else {
        WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith import clan")?
    };
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let tree = clan::scan(dir)?;
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    let items = match_nodes(&graph, &tree, &mut report.notes)?;
    let (hosts, key_jsons) = host_keys(ws, &defs, &tree)?;
    refuse_existing(ws, &graph, &items, &key_jsons)?;
    let admins = admins(ws);
    if admins.is_empty() {
        return Err(UsageError::new("no admins in varsmith.yaml to encrypt secrets to").into());
    }
    // Everything is read and decrypted before anything is staged: a file no identity opens
    // leaves the workspace untouched.
    let mut read = Vec::with_capacity(items.len());
    for item in &items {
        let n = &graph.nodes[item.node];
        let outputs = read_item(dir, n, item, ids)?;
        let deployed = recipients(&defs, &hosts, &admins, n)?;
        report.imported.push(n.label());
        read.push((item.node, outputs, deployed));
    }
    host_key_clash(&graph, &read, &hosts)?;
    if dry_run {
        let mut written: Vec<PathBuf> = key_jsons
            .keys()
            .map(|m| store::host_key_json(&ws.root, m))
            .collect();
        for (i, _, _) in &read {
            written.extend(node_paths(&ws.root, &graph.nodes[*i]));
        }
        report.written = written.iter().map(|p| rel(&ws.root, p)).collect();
        return Ok(report);
    }
    let (batch, written) = stage(ws, &graph, &read, &admins, &key_jsons)?;
    report.written = super::finish(ws, batch, &written)?;
    store::sopsconfig::write(ws, &defs)?;
    Ok(report)
}

/// Refuses an imported `openssh` whose `ssh_host_ed25519_key.pub` would make the SSH-derived
/// key the machine's recipient ([`store::host_recipients`]) while the host decrypts with its
/// clan age key: that move is an explicit rotation, never a side effect of the import.
fn host_key_clash(
    graph: &Graph,
    read: &[(usize, Files, Vec<String>)],
    hosts: &BTreeMap<String, Vec<String>>,
) -> anyhow::Result<()> {
    for (i, outputs, _) in read {
        let n = &graph.nodes[*i];
        let Owner::Machine(m) = &n.owner else {
            continue;
        };
        if n.generator.name != HOST_KEY_GENERATOR {
            continue;
        }
        let Some(pubkey) = outputs.get(HOST_KEY_PUB) else {
            continue;
        };
        let derived =
            crate::keys::ssh_to_age::public_to_age(&String::from_utf8_lossy(pubkey.as_bytes()))?;
        let have = hosts.get(m).cloned().unwrap_or_default();
        if !have.is_empty() && !have.contains(&derived) {
            return Err(UsageError::new(format!(
                "{}: its {HOST_KEY_PUB} would make the SSH-derived key {derived} the host's recipient, but the host decrypts with its clan age key {}; import with clan's own {HOST_KEY_GENERATOR} definition (files ssh.id_ed25519, ssh.id_ed25519.pub), then rotate explicitly (`varsmith generate --regenerate -g {HOST_KEY_GENERATOR} --rotate-host-key {m}`); nothing was written",
                n.label(),
                have.join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

/// Stages every `key.json`, then each node's run (secrets, facts, manifest) in graph order,
/// recording the runs staged for the dependents' manifests.
fn stage(
    ws: &Workspace,
    graph: &Graph,
    read: &[(usize, Files, Vec<String>)],
    admins: &[String],
    key_jsons: &BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<(Batch, Vec<PathBuf>)> {
    let mut batch = Batch::new(&ws.root);
    let mut written: Vec<PathBuf> = Vec::new();
    for (m, json) in key_jsons {
        let p = store::host_key_json(&ws.root, m);
        batch.stage(&p, json, 0o644)?;
        written.push(p);
    }
    let mut runs: HashMap<usize, String> = HashMap::new();
    for (i, outputs, deployed) in read {
        let n = &graph.nodes[*i];
        let c = Commit {
            owner: &n.owner,
            generator: &n.generator,
            outputs,
            recipients: deployed,
            admin_recipients: admins,
            fingerprint: &n.fingerprint,
            deps: dep_runs(&ws.root, graph, n, &runs),
        };
        let prepared = store::prepare(&ws.root, &c, &[])?;
        runs.insert(*i, prepared.run().to_string());
        let (b, w) = prepared.into_batch();
        batch.append(b);
        written.extend(w);
    }
    Ok((batch, written))
}

/// The clan vars of every node of the workspace, in graph (dependency-first) order. A node
/// whose generator clan has but without every declared file is an error (all of them named
/// at once); clan vars no node declares, and nodes clan lacks, are notes.
fn match_nodes(graph: &Graph, tree: &Tree, notes: &mut Vec<String>) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        let key = (n.owner.clone(), n.generator.name.clone());
        let Some(files) = tree.vars.get(&key) else {
            notes.push(format!(
                "{}: not in the clan workspace; `varsmith generate` makes it",
                n.label()
            ));
            continue;
        };
        for (f, spec) in &n.generator.files {
            match files.get(f) {
                None => errors.push(format!("{}: clan has no file {f}", n.label())),
                Some(Source::Secret(p)) if !spec.secret => errors.push(format!(
                    "{}: {f} is a public file here but a secret in clan ({}); importing it would publish it",
                    n.label(),
                    p.display()
                )),
                _ => {}
            }
        }
        for f in files.keys().filter(|f| !n.generator.files.contains_key(*f)) {
            notes.push(format!(
                "{}/{f}: not declared here; not imported",
                n.label()
            ));
        }
        items.push(Item {
            node: i,
            files: files.clone(),
        });
    }
    for (owner, g) in tree.vars.keys() {
        if graph.find(owner, g).is_none() {
            notes.push(format!(
                "{owner}/{g}: no such generator on a machine of this workspace; not imported"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(UsageError::new(format!(
            "the clan vars do not match this workspace's definitions (port clan's generators unchanged; nothing was written):\n  {}",
            errors.join("\n  ")
        ))
        .into());
    }
    Ok(items)
}

/// Each machine's host recipients after the import (its clan key, else what the workspace
/// has), and the `key.json` files to write. A workspace `key.json` that differs from clan's is
/// refused.
type HostKeys = (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<u8>>);

fn host_keys(ws: &Workspace, defs: &Definitions, tree: &Tree) -> anyhow::Result<HostKeys> {
    let mut hosts = BTreeMap::new();
    let mut write = BTreeMap::new();
    for m in defs.machines.keys() {
        let have = store::host_recipients(&ws.root, m)?;
        let Some(clan) = tree.machine_keys.get(m).filter(|k| !k.is_empty()) else {
            hosts.insert(m.clone(), have);
            continue;
        };
        if !have.is_empty() && !store::rewrap::same_set(&have, clan) {
            return Err(UsageError::new(format!(
                "machine {m}: this workspace already has host recipient(s) {} but clan's sops/machines/{m}/key.json has {}; nothing was written (import into a workspace without vars for {m})",
                have.join(", "),
                clan.join(", ")
            ))
            .into());
        }
        if have.is_empty() {
            let entries: Vec<KeyJsonEntry> = clan
                .iter()
                .map(|k| KeyJsonEntry {
                    publickey: k.clone(),
                    kind: "age".into(),
                })
                .collect();
            let mut json = serde_json::to_vec_pretty(&entries)?;
            json.push(b'\n');
            write.insert(m.clone(), json);
        }
        hosts.insert(m.clone(), clan.clone());
    }
    Ok((hosts, write))
}

/// Every path a node's commit writes: its secrets files, facts and manifest.
fn node_paths(root: &Path, n: &Node) -> Vec<PathBuf> {
    let g = &n.generator;
    let mut out = Vec::new();
    if g.files.values().any(|s| s.secret && s.deploy) {
        out.push(n.owner.secrets_file(root, &g.name));
    }
    if g.files.values().any(|s| s.secret && !s.deploy) {
        out.push(n.owner.admin_secrets_file(root, &g.name));
    }
    for (f, _) in g.files.iter().filter(|(_, s)| !s.secret) {
        out.push(n.owner.facts_dir(root, &g.name).join(f));
    }
    out.push(n.owner.manifest_file(root, &g.name));
    out
}

/// Refuses when any file the import would write exists (existing varsmith data).
fn refuse_existing(
    ws: &Workspace,
    graph: &Graph,
    items: &[Item],
    key_jsons: &BTreeMap<String, Vec<u8>>,
) -> anyhow::Result<()> {
    let mut exist: Vec<String> = Vec::new();
    for it in items {
        let n = &graph.nodes[it.node];
        let mut paths = node_paths(&ws.root, n);
        paths.push(n.owner.facts_dir(&ws.root, &n.generator.name));
        exist.extend(
            paths
                .iter()
                .filter(|p| std::fs::symlink_metadata(p).is_ok())
                .map(|p| rel(&ws.root, p)),
        );
    }
    for m in key_jsons.keys() {
        let p = store::host_key_json(&ws.root, m);
        if std::fs::symlink_metadata(&p).is_ok() {
            exist.push(rel(&ws.root, &p));
        }
    }
    if exist.is_empty() {
        return Ok(());
    }
    exist.sort();
    exist.dedup();
    Err(UsageError::new(format!(
        "refusing to overwrite existing varsmith data (nothing was written):\n  {}",
        exist.join("\n  ")
    ))
    .into())
}

/// A node's outputs from clan: public values as they are, secrets decrypted (the sops binary
/// store's `data`).
fn read_item(dir: &Path, n: &Node, item: &Item, ids: &Identities) -> anyhow::Result<Files> {
    let mut out = Files::new();
    for name in n.generator.files.keys() {
        let Some(src) = item.files.get(name) else {
            continue;
        };
        let bytes = match src {
            Source::Value(p) => std::fs::read(p).map_err(|e| io_err(p, e))?.into(),
            Source::Secret(p) => {
                let raw = std::fs::read(p).map_err(|e| io_err(p, e))?;
                let origin = rel(dir, p);
                let mut vals =
                    crate::sops::decrypt_flat(&raw, crate::sops::Format::Binary, ids, &origin)?;
                vals.shift_remove("data")
                    .ok_or_else(|| UsageError::new(format!("{origin}: no data key")))?
                    .into()
            }
        };
        out.insert(name.clone(), bytes);
    }
    Ok(out)
}

fn io_err(p: &Path, e: std::io::Error) -> store::Error {
    store::Error::Io {
        path: p.to_path_buf(),
        cause: e,
    }
}

/// Recipients of a node's deployed secrets: its host(s) (every machine using a shared
/// generator) then the admins. A machine without a key is an error when it has such secrets.
fn recipients(
    defs: &Definitions,
    hosts: &BTreeMap<String, Vec<String>>,
    admins: &[String],
    n: &Node,
) -> anyhow::Result<Vec<String>> {
    let machines: Vec<&String> = match &n.owner {
        Owner::Machine(m) => vec![m],
        // clan has no home-manager users: an import never yields one.
        Owner::User(_) => Vec::new(),
        Owner::Shared => defs
            .machines
            .iter()
            .filter(|(_, g)| g.contains_key(&n.generator.name))
            .map(|(m, _)| m)
            .collect(),
    };
    let mut out: Vec<String> = Vec::new();
    for m in machines {
        let keys = hosts.get(m).cloned().unwrap_or_default();
        if keys.is_empty() && n.generator.has_deployed_secrets() {
            return Err(UsageError::new(format!(
                "{}: machine {m} has no age key (sops/machines/{m}/key.json in the clan workspace or this one); nothing was written",
                n.label()
            ))
            .into());
        }
        out.extend(keys);
    }
    out.extend(admins.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    Ok(out)
}

/// Dependency name -> run id: the run staged by this import, else the stored one.
fn dep_runs(
    root: &Path,
    graph: &Graph,
    n: &Node,
    runs: &HashMap<usize, String>,
) -> indexmap::IndexMap<String, String> {
    let mut out = indexmap::IndexMap::new();
    for &d in &n.deps {
        let dn = &graph.nodes[d];
        let run = runs.get(&d).cloned().or_else(|| {
            Manifest::read(root, &dn.owner.manifest_file(root, &dn.generator.name))
                .ok()
                .flatten()
                .map(|m| m.run)
        });
        if let Some(r) = run {
            out.insert(dn.generator.name.clone(), r);
        }
    }
    out
}
