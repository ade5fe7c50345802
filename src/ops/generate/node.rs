//! One node of a `generate`: its inputs from the dependencies' stored outputs, the sandboxed
//! script, encryption and staging ([`Ctx::prepare`]), then the durable commit ([`settle`]).

use std::path::PathBuf;

use indexmap::IndexMap;

use crate::keys::Identities;
use crate::plan::Graph;
use crate::run::sandbox::{self, RunSpec};
use crate::store::{self, Commit, Files, Manifest, Owner, Prepared};
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, HOST_KEY_PUBS, Workspace};

use super::Options;
use crate::error::{Failure, HasKind, Kind};

/// A store error of node `label` as a failure of its kind.
fn store_err(label: &str) -> impl Fn(store::Error) -> Failure + '_ {
    move |e| Failure::new(e.kind(), format!("{label}: {e}"))
}

/// Dependencies' outputs by dependency name.
type Inputs = IndexMap<String, Files>;

/// What every node's run reads.
pub(super) struct Ctx<'a> {
    pub ws: &'a Workspace,
    pub defs: &'a Definitions,
    pub graph: &'a Graph,
    pub opts: &'a Options,
    pub ids: &'a Identities,
}

impl Ctx<'_> {
    /// Dependencies' outputs and run ids.
    fn inputs(&self, i: usize) -> Result<(Inputs, IndexMap<String, String>), Failure> {
        let n = &self.graph.nodes[i];
        let label = n.label();
        let root = &self.ws.root;
        let mut inputs = IndexMap::new();
        let mut runs = IndexMap::new();
        for &d in &n.deps {
            let dn = &self.graph.nodes[d];
            let files =
                store::read_outputs(root, &dn.owner, &dn.generator, self.ids).map_err(|e| {
                    let msg = format!("{label}: reading dependency {}: {e}", dn.label());
                    Failure::new(e.kind(), msg)
                })?;
            let man = Manifest::read(root, &dn.owner.manifest_file(root, &dn.generator.name))
                .map_err(store_err(&label))?
                .ok_or_else(|| format!("{label}: dependency {} has no outputs", dn.label()))?;
            runs.insert(dn.generator.name.clone(), man.run);
            inputs.insert(dn.generator.name.clone(), files);
        }
        Ok((inputs, runs))
    }

    /// Recipients of the deployed and the admins-only secrets file.
    fn recipients(&self, i: usize, outputs: &Files) -> Result<(Vec<String>, Vec<String>), Failure> {
        let n = &self.graph.nodes[i];
        let g = &n.generator;
        let label = n.label();
        let deployed = if g.name == HOST_KEY_GENERATOR {
            // The new host key's own recipient: the host decrypts with the key it gets.
            let mut r: Vec<String> = Vec::new();
            if let Some(pubkey) = HOST_KEY_PUBS.iter().find_map(|f| outputs.get(*f))
                && let Ok(a) =
                    crate::keys::ssh_to_age::public_to_age(&String::from_utf8_lossy(pubkey))
            {
                r.push(a);
            }
            r.extend(self.ws.inventory.admins.values().cloned());
            r
        } else {
            store::expected_recipients(self.ws, self.defs, &n.owner, &g.name, false)
                .map_err(store_err(&label))?
        };
        let admins = store::expected_recipients(self.ws, self.defs, &n.owner, &g.name, true)
            .map_err(store_err(&label))?;
        if admins.is_empty() && g.files.values().any(|f| f.secret) {
            return Err(Failure::new(
                Kind::Usage,
                format!(
                    "{label}: no admins in varsmith.yaml to encrypt secrets to (varsmith admin add NAME age1…)"
                ),
            ));
        }
        Ok((deployed, admins))
    }

    /// Runs node `i`'s script and stages its outputs (nothing visible yet).
    pub(super) fn prepare(&self, i: usize, answers: Option<&Files>) -> Result<Prepared, Failure> {
        let n = &self.graph.nodes[i];
        let g = &n.generator;
        let label = n.label();
        let (inputs, dep_runs) = self.inputs(i)?;
        let empty = Files::new();
        let prompts = answers.unwrap_or(&empty);
        let spec = RunSpec {
            generator: g,
            machine: n.owner.machine(),
            inputs: &inputs,
            prompts,
            sandbox: !self.opts.no_sandbox,
            limits: self.opts.limits,
        };
        // Persisted prompts are in $out before the script runs (src/run/sandbox.rs), so the
        // script's own value of the file wins, as in clan.
        let outputs = sandbox::run(&spec).map_err(|e| Failure::new(e.kind(), e.to_string()))?;
        let (recipients, admin_recipients) = self.recipients(i, &outputs)?;
        let mut extra = Vec::new();
        if g.name == HOST_KEY_GENERATOR
            && let Owner::Machine(m) = &n.owner
            && let Some(pubkey) = HOST_KEY_PUBS.iter().find_map(|f| outputs.get(*f))
        {
            let json = host_key_json(pubkey)
                .map_err(|e| Failure::new(e.kind(), format!("{label}: {e}")))?;
            extra.push((store::host_key_json(&self.ws.root, m), json));
        }
        let c = Commit {
            owner: &n.owner,
            generator: g,
            outputs: &outputs,
            recipients: &recipients,
            admin_recipients: &admin_recipients,
            fingerprint: &n.fingerprint,
            deps: dep_runs,
        };
        crate::process::fault::point("generate.prepared");
        store::prepare(&self.ws.root, &c, &extra).map_err(store_err(&label))
    }
}

/// Makes a prepared node durable and visible; returns the paths written.
pub(super) fn settle(p: Prepared) -> Result<Vec<PathBuf>, Failure> {
    p.finish()
        .map(|(_, paths)| paths)
        .map_err(|e| Failure::new(e.kind(), e.to_string()))
}

/// `key.json` for a host key's public half.
fn host_key_json(pubkey: &[u8]) -> Result<Vec<u8>, crate::keys::Error> {
    let r = crate::keys::ssh_to_age::public_to_age(&String::from_utf8_lossy(pubkey))?;
    let entry = [store::KeyJsonEntry {
        publickey: r,
        kind: "age".into(),
    }];
    let mut json = serde_json::to_vec_pretty(&entry).unwrap_or_default();
    json.push(b'\n');
    Ok(json)
}
