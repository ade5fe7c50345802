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
    let root = if a.repo || direct.is_none() || !a.users.is_empty() {
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
    let (secrets, not_readable, templates) = match &root {
        Some(root) if !a.users.is_empty() => {
            let scope = user_scope(root, &a.users)?;
            let keep = |label: &str| scope.0.iter().any(|p| label.starts_with(p.as_str()));
            let secrets: Vec<Secret> = secrets.into_iter().filter(|s| keep(&s.label)).collect();
            let not_readable = not_readable
                .into_iter()
                .filter(|(rel, _)| scope.1.iter().any(|p| rel.starts_with(p.as_str())))
                .collect();
            (secrets, not_readable, scope.2)
        }
        _ => (secrets, not_readable, Vec::new()),
    };
    let store = match (&a.store, a.repo || !a.closure.is_empty()) {
        (Some(s), _) => Some(s.clone()),
        (None, false) => Some(PathBuf::from(DEFAULT_STORE)),
        (None, true) => None,
    };
    let mut closure = a.closure.clone();
    closure.extend(templates.iter().flat_map(|t| t.paths()));
    let opts = AuditOptions {
        store,
        closure,
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
        let mut json = report.to_json();
        if !a.users.is_empty() {
            json["templates"] = template_json(&report, &templates);
        }
        serde_json::to_writer_pretty(&mut out, &json)?;
        use std::io::Write as _;
        writeln!(out)?;
    } else {
        report.write_human(&mut out)?;
        write_templates(&mut out, &report, &templates)?;
    }
    Ok(if report.is_clean() {
        crate::EXIT_OK
    } else {
        crate::EXIT_PROBLEM
    })
}

/// What `audit --user` covers: the label prefixes of the secrets searched for (the users'
/// own, `users/<key>/`, and the shared generators they use, `shared/<g>/`), the sops files
/// whose unreadability counts, and the store side of the users' homes' templates.
type UserScope = (Vec<String>, Vec<String>, Vec<audit::homes::TemplateFile>);

fn user_scope(root: &Path, users: &[String]) -> anyhow::Result<UserScope> {
    let ws = Workspace::load(root)?.with_flake()?;
    let defs = ws.definitions()?;
    let keys = crate::plan::select_users(&ws, &defs, users)?;
    let mut labels = Vec::new();
    let mut files = Vec::new();
    for key in &keys {
        labels.push(format!("users/{key}/"));
        files.push(match key.split_once('@') {
            Some((user, _)) => format!("sops/users/{user}/homes/{key}/"),
            None => format!("sops/users/{key}/secrets/"),
        });
        for (name, g) in defs.users.get(key).into_iter().flatten() {
            if g.share {
                labels.push(format!("shared/{name}/"));
                files.push(format!("sops/shared/secrets/{name}.yaml"));
                files.push(format!("sops/shared/secrets/admin/{name}.yaml"));
            }
        }
    }
    let templates = audit::homes::template_files(root, &keys)?;
    Ok((labels, files, templates))
}

/// A template's leaks (findings in its store-side file) and placeholders (in that file).
fn template_counts(report: &audit::Report, t: &audit::homes::TemplateFile) -> (usize, usize) {
    let leaks = report
        .findings
        .iter()
        .filter(|f| audit::homes::in_template(&f.location, t))
        .count();
    // In the rendered file when built, else in the .drv (its `text`).
    let placeholders = std::fs::read(t.out.as_ref().unwrap_or(&t.drv))
        .map(|b| b.windows(6).filter(|w| w == b"<SOPS:").count())
        .unwrap_or(0);
    (leaks, placeholders)
}

/// `audit --user --json`'s `templates`: one object per template.
fn template_json(
    report: &audit::Report,
    templates: &[audit::homes::TemplateFile],
) -> serde_json::Value {
    templates
        .iter()
        .map(|t| {
            let (leaks, placeholders) = template_counts(report, t);
            serde_json::json!({
                "home": t.home, "user": t.owner, "template": t.name,
                "storeSide": t.paths(), "placeholders": placeholders, "leaks": leaks,
                "placeholdersOnly": leaks == 0,
            })
        })
        .collect()
}

/// One line per template of `audit --user`: its store-side file and whether it holds
/// placeholders only (no finding in it) or leaks.
fn write_templates(
    w: &mut impl std::io::Write,
    report: &audit::Report,
    templates: &[audit::homes::TemplateFile],
) -> std::io::Result<()> {
    for t in templates {
        let (leaks, placeholders) = template_counts(report, t);
        let verdict = if leaks == 0 {
            format!("placeholders only ({placeholders} placeholder(s), no secret value)")
        } else {
            format!("LEAKS {leaks} secret value(s): see above")
        };
        writeln!(
            w,
            "template {} of {} (user {}): store side {}: {verdict}",
            t.name,
            t.home,
            t.owner,
            t.paths()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ")
        )?;
    }
    Ok(())
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
