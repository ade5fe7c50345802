//! What runs and why: the DAG over (owner, generator) with fingerprints ([`graph`]), each
//! node's status on disk, and the plan of one `generate`.

pub mod graph;

pub use graph::*;
