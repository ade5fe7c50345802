//! `varsmith sops encrypt|decrypt`.

use super::core_cmd::Context;
use crate::{CmdResult, SopsCmd};

/// Runs a `sops` subcommand.
pub fn run(_ctx: &Context, _cmd: SopsCmd) -> CmdResult {
    anyhow::bail!("varsmith sops: not built yet")
}
