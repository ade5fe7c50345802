//! The panic-safe scheduler: runs the nodes of a DAG, each once all its predecessors succeeded,
//! smallest index first among the ready ones. After a failure (or a panic, reported as a
//! failure) everything downstream is skipped; unrelated nodes go on. Whatever a run does, its
//! slot is released, so the scheduler always ends.
//!
//! Each node runs in two phases: `work` (the script; at most `jobs` at once) and `settle` (the
//! durable commit), which runs after the node's slot is released. So the next script starts
//! while the previous one's outputs are flushed to disk, and commits that finish together share
//! one flush (see `store::durable`). A node counts as done, and its dependents become ready,
//! only once `settle` returned.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex};

use indexmap::IndexSet;

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

struct State<'o> {
    ready: BinaryHeap<Reverse<usize>>,
    waiting: HashMap<usize, usize>,
    /// Nodes started and not finished (either phase).
    running: usize,
    /// Free `work` slots.
    slots: usize,
    blocked: IndexSet<usize>,
    observer: &'o mut dyn Observer,
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
    let lock = Mutex::new(state);
    let cv = Condvar::new();
    let results: Mutex<Vec<(usize, Result<T, E>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        // Threads beyond `jobs` carry commits while the slots run the next scripts.
        for _ in 0..(2 * jobs + 1) {
            s.spawn(|| worker(&lock, &cv, &succs, &results, &work, &settle));
        }
    });
    let st = lock.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.0);
    let mut skipped: Vec<usize> = st.blocked.into_iter().collect();
    skipped.sort_unstable();
    Outcome { results, skipped }
}

fn worker<P, T, E, F, S>(
    lock: &Mutex<State<'_>>,
    cv: &Condvar,
    succs: &HashMap<usize, Vec<usize>>,
    results: &Mutex<Vec<(usize, Result<T, E>)>>,
    work: &F,
    settle: &S,
) where
    E: From<String>,
    F: Fn(usize) -> Result<P, E>,
    S: Fn(usize, P) -> Result<T, E>,
{
    let panicked = || E::from("internal error: the run panicked (see above)".to_string());
    while let Some(i) = next(lock, cv) {
        let first = catch_unwind(AssertUnwindSafe(|| work(i))).unwrap_or_else(|_| Err(panicked()));
        release_slot(lock);
        cv.notify_all();
        let res = first.and_then(|p| {
            catch_unwind(AssertUnwindSafe(|| settle(i, p))).unwrap_or_else(|_| Err(panicked()))
        });
        let ok = res.is_ok();
        results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((i, res));
        finish(lock, succs, i, ok);
        cv.notify_all();
    }
    cv.notify_all();
}

/// The next ready node, waiting while others run; `None` when nothing is left.
fn next(lock: &Mutex<State<'_>>, cv: &Condvar) -> Option<usize> {
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if st.slots > 0
            && let Some(Reverse(i)) = st.ready.pop()
        {
            st.slots -= 1;
            st.running += 1;
            let running = st.running;
            st.observer.started(i, running);
            return Some(i);
        }
        if st.running == 0 && st.ready.is_empty() {
            return None;
        }
        st = cv.wait(st).unwrap_or_else(|e| e.into_inner());
    }
}

/// Frees the `work` slot of a node that moves on to `settle`.
fn release_slot(lock: &Mutex<State<'_>>) {
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
    st.slots += 1;
}

/// Node `i` is done; its successors become ready, or are skipped after a failure.
fn finish(lock: &Mutex<State<'_>>, succs: &HashMap<usize, Vec<usize>>, i: usize, ok: bool) {
    let mut st = lock.lock().unwrap_or_else(|e| e.into_inner());
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
