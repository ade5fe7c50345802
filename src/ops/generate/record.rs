//! One line of `generate --json`: what happened to one (machine, generator) in scope, why, how
//! long it took and which files it wrote (names only, never values).

use serde::Serialize;

use crate::plan::{Graph, Reason};

/// What happened to a node in a `generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Status {
    /// The script ran and its outputs were committed.
    Ran,
    /// The run (script or commit) failed.
    Failed,
    /// Not run because a dependency failed.
    Skipped,
    /// In scope and nothing to do.
    UpToDate,
}

/// One node's outcome.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunRecord {
    /// The machine, `null` for a shared generator.
    pub machine: Option<String>,
    /// The generator's name.
    pub generator: String,
    /// `machine/generator` or `shared/generator`.
    pub label: String,
    /// Whether it ran, failed, was skipped or was already up to date.
    pub status: Status,
    /// Why it ran (see [`reason_code`]); `null` when up to date.
    pub reason: Option<String>,
    /// The reason as text, as `generate --plan` prints it; `null` when up to date.
    pub reason_text: Option<String>,
    /// Milliseconds from the start of the run to its durable commit; `null` when it did not
    /// run.
    pub took_ms: Option<u64>,
    /// The generator's files written by this run (names, never values); empty unless `ran`.
    pub files: Vec<String>,
    /// The failure, for `failed` (never a secret).
    pub error: Option<String>,
}

impl RunRecord {
    /// The record of node `i` with `status`, everything else empty.
    pub(crate) fn new(graph: &Graph, i: usize, status: Status) -> RunRecord {
        let n = &graph.nodes[i];
        RunRecord {
            machine: n.owner.machine().map(str::to_string),
            generator: n.generator.name.clone(),
            label: n.label(),
            status,
            reason: None,
            reason_text: None,
            took_ms: None,
            files: Vec::new(),
            error: None,
        }
    }

    /// Sets why it runs.
    pub(crate) fn because(mut self, r: &Reason) -> RunRecord {
        self.reason = Some(reason_code(r).to_string());
        self.reason_text = Some(r.to_string());
        self
    }
}

/// A stable word for a reason: `missing`, `changed`, `torn`, `stale`, `forced`,
/// `dependency-runs`.
pub(crate) fn reason_code(r: &Reason) -> &'static str {
    match r {
        Reason::Missing(_) => "missing",
        Reason::Changed => "changed",
        Reason::Torn(_) => "torn",
        Reason::Stale(_) => "stale",
        Reason::Forced => "forced",
        Reason::DependencyRuns(_) => "dependency-runs",
    }
}

/// One entry of `generate --plan --json`: what would run, why, and where it is defined.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanRecord {
    /// The machine, `null` for a shared generator.
    pub machine: Option<String>,
    /// The generator's name.
    pub generator: String,
    /// `machine/generator` or `shared/generator`.
    pub label: String,
    /// Why it would run (see [`reason_code`]).
    pub reason: &'static str,
    /// The reason as `generate --plan` prints it, e.g. `older than its dependency a/base`.
    pub reason_text: String,
    /// Where the definition comes from (a path, `bundled:<name>` or a flake attribute).
    pub source: String,
}

/// The plan as records, in plan order.
pub(super) fn plan_records(graph: &Graph, plan: &[crate::plan::Planned]) -> Vec<PlanRecord> {
    plan.iter()
        .map(|p| {
            let n = &graph.nodes[p.node];
            PlanRecord {
                machine: n.owner.machine().map(str::to_string),
                generator: n.generator.name.clone(),
                label: p.label.clone(),
                reason: reason_code(&p.reason),
                reason_text: p.reason.to_string(),
                source: p.source.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_the_documented_words() {
        let cases = [
            (Reason::Missing("x".into()), "missing"),
            (Reason::Changed, "changed"),
            (Reason::Torn("x".into()), "torn"),
            (Reason::Stale("a/b".into()), "stale"),
            (Reason::Forced, "forced"),
            (Reason::DependencyRuns("a/b".into()), "dependency-runs"),
        ];
        for (reason, code) in cases {
            assert_eq!(reason_code(&reason), code, "{reason}");
        }
        assert_eq!(
            Reason::Stale("a/base".into()).to_string(),
            "older than its dependency a/base"
        );
    }
}
