//! What runs and why: the DAG over (owner, generator) with fingerprints and each node's status
//! on disk ([`graph`]), and the plan of one `generate` ([`select`]).

pub(crate) mod graph;
pub(crate) mod par;
pub(crate) mod select;

pub(crate) use graph::*;
pub(crate) use select::{Planned, Selection, plan, select_targets, select_users};
