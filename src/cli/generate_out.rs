//! What `varsmith generate` prints: the plan (`--plan`), the summary on stderr, and with
//! `--json` one document on stdout (the shapes are in the README, "JSON output").

use serde::Serialize;

use crate::ops::check::Finding;
use crate::ops::generate::{PlanRecord, Report, RunRecord, Status};

/// `generate --plan --json`.
#[derive(Serialize)]
struct PlanDoc<'a> {
    plan: &'a [PlanRecord],
    /// sops files that are there but broken, with what generate does about each.
    broken: Vec<Broken<'a>>,
    /// Changes that do not regenerate (a script edit), one per generator.
    notices: Vec<NoticeEntry<'a>>,
}

/// One `notices` entry of `generate --plan --json`.
#[derive(Serialize)]
struct NoticeEntry<'a> {
    label: &'a str,
    notice: &'a str,
}

/// `generate --json`.
#[derive(Serialize)]
struct RunDoc<'a> {
    runs: &'a [RunRecord],
    /// Secrets files re-encrypted for new recipients (workspace-relative paths).
    rekeyed: &'a [String],
    /// Every failure, of a generator or of a step after the runs (`.sops.yaml`, `git`,
    /// re-encryption).
    failures: Vec<FailureEntry<'a>>,
    summary: Summary,
    /// The process exit code this run ends with.
    exit_code: i32,
}

/// One failure: which generator or step, and the message (never a secret).
#[derive(Serialize)]
struct FailureEntry<'a> {
    label: &'a str,
    message: &'a str,
}

/// Counts of [`RunDoc::runs`] by status.
#[derive(Serialize)]
struct Summary {
    ran: usize,
    failed: usize,
    skipped: usize,
    up_to_date: usize,
}

/// Prints the plan: JSON, or one line per run (`LABEL: REASON  (SOURCE)`), then every broken
/// sops file (`broken`: keyless check findings about files) with what generate does about it.
/// "nothing to do" only when nothing is planned and nothing is broken.
pub(super) fn plan(report: &Report, broken: &[Finding], json: bool) -> anyhow::Result<()> {
    if json {
        let notices: Vec<NoticeEntry> = report
            .notices
            .iter()
            .map(|(label, notice)| NoticeEntry { label, notice })
            .collect();
        return super::json_out::print(&PlanDoc {
            plan: &report.planned,
            notices,
            broken: broken
                .iter()
                .map(|f| (f, action(report, f)))
                .map(Broken::from)
                .collect(),
        });
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if report.plan.is_empty() && broken.is_empty() {
        writeln!(out, "nothing to do: every generator is up to date")?;
    }
    for p in &report.plan {
        writeln!(out, "{}: {}  ({})", p.label, p.reason, p.source)?;
    }
    for (label, notice) in &report.notices {
        writeln!(out, "{label}: notice: {notice}")?;
    }
    for f in broken {
        writeln!(out, "{}: {}: {}", f.source, f.kind, action(report, f))?;
    }
    Ok(())
}

/// The file-level check kinds `generate --plan` shows: files that are there but broken.
pub(super) const BROKEN_KINDS: &[&str] = &["corrupt", "modified", "recipients", "mac", "torn"];

/// What `generate` does about a broken file `f`.
fn action(report: &Report, f: &Finding) -> String {
    let label = format!("{}/{}", f.owner, f.generator);
    let planned = report.plan.iter().any(|p| p.label == label);
    let regen = match f.owner.as_str() {
        "shared" => format!("`varsmith generate --regenerate -g {} --all`", f.generator),
        m => format!("`varsmith generate --regenerate -g {} {m}`", f.generator),
    };
    match f.kind.as_str() {
        _ if planned => format!("rewritten by the planned run of {label}"),
        "recipients" => {
            "re-encrypted for the inventory's recipients (needs the key of a current recipient)"
                .to_string()
        }
        _ => format!(
            "left as it is ({}); {regen} replaces it",
            first_clause(&f.detail)
        ),
    }
}

/// The detail's problem, without its file prefix and advice.
fn first_clause(detail: &str) -> &str {
    let d = detail.split_once(": ").map_or(detail, |(_, r)| r);
    d.split_once(": ").map_or(d, |(p, _)| p)
}

/// A broken file in `generate --plan --json`.
#[derive(Serialize)]
struct Broken<'a> {
    file: &'a str,
    owner: &'a str,
    generator: &'a str,
    kind: &'a str,
    detail: &'a str,
    action: String,
}

impl<'a> From<(&'a Finding, String)> for Broken<'a> {
    fn from((f, action): (&'a Finding, String)) -> Self {
        Broken {
            file: &f.source,
            owner: &f.owner,
            generator: &f.generator,
            kind: &f.kind,
            detail: &f.detail,
            action,
        }
    }
}

/// Prints the `--json` document of a finished run ending with `exit_code`.
pub(super) fn json(report: &Report, exit_code: i32) -> anyhow::Result<()> {
    let count = |s: Status| report.runs.iter().filter(|r| r.status == s).count();
    super::json_out::print(&RunDoc {
        runs: &report.runs,
        rekeyed: &report.rekeyed,
        failures: report
            .failed
            .iter()
            .map(|(label, f)| FailureEntry {
                label,
                message: &f.msg,
            })
            .collect(),
        summary: Summary {
            ran: count(Status::Ran),
            failed: count(Status::Failed),
            skipped: count(Status::Skipped),
            up_to_date: count(Status::UpToDate),
        },
        exit_code,
    })
}

/// The human summary on stderr: failures, skips and the counts.
pub(super) fn summary(report: &Report) {
    for (label, err) in &report.failed {
        eprintln!("FAILED {label}: {err}");
    }
    for label in &report.skipped {
        eprintln!("skipped {label}: a dependency failed");
    }
    if report.plan.is_empty() && report.rekeyed.is_empty() {
        if report.failed.is_empty() {
            eprintln!("nothing to do: every generator is up to date");
        } else {
            eprintln!("no generator ran; {} steps failed", report.failed.len());
        }
        return;
    }
    let rekeyed = if report.rekeyed.is_empty() {
        String::new()
    } else {
        format!(
            ", {} files re-encrypted for new recipients",
            report.rekeyed.len()
        )
    };
    eprintln!(
        "generated {} of {} planned generator runs, {} failed, {} skipped{rekeyed}",
        report.done.len(),
        report.plan.len(),
        report.failed.len(),
        report.skipped.len(),
    );
}

/// After a run: the machines whose configurations read public outputs that changed (every
/// machine declaring a generator whose facts changed, for a shared one every machine using
/// it, and the machines of generators depending on it), printed as one line naming them.
pub(super) fn deploy_needed(
    ws: &crate::workspace::Workspace,
    report: &Report,
) -> anyhow::Result<()> {
    if report.done.is_empty() {
        return Ok(());
    }
    let before = &report.facts_before;
    let defs = ws.definitions()?;
    let graph = crate::plan::Graph::build(&defs);
    let mut changed: Vec<usize> = Vec::new();
    for p in &report.plan {
        if !report.done.contains(&p.label) {
            continue;
        }
        let n = &graph.nodes[p.node];
        let now = crate::store::Manifest::read(
            &ws.root,
            &n.owner.manifest_file(&ws.root, &n.generator.name),
        )?
        .map(|m| m.facts)
        .unwrap_or_default();
        let old = before.get(&p.node);
        if !now.is_empty() && old.is_some_and(|o| !o.is_empty() && *o != now) {
            changed.push(p.node);
        }
    }
    // Dependents, transitively.
    let mut affected: std::collections::BTreeSet<usize> = changed.iter().copied().collect();
    for (i, n) in graph.nodes.iter().enumerate() {
        if n.deps.iter().any(|d| affected.contains(d)) {
            affected.insert(i);
        }
    }
    let mut machines: std::collections::BTreeSet<String> = Default::default();
    for &i in &affected {
        let n = &graph.nodes[i];
        match &n.owner {
            crate::store::Owner::Machine(m) => {
                machines.insert(m.clone());
            }
            // A home reads its user's facts: `home-manager switch` (or the machine's deploy).
            crate::store::Owner::User(_) => {}
            crate::store::Owner::Shared => {
                for (m, gens) in &defs.machines {
                    if gens.contains_key(&n.generator.name) {
                        machines.insert(m.clone());
                    }
                }
            }
        }
    }
    if !machines.is_empty() {
        let list: Vec<&str> = machines.iter().map(String::as_str).collect();
        eprintln!(
            "public outputs changed: deploy {} (`varsmith deploy {}`), whose configurations read them",
            list.join(", "),
            list.join(" ")
        );
    }
    Ok(())
}
