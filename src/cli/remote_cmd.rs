//! `varsmith push-keys`, `bootstrap` and `deploy`.

use super::core_cmd::Context;
use crate::{BootstrapArgs, CmdResult, DeployArgs, PushKeysArgs};

/// `varsmith push-keys`.
pub fn push_keys(_ctx: &Context, _a: PushKeysArgs) -> CmdResult {
    anyhow::bail!("push-keys: not built yet")
}

/// `varsmith bootstrap`.
pub fn bootstrap(_ctx: &Context, _a: BootstrapArgs) -> CmdResult {
    anyhow::bail!("bootstrap: not built yet")
}

/// `varsmith deploy`.
pub fn deploy(_ctx: &Context, _a: DeployArgs) -> CmdResult {
    anyhow::bail!("deploy: not built yet")
}
