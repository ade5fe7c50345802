//! YAML for sops: a reader keeping comments and go-yaml v3 scalar typing, and an emitter
//! matching go-yaml v3's output with indent 4.

mod anchors;
pub(crate) mod emit;
mod flow;
pub(crate) mod parse;
pub(crate) mod resolve;
mod scalar;

pub(crate) use emit::{emit, emit_indented};
pub(crate) use parse::parse;
