//! `varsmith check`: missing, stale, torn or wrongly-encrypted vars, read from disk without
//! decrypting anything (fast enough for a CI gate on every push).

use serde::Serialize;

use crate::plan::{Graph, Reason, status};
use crate::store;
use crate::workspace::Workspace;

/// One problem found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// The machine, or `shared`.
    pub owner: String,
    /// The generator.
    pub generator: String,
    /// `missing`, `changed`, `torn`, `stale`, `recipients`.
    pub kind: String,
    /// Human detail.
    pub detail: String,
}

/// The result of a check.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Generators checked.
    pub checked: usize,
    /// Problems.
    pub findings: Vec<Finding>,
}

impl Report {
    /// No problem found.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Checks the given machines (all when empty) and the shared generators they use.
pub fn run(ws: &Workspace, hosts: &[String]) -> anyhow::Result<Report> {
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let machines = crate::plan::select_machines(ws, hosts)?;
    let mut report = Report::default();
    for i in graph.scope(&defs, &machines) {
        let n = &graph.nodes[i];
        report.checked += 1;
        let mut push = |kind: &str, detail: String| {
            report.findings.push(Finding {
                owner: n.owner.to_string(),
                generator: n.generator.name.clone(),
                kind: kind.to_string(),
                detail,
            })
        };
        if let Some(r) = status(&ws.root, &graph, i) {
            let kind = match &r {
                Reason::Missing(_) => "missing",
                Reason::Changed => "changed",
                Reason::Torn(_) => "torn",
                Reason::Stale(_) => "stale",
                Reason::Forced | Reason::DependencyRuns(_) => "stale",
            };
            push(kind, r.to_string());
            if matches!(r, Reason::Missing(_)) {
                continue;
            }
        }
        // Recipients: exactly the expected set, host included.
        let g = &n.generator;
        for (path, admin_only) in n.existing_secrets_files(&ws.root) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(&ws.root)
                .unwrap_or(&path)
                .display()
                .to_string();
            let want = match store::expected_recipients(ws, &defs, &n.owner, &g.name, admin_only) {
                Ok(w) => w,
                Err(e) => {
                    push("recipients", e.to_string());
                    continue;
                }
            };
            let have = match crate::sops::recipients(&bytes, crate::sops::Format::Yaml, &rel) {
                Ok(h) => h,
                Err(e) => {
                    push("torn", e.to_string());
                    continue;
                }
            };
            let hosts: Vec<String> = if admin_only {
                Vec::new()
            } else {
                match &n.owner {
                    store::Owner::Machine(m) => {
                        store::host_recipients(&ws.root, m).unwrap_or_default()
                    }
                    store::Owner::Shared => want
                        .iter()
                        .filter(|r| !ws.inventory.admins.values().any(|a| a == *r))
                        .cloned()
                        .collect(),
                }
            };
            for h in &hosts {
                if !have.iter().any(|x| x.trim() == h) {
                    push(
                        "recipients",
                        format!(
                            "{rel}: not decryptable by the host (recipient {h} missing); run `varsmith rekey`"
                        ),
                    );
                }
            }
            for w in &want {
                if !hosts.contains(w) && !have.iter().any(|x| x.trim() == w) {
                    push(
                        "recipients",
                        format!("{rel}: recipient {w} missing; run `varsmith rekey`"),
                    );
                }
            }
            for h in &have {
                if !want.iter().any(|w| w == h.trim()) {
                    push(
                        "recipients",
                        format!("{rel}: unexpected extra recipient {h} (not in the inventory)"),
                    );
                }
            }
        }
    }
    Ok(report)
}
