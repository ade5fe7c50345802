//! One module per command that works on vars; none imports another.

pub mod check;
mod check_files;
pub mod check_group;
pub mod generate;
pub mod import;
pub mod rekey;
