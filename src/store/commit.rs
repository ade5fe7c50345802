//! Committing one generator run as a unit: secrets files, then facts, then the manifest. Each
//! write is atomic; the manifest, written last, names the run, so a crash between writes
//! leaves files whose run ids disagree, which `check` reports as torn and `generate` repairs.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use sha2::{Digest, Sha256};

use super::atomic::{Batch, FILE_MODE};
use super::manifest::{Manifest, RUN_KEY};
use super::{Error, Owner};
use crate::workspace::Generator;

pub(crate) use crate::secret::Files;

/// A new random run id (128 bits, hex).
pub(super) fn new_run_id() -> String {
    let mut b = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    hex::encode(b)
}

/// Now as RFC 3339 (UTC, seconds).
pub(super) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Everything needed to commit one run.
pub(crate) struct Commit<'a> {
    /// Whose outputs.
    pub owner: &'a Owner,
    /// The definition.
    pub generator: &'a Generator,
    /// The outputs (every declared file).
    pub outputs: &'a Files,
    /// Recipients of the deployed secrets file (host(s) + admins).
    pub recipients: &'a [String],
    /// Recipients of the admins-only file.
    pub admin_recipients: &'a [String],
    /// The definition fingerprint.
    pub fingerprint: &'a str,
    /// Dependency name -> run id of the outputs used as inputs.
    pub deps: IndexMap<String, String>,
}

/// Writes a sops secrets file for `names` (plus the run key), or removes a stale one when the
/// generator has no such secrets.
fn write_secrets(
    path: &Path,
    names: &[&String],
    outputs: &Files,
    run: &str,
    recipients: &[String],
    batch: &mut Batch,
    written: &mut Vec<PathBuf>,
) -> Result<Option<super::manifest::FileRecord>, Error> {
    if names.is_empty() {
        if batch.remove(path)? {
            written.push(path.to_path_buf());
        }
        return Ok(None);
    }
    let mut entries: Vec<(String, &[u8])> = Vec::with_capacity(names.len() + 1);
    for n in names {
        let v = outputs.get(n.as_str()).ok_or_else(|| Error::Malformed {
            path: path.to_path_buf(),
            msg: format!("the outputs lack {n}"),
        })?;
        entries.push(((*n).clone(), v.as_bytes()));
    }
    entries.push((RUN_KEY.to_string(), run.as_bytes()));
    let bytes = crate::sops::encrypt_flat_yaml(&entries, recipients)?;
    let record = super::manifest::FileRecord::of(&bytes, &path.display().to_string())?;
    batch.stage(path, &bytes, FILE_MODE)?;
    written.push(path.to_path_buf());
    Ok(Some(record))
}

/// A run whose files are written to temp files, ready to be renamed into place.
pub(crate) struct Prepared {
    batch: Batch,
    manifest: Manifest,
    written: Vec<PathBuf>,
}

impl Prepared {
    /// The run id the staged files and manifest carry.
    pub(crate) fn run(&self) -> &str {
        &self.manifest.run
    }

    /// The staged batch and the paths it writes, to be committed together with other runs
    /// (`varsmith import`); nothing is visible until the batch is committed.
    pub(crate) fn into_batch(self) -> (Batch, Vec<PathBuf>) {
        (self.batch, self.written)
    }

    /// Flushes and renames everything into place (secrets, facts, extra files, manifest last
    /// when staged by [`prepare`]); returns the manifest and every path written or removed.
    /// Refused once SIGINT/SIGTERM arrived; a commit in flight delays the exit until done.
    pub(crate) fn finish(self) -> Result<(Manifest, Vec<PathBuf>), Error> {
        let Some(_gate) = crate::process::signals::commit_gate() else {
            return Err(Error::Interrupted);
        };
        self.batch.commit()?;
        Ok((self.manifest, self.written))
    }
}

/// Commits one run; returns the manifest and every path written or removed.
pub(crate) fn commit(root: &Path, c: &Commit<'_>) -> Result<(Manifest, Vec<PathBuf>), Error> {
    prepare(root, c, &[])?.finish()
}

/// Stages the run's facts (and the removal of facts no longer declared); returns their hashes.
fn stage_facts(
    root: &Path,
    c: &Commit<'_>,
    batch: &mut Batch,
    written: &mut Vec<PathBuf>,
) -> Result<IndexMap<String, String>, Error> {
    let g = c.generator;
    let facts_dir = c.owner.facts_dir(root, &g.name);
    let mut facts = IndexMap::new();
    for (name, _) in g.files.iter().filter(|(_, s)| !s.secret) {
        let bytes = c.outputs.get(name).ok_or_else(|| lacks(root, c, name))?;
        let p = facts_dir.join(name);
        batch.stage(&p, bytes, FILE_MODE)?;
        written.push(p);
        facts.insert(name.clone(), hex::encode(Sha256::digest(bytes.as_bytes())));
    }
    if let Ok(dir) = super::fs::Dir::open(root, &facts_dir, false) {
        for name in dir.names()? {
            if !facts.contains_key(name.to_string_lossy().as_ref()) {
                let p = facts_dir.join(&name);
                if batch.remove(&p)? {
                    written.push(p);
                }
            }
        }
    }
    Ok(facts)
}

fn lacks(root: &Path, c: &Commit<'_>, name: &str) -> Error {
    Error::Malformed {
        path: c.owner.base(root),
        msg: format!("{}/{}: the outputs lack {name}", c.owner, c.generator.name),
    }
}

/// Writes one run's files to temp files (secrets, facts, then `extra` files, then the manifest,
/// in that rename order); nothing is visible until [`Prepared::finish`].
pub(crate) fn prepare(
    root: &Path,
    c: &Commit<'_>,
    extra: &[(PathBuf, Vec<u8>)],
) -> Result<Prepared, Error> {
    let g = c.generator;
    let run = new_run_id();
    let mut written = Vec::new();
    let mut batch = Batch::new(root);
    let deployed: Vec<&String> = g
        .files
        .iter()
        .filter(|(_, s)| s.secret && s.deploy)
        .map(|(n, _)| n)
        .collect();
    let admin: Vec<&String> = g
        .files
        .iter()
        .filter(|(_, s)| s.secret && !s.deploy)
        .map(|(n, _)| n)
        .collect();
    let mut files = IndexMap::new();
    let secrets_path = c.owner.secrets_file(root, &g.name);
    if let Some(r) = write_secrets(
        &secrets_path,
        &deployed,
        c.outputs,
        &run,
        c.recipients,
        &mut batch,
        &mut written,
    )? {
        files.insert(super::manifest::record_key(root, &secrets_path), r);
    }
    let admin_path = c.owner.admin_secrets_file(root, &g.name);
    if let Some(r) = write_secrets(
        &admin_path,
        &admin,
        c.outputs,
        &run,
        c.admin_recipients,
        &mut batch,
        &mut written,
    )? {
        files.insert(super::manifest::record_key(root, &admin_path), r);
    }
    let facts = stage_facts(root, c, &mut batch, &mut written)?;
    let manifest = Manifest {
        run,
        fingerprint: c.fingerprint.to_string(),
        deps: c.deps.clone(),
        facts,
        secrets: deployed.into_iter().cloned().collect(),
        admin_secrets: admin.into_iter().cloned().collect(),
        generated: now_rfc3339(),
        format: super::manifest::MANIFEST_FORMAT,
        validation: g.validation_hash(),
        shape: Some(g.shape_hash()),
        script: Some(g.script_hash()),
        files,
    };
    for (p, bytes) in extra {
        batch.stage(p, bytes, FILE_MODE)?;
        written.push(p.clone());
    }
    // Secrets, then facts, then the manifest: the manifest names the run, so a crash between
    // renames leaves a generator that `check` reports as torn.
    let mpath = c.owner.manifest_file(root, &g.name);
    batch.stage(&mpath, &manifest.to_bytes(), FILE_MODE)?;
    written.push(mpath);
    Ok(Prepared {
        batch,
        manifest,
        written,
    })
}

fn missing(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        cause: std::io::ErrorKind::NotFound.into(),
    }
}

/// Reads a node's stored outputs: facts from disk, secrets decrypted with `ids`.
pub(crate) fn read_outputs(
    root: &Path,
    owner: &Owner,
    g: &Generator,
    ids: &crate::keys::Identities,
) -> Result<Files, Error> {
    let mut out = IndexMap::new();
    let facts_dir = owner.facts_dir(root, &g.name);
    let mut need_deployed = false;
    let mut need_admin = false;
    for (name, spec) in &g.files {
        if spec.secret {
            if spec.deploy {
                need_deployed = true;
            } else {
                need_admin = true;
            }
            continue;
        }
        let p = facts_dir.join(name);
        let b = super::read_file(root, &p)?.ok_or_else(|| missing(&p))?;
        out.insert(name.clone(), crate::secret::SecretBytes::new(b));
    }
    for (need, path) in [
        (need_deployed, owner.secrets_file(root, &g.name)),
        (need_admin, owner.admin_secrets_file(root, &g.name)),
    ] {
        if !need {
            continue;
        }
        let bytes = super::read_file(root, &path)?.ok_or_else(|| missing(&path))?;
        let origin = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let vals = crate::sops::decrypt_flat(&bytes, crate::sops::Format::Yaml, ids, &origin)?;
        for (k, v) in vals {
            if g.files.get(&k).is_some_and(|s| s.secret) {
                out.insert(k, v.into());
            }
        }
    }
    for name in g.files.keys() {
        if !out.contains_key(name) {
            return Err(Error::Malformed {
                path: owner.base(root),
                msg: format!("{owner}/{}: stored outputs lack {name}", g.name),
            });
        }
    }
    Ok(out)
}
