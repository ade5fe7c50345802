//! Progress of a fleet `generate` on stderr: when stderr is a terminal, one redrawn line
//! (machines done, generators running, failures, [`Progress`]); otherwise (CI, a log file) one
//! line per finished generator ([`Lines`]): `done cinnabar/openssh 0.12s (missing: never
//! generated)`, `failed …` for a run that failed.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};

use indexmap::IndexSet;

use crate::plan::Graph;
use crate::workspace::Owner;

/// Progress state, redrawn on every start and finish.
pub(crate) struct Progress {
    total: usize,
    done: usize,
    failed: usize,
    /// Per machine: planned runs left.
    left: HashMap<String, usize>,
    machines_total: usize,
    machines_done: usize,
    owner_of: HashMap<usize, String>,
}

impl Progress {
    /// A progress display when stderr is a terminal, else `None` (quiet).
    pub(crate) fn for_stderr(graph: &Graph, planned: &IndexSet<usize>) -> Option<Progress> {
        if !std::io::stderr().is_terminal() || planned.is_empty() {
            return None;
        }
        let mut left: HashMap<String, usize> = HashMap::new();
        let mut owner_of = HashMap::new();
        for &i in planned {
            let key = match &graph.nodes[i].owner {
                Owner::Machine(m) => m.clone(),
                Owner::User(_) | Owner::Shared => graph.nodes[i].owner.to_string(),
            };
            *left.entry(key.clone()).or_default() += 1;
            owner_of.insert(i, key);
        }
        Some(Progress {
            total: planned.len(),
            done: 0,
            failed: 0,
            machines_total: left.len(),
            machines_done: 0,
            left,
            owner_of,
        })
    }

    /// A run started.
    pub(crate) fn started(&mut self, running: usize) {
        self.draw(running);
    }

    /// Run `i` finished.
    pub(crate) fn finished(&mut self, i: usize, ok: bool, running: usize) {
        self.done += 1;
        if !ok {
            self.failed += 1;
        }
        if let Some(k) = self.owner_of.get(&i)
            && let Some(n) = self.left.get_mut(k)
        {
            *n -= 1;
            if *n == 0 {
                self.machines_done += 1;
            }
        }
        self.draw(running);
    }

    fn draw(&self, running: usize) {
        let mut e = std::io::stderr().lock();
        let _ = write!(
            e,
            "\r\x1b[2K[{}/{}] machines {}/{} done, {} running, {} failed",
            self.done, self.total, self.machines_done, self.machines_total, running, self.failed
        );
        let _ = e.flush();
    }

    /// Erases the line.
    pub(crate) fn clear(&mut self) {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// One line per finished run on stderr, for logs: `done LABEL 0.12s (REASON)` or
/// `failed LABEL 0.12s (REASON)`. Used when stderr is not a terminal.
pub(crate) struct Lines {
    /// Per planned node: its label and why it runs.
    what: HashMap<usize, (String, String)>,
}

impl Lines {
    /// A line printer when stderr is not a terminal and something is planned, else `None`.
    /// `planned` holds (node, label, reason).
    pub(crate) fn for_stderr(
        planned: impl IntoIterator<Item = (usize, String, String)>,
    ) -> Option<Lines> {
        if std::io::stderr().is_terminal() {
            return None;
        }
        let what: HashMap<usize, (String, String)> = planned
            .into_iter()
            .map(|(i, label, reason)| (i, (label, reason)))
            .collect();
        (!what.is_empty()).then_some(Lines { what })
    }

    /// Run `i` finished after `took`.
    pub(crate) fn finished(&self, i: usize, ok: bool, took: std::time::Duration) {
        let Some((label, reason)) = self.what.get(&i) else {
            return;
        };
        let verb = if ok { "done" } else { "failed" };
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{verb} {label} {:.2}s ({reason})", took.as_secs_f64());
    }
}
