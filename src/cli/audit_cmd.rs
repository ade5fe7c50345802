//! `varsmith audit`: searches the nix store, closures and the repo for leaked secret values.
//!
//! Secrets come from the workspace's sops files (every one the identities can decrypt). For
//! benchmarks and tests without a workspace, the hidden environment variable
//! `VARSMITH_AUDIT_SECRETS_FILE` names a file of `label=hex` lines (`#` comments allowed) that
//! replaces the sops collection; `VARSMITH_AUDIT_NO_SAMPLING=1` turns the prefilters off (the
//! automaton alone) and `VARSMITH_AUDIT_NO_DECOMPRESS=1` the search of compressed files'
//! contents, for comparison in benchmarks; `VARSMITH_AUDIT_MAX_DECOMPRESSED=<bytes>` lowers the
//! decoded bytes searched per file (default 4 GiB), for tests of the bound. None is part of
//! the user-facing interface.
//!
//! Exit status: 0 when the report is clean, 1 when it is not ([`audit::Report::is_clean`]:
//! a leak, a private key, a plaintext sops value, or a partial audit without
//! `--allow-partial`).

use std::path::{Path, PathBuf};

use crate::audit::{self, AuditOptions, Secret, WalkOptions};
use crate::workspace::Workspace;
use anyhow::Context as _;
use zeroize::Zeroizing;

use super::core_cmd::Context;
use crate::cli::args::{AuditArgs, CmdResult};

/// Hidden: a `label=hex` secrets file replacing the sops collection (benchmarks, tests).
const SECRETS_FILE_ENV: &str = "VARSMITH_AUDIT_SECRETS_FILE";
/// The default store directory.
const DEFAULT_STORE: &str = "/nix/store";

/// `varsmith audit`.
pub(super) fn run(ctx: &Context, a: AuditArgs) -> CmdResult {
    let direct = std::env::var_os(SECRETS_FILE_ENV).map(PathBuf::from);
    let root = if a.repo || direct.is_none() {
        Some(Workspace::discover(ctx.dir.as_deref())?.root)
    } else {
        None
    };
    let (secrets, not_readable) = match (&direct, &root) {
        (Some(file), _) => (read_secrets_file(file)?, Vec::new()),
        (None, Some(root)) => {
            let ids = ctx.identities()?;
            let c = audit::collect_secrets(root, &ids)
                .with_context(|| format!("collecting secrets in {}", root.display()))?;
            (c.secrets, c.not_readable)
        }
        (None, None) => unreachable!("root is discovered when no secrets file is given"),
    };
    let store = match (&a.store, a.repo || !a.closure.is_empty()) {
        (Some(s), _) => Some(s.clone()),
        (None, false) => Some(PathBuf::from(DEFAULT_STORE)),
        (None, true) => None,
    };
    let opts = AuditOptions {
        store,
        closure: a.closure.clone(),
        repo: if a.repo { root.clone() } else { None },
        walk: WalkOptions {
            no_decompress: env_flag("VARSMITH_AUDIT_NO_DECOMPRESS"),
            limits: limits(),
            ..WalkOptions::default()
        },
        no_sampling: env_flag("VARSMITH_AUDIT_NO_SAMPLING"),
        no_referrers: false,
        workspace: root,
    };
    let mut report = audit::run(&secrets, &opts).context("audit")?;
    drop(secrets);
    report.not_readable = not_readable;
    report.allow_partial = a.allow_partial;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut out, &report.to_json())?;
        use std::io::Write as _;
        writeln!(out)?;
    } else {
        report.write_human(&mut out)?;
    }
    Ok(if report.is_clean() {
        crate::EXIT_OK
    } else {
        crate::EXIT_PROBLEM
    })
}

/// The layer limits, with `VARSMITH_AUDIT_MAX_DECOMPRESSED` (see the module docs).
fn limits() -> audit::layers::Limits {
    let mut l = audit::layers::Limits::default();
    let max = std::env::var("VARSMITH_AUDIT_MAX_DECOMPRESSED").ok();
    if let Some(n) = max.and_then(|v| v.parse().ok()) {
        l.max_bytes = n;
    }
    l
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// Reads `label=hex` lines.
fn read_secrets_file(path: &Path) -> anyhow::Result<Vec<Secret>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut secrets = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((label, hex)) = line.split_once('=') else {
            anyhow::bail!("{}:{}: expected label=hex", path.display(), n + 1);
        };
        let value = Zeroizing::new(
            hex::decode(hex.trim())
                .map_err(|_| anyhow::anyhow!("{}:{}: bad hex value", path.display(), n + 1))?,
        );
        secrets.push(Secret::new(label.trim(), value));
    }
    Ok(secrets)
}
