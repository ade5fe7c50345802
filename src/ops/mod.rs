//! One module per command that works on vars; none imports another.

pub(crate) mod check;
mod check_files;
pub(crate) mod check_group;
pub(crate) mod generate;
pub(crate) mod import;
pub(crate) mod rekey;
