//! YAML for sops: a reader keeping comments and go-yaml v3 scalar typing, and an emitter
//! matching go-yaml v3's output with indent 4.

mod anchors;
pub mod emit;
mod flow;
pub mod parse;
pub mod resolve;
mod scalar;

pub use emit::{emit, emit_indented};
pub use parse::parse;
