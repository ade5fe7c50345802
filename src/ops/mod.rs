//! One module per command that works on the workspace (the CLI parses, calls one of these,
//! prints); none imports another except `inventory`, the `varsmith.yaml` reader and writer of
//! `admin` and `machine`.

pub(crate) mod admin;
pub(crate) mod check;
mod check_files;
pub(crate) mod check_group;
pub(crate) mod generate;
pub(crate) mod import;
mod inventory;
pub(crate) mod machine;
pub(crate) mod rekey;
