//! The dry runs of `push-keys` and `bootstrap`: the exact commands, one per line (or
//! `--json`), computed without decrypting anything and without starting ssh.

use std::io::Write;

use serde_json::{Value, json};

use crate::remote::deploy::{Cmd, quote};
use crate::remote::known_hosts::KnownHosts;

use super::args::CmdResult;
use super::deploy_cmd::cmd_json;

/// Stands for bootstrap's `--extra-files` directory, which is created fresh on tmpfs at run
/// time (`$XDG_RUNTIME_DIR/varsmith-run-<pid>-<random>/extra-files`, else under `/dev/shm`).
pub(super) const EXTRA_FILES_PLACEHOLDER: &str = "<tmpfs>/extra-files";

fn files_json(prefix: &str, files: &[(&str, u32)]) -> Vec<Value> {
    files
        .iter()
        .map(|(n, m)| json!({ "path": format!("{prefix}/{n}"), "mode": format!("{m:04o}") }))
        .collect()
}

fn print(doc: Value, lines: &[String], json: bool) -> CmdResult {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        for l in lines {
            writeln!(out, "{l}")?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `push-keys --dry-run`.
pub(super) fn push_keys(
    host: &str,
    target: &str,
    dir: &str,
    files: &[(&str, u32)],
    argv: Vec<String>,
    kh: &KnownHosts,
    json: bool,
) -> CmdResult {
    let cmd = Cmd::new(argv);
    let names: Vec<String> = files
        .iter()
        .map(|(n, m)| format!("{n} ({m:04o})"))
        .collect();
    let lines = vec![
        format!("# stdin: a tar stream of {}, SHA256SUMS", names.join(", ")),
        cmd.display(),
        format!(
            "# then: pin {host}'s host key in {} (beside its current pin)",
            quote(&kh.path().to_string_lossy())
        ),
    ];
    let doc = json!({
        "command": "push-keys",
        "dry_run": true,
        "machine": host,
        "target": target,
        "files": files_json(dir, files),
        "commands": [cmd_json(&cmd)],
        "stdin": "tar stream of the files and SHA256SUMS",
        "pin": { "known_hosts": kh.path(), "alias": host, "keep_previous": true },
    });
    print(doc, &lines, json)
}

/// `bootstrap --dry-run`: `files` are the extra-files tree's `(path, mode)`, `disk` the
/// `--disk-encryption-keys` pairs.
pub(super) fn bootstrap(
    host: &str,
    target: &str,
    files: &[(String, u32)],
    disk: &[(String, std::path::PathBuf)],
    argv: Vec<String>,
    kh: &KnownHosts,
    json: bool,
) -> CmdResult {
    let cmd = Cmd::new(argv);
    let shown: Vec<String> = files
        .iter()
        .map(|(p, m)| format!("{p} ({m:04o})"))
        .collect();
    let mut lines = vec![format!(
        "# {EXTRA_FILES_PLACEHOLDER}: a fresh private tmpfs tree holding {}",
        shown.join(", ")
    )];
    if !disk.is_empty() {
        lines.push("# <tmpfs>/disk-keys/…: the partitioning secrets, beside that tree".into());
    }
    lines.push(cmd.display());
    lines.push(format!(
        "# then: pin {host}'s host key in {}",
        quote(&kh.path().to_string_lossy())
    ));
    let files: Vec<Value> = files
        .iter()
        .map(|(p, m)| json!({ "path": p, "mode": format!("{m:04o}") }))
        .collect();
    let disk: Vec<Value> = disk
        .iter()
        .map(|(r, l)| json!({ "remote": r, "local": l }))
        .collect();
    let doc = json!({
        "command": "bootstrap",
        "dry_run": true,
        "machine": host,
        "target": target,
        "extra_files": { "root": EXTRA_FILES_PLACEHOLDER, "files": files },
        "disk_encryption_keys": disk,
        "commands": [cmd_json(&cmd)],
        "pin": { "known_hosts": kh.path(), "alias": host, "keep_previous": false },
    });
    print(doc, &lines, json)
}
