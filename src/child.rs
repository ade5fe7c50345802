//! Child processes that are not sandboxed generators: `nix`, `nix-store`, `git`, `ssh`, the
//! deploy tools, `bwrap` itself, `$EDITOR`.
//!
//! Invariant: every such child is built by [`command`], so its environment holds no key
//! material: none of [`KEY_VARS`] (sops' age identity sources) and no `VARSMITH_PROMPT_*`
//! prompt answer. Everything else is inherited unchanged (`PATH`, `HOME`, `SSH_AUTH_SOCK`,
//! `NIX_*`, …). A hostile flake's builder (a fixed-output derivation with
//! `impureEnvVars = [ "SOPS_AGE_KEY" ]`, run through import-from-derivation or as a runtime
//! input) therefore never sees the admin's key. Generator scripts get a cleared environment
//! (see [`crate::run::bwrap`]); they never go through here.

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// The environment variables through which sops (and varsmith) find an age identity.
pub(crate) const KEY_VARS: &[&str] = &[
    "SOPS_AGE_KEY",
    "SOPS_AGE_KEY_FILE",
    "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
    "SOPS_AGE_KEY_CMD",
];

/// Prefix of the prompt answers given in the environment (see [`crate::run::prompts`]).
pub(crate) const PROMPT_PREFIX: &str = "VARSMITH_PROMPT_";

/// Is `name` an environment variable no child may inherit?
pub(crate) fn is_key_material(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    KEY_VARS.iter().any(|k| k.as_bytes() == bytes) || bytes.starts_with(PROMPT_PREFIX.as_bytes())
}

/// `Command::new(program)` with every key-material variable of this process removed from the
/// child's environment (the rest is inherited).
pub(crate) fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    scrub(&mut cmd);
    cmd
}

/// Removes every key-material variable of this process from `cmd`'s environment.
pub(crate) fn scrub(cmd: &mut Command) {
    for name in key_material_names() {
        cmd.env_remove(name);
    }
}

/// The names of this process's key-material variables.
fn key_material_names() -> Vec<OsString> {
    let mut names: Vec<OsString> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| is_key_material(k))
        .collect();
    // Also the fixed names when unset here: nothing another thread sets later leaks either.
    names.extend(KEY_VARS.iter().map(OsString::from));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_is_recognised() {
        for k in [
            "SOPS_AGE_KEY",
            "SOPS_AGE_KEY_FILE",
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
            "SOPS_AGE_KEY_CMD",
            "VARSMITH_PROMPT_X_Y",
        ] {
            assert!(is_key_material(OsStr::new(k)), "{k}");
        }
        for k in ["SOPS_AGE_RECIPIENTS", "PATH", "HOME", "VARSMITH_NIX_FLAGS"] {
            assert!(!is_key_material(OsStr::new(k)), "{k}");
        }
    }

    #[test]
    fn scrubbed_command_lists_every_key_var_as_removed() {
        let cmd = command("true");
        let removed: Vec<&OsStr> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k)
            .collect();
        for k in KEY_VARS {
            assert!(removed.contains(&OsStr::new(k)), "{k}: {removed:?}");
        }
    }
}
