//! Orchestration of `varsmith generate`: plan what runs and why, gather prompts, run the
//! generators in dependency order with `--jobs` workers, commit each run's outputs, re-wrap
//! files whose recipients changed, and regenerate `.sops.yaml`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use indexmap::{IndexMap, IndexSet};

use crate::UsageError;
use crate::keys::Identities;
use crate::plan::{Graph, NEVER_GENERATED, Reason, status};
use crate::run::prompts;
use crate::run::sandbox::{self, RunSpec};
use crate::store::{self, Commit, Files, Manifest, Owner};
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, Workspace};

/// Options of one `generate` invocation.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Machines (empty: all).
    pub hosts: Vec<String>,
    /// Only these generators (and what depends on them).
    pub generators: Vec<String>,
    /// Rerun the selected generators even when up to date.
    pub regenerate: bool,
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
}

/// One planned run.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Node index in the graph.
    pub node: usize,
    /// `machine/generator` or `shared/generator`.
    pub label: String,
    /// Why it runs.
    pub reason: Reason,
}

/// What `generate` did.
#[derive(Debug, Default)]
pub struct Report {
    /// The plan, in graph order.
    pub plan: Vec<Planned>,
    /// Labels of generators that ran and were stored.
    pub done: Vec<String>,
    /// (label, error message) of generators that failed.
    pub failed: Vec<(String, String)>,
    /// Labels skipped because a dependency failed.
    pub skipped: Vec<String>,
    /// Secrets files re-wrapped for new recipients.
    pub rekeyed: Vec<String>,
    /// Every path written.
    pub written: Vec<PathBuf>,
}

/// Resolves the machine list: the given ones (each must exist) or all.
pub fn select_machines(ws: &Workspace, hosts: &[String]) -> Result<Vec<String>, UsageError> {
    if hosts.is_empty() {
        return Ok(ws.inventory.machines.keys().cloned().collect());
    }
    for h in hosts {
        if !ws.inventory.machines.contains_key(h) {
            return Err(UsageError::new(format!(
                "unknown machine {h:?} (not in {})",
                ws.root.join(crate::workspace::INVENTORY_FILE).display()
            )));
        }
    }
    Ok(hosts.to_vec())
}

/// Computes what runs and why.
pub fn plan(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    opts: &Options,
) -> Result<Vec<Planned>, UsageError> {
    let machines = select_machines(ws, &opts.hosts)?;
    for g in &opts.generators {
        if !graph.nodes.iter().any(|n| &n.generator.name == g) {
            return Err(UsageError::new(format!(
                "generator {g:?} is not used by any machine"
            )));
        }
    }
    let scope = graph.scope(defs, &machines);
    let selected = |i: usize| {
        opts.generators.is_empty() || opts.generators.contains(&graph.nodes[i].generator.name)
    };
    let mut reasons: IndexMap<usize, Reason> = IndexMap::new();
    for &i in &scope {
        if !selected(i) {
            continue;
        }
        if opts.regenerate {
            reasons.insert(i, Reason::Forced);
        } else if let Some(r) = status(&ws.root, graph, i) {
            reasons.insert(i, r);
        }
    }
    // Dependencies that are not in a usable state must run first.
    let mut stack: Vec<usize> = reasons.keys().copied().collect();
    while let Some(i) = stack.pop() {
        for &d in &graph.nodes[i].deps {
            if !reasons.contains_key(&d)
                && let Some(r) = status(&ws.root, graph, d)
            {
                reasons.insert(d, r);
                stack.push(d);
            }
        }
    }
    // Everything depending on a node that runs, across machines.
    let dependents = graph.dependents();
    let mut stack: Vec<usize> = reasons.keys().copied().collect();
    while let Some(i) = stack.pop() {
        for &d in &dependents[i] {
            if reasons.contains_key(&d) {
                continue;
            }
            // Machines outside the selection are only updated, never generated for the first
            // time (their own host key may not exist yet).
            let outside = match &graph.nodes[d].owner {
                Owner::Machine(m) => !machines.contains(m),
                Owner::Shared => false,
            };
            if outside
                && matches!(
                    status(&ws.root, graph, d),
                    Some(Reason::Missing(ref w)) if w == NEVER_GENERATED
                )
            {
                continue;
            }
            reasons.insert(d, Reason::DependencyRuns(graph.nodes[i].label()));
            stack.push(d);
        }
    }
    let mut out: Vec<Planned> = reasons
        .into_iter()
        .map(|(node, reason)| Planned {
            node,
            label: graph.nodes[node].label(),
            reason,
        })
        .collect();
    out.sort_by_key(|p| p.node);
    Ok(out)
}

/// Checks before anything runs that every machine getting deployed secrets has a host key.
fn check_recipients_available(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    plan: &[Planned],
    selected: &[String],
) -> Result<(), UsageError> {
    let planned: IndexSet<usize> = plan.iter().map(|p| p.node).collect();
    for p in plan {
        let n = &graph.nodes[p.node];
        if !n.generator.has_deployed_secrets() || n.generator.name == HOST_KEY_GENERATOR {
            continue;
        }
        let machines: Vec<String> = match &n.owner {
            Owner::Machine(m) => vec![m.clone()],
            // Machines outside this run that have no key yet are added to the shared file
            // when their host key is generated (recipients are reconciled at the end).
            Owner::Shared => defs
                .machines
                .iter()
                .filter(|(m, g)| g.contains_key(&n.generator.name) && selected.contains(*m))
                .map(|(m, _)| m.clone())
                .collect(),
        };
        for m in machines {
            let hk = graph.find(&Owner::Machine(m.clone()), HOST_KEY_GENERATOR);
            let has_key = hk.is_some_and(|h| planned.contains(&h))
                || !store::host_recipients(&ws.root, &m)
                    .unwrap_or_default()
                    .is_empty();
            if !has_key {
                return Err(UsageError::new(format!(
                    "machine {m}, generator {}: the machine has no host key to encrypt to; add the openssh generator to it or write sops/machines/{m}/key.json",
                    n.generator.name
                )));
            }
        }
    }
    Ok(())
}

/// Gathers every prompt answer of the planned runs, before any script runs.
fn gather_prompts(
    ws: &Workspace,
    graph: &Graph,
    plan: &[Planned],
    sources: &prompts::Sources,
    ids: &Identities,
) -> Result<HashMap<usize, Files>, UsageError> {
    let mut out: HashMap<usize, Files> = HashMap::new();
    let mut missing = Vec::new();
    for p in plan {
        let n = &graph.nodes[p.node];
        let g = &n.generator;
        if g.prompts.is_empty() {
            continue;
        }
        // Previously persisted answers (admins-only secrets of the same name).
        let previous: Files = if g.prompts.values().any(|x| x.persist) {
            store::read_outputs(&ws.root, &n.owner, g, ids).unwrap_or_default()
        } else {
            Files::new()
        };
        let mut answers = Files::new();
        for (name, prompt) in &g.prompts {
            if let Some(v) = sources.lookup(&g.name, name) {
                answers.insert(name.clone(), v);
            } else if let Some(v) = previous.get(name).filter(|_| prompt.persist) {
                answers.insert(name.clone(), v.clone());
            } else {
                match prompts::ask_terminal(&p.label, name, g) {
                    Some(Ok(mut a)) => {
                        if let Some(v) = a.shift_remove(name) {
                            answers.insert(name.clone(), v);
                        }
                    }
                    Some(Err(e)) => return Err(UsageError::new(e)),
                    None => missing.push(format!(
                        "{} prompt {name} (--prompt {}.{name}=@FILE or {})",
                        p.label,
                        g.name,
                        prompts::env_name(&g.name, name)
                    )),
                }
            }
        }
        out.insert(p.node, answers);
    }
    if !missing.is_empty() {
        return Err(UsageError::new(format!(
            "no terminal to ask and no value given for:\n  {}",
            missing.join("\n  ")
        )));
    }
    Ok(out)
}

/// Runs `generate`.
pub fn run(ws: &Workspace, opts: &Options, ids: &Identities) -> anyhow::Result<Report> {
    let defs = ws.definitions()?;
    let graph = Graph::build(&defs);
    let plan = plan(ws, &defs, &graph, opts)?;
    let mut report = Report {
        plan: plan.clone(),
        ..Report::default()
    };
    if opts.plan_only {
        return Ok(report);
    }
    check_recipients_available(ws, &defs, &graph, &plan, &select_machines(ws, &opts.hosts)?)?;
    for p in &plan {
        let n = &graph.nodes[p.node];
        sandbox::check_runtime_inputs(&n.generator, &p.label)?;
    }
    if !plan.is_empty() && !opts.no_sandbox {
        sandbox::probe_bwrap()?;
    }
    sandbox::sweep_stale_run_dirs();
    store::sweep_stale_temps(&store::temp_dir(&ws.root));
    let sources = prompts::Sources::new(&opts.prompt_args, opts.prompts_file.as_deref())?;
    let answers = gather_prompts(ws, &graph, &plan, &sources, ids)?;
    execute(ws, &defs, &graph, &plan, &answers, opts, ids, &mut report);
    reconcile_recipients(ws, &defs, &graph, opts, ids, &mut report);
    if !report.written.is_empty() {
        // Every rename of this run reaches the disk before we report success.
        if let Err(e) = store::sync_dir_tree(&ws.root) {
            report.failed.push(("sync".into(), e.to_string()));
        }
    }
    if !report.written.is_empty() {
        if let Ok(p) = crate::store::sopsconfig::write(ws, &defs) {
            report.written.push(p);
        }
        crate::store::git::stage(ws, &report.written, opts.commit);
    }
    Ok(report)
}

/// One finished run: node index and the paths written, or the error.
type NodeResult = (usize, Result<Vec<PathBuf>, String>);

struct Shared {
    ready: BinaryHeap<Reverse<usize>>,
    waiting: HashMap<usize, usize>,
    running: usize,
    blocked: IndexSet<usize>,
    progress: Option<crate::run::progress::Progress>,
}

/// Runs the plan with `jobs` workers, in dependency order.
#[allow(clippy::too_many_arguments)]
fn execute(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    plan: &[Planned],
    answers: &HashMap<usize, Files>,
    opts: &Options,
    ids: &Identities,
    report: &mut Report,
) {
    let planned: IndexSet<usize> = plan.iter().map(|p| p.node).collect();
    // Predecessors inside the plan (data and order-only).
    let mut preds: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut succs: HashMap<usize, Vec<usize>> = HashMap::new();
    for &i in &planned {
        let n = &graph.nodes[i];
        let mut ps: Vec<usize> = n.deps.iter().chain(n.after.iter()).copied().collect();
        ps.retain(|p| planned.contains(p));
        ps.dedup();
        for &p in &ps {
            succs.entry(p).or_default().push(i);
        }
        preds.insert(i, ps);
    }
    let mut state = Shared {
        ready: BinaryHeap::new(),
        waiting: HashMap::new(),
        running: 0,
        blocked: IndexSet::new(),
        progress: crate::run::progress::Progress::for_stderr(graph, &planned),
    };
    for &i in &planned {
        let c = preds[&i].len();
        if c == 0 {
            state.ready.push(Reverse(i));
        } else {
            state.waiting.insert(i, c);
        }
    }
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.jobs
    };
    let lock = Mutex::new(state);
    let cv = Condvar::new();
    let results: Mutex<Vec<NodeResult>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let next = {
                        let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                        loop {
                            if let Some(Reverse(i)) = st.ready.pop() {
                                st.running += 1;
                                let running = st.running;
                                if let Some(p) = st.progress.as_mut() {
                                    p.started(running);
                                }
                                break Some(i);
                            }
                            if st.running == 0 {
                                break None;
                            }
                            st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    let Some(i) = next else {
                        cv.notify_all();
                        return;
                    };
                    let res = run_node(ws, defs, graph, i, answers.get(&i), opts, ids);
                    let ok = res.is_ok();
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, res));
                    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
                    st.running -= 1;
                    let running = st.running;
                    if let Some(p) = st.progress.as_mut() {
                        p.finished(i, ok, running);
                    }
                    // Successors become ready; after a failure, everything downstream is
                    // skipped (but unrelated generators go on).
                    let mut stack = vec![(i, ok)];
                    while let Some((j, ok)) = stack.pop() {
                        for &k in succs.get(&j).map(|v| v.as_slice()).unwrap_or(&[]) {
                            if !ok || st.blocked.contains(&j) {
                                if st.blocked.insert(k) {
                                    st.waiting.remove(&k);
                                    stack.push((k, false));
                                }
                                continue;
                            }
                            if let Some(c) = st.waiting.get_mut(&k) {
                                *c -= 1;
                                if *c == 0 {
                                    st.waiting.remove(&k);
                                    if !st.blocked.contains(&k) {
                                        st.ready.push(Reverse(k));
                                    }
                                }
                            }
                        }
                    }
                    drop(st);
                    cv.notify_all();
                }
            });
        }
    });
    let mut st = lock.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = st.progress.as_mut() {
        p.clear();
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.0);
    for (i, r) in results {
        let label = graph.nodes[i].label();
        match r {
            Ok(paths) => {
                report.done.push(label);
                report.written.extend(paths);
            }
            Err(e) => report.failed.push((label, e)),
        }
    }
    for i in st.blocked {
        report.skipped.push(graph.nodes[i].label());
    }
}

/// Runs one node: inputs from its dependencies, the sandboxed script, then the commit.
fn run_node(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    i: usize,
    answers: Option<&Files>,
    opts: &Options,
    ids: &Identities,
) -> Result<Vec<PathBuf>, String> {
    let n = &graph.nodes[i];
    let g = &n.generator;
    let label = n.label();
    let mut inputs: IndexMap<String, Files> = IndexMap::new();
    let mut dep_runs = IndexMap::new();
    for &d in &n.deps {
        let dn = &graph.nodes[d];
        let files = store::read_outputs(&ws.root, &dn.owner, &dn.generator, ids)
            .map_err(|e| format!("{label}: reading dependency {}: {e}", dn.label()))?;
        let man = Manifest::read(&dn.owner.manifest_file(&ws.root, &dn.generator.name))
            .map_err(|e| format!("{label}: {e}"))?
            .ok_or_else(|| format!("{label}: dependency {} has no outputs", dn.label()))?;
        dep_runs.insert(dn.generator.name.clone(), man.run);
        inputs.insert(dn.generator.name.clone(), files);
    }
    let empty = Files::new();
    let prompts = answers.unwrap_or(&empty);
    let spec = RunSpec {
        generator: g,
        machine: n.owner.machine(),
        inputs: &inputs,
        prompts,
        sandbox: !opts.no_sandbox,
    };
    let mut outputs = sandbox::run(&spec).map_err(|e| e.to_string())?;
    // Persisted prompts become outputs of the same name.
    for (name, p) in &g.prompts {
        if p.persist
            && let Some(v) = prompts.get(name)
        {
            outputs.insert(name.clone(), v.clone());
        }
    }
    let mut written = Vec::new();
    let recipients = if g.name == HOST_KEY_GENERATOR {
        let mut r: Vec<String> = Vec::new();
        if let Some(pubkey) = outputs.get(crate::workspace::HOST_KEY_PUB)
            && let Ok(a) = crate::keys::ssh_to_age::public_to_age(&String::from_utf8_lossy(pubkey))
        {
            r.push(a);
        }
        r.extend(ws.inventory.admins.values().cloned());
        r
    } else {
        store::expected_recipients(ws, defs, &n.owner, &g.name, false)
            .map_err(|e| format!("{label}: {e}"))?
    };
    let admin_recipients = store::expected_recipients(ws, defs, &n.owner, &g.name, true)
        .map_err(|e| format!("{label}: {e}"))?;
    if admin_recipients.is_empty() && g.files.values().any(|f| f.secret) {
        return Err(format!(
            "{label}: no admins in varsmith.yaml to encrypt secrets to (varsmith admin add NAME age1…)"
        ));
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
    let (_, paths) = store::commit(&ws.root, &c).map_err(|e| format!("{label}: {e}"))?;
    written.extend(paths);
    if g.name == HOST_KEY_GENERATOR
        && let Owner::Machine(m) = &n.owner
    {
        write_host_key_json(ws, m).map_err(|e| format!("{label}: {e}"))?;
        written.push(store::host_key_json(&ws.root, m));
    }
    Ok(written)
}

/// Writes `sops/machines/<host>/key.json` from the host key fact.
pub fn write_host_key_json(ws: &Workspace, host: &str) -> Result<(), store::Error> {
    let pub_path = Owner::Machine(host.to_string())
        .facts_dir(&ws.root, HOST_KEY_GENERATOR)
        .join(crate::workspace::HOST_KEY_PUB);
    let line = std::fs::read_to_string(&pub_path).map_err(|source| store::Error::Io {
        path: pub_path.clone(),
        source,
    })?;
    let r = crate::keys::ssh_to_age::public_to_age(&line).map_err(|e| store::Error::Malformed {
        path: pub_path.clone(),
        msg: e.to_string(),
    })?;
    let mut json = serde_json::to_vec_pretty(&[store::KeyJsonEntry {
        publickey: r,
        kind: "age".into(),
    }])
    .unwrap_or_default();
    json.push(b'\n');
    store::write_atomic(&ws.root, &store::host_key_json(&ws.root, host), &json)
}

/// Re-wraps in-scope secrets files whose recipients differ from the expected set (a machine
/// started using a shared generator, a host key was rotated, an admin was added).
fn reconcile_recipients(
    ws: &Workspace,
    defs: &Definitions,
    graph: &Graph,
    opts: &Options,
    ids: &Identities,
    report: &mut Report,
) {
    let Ok(machines) = select_machines(ws, &opts.hosts) else {
        return;
    };
    let scope = graph.scope(defs, &machines);
    for i in scope {
        let n = &graph.nodes[i];
        match crate::ops::rekey::rekey_node(ws, defs, n, ids) {
            Ok(paths) => {
                for p in paths {
                    report
                        .rekeyed
                        .push(p.strip_prefix(&ws.root).unwrap_or(&p).display().to_string());
                    report.written.push(p);
                }
            }
            Err(e) => report.failed.push((n.label(), e.to_string())),
        }
    }
}
