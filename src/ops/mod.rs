//! One module per command that works on vars; none imports another.

pub mod check;
pub mod generate;
pub mod rekey;
