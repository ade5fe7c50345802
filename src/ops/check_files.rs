//! The file-level half of `varsmith check`: every sops file under `sops/`, whoever made it.
//!
//! * Layout: a `sops/machines/<h>/` tree of a machine not in the inventory (`orphan`), and a
//!   sops file no generator produces (`hand-made`, also checked for its path's recipients).
//! * Content, without keys: the structure of every `ENC[...]` value and of the metadata
//!   ([`crate::sops::validate::structure`], kind `corrupt`).
//! * Content, with identities: the data key unwraps and every value and the MAC verify
//!   (kind `mac`); a file none of the identities opens is `unverified` (the check could not do
//!   its work there, so it is a finding, never silently skipped), except when the only
//!   identities are those sops tries by default (the personal `~/.ssh/id_ed25519`, the default
//!   `keys.txt`, which often hold other projects' keys): then such files count as checked for
//!   structure only, and the summary says how many.
//! * A pending host key rotation (`rotation`).
//!
//! Files are checked in parallel (one worker per core).

use crate::keys::Identities;
use crate::plan::Graph;
use crate::sops::validate::{self, Verified};
use crate::store::sopsfiles::{self, SopsFile};
use crate::store::{self, Owner};
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, Workspace};

use super::check::Finding;

/// What the file-level checks found.
#[derive(Debug, Default)]
pub(crate) struct FileReport {
    /// sops files whose content was checked.
    pub files: usize,
    /// Of them, those whose MAC was verified with an identity.
    pub mac_verified: usize,
    /// Problems.
    pub findings: Vec<Finding>,
}

fn finding(owner: &str, generator: &str, kind: &str, detail: String, source: String) -> Finding {
    Finding {
        owner: owner.to_string(),
        generator: generator.to_string(),
        kind: kind.to_string(),
        detail,
        source,
    }
}

/// Runs the file-level checks for `machines` (`all`: the whole workspace was asked for, so
/// orphan trees and every shared file are in scope).
pub(crate) fn run(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    (machines, users): (&[String], &[String]),
    all: bool,
    ids: &Identities,
) -> anyhow::Result<FileReport> {
    let mut rep = FileReport::default();
    if all {
        orphans(ws, &mut rep)?;
        user_orphans(ws, defs, &mut rep)?;
        sops_config(ws, defs, &mut rep)?;
        admins_mirror(ws, &mut rep)?;
        leftovers(ws, graph, &Owner::Shared, &mut rep)?;
    }
    let mut files = Vec::new();
    // Each machine's directory listings, over the cores (results in machine order).
    let indices: Vec<usize> = (0..machines.len()).collect();
    let per_machine = crate::plan::par::map_nodes(&indices, |i| {
        let m = &machines[i];
        let mut own = FileReport::default();
        let files = sopsfiles::files_of(&ws.root, &Owner::Machine(m.clone()))?;
        rotation(ws, m, &mut own)?;
        leftovers(ws, graph, &Owner::Machine(m.clone()), &mut own)?;
        anyhow::Ok((files, own.findings))
    });
    for r in per_machine {
        let (f, findings) = r?;
        files.extend(f);
        rep.findings.extend(findings);
    }
    for u in users {
        let owner = Owner::User(u.clone());
        files.extend(sopsfiles::files_of(&ws.root, &owner)?);
        leftovers(ws, graph, &owner, &mut rep)?;
    }
    // Generators the selected machines declare: one set, not a scan of `machines` per file.
    let declared: std::collections::HashSet<&str> = machines
        .iter()
        .filter_map(|m| defs.machines.get(m))
        .chain(users.iter().filter_map(|u| defs.users.get(u)))
        .flat_map(|g| g.keys().map(String::as_str))
        .collect();
    let used = |f: &SopsFile| all || declared.contains(f.stem.as_str());
    files.extend(
        sopsfiles::files_of(&ws.root, &Owner::Shared)?
            .into_iter()
            .filter(used),
    );
    let external = store::external::External::read(&ws.root)?;
    for f in &files {
        hand_made(ws, defs, graph, &external, f, &mut rep);
    }
    external_missing(ws, &external, machines, all, &mut rep);
    rep.files = files.len();
    let (findings, verified) = content(ws, &files, ids)?;
    rep.findings.extend(findings);
    rep.mac_verified = verified;
    Ok(rep)
}

/// `sops/users/<u>/` (or a per-home `homes/<home>/`) holding outputs of a user no home of
/// the flake declares any more.
fn user_orphans(ws: &Workspace, defs: &Definitions, rep: &mut FileReport) -> anyhow::Result<()> {
    for key in sopsfiles::user_dirs(&ws.root)? {
        if defs.users.contains_key(&key) {
            continue;
        }
        let owner = Owner::User(key.clone());
        let dir = format!("{}/", store::record_key(&ws.root, &owner.base(&ws.root)));
        rep.findings.push(finding(
            &owner.to_string(),
            "-",
            "orphan",
            format!(
                "{dir}: no home-manager home of the flake is user {key} (importing varsmith's homeManagerModules.default) but its outputs are still there, encrypted to the user; delete them (`git rm -r {dir}secrets {dir}facts {dir}state`, keeping key.json if the user is an admin) if the user is gone, or declare the home again"
            ),
            dir,
        ));
    }
    Ok(())
}

/// `sops/machines/<h>/` of machines the inventory does not have.
fn orphans(ws: &Workspace, rep: &mut FileReport) -> anyhow::Result<()> {
    for h in sopsfiles::machine_dirs(&ws.root)? {
        if ws.inventory.machines.contains_key(&h) {
            continue;
        }
        let dir = format!("sops/machines/{h}/");
        rep.findings.push(finding(
            &h,
            "-",
            "orphan",
            format!(
                "{dir}: machine {h} is not in {} but its files are still there, encrypted to its host key; delete the directory (`git rm -r {dir}`) if the machine is gone, or add it back {}",
                if ws.flake.is_empty() {
                    crate::workspace::INVENTORY_FILE
                } else {
                    "varsmith.yaml nor a configuration of the flake"
                },
                if ws.flake.is_empty() {
                    format!("with `varsmith machine add {h}`")
                } else {
                    format!("(a configuration importing the varsmith module with machineName {h}, or `varsmith machine add {h}`)")
                }
            ),
            dir,
        ));
    }
    Ok(())
}

/// `.sops.yaml`'s varsmith block against the inventory (kind `sops-config`). The same
/// problem in many rules (after `admin add`, every rule lacks the new admin) is one finding
/// naming how many rules; the last item of the drift is its advice.
fn sops_config(ws: &Workspace, defs: &Definitions, rep: &mut FileReport) -> anyhow::Result<()> {
    let drift = store::sopsconfig::drift(ws, defs)?;
    let mut order: Vec<String> = Vec::new();
    let mut rules: std::collections::HashMap<String, Vec<String>> = Default::default();
    for d in &drift {
        let (rule, problem) = match d.strip_prefix("rule ").and_then(|r| r.split_once(": ")) {
            Some((rule, problem)) => (Some(rule.to_string()), problem.to_string()),
            None => (None, d.clone()),
        };
        let seen = rules.entry(problem.clone()).or_default();
        if seen.is_empty() && !order.contains(&problem) {
            order.push(problem.clone());
        }
        seen.extend(rule);
    }
    for problem in order {
        let detail = match rules[&problem].as_slice() {
            [] => problem,
            [one] => format!("rule {one}: {problem}"),
            [first, rest @ ..] => format!("{problem} in {} rules ({first}, …)", rest.len() + 1),
        };
        rep.findings.push(finding(
            "-",
            "-",
            "sops-config",
            format!(".sops.yaml: {detail}"),
            ".sops.yaml".into(),
        ));
    }
    Ok(())
}

/// The admins mirror the Nix module reads, when it names other admins than the inventory.
fn admins_mirror(ws: &Workspace, rep: &mut FileReport) -> anyhow::Result<()> {
    if store::admins_mirror_differs(&ws.root)? {
        let f = store::ADMINS_MIRROR;
        rep.findings.push(finding(
            "-",
            "-",
            "admins",
            format!(
                "{f}: its admins or machines are not those of {} (edited by hand?), so the module's assertions and `lib.flakeCheck` compare against the wrong ones; run `varsmith rekey`, which rewrites it",
                crate::workspace::INVENTORY_FILE
            ),
            f.to_string(),
        ));
    }
    Ok(())
}

/// `state/<g>.json` and `facts/<g>/` of `owner` for a generator it no longer declares (its
/// secrets files are `hand-made` findings).
fn leftovers(
    ws: &Workspace,
    graph: &Graph,
    owner: &Owner,
    rep: &mut FileReport,
) -> anyhow::Result<()> {
    let base = owner.base(&ws.root);
    let names = |sub: &str| -> anyhow::Result<Vec<String>> {
        match crate::confined::Dir::open(&ws.root, &base.join(sub), false) {
            Ok(d) => Ok(d
                .names()?
                .into_iter()
                .map(|n| n.to_string_lossy().into_owned())
                .collect()),
            Err(_) => Ok(Vec::new()),
        }
    };
    let mut gone: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in names("state")? {
        if let Some(g) = n.strip_suffix(".json") {
            gone.entry(g.to_string())
                .or_default()
                .push(format!("state/{n}"));
        }
    }
    for g in names("facts")? {
        gone.entry(g.clone())
            .or_default()
            .push(format!("facts/{g}/"));
    }
    let shown = store::record_key(&ws.root, &base);
    for (g, paths) in gone {
        if graph.find(owner, &g).is_some() || g.starts_with('.') {
            continue;
        }
        let list: Vec<String> = paths.iter().map(|p| format!("{shown}/{p}")).collect();
        let declared = match owner {
            Owner::Machine(m) => format!("machine {m} no longer declares generator {g}"),
            Owner::User(u) => format!("no home of user {u} declares generator {g} any more"),
            Owner::Shared => format!("no machine uses the shared generator {g} any more"),
        };
        rep.findings.push(finding(
            &owner.to_string(),
            &g,
            "leftover",
            format!(
                "{}: {declared}, but its outputs are still there; delete them (`git rm -r {}`) or declare it again",
                list.join(", "),
                list.join(" ")
            ),
            list[0].clone(),
        ));
    }
    Ok(())
}

/// A rotation of `m`'s host key that the host has not confirmed yet.
fn rotation(ws: &Workspace, m: &str, rep: &mut FileReport) -> anyhow::Result<()> {
    let Some(p) = store::rotation::pending(&ws.root, m)? else {
        return Ok(());
    };
    let rel = format!("sops/machines/{m}/{}", store::rotation::RECORD);
    if store::rotation::unverifiable(&ws.root, m)? {
        // A warning, like any pending rotation: nothing of it is used as a recipient here.
        rep.findings.push(finding(
            m,
            HOST_KEY_GENERATOR,
            "rotation-record",
            format!(
                "{rel}: host key rotation not verified (no identity here decrypts {m}'s {HOST_KEY_GENERATOR} secrets, whose key authenticates the record): its old recipients are not used until a command with an admin key verifies it"
            ),
            rel,
        ));
        return Ok(());
    }
    if store::rotation::unsealed(&ws.root, m)? {
        // A run stopped before sealing its record (a crash): a warning, as the rotation is.
        rep.findings.push(finding(
            m,
            HOST_KEY_GENERATOR,
            "rotation",
            format!(
                "host key rotated, not yet on the host (since {}), but its run stopped before sealing {rel}: the old key is not kept as a recipient (an unsealed record could be planted); run `varsmith rotate-host-key {m}` to finish the rotation, or delete {rel} if you did not start one",
                p.started
            ),
            rel,
        ));
        return Ok(());
    }
    let planted = store::rotation::unrecorded(&ws.root, m)?;
    if !planted.is_empty() {
        let shown: Vec<String> = planted.iter().map(|r| shown_recipient(r)).collect();
        // Not a pending rotation's warning: a planted or altered record fails the check.
        rep.findings.push(finding(
            m,
            HOST_KEY_GENERATOR,
            "rotation-record",
            format!(
                "{rel}: rotation record names a recipient this workspace never recorded for {m} ({}); it is not used as a recipient. Delete {rel} unless you started this rotation (`varsmith generate --rotate-host-key` records it), and review how it got there",
                shown.join(", ")
            ),
            rel.clone(),
        ));
        if !store::rotation::genuine(&ws.root, m)? {
            return Ok(());
        }
    }
    let p = store::rotation::Pending {
        old: store::rotation::honoured(&ws.root, m)?,
        ..p
    };
    rep.findings.push(finding(
        m,
        HOST_KEY_GENERATOR,
        "rotation",
        format!(
            "host key rotated, not yet on the host (since {}; a warning, deploying is not blocked): its secrets stay encrypted to the old key ({}) too; run `varsmith rotate-host-key {m}` to continue the rotation (deploy, install the new key, drop the old one, deploy)",
            p.started,
            p.old.join(", ")
        ),
        rel,
    ));
    Ok(())
}

/// A recipient from a workspace file as a finding shows it: key-shaped text scrubbed, controls
/// escaped, at most 100 characters.
fn shown_recipient(r: &str) -> String {
    let s = crate::term::escape_controls(&crate::workspace::quote::scrub_keys(r));
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s
    }
}

/// A sops file no generator produces: a finding, and its recipients must still be those of
/// its path's creation rule.
fn hand_made(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    external: &store::external::External,
    f: &SopsFile,
    rep: &mut FileReport,
) {
    if graph.find(&f.owner, &f.stem).is_some() {
        return;
    }
    let rel = f.shown(&ws.root);
    if !external.declares(&f.owner, &f.stem) || f.admin_only {
        made_by_hand(ws, f, &rel, rep);
    }
    recipients_of_rule(ws, defs, f, &rel, rep);
}

/// A declared external secret (`sops/external.json`) whose file is gone.
fn external_missing(
    ws: &Workspace,
    external: &store::external::External,
    machines: &[String],
    all: bool,
    rep: &mut FileReport,
) {
    for (owner, stem, path) in external.files(&ws.root) {
        let in_scope = match &owner {
            Owner::Machine(m) => machines.contains(m),
            Owner::User(_) => false,
            Owner::Shared => all,
        };
        if in_scope && !path.exists() {
            let rel = path
                .strip_prefix(&ws.root)
                .unwrap_or(&path)
                .display()
                .to_string();
            rep.findings.push(finding(
                &owner.to_string(),
                &stem,
                "missing",
                format!("{rel}: declared in {} but missing", store::external::FILE),
                rel,
            ));
        }
    }
}

/// The `hand-made` finding of a file no generator produces and no declaration names.
fn made_by_hand(ws: &Workspace, f: &SopsFile, rel: &str, rep: &mut FileReport) {
    let owner = f.owner.to_string();
    let whose = match &f.owner {
        Owner::Machine(m) => format!("generator of {m}"),
        Owner::User(u) => format!("generator of user {u}"),
        Owner::Shared => "shared generator".into(),
    };
    // The hint matches where the machine is defined: its configuration, or varsmith.yaml.
    let declare = match &f.owner {
        Owner::User(u) => format!(
            "declare `varsmith.generators.{} = {{ }};` in user {u}'s home configuration",
            f.stem
        ),
        o => ws.declare_hint(o.machine(), &f.stem),
    };
    rep.findings.push(finding(
        &owner,
        &f.stem,
        "hand-made",
        format!("{rel}: not produced by any {whose}; {declare} or delete the file"),
        rel.to_string(),
    ));
}

/// A file no generator produces must still be encrypted to its path's creation rule.
fn recipients_of_rule(
    ws: &Workspace,
    defs: &Definitions,
    f: &SopsFile,
    rel: &str,
    rep: &mut FileReport,
) {
    let owner = f.owner.to_string();
    let rel = rel.to_string();
    let want = match store::expected_recipients(ws, defs, &f.owner, &f.stem, f.admin_only) {
        Ok(w) => w,
        Err(e) => {
            rep.findings
                .push(finding(&owner, &f.stem, "recipients", e.to_string(), rel));
            return;
        }
    };
    let Ok(Some(bytes)) = store::read_file_shared(&ws.root, &f.path) else {
        return;
    };
    if let Ok(have) = store::file_recipients(&ws.root, &f.path, &bytes, &rel)
        && !store::rewrap::same_set(&want, &have)
    {
        rep.findings.push(finding(
            &owner,
            &f.stem,
            "recipients",
            format!(
                "{rel}: encrypted to [{}], its path's creation rule gives [{}]; run `varsmith rekey`",
                have.join(", "),
                want.join(", ")
            ),
            rel,
        ));
    }
}

/// Structure (and, with identities, MAC) of every file, in parallel; returns the findings in
/// file order and how many MACs were verified. A worker that panicked is an error: its files
/// were not checked.
fn content(
    ws: &Workspace,
    files: &[SopsFile],
    ids: &Identities,
) -> anyhow::Result<(Vec<Finding>, usize)> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(workers).max(1);
    let results: Option<Vec<(Vec<Finding>, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut verified = 0;
                    for f in part {
                        verified += usize::from(one_file(ws, f, ids, &mut out));
                    }
                    (out, verified)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok()).collect()
    });
    let results = results
        .ok_or_else(|| anyhow::anyhow!("internal: a check worker panicked; files unchecked"))?;
    let verified = results.iter().map(|r| r.1).sum();
    Ok((results.into_iter().flat_map(|r| r.0).collect(), verified))
}

/// Checks one file; returns whether its MAC was verified.
fn one_file(ws: &Workspace, f: &SopsFile, ids: &Identities, out: &mut Vec<Finding>) -> bool {
    let rel = f.shown(&ws.root);
    let owner = f.owner.to_string();
    let mut push = |kind: &str, detail: String| {
        out.push(finding(&owner, &f.stem, kind, detail, rel.clone()));
    };
    let bytes = match store::read_file_shared(&ws.root, &f.path) {
        Ok(Some(b)) => b,
        Ok(None) => return false,
        Err(e) => {
            push("corrupt", e.to_string());
            return false;
        }
    };
    let modified = modified_since_recorded(ws, f, &bytes);
    // Byte-identical to what varsmith wrote or verified (its recorded SHA-256): its structure
    // was valid then, so without identities there is nothing left to parse.
    if ids.is_empty() && matches!(modified, Some(Recorded::Same)) {
        return false;
    }
    let problems = validate::structure(&bytes, crate::sops::Format::Yaml, &rel);
    if !problems.is_empty() {
        for p in problems {
            push("corrupt", p);
        }
        return false;
    }
    let modified = match modified {
        Some(Recorded::Differs(d)) => Some(d),
        _ => None,
    };
    if ids.is_empty() {
        if let Some(d) = modified {
            push("modified", d);
        }
        return false;
    }
    match validate::verify(&bytes, crate::sops::Format::Yaml, ids, &rel) {
        // With an identity the MAC decides: a verified file is fine even when changed.
        Ok(Verified::Ok) => true,
        Ok(Verified::NoIdentity) if !ids.deliberate() => {
            if let Some(d) = modified {
                push("modified", d);
            }
            false
        }
        Ok(Verified::NoIdentity) => {
            if let Some(d) = modified {
                push("modified", d);
            }
            push(
                "unverified",
                format!(
                    "{rel}: none of the identities given decrypts it, so its values and MAC were not verified (its structure is valid)"
                ),
            );
            false
        }
        Err(e) => {
            push("mac", e.to_string());
            false
        }
    }
}

/// How a file's bytes compare with the SHA-256 recorded for it in its generator's manifest.
enum Recorded {
    /// Equal to the record.
    Same,
    /// Different: the `modified` finding's detail.
    Differs(String),
}

/// `bytes` of `f` against the SHA-256 recorded in its generator's manifest (`None` when
/// nothing is recorded).
fn modified_since_recorded(ws: &Workspace, f: &SopsFile, bytes: &[u8]) -> Option<Recorded> {
    use sha2::{Digest, Sha256};
    let rec = store::recorded(&ws.root, &f.path)?;
    if rec.sha256 == hex::encode(Sha256::digest(bytes)) {
        return Some(Recorded::Same);
    }
    let rel = f.shown(&ws.root);
    Some(Recorded::Differs(format!(
        "{rel}: modified outside varsmith since varsmith wrote it (its SHA-256 is not the one recorded in {}): verify it with an identity (`varsmith check --identity KEY`), then `varsmith rekey` records it",
        store::record_key(&ws.root, &f.owner.manifest_file(&ws.root, &f.stem))
    )))
}
