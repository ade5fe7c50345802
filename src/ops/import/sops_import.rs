//! `varsmith import sops FILE… [--machine M | --shared]`: hand-kept sops files (a sops-nix
//! `secrets/common.yaml`) adopted as declared external secrets
//! ([`crate::store::external`]): copied to `sops/machines/<M>/secrets/<name>.yaml` or
//! `sops/shared/secrets/<name>.yaml`, re-wrapped for that path's recipients (the host, or
//! every machine, and the admins; values, `lastmodified` and MAC unchanged, as `sops
//! updatekeys`), and declared in `sops/external.json`.

use std::path::{Path, PathBuf};

use super::{Report, admins, rel};
use crate::UsageError;
use crate::keys::Identities;
use crate::plan::Graph;
use crate::store::external::{self, External};
use crate::store::lock::{Mode, WorkspaceLock};
use crate::store::{self, Batch, Owner};
use crate::workspace::Workspace;

/// Adopts `files` for `owner` (see the module docs).
pub(crate) fn sops_files(
    ws: &Workspace,
    files: &[PathBuf],
    owner: &Owner,
    ids: &Identities,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let _lock = if dry_run {
        None
    } else {
        WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith import sops")?
    };
    let defs = ws.definitions()?;
    if let Owner::Machine(m) = owner
        && !defs.machines.contains_key(m)
    {
        return Err(UsageError::new(ws.inventory.unknown_machine(m)).into());
    }
    let graph = Graph::build(&defs);
    let mut decl = External::read(&ws.root)?;
    let mut keyless = Vec::new();
    let want = recipients(ws, &defs, owner, &mut keyless)?;
    let mut report = Report {
        dry_run,
        ..Report::default()
    };
    for m in keyless {
        report.notes.push(format!(
            "machine {m} has no host key yet; `varsmith rekey` adds it once it has one"
        ));
    }
    let mut batch = Batch::new(&ws.root);
    let mut written = Vec::new();
    for f in files {
        let (stem, dest) = destination(ws, &graph, &decl, owner, f)?;
        let bytes = adopt(f, &want, ids)?;
        if !dry_run {
            batch.stage(&dest, &bytes, 0o644)?;
        }
        decl.add(owner, &stem);
        report
            .imported
            .push(format!("{} -> {}", f.display(), rel(&ws.root, &dest)));
        written.push(dest);
    }
    let decl_path = ws.root.join(external::FILE);
    written.push(decl_path.clone());
    if dry_run {
        report.written = written.iter().map(|p| rel(&ws.root, p)).collect();
        return Ok(report);
    }
    batch.stage(&decl_path, &decl.to_bytes(), 0o644)?;
    report.written = super::finish(ws, batch, &written)?;
    Ok(report)
}

/// Where `f` goes, refusing a name that is not a safe file name, that a generator produces,
/// that is already declared, or whose destination exists.
fn destination(
    ws: &Workspace,
    graph: &Graph,
    decl: &External,
    owner: &Owner,
    f: &Path,
) -> anyhow::Result<(String, PathBuf)> {
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(stem) = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
    else {
        return Err(UsageError::new(format!(
            "{}: only YAML sops files (.yaml, .yml) can be imported",
            f.display()
        ))
        .into());
    };
    crate::workspace::names::check_component(stem)
        .map_err(|e| UsageError::new(format!("{}: {e}", f.display())))?;
    let dest = owner.secrets_file(&ws.root, stem);
    let taken = if graph.find(owner, stem).is_some() {
        Some("a generator of that name produces it")
    } else if decl.declares(owner, stem) {
        Some("already imported")
    } else if std::fs::symlink_metadata(&dest).is_ok() {
        Some("the file exists")
    } else {
        None
    };
    if let Some(why) = taken {
        return Err(UsageError::new(format!(
            "{}: refusing to overwrite {} ({why}); nothing was written",
            f.display(),
            rel(&ws.root, &dest)
        ))
        .into());
    }
    Ok((stem.to_string(), dest))
}

/// The file's bytes re-wrapped for `want` after verifying every value and the MAC.
fn adopt(f: &Path, want: &[String], ids: &Identities) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(f).map_err(|e| store::Error::Io {
        path: f.to_path_buf(),
        cause: e,
    })?;
    let origin = f.display().to_string();
    let fmt = crate::sops::Format::Yaml;
    crate::sops::decrypt(&bytes, fmt, ids, &origin)?;
    let have = crate::sops::recipients(&bytes, fmt, &origin)?;
    if store::rewrap::same_set(want, &have) {
        return Ok(bytes);
    }
    Ok(crate::sops::update_keys(&bytes, fmt, ids, want, &origin)?)
}

/// The recipients of `owner`'s path: its host (every machine for shared) and the admins.
/// Machines without a host key yet are collected in `keyless`.
fn recipients(
    ws: &Workspace,
    defs: &crate::workspace::Definitions,
    owner: &Owner,
    keyless: &mut Vec<String>,
) -> anyhow::Result<Vec<String>> {
    let machines: Vec<&String> = match owner {
        Owner::Machine(m) => vec![m],
        Owner::User(_) => Vec::new(),
        Owner::Shared => defs.machines.keys().collect(),
    };
    let mut out = Vec::new();
    for m in machines {
        let r = store::host_recipients(&ws.root, m)?;
        if r.is_empty() {
            keyless.push(m.clone());
        }
        out.extend(r);
    }
    if let Owner::Machine(m) = owner
        && out.is_empty()
    {
        return Err(UsageError::new(format!(
            "machine {m} has no host key yet (run `varsmith generate {m}` or `varsmith import clan` first, or give sops/machines/{m}/key.json)"
        ))
        .into());
    }
    out.extend(admins(ws));
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    Ok(out)
}
