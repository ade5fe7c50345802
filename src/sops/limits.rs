//! Resource limits shared by every sops parser (YAML, JSON, dotenv, `.sops.yaml`).
//!
//! Invariants: no input can make a parser recurse deeper than [`MAX_DEPTH`] levels or make
//! alias expansion produce more than [`MAX_ALIAS_EXPANSION`] nodes plus string bytes; inputs
//! breaking either are refused as malformed (exit 2) with a message naming the file, never
//! by a stack overflow, an abort or an unbounded allocation. Parsing work is linear in the
//! input size (no rescanning of gathered lines).

/// Deepest nesting of mappings and lists a file may have (block and flow styles counted
/// together). sops files are shallow; go-yaml's own limit (10,000) would overflow our stack
/// in debug builds long before it is reached.
pub(crate) const MAX_DEPTH: usize = 200;

/// The most work alias expansion may do: every node an alias copies counts 1, every byte of a
/// copied string counts 1. A YAML "billion laughs" exceeds it after a few levels.
pub(crate) const MAX_ALIAS_EXPANSION: usize = 4 * 1024 * 1024;

/// Default cap on the size of a file the `varsmith sops` commands read (input files,
/// stdin, an edited temp file): 256 MiB. Override with `VARSMITH_SOPS_MAX_INPUT` (bytes).
pub(crate) const DEFAULT_MAX_INPUT: u64 = 256 * 1024 * 1024;

/// The size of a value for the alias budget: nodes plus string bytes.
pub(crate) fn weight(v: &super::tree::Value) -> usize {
    use super::tree::{Key, Value};
    match v {
        Value::Map(m) => m.0.iter().fold(1, |acc, (k, v)| {
            let k = match k {
                Key::Str(s) | Key::Comment(s) => s.len(),
            };
            acc.saturating_add(k).saturating_add(weight(v))
        }),
        Value::Seq(items) => items.iter().fold(1, |acc, v| acc.saturating_add(weight(v))),
        Value::Str(b) => 1 + b.as_slice().len(),
        Value::Comment(c) | Value::Time(c) => 1 + c.len(),
        _ => 1,
    }
}
