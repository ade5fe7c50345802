//! The panic-safe scheduler: runs the nodes of a DAG, each once all its predecessors succeeded,
//! smallest index first among the ready ones. After a failure (or a panic, reported as a
//! failure) everything downstream is skipped; unrelated nodes go on. Whatever a run does, its
//! slot is released, so the scheduler always ends.
//!
//! Each node runs in two phases: `work` (the script; at most `jobs` at once, on `jobs` worker
//! threads) and `settle` (the durable commit), which runs on separate settle threads. A worker
//! hands its prepared node to the settle queue and starts the next script at once, so a slow
//! flush never idles a core; commits that wait together share one flush (see
//! `store::durable`). The queue holds at most [`MAX_PENDING`] prepared nodes (each holds open
//! directories): a worker waits for room rather than piling up. A node counts as done, and its
//! dependents become ready, only once `settle` returned.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex};

use indexmap::IndexSet;

/// Prepared nodes waiting for their commit, at most (workers wait for room beyond it).
const MAX_PENDING: usize = 32;

/// Settle threads: commits in flight at once, all sharing the next flush.
const SETTLERS: usize = 8;

/// Observer of starts and finishes (the progress line, per-run log lines).
pub(crate) trait Observer: Send {
    /// A run started; `running` are in flight now.
    fn started(&mut self, node: usize, running: usize);
    /// A run finished.
    fn finished(&mut self, node: usize, ok: bool, running: usize);
}

/// An observer that does nothing (the unit tests').
#[cfg(test)]
pub(crate) struct Quiet;

#[cfg(test)]
impl Observer for Quiet {
    fn started(&mut self, _: usize, _: usize) {}
    fn finished(&mut self, _: usize, _: bool, _: usize) {}
}

/// What a scheduled run produced: per node, its result; and the nodes skipped.
pub(crate) struct Outcome<T, E> {
    /// (node, result) in node order.
    pub results: Vec<(usize, Result<T, E>)>,
    /// Nodes not run because a predecessor failed, in node order.
    pub skipped: Vec<usize>,
}

struct State<'o, P> {
    ready: BinaryHeap<Reverse<usize>>,
    waiting: HashMap<usize, usize>,
    /// Nodes started and not finished (either phase).
    running: usize,
    /// Free `work` slots.
    slots: usize,
    /// Prepared nodes waiting for a settle thread.
    queue: VecDeque<(usize, P)>,
    blocked: IndexSet<usize>,
    observer: &'o mut dyn Observer,
}

impl<P> State<'_, P> {
    /// Nothing runs, waits or can become ready: every thread may leave.
    fn all_done(&self) -> bool {
        self.running == 0 && self.ready.is_empty()
    }
}

/// The shared state and its two wake-up signals (workers: a slot or a ready node; settlers: a
/// queued node).
struct Shared<'o, P> {
    state: Mutex<State<'o, P>>,
    work_cv: Condvar,
    settle_cv: Condvar,
}

impl<'o, P> Shared<'o, P> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<'o, P>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_all(&self) {
        self.work_cv.notify_all();
        self.settle_cv.notify_all();
    }
}

/// Runs `work` then `settle` on every node of `preds` (node -> its predecessors among the
/// nodes), at most `jobs` `work` calls at once.
pub(crate) fn run<P, T, E, F, S>(
    preds: &HashMap<usize, Vec<usize>>,
    jobs: usize,
    observer: &mut dyn Observer,
    work: F,
    settle: S,
) -> Outcome<T, E>
where
    P: Send,
    T: Send,
    E: Send + From<String>,
    F: Fn(usize) -> Result<P, E> + Sync,
    S: Fn(usize, P) -> Result<T, E> + Sync,
{
    let jobs = jobs.max(1);
    let mut succs: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut state = State {
        ready: BinaryHeap::new(),
        waiting: HashMap::new(),
        running: 0,
        slots: jobs,
        queue: VecDeque::new(),
        blocked: IndexSet::new(),
        observer,
    };
    for (&i, ps) in preds {
        for &p in ps {
            succs.entry(p).or_default().push(i);
        }
        if ps.is_empty() {
            state.ready.push(Reverse(i));
        } else {
            state.waiting.insert(i, ps.len());
        }
    }
    let shared = Shared {
        state: Mutex::new(state),
        work_cv: Condvar::new(),
        settle_cv: Condvar::new(),
    };
    let results: Mutex<Vec<(usize, Result<T, E>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| worker(&shared, &succs, &results, &work));
        }
        for _ in 0..SETTLERS.max(jobs) {
            s.spawn(|| settler(&shared, &succs, &results, &settle));
        }
    });
    let st = shared.state.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.0);
    let mut skipped: Vec<usize> = st.blocked.into_iter().collect();
    skipped.sort_unstable();
    Outcome { results, skipped }
}

fn panicked<E: From<String>>() -> E {
    E::from("internal error: the run panicked (see above)".to_string())
}

/// Takes ready nodes, runs their `work` and queues what it prepared for a settle thread.
fn worker<P, T, E, F>(
    shared: &Shared<'_, P>,
    succs: &HashMap<usize, Vec<usize>>,
    results: &Mutex<Vec<(usize, Result<T, E>)>>,
    work: &F,
) where
    E: From<String>,
    F: Fn(usize) -> Result<P, E>,
{
    while let Some(i) = next(shared) {
        let first = catch_unwind(AssertUnwindSafe(|| work(i))).unwrap_or_else(|_| Err(panicked()));
        match first {
            Ok(p) => {
                let mut st = shared.lock();
                st.slots += 1;
                st.queue.push_back((i, p));
                drop(st);
                shared.settle_cv.notify_one();
            }
            Err(e) => {
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, Err(e)));
                let mut st = shared.lock();
                st.slots += 1;
                finish(&mut st, succs, i, false);
            }
        }
        shared.wake_all();
    }
    shared.wake_all();
}

/// Commits queued nodes; a node's successors become ready once its commit returned.
fn settler<P, T, E, S>(
    shared: &Shared<'_, P>,
    succs: &HashMap<usize, Vec<usize>>,
    results: &Mutex<Vec<(usize, Result<T, E>)>>,
    settle: &S,
) where
    E: From<String>,
    S: Fn(usize, P) -> Result<T, E>,
{
    loop {
        let (i, p) = {
            let mut st = shared.lock();
            loop {
                if let Some(item) = st.queue.pop_front() {
                    break item;
                }
                if st.all_done() {
                    return;
                }
                st = shared.settle_cv.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        };
        // Room in the queue again.
        shared.work_cv.notify_all();
        let res =
            catch_unwind(AssertUnwindSafe(|| settle(i, p))).unwrap_or_else(|_| Err(panicked()));
        let ok = res.is_ok();
        results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, res));
        finish(&mut shared.lock(), succs, i, ok);
        shared.wake_all();
    }
}

/// The next ready node, waiting while others run or while the settle queue is full; `None`
/// when nothing is left.
fn next<P>(shared: &Shared<'_, P>) -> Option<usize> {
    let mut st = shared.lock();
    loop {
        if st.slots > 0
            && st.queue.len() < MAX_PENDING
            && let Some(Reverse(i)) = st.ready.pop()
        {
            st.slots -= 1;
            st.running += 1;
            let running = st.running;
            st.observer.started(i, running);
            return Some(i);
        }
        if st.all_done() {
            return None;
        }
        st = shared.work_cv.wait(st).unwrap_or_else(|e| e.into_inner());
    }
}

/// Node `i` is done; its successors become ready, or are skipped after a failure.
fn finish<P>(st: &mut State<'_, P>, succs: &HashMap<usize, Vec<usize>>, i: usize, ok: bool) {
    st.running -= 1;
    let running = st.running;
    st.observer.finished(i, ok, running);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_run_fails_its_node_and_skips_dependents_without_hanging() {
        // 0 -> 1 -> 2, and 3 independent; node 1 panics.
        let preds: HashMap<usize, Vec<usize>> =
            [(0, vec![]), (1, vec![0]), (2, vec![1]), (3, vec![])]
                .into_iter()
                .collect();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = run(
            &preds,
            2,
            &mut Quiet,
            |i| {
                if i == 1 {
                    panic!("boom");
                }
                Ok::<usize, String>(i)
            },
            |_, p| Ok(p),
        );
        std::panic::set_hook(prev);
        let ok: Vec<usize> = out
            .results
            .iter()
            .filter(|r| r.1.is_ok())
            .map(|r| r.0)
            .collect();
        assert_eq!(ok, vec![0, 3]);
        assert!(out.results.iter().any(|r| r.0 == 1 && r.1.is_err()));
        assert_eq!(out.skipped, vec![2]);
    }
}

#[cfg(test)]
mod limits {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_jobs_works_at_once_and_settles_overlap() {
        let preds: HashMap<usize, Vec<usize>> = (0..40).map(|i| (i, vec![])).collect();
        let (now, max) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = run(
            &preds,
            3,
            &mut Quiet,
            |i| {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                std::thread::yield_now();
                now.fetch_sub(1, Ordering::SeqCst);
                Ok::<usize, String>(i)
            },
            |_, p| Ok(p * 2),
        );
        assert!(max.load(Ordering::SeqCst) <= 3);
        assert_eq!(out.results.len(), 40);
        assert!(
            out.results
                .iter()
                .all(|(i, r)| r.as_ref().ok() == Some(&(i * 2)))
        );
    }
}

#[cfg(test)]
mod settle_threads {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Every commit waits until every script ran: with one work slot, that only ends if the
    /// commits never hold the slot (the old design, where a worker carried its own commit,
    /// ran out of threads here). A commit gives up after a minute rather than hang the suite.
    #[test]
    fn commits_in_flight_never_hold_a_work_slot() {
        let n = 20; // below SETTLERS + MAX_PENDING: every prepared node fits in flight.
        let preds: HashMap<usize, Vec<usize>> = (0..n).map(|i| (i, vec![])).collect();
        let worked = Mutex::new(0usize);
        let all_worked = Condvar::new();
        let out = run(
            &preds,
            1,
            &mut Quiet,
            |i| {
                *worked.lock().unwrap() += 1;
                all_worked.notify_all();
                Ok::<usize, String>(i)
            },
            |_, p| {
                let g = worked.lock().unwrap();
                let (g, timeout) = all_worked
                    .wait_timeout_while(g, std::time::Duration::from_secs(60), |w| *w < n)
                    .unwrap();
                drop(g);
                if timeout.timed_out() {
                    Err("a commit waited for a script that never ran".to_string())
                } else {
                    Ok(p)
                }
            },
        );
        assert_eq!(out.results.len(), n);
        assert!(out.results.iter().all(|r| r.1.is_ok()));
    }

    /// Prepared nodes waiting for a commit stay bounded: slow commits hold the scripts back
    /// instead of piling up open directories.
    #[test]
    fn prepared_nodes_waiting_for_a_commit_are_bounded() {
        let n = 200;
        let preds: HashMap<usize, Vec<usize>> = (0..n).map(|i| (i, vec![])).collect();
        let (pending, max) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let out = run(
            &preds,
            2,
            &mut Quiet,
            |i| {
                let now = pending.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                Ok::<usize, String>(i)
            },
            |_, p| {
                std::thread::yield_now();
                pending.fetch_sub(1, Ordering::SeqCst);
                Ok(p)
            },
        );
        assert_eq!(out.results.len(), n);
        // Queued, being committed by a settle thread, or just prepared by a worker.
        assert!(max.load(Ordering::SeqCst) <= MAX_PENDING + SETTLERS + 2);
    }
}
