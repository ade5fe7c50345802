//! What `varsmith generate` prints: the plan (`--plan`), the summary on stderr, and with
//! `--json` one document on stdout (the shapes are in the README, "JSON output").

use serde::Serialize;

use crate::ops::generate::{PlanRecord, Report, RunRecord, Status};

/// `generate --plan --json`.
#[derive(Serialize)]
struct PlanDoc<'a> {
    plan: &'a [PlanRecord],
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

/// Prints the plan: JSON, or one line per run (`LABEL: REASON  (SOURCE)`).
pub fn plan(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        let notices: Vec<NoticeEntry> = report
            .notices
            .iter()
            .map(|(label, notice)| NoticeEntry { label, notice })
            .collect();
        return super::json_out::print(&PlanDoc {
            plan: &report.planned,
            notices,
        });
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if report.plan.is_empty() {
        writeln!(out, "nothing to do: every generator is up to date")?;
    }
    for p in &report.plan {
        writeln!(out, "{}: {}  ({})", p.label, p.reason, p.source)?;
    }
    for (label, notice) in &report.notices {
        writeln!(out, "{label}: notice: {notice}")?;
    }
    Ok(())
}

/// Prints the `--json` document of a finished run ending with `exit_code`.
pub fn json(report: &Report, exit_code: i32) -> anyhow::Result<()> {
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
pub fn summary(report: &Report) {
    for (label, err) in &report.failed {
        eprintln!("FAILED {label}: {err}");
    }
    for label in &report.skipped {
        eprintln!("skipped {label}: a dependency failed");
    }
    if report.plan.is_empty() && report.rekeyed.is_empty() {
        eprintln!("nothing to do: every generator is up to date");
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
