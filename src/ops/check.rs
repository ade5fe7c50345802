//! `varsmith check`: missing, stale, torn or wrongly-encrypted vars, read from disk without
//! decrypting anything (fast enough for a CI gate on every push); then every sops file's
//! structure, orphan trees, hand-made files and pending host key rotations, and with
//! identities every MAC ([`super::check_files`]).

use serde::Serialize;

use crate::keys::Identities;
use crate::plan::{Graph, Reason, notice, status};
use crate::store;
use crate::workspace::Workspace;

/// One problem found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The machine, or `shared`.
    pub owner: String,
    /// The generator.
    pub generator: String,
    /// `missing`, `changed`, `torn`, `stale`, `recipients`, `corrupt` (a malformed value or
    /// metadata), `mac` (a value or the MAC does not verify), `unverified` (no identity given
    /// opens the file), `modified` (the file is not the one varsmith recorded, and no identity
    /// verified it), `orphan`, `hand-made`, `rotation` (a host key not yet on the host: a warning
    /// that does not fail the check), `rotation-record` (a record naming a recipient the
    /// workspace never recorded), `sops-config` (`.sops.yaml`'s
    /// varsmith rules differ from the inventory's), `admins` (the admins mirror differs from the
    /// inventory), `leftover` (outputs of a generator no longer declared).
    pub kind: String,
    /// Human detail.
    pub detail: String,
    /// Where the definition comes from: a file, `bundled:<name>` or a flake attribute; for
    /// file-level findings (`corrupt`, `mac`, `orphan`, …) the file or directory itself.
    pub source: String,
}

/// The result of a check.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    /// Generators checked.
    pub checked: usize,
    /// sops files whose content was checked (structure, and MAC with identities).
    pub files: usize,
    /// Of them, those whose MAC was verified.
    pub mac_verified: usize,
    /// Problems.
    pub findings: Vec<Finding>,
    /// Changes not applied that are no problem (kind `notice`: a script edited since
    /// generation, as clan regenerates only on `validation`); they never fail `check`.
    pub notices: Vec<Finding>,
}

impl Report {
    /// No problem found. A pending host key rotation (`rotation`) is a warning only: the
    /// machine's files open with both keys, and deploying them is the rotation's next step.
    pub(crate) fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.kind == "rotation")
    }
}

/// Checks the given machines and home-manager users (`--user`; all of both when neither is
/// given, see [`crate::plan::select_targets`]) and the shared generators they use; with
/// identities (`ids` not empty) also every file's MAC.
pub(crate) fn run(
    ws: &Workspace,
    hosts: &[String],
    users: &[String],
    ids: &Identities,
) -> anyhow::Result<Report> {
    // Each stored file is read once (the caller holds the workspace lock, shared).
    let _cache = crate::confined::ReadCache::begin(&ws.root);
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let all = hosts.is_empty() && users.is_empty();
    let (machines, users) = crate::plan::select_targets(ws, &defs, hosts, users)?;
    let mut report = Report::default();
    let scope: Vec<usize> = graph
        .scope_of(&defs, &machines, &users)
        .into_iter()
        .collect();
    // Each node's findings and notice, read in parallel; reported in scope order.
    let per_node = crate::plan::par::map_nodes(&scope, |i| node_findings(ws, &defs, &graph, i));
    for (found, notice) in per_node {
        report.checked += 1;
        report.notices.extend(notice);
        report.findings.extend(found);
    }
    let files = super::check_files::run(ws, &defs, &graph, (&machines, &users), all, ids)?;
    report.files = files.files;
    report.mac_verified = files.mac_verified;
    report.findings.extend(files.findings);
    Ok(report)
}

/// The findings of node `i` (its status, and each secrets file's recipients unless it is
/// missing) and its notice (a script edited since generation), from disk only.
fn node_findings(
    ws: &Workspace,
    defs: &crate::workspace::Definitions,
    graph: &Graph,
    i: usize,
) -> (Vec<Finding>, Option<Finding>) {
    let n = &graph.nodes[i];
    let finding = |kind: &str, detail: String| Finding {
        owner: n.owner.to_string(),
        generator: n.generator.name.clone(),
        kind: kind.to_string(),
        detail,
        source: n.generator.shown_source(&ws.root),
    };
    let mut found: Vec<(&str, String)> = Vec::new();
    let status = status(&ws.root, graph, i);
    if let Some(r) = &status {
        let kind = match r {
            Reason::Missing(_) => "missing",
            Reason::Changed => "changed",
            Reason::Torn(_) => "torn",
            Reason::Stale(_) | Reason::Forced | Reason::DependencyRuns(_) => "stale",
        };
        let detail = match r {
            Reason::Missing(w) | Reason::Torn(w) => w.clone(),
            other => other.to_string(),
        };
        found.push((kind, detail));
    }
    let notice = if status.is_none() {
        notice(&ws.root, graph, i).map(|text| finding("notice", text.into()))
    } else {
        None
    };
    if !matches!(status, Some(Reason::Missing(_))) {
        for (path, admin_only) in n.existing_secrets_files(&ws.root) {
            found.extend(recipient_findings(ws, defs, n, &path, admin_only));
        }
    }
    let found = found
        .into_iter()
        .map(|(kind, detail)| finding(kind, detail))
        .collect();
    (found, notice)
}

/// Recipients of one secrets file: exactly the expected set, host included.
fn recipient_findings(
    ws: &Workspace,
    defs: &crate::workspace::Definitions,
    n: &crate::plan::Node,
    path: &std::path::Path,
    admin_only: bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let Ok(Some(bytes)) = store::read_file_shared(&ws.root, path) else {
        return out;
    };
    let rel = path
        .strip_prefix(&ws.root)
        .unwrap_or(path)
        .display()
        .to_string();
    let want = match store::expected_recipients(ws, defs, &n.owner, &n.generator.name, admin_only) {
        Ok(w) => w,
        Err(e) => return vec![("recipients", e.to_string())],
    };
    let have = match store::file_recipients(&ws.root, path, &bytes, &rel) {
        Ok(h) => h,
        Err(e) => return vec![("torn", e.to_string())],
    };
    let hosts: Vec<String> = match (&n.owner, admin_only) {
        (_, true) => Vec::new(),
        (store::Owner::Machine(m), false) => {
            store::host_recipients(&ws.root, m).unwrap_or_default()
        }
        (store::Owner::User(_), false) => n
            .owner
            .user()
            .and_then(|u| store::user_recipients(&ws.root, u).ok())
            .unwrap_or_default(),
        (store::Owner::Shared, false) => want
            .iter()
            .filter(|r| !ws.inventory.admins.values().any(|a| a == *r))
            .cloned()
            .collect(),
    };
    let has = |r: &str| have.iter().any(|x| x.trim() == r);
    let fix = if hosts.iter().all(|h| has(h))
        && want.iter().all(|w| has(w))
        && have.iter().all(|h| want.iter().any(|w| w == h.trim()))
    {
        return out;
    } else {
        fix_advice(ws, &have, &n.owner, &n.generator.name)
    };
    for h in hosts.iter().filter(|h| !has(h)) {
        out.push((
            "recipients",
            format!("{rel}: not decryptable by the host (recipient {h} missing); {fix}"),
        ));
    }
    for w in want.iter().filter(|w| !hosts.contains(w) && !has(w)) {
        out.push(("recipients", format!("{rel}: recipient {w} missing; {fix}")));
    }
    for h in have.iter().filter(|h| !want.iter().any(|w| w == h.trim())) {
        out.push((
            "recipients",
            format!("{rel}: unexpected extra recipient {h} (not in the inventory); {fix}"),
        ));
    }
    out
}

/// Who holds a key to a file of `owner` encrypted to `have`: admin names, and the machine
/// (for a shared file: machines of the inventory) whose recipient is among them; the rest
/// shown as the recipient itself.
pub(crate) fn who_can_open(ws: &Workspace, have: &[String], owner: &store::Owner) -> Vec<String> {
    let candidates: Vec<&String> = match owner {
        store::Owner::Machine(m) => ws.inventory.machines.keys().filter(|k| *k == m).collect(),
        store::Owner::User(_) => Vec::new(),
        store::Owner::Shared => ws.inventory.machines.keys().collect(),
    };
    let user = owner.user();
    have.iter()
        .map(|r| {
            let r = r.trim();
            if let Some((name, _)) = ws.inventory.admins.iter().find(|(_, a)| a.trim() == r) {
                return format!("admin {name}");
            }
            let host = candidates.iter().find(|m| {
                store::host_recipients(&ws.root, m).is_ok_and(|rs| rs.iter().any(|x| x.trim() == r))
            });
            if let Some(u) = user
                && store::user_recipients(&ws.root, u)
                    .is_ok_and(|rs| rs.iter().any(|x| x.trim() == r))
            {
                return format!("user {u}");
            }
            match host {
                Some(m) => format!("host {m}"),
                None => r.to_string(),
            }
        })
        .collect()
}

/// The fix for a file with the wrong recipients: `rekey` needs a key of a current recipient;
/// when none is left, only a regeneration gives the file new values.
pub(crate) fn fix_advice(ws: &Workspace, have: &[String], owner: &store::Owner, g: &str) -> String {
    let who = who_can_open(ws, have, owner);
    let regen = match owner {
        store::Owner::Machine(m) => format!("`varsmith generate --regenerate -g {g} {m}`"),
        store::Owner::User(u) => format!("`varsmith generate --regenerate -g {g} --user {u}`"),
        store::Owner::Shared => format!("`varsmith generate --regenerate -g {g} --all`"),
    };
    format!(
        "run `varsmith rekey` with the key of one who can open it ({}); if nobody can, {regen} makes new values",
        who.join(", ")
    )
}
