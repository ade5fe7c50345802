//! `varsmith generate`: plan what runs and why, gather prompts, run the generators in
//! dependency order (at most `--jobs` scripts at once), commit each run's outputs durably,
//! re-wrap files whose recipients changed, regenerate `.sops.yaml` and stage in git. Holds the
//! workspace lock for the whole run.

mod answers;
mod node;
mod observe;
mod preflight;
mod record;
mod rotation;

pub(crate) use record::{PlanRecord, RunRecord, Status, reason_code};

use std::collections::HashMap;
use std::path::PathBuf;

use indexmap::IndexSet;

use crate::error::{Failure, HasKind, Kind};
use crate::keys::Identities;
use crate::plan::{Graph, Planned, Selection, plan, select_targets};
use crate::run::limits::Limits;
use crate::run::progress::Progress;
use crate::run::scheduler;
use crate::run::{prompts, sandbox};
use crate::store::{self, lock};
use crate::workspace::{Definitions, Workspace};

/// Options of one `generate` invocation.
#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    /// Machines, generators, `--regenerate`.
    pub select: Selection,
    /// Print the plan only.
    pub plan_only: bool,
    /// Parallel runs (0: number of cores).
    pub jobs: usize,
    /// Run scripts without bubblewrap.
    pub no_sandbox: bool,
    /// `--prompt` values.
    pub prompt_args: Vec<String>,
    /// `--prompts-file`.
    pub prompts_file: Option<PathBuf>,
    /// Commit written paths to git.
    pub commit: bool,
    /// Per-run limits.
    pub limits: Limits,
    /// `--rotate-host-key`: replacing an existing host key is allowed (see [`rotation`]).
    pub rotate_host_key: bool,
}

/// What `generate` did.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The plan, in graph order.
    pub plan: Vec<Planned>,
    /// Labels of generators that ran and were stored.
    pub done: Vec<String>,
    /// (label, failure) of generators (or steps) that failed.
    pub failed: Vec<(String, Failure)>,
    /// Labels skipped because a dependency failed.
    pub skipped: Vec<String>,
    /// Secrets files re-wrapped for new recipients.
    pub rekeyed: Vec<String>,
    /// Every path written.
    pub written: Vec<PathBuf>,
    /// Per node in scope, in graph order: ran, failed, skipped or up to date (`--json`).
    pub runs: Vec<RunRecord>,
    /// The plan as records (`--plan --json`); filled for a plan-only run.
    pub planned: Vec<PlanRecord>,
    /// (label, text) of nodes in scope that do not run although something changed (a script
    /// edit: [`crate::plan::notice`]); filled for a plan-only run.
    pub notices: Vec<(String, &'static str)>,
    /// Per planned node: the fact hashes its manifest recorded before this run (empty when it
    /// had none), read with the lock held just before anything ran; not filled for a plan.
    pub facts_before: HashMap<usize, indexmap::IndexMap<String, String>>,
}

/// Runs `generate`. The identities are loaded (`load_ids`) only once the runtime inputs are
/// realised and the sandbox is probed, never for a plan: no key is held by this process while a
/// flake's builder runs (whose environment never holds key material either, see
/// [`crate::child`]).
pub(crate) fn run(
    ws: &Workspace,
    opts: &Options,
    load_ids: impl FnOnce() -> anyhow::Result<Identities>,
) -> anyhow::Result<Report> {
    // Each stored file is read once per phase (the lock taken and every write empty it).
    let _cache = crate::confined::ReadCache::begin(&ws.root);
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let plan = plan(ws, &defs, &graph, &opts.select)?;
    let mut report = Report {
        plan: plan.clone(),
        ..Report::default()
    };
    if opts.plan_only {
        report.planned = record::plan_records(&graph, &plan);
        let (machines, users) = select_targets(ws, &defs, &opts.select.hosts, &opts.select.users)?;
        let planned: std::collections::HashSet<usize> = plan.iter().map(|p| p.node).collect();
        for i in graph.scope_of(&defs, &machines, &users) {
            if !planned.contains(&i)
                && let Some(text) = crate::plan::notice(&ws.root, &graph, i)
            {
                report.notices.push((graph.nodes[i].label(), text));
            }
        }
        return Ok(report);
    }
    let (selected, users) = select_targets(ws, &defs, &opts.select.hosts, &opts.select.users)?;
    // Nothing to run: which secrets files need re-wrapping is read now, while the status
    // pass's files are cached, as the plan was (see `reconcile_recipients`).
    let rewrap_early = plan
        .is_empty()
        .then(|| rewrap_needed(ws, &defs, &graph, (&selected, &users)));
    rotation::guard(ws, &graph, &plan, opts.rotate_host_key)?;
    preflight::check_recipients_available(ws, &defs, &graph, &plan, &selected, &users)?;
    realise_inputs(&graph, &plan)?;
    for p in &plan {
        sandbox::check_runtime_inputs(&graph.nodes[p.node].generator, &p.label)?;
    }
    if !plan.is_empty() && !opts.no_sandbox {
        sandbox::probe_bwrap()?;
    }
    let ids = &load_ids()?;
    let sources = prompts::Sources::new(&opts.prompt_args, opts.prompts_file.as_deref())?;
    answers::check_given(&defs, (&selected, &users), &sources)?;
    let answers = answers::gather_prompts(ws, &graph, &plan, &sources, ids)?;
    // The lock is taken after prompting (a user typing must not block other writers), so the
    // plan is made again under it: another run may have generated some of it meanwhile.
    let _lock = lock::WorkspaceLock::acquire(&ws.root, lock::Mode::Exclusive, "varsmith generate")?;
    store::sweep_stale_temps(&ws.root);
    let mut owed = store::git::owed(ws);
    // With nothing planned there is nothing another run could have made redundant.
    let plan = if plan.is_empty() {
        plan
    } else {
        plan_under_lock(ws, &defs, &graph, &opts.select, &answers)?
    };
    report.plan = plan.clone();
    report.facts_before = facts_before(ws, &graph, &plan);
    if !plan.is_empty() {
        // Before the first write: a run killed before it stages leaves the marker.
        owed = store::git::owe(ws, owed)?;
    }
    let began = rotation::begin(ws, &graph, &plan, opts.rotate_host_key)?;
    execute(ws, &defs, &graph, &plan, &answers, opts, ids, &mut report);
    record_up_to_date(&defs, &graph, (&selected, &users), opts, &mut report);
    let needed = match rewrap_early {
        Some(needed) if plan.is_empty() => needed,
        _ => rewrap_needed(ws, &defs, &graph, (&selected, &users)),
    };
    reconcile_recipients(ws, &defs, &graph, needed, ids, &mut report);
    rotation::settle(ws, &began, ids, &mut report);
    finish(ws, &defs, opts, owed, &mut report);
    Ok(report)
}

/// The fact hashes each planned node's manifest records now (empty without one).
fn facts_before(
    ws: &Workspace,
    graph: &Graph,
    plan: &[Planned],
) -> HashMap<usize, indexmap::IndexMap<String, String>> {
    plan.iter()
        .map(|p| {
            let n = &graph.nodes[p.node];
            let man = store::Manifest::read(
                &ws.root,
                &n.owner.manifest_file(&ws.root, &n.generator.name),
            )
            .ok()
            .flatten();
            (p.node, man.map(|m| m.facts).unwrap_or_default())
        })
        .collect()
}

/// Realises the pinned runtime inputs of every planned Nix generator, in one call.
fn realise_inputs(graph: &Graph, plan: &[Planned]) -> anyhow::Result<()> {
    let inputs: Vec<&crate::workspace::nix::StoreInput> = plan
        .iter()
        .flat_map(|p| {
            let g = &graph.nodes[p.node].generator;
            g.pinned.iter().flatten().chain(&g.script_refs)
        })
        .collect();
    crate::workspace::nix::realise(&inputs).map_err(|e| anyhow::anyhow!(e))
}

/// The plan again, with the lock held; every prompt it needs must have been answered.
fn plan_under_lock(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    select: &Selection,
    answers: &HashMap<usize, store::Files>,
) -> anyhow::Result<Vec<Planned>> {
    let plan = plan(ws, defs, graph, select)?;
    for p in &plan {
        if !graph.nodes[p.node].generator.prompts.is_empty() && !answers.contains_key(&p.node) {
            return Err(crate::UsageError::new(format!(
                "{}: another varsmith changed the workspace while prompts were asked; run generate again",
                p.label
            ))
            .into());
        }
    }
    Ok(plan)
}

/// `.sops.yaml`, the final flush and git staging; each failure is reported, never silent.
///
/// varsmith's `.sops.yaml` rules are brought in line even when nothing ran (a run killed
/// before its last step, or a hand edit), so a rerun always converges to a clean `check`.
///
/// What is written is staged in git; so is every stored file when an earlier run's staging
/// was owed ([`store::git::Owed`]), and a failed staging leaves it owed to the next run.
fn finish(
    ws: &Workspace,
    defs: &Definitions,
    opts: &Options,
    owed: store::git::Owed,
    report: &mut Report,
) {
    match store::sopsconfig::write(ws, defs) {
        Ok(Some(p)) => report.written.push(p),
        Ok(None) => {}
        Err(e) => report
            .failed
            .push((".sops.yaml".into(), Failure::new(e.kind(), e.to_string()))),
    }
    if report.written.is_empty() && owed != store::git::Owed::Everything {
        if owed == store::git::Owed::Written {
            // Nothing written after all: nothing to stage.
            let _ = store::git::settle(ws, owed, &[], false);
        }
        return;
    }
    // Every rename of this run reaches the disk before we report success.
    if !report.written.is_empty()
        && let Err(e) = store::sync_dir_tree(&ws.root)
    {
        report
            .failed
            .push(("sync".into(), Failure::new(e.kind(), e.to_string())));
    }
    if let Err(e) = store::git::settle(ws, owed, &report.written, opts.commit) {
        // Owed to the next run (best effort: this failure is reported either way).
        let _ = store::git::owe(ws, owed);
        report
            .failed
            .push(("git".into(), Failure::new(Kind::Failed, e.to_string())));
    }
}

/// Adds a record for every node in scope that did not run (the selected generators only,
/// when `-g` is given), then sorts the records into graph order.
fn record_up_to_date(
    defs: &Definitions,
    graph: &Graph,
    (machines, users): (&[String], &[String]),
    opts: &Options,
    report: &mut Report,
) {
    let gens = &opts.select.generators;
    let seen: std::collections::HashSet<String> =
        report.runs.iter().map(|r| r.label.clone()).collect();
    for i in graph.scope_of(defs, machines, users) {
        let n = &graph.nodes[i];
        if (gens.is_empty() || gens.contains(&n.generator.name)) && !seen.contains(&n.label()) {
            report.runs.push(RunRecord::new(graph, i, Status::UpToDate));
        }
    }
    let order: HashMap<String, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.label(), i))
        .collect();
    report.runs.sort_by_key(|r| order.get(&r.label).copied());
}

/// Runs the plan in dependency order, scripts at most `jobs` at once.
#[allow(clippy::too_many_arguments)]
fn execute(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    plan: &[Planned],
    answers: &HashMap<usize, store::Files>,
    opts: &Options,
    ids: &Identities,
    report: &mut Report,
) {
    let planned: IndexSet<usize> = plan.iter().map(|p| p.node).collect();
    // Predecessors inside the plan (data and order-only).
    let mut preds: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in &planned {
        let n = &graph.nodes[i];
        let mut ps: Vec<usize> = n.deps.iter().chain(n.after.iter()).copied().collect();
        ps.retain(|p| planned.contains(p));
        ps.sort_unstable();
        ps.dedup();
        preds.insert(i, ps);
    }
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.jobs
    };
    let ctx = node::Ctx {
        ws,
        defs,
        graph,
        opts,
        ids,
    };
    let mut observer = observe::RunObserver::new(Progress::for_stderr(graph, &planned), plan);
    let outcome = scheduler::run(
        &preds,
        jobs,
        &mut observer,
        |i| ctx.prepare(i, answers.get(&i)),
        |_, prepared| node::settle(prepared),
    );
    observer.clear();
    record_outcome(graph, plan, outcome, &observer.took, report);
}

/// Adds the scheduler's outcome to the report: labels, written paths and one record per run
/// (with its reason and duration).
fn record_outcome(
    graph: &Graph,
    plan: &[Planned],
    outcome: scheduler::Outcome<Vec<PathBuf>, Failure>,
    took: &HashMap<usize, std::time::Duration>,
    report: &mut Report,
) {
    let reasons: HashMap<usize, &crate::plan::Reason> =
        plan.iter().map(|p| (p.node, &p.reason)).collect();
    let record = |i: usize, status: Status| {
        let mut r = RunRecord::new(graph, i, status);
        if let Some(reason) = reasons.get(&i) {
            r = r.because(reason);
        }
        r.took_ms = took
            .get(&i)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        r
    };
    for (i, r) in outcome.results {
        let label = graph.nodes[i].label();
        match r {
            Ok(paths) => {
                let mut rec = record(i, Status::Ran);
                rec.files = graph.nodes[i].generator.files.keys().cloned().collect();
                report.runs.push(rec);
                report.done.push(label);
                report.written.extend(paths);
            }
            Err(e) => {
                let mut rec = record(i, Status::Failed);
                rec.error = Some(e.msg.clone());
                report.runs.push(rec);
                report.failed.push((label, e));
            }
        }
    }
    for i in outcome.skipped {
        report.runs.push(record(i, Status::Skipped));
        report.skipped.push(graph.nodes[i].label());
    }
}

/// Each in-scope node, in scope order, with whether any of its secrets files has other
/// recipients than expected (read-only, in parallel; an error is left to `rewrap` to report).
fn rewrap_needed(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    (machines, users): (&[String], &[String]),
) -> Vec<(usize, Result<bool, store::Error>)> {
    let scope: Vec<usize> = graph.scope_of(defs, machines, users).into_iter().collect();
    let needed = crate::plan::par::map_nodes(&scope, |i| {
        let n = &graph.nodes[i];
        store::rewrap::needs_rewrap(ws, defs, &n.owner, &n.generator)
    });
    scope.into_iter().zip(needed).collect()
}

/// Re-wraps the secrets files of the nodes [`rewrap_needed`] found with other recipients
/// than expected (a machine started using a shared generator, a host key was rotated, an
/// admin was added); `rewrap` reads each again under the lock and leaves a file that is
/// already right alone.
///
/// After a run, `needed` is read under the lock, after the run's writes (a new host key
/// changes what its machine's files are encrypted to). When nothing ran it may be read
/// before the lock, as the empty plan was: a node found right then is not looked at again
/// under it. A writer that took the lock in between then counts, for this command, as one
/// that came after it: the next `generate` re-wraps what it changed, and `check` reports it.
fn reconcile_recipients(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    needed: Vec<(usize, Result<bool, store::Error>)>,
    ids: &Identities,
    report: &mut Report,
) {
    for (i, needed) in needed {
        if matches!(needed, Ok(false)) {
            continue;
        }
        let n = &graph.nodes[i];
        match store::rewrap::rewrap(ws, defs, &n.owner, &n.generator, ids) {
            Ok(paths) => {
                for p in paths {
                    let shown = p.strip_prefix(&ws.root).unwrap_or(&p).display().to_string();
                    report.rekeyed.push(shown);
                    report.written.push(p);
                }
            }
            Err(e) => report
                .failed
                .push((n.label(), Failure::new(e.kind(), e.to_string()))),
        }
    }
}
