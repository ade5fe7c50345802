//! `varsmith audit`.

use super::core_cmd::Context;
use crate::{AuditArgs, CmdResult};

/// `varsmith audit`.
pub fn run(_ctx: &Context, _a: AuditArgs) -> CmdResult {
    anyhow::bail!("audit: not built yet")
}
