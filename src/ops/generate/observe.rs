//! What `generate` shows while it runs (the progress line on a terminal, a line per finished
//! generator otherwise) and how long each run took, for the report.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::plan::Planned;
use crate::run::progress::{Lines, Progress};
use crate::run::scheduler::Observer;

/// Progress on stderr (bar or lines, see [`crate::run::progress`]) and each run's duration.
pub(super) struct RunObserver {
    bar: Option<Progress>,
    lines: Option<Lines>,
    started: HashMap<usize, Instant>,
    /// Per finished node: from its start to the end of its commit.
    pub took: HashMap<usize, Duration>,
}

impl RunObserver {
    /// The bar when stderr is a terminal, else one line per finished run.
    pub(super) fn new(bar: Option<Progress>, plan: &[Planned]) -> RunObserver {
        let lines = if bar.is_some() {
            None
        } else {
            Lines::for_stderr(
                plan.iter()
                    .map(|p| (p.node, p.label.clone(), p.reason.to_string())),
            )
        };
        RunObserver {
            bar,
            lines,
            started: HashMap::new(),
            took: HashMap::new(),
        }
    }

    /// Erases the progress line, if any.
    pub(super) fn clear(&mut self) {
        if let Some(p) = self.bar.as_mut() {
            p.clear();
        }
    }
}

impl Observer for RunObserver {
    fn started(&mut self, node: usize, running: usize) {
        self.started.insert(node, Instant::now());
        if let Some(p) = self.bar.as_mut() {
            p.started(running);
        }
    }

    fn finished(&mut self, node: usize, ok: bool, running: usize) {
        let took = self
            .started
            .remove(&node)
            .map(|t| t.elapsed())
            .unwrap_or_default();
        self.took.insert(node, took);
        if let Some(p) = self.bar.as_mut() {
            p.finished(node, ok, running);
        }
        if let Some(l) = self.lines.as_ref() {
            l.finished(node, ok, took);
        }
    }
}
