//! `varsmith sops encrypt|decrypt`.

use std::io::Write;
use std::path::Path;

use crate::sops::{self, EncryptOptions, Format};
use anyhow::Context as _;

use super::core_cmd::Context;
use crate::cli::args::{CmdResult, SopsCmd};

/// Runs a `sops` subcommand.
pub fn run(ctx: &Context, cmd: SopsCmd) -> CmdResult {
    match cmd {
        SopsCmd::Encrypt {
            age,
            input_type,
            in_place,
            file,
        } => encrypt(ctx, age, input_type.as_deref(), in_place, &file),
        SopsCmd::Decrypt { input_type, files } => decrypt(ctx, input_type.as_deref(), &files),
    }
}

fn format_of(input_type: Option<&str>, file: &Path) -> anyhow::Result<Format> {
    match input_type {
        None => Ok(Format::from_path(file)),
        Some(t) => Format::from_name(t).ok_or_else(|| {
            crate::UsageError::new(format!(
                "unknown --input-type {t:?} (expected yaml, json, dotenv or binary)"
            ))
            .into()
        }),
    }
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).map_err(|source| {
        sops::Error::Io {
            origin: file.display().to_string(),
            source,
        }
        .into()
    })
}

/// Encrypts FILE. Without `--age`, recipients come from the creation rules of the nearest
/// `.sops.yaml`, searched from `-C DIR` when given, else from the current directory upward.
fn encrypt(
    ctx: &Context,
    age: Vec<String>,
    input_type: Option<&str>,
    in_place: bool,
    file: &Path,
) -> CmdResult {
    let format = format_of(input_type, file)?;
    let origin = file.display().to_string();
    let mut opts = EncryptOptions::default();
    let age: Vec<String> = age
        .into_iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if age.is_empty() {
        let start = match &ctx.dir {
            Some(d) => d.clone(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let config = sops::config::find_config(&start).ok_or_else(|| {
            crate::UsageError::new(format!(
                "no --age recipients given and no .sops.yaml found from {} upward",
                start.display()
            ))
        })?;
        let rule = sops::config::rule_for(&config, file)?;
        opts.recipients = rule.age;
        opts.rule = rule.rule;
        opts.mac_only_encrypted = rule.mac_only_encrypted;
    } else {
        opts.recipients = age;
    }
    let plain = zeroize::Zeroizing::new(read(file)?);
    let out = sops::encrypt(&plain, format, &opts, &origin)?;
    if in_place {
        write_atomic(file, &out)?;
    } else {
        std::io::stdout()
            .lock()
            .write_all(&out)
            .context("writing to stdout")?;
    }
    Ok(crate::EXIT_OK)
}

fn write_atomic(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |source| sops::Error::Io {
        origin: file.display().to_string(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    if let Ok(meta) = std::fs::metadata(file) {
        let _ = tmp.as_file().set_permissions(meta.permissions());
    }
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(file).map_err(|e| io(e.error))?;
    Ok(())
}

/// Decrypts each file (MAC verified) to stdout, in order. Stops at the first failure.
fn decrypt(ctx: &Context, input_type: Option<&str>, files: &[std::path::PathBuf]) -> CmdResult {
    let ids = ctx.identities()?;
    let mut out = std::io::stdout().lock();
    for file in files {
        let format = format_of(input_type, file)?;
        let bytes = read(file)?;
        let plain = sops::decrypt_to_plaintext(&bytes, format, &ids, &file.display().to_string())?;
        out.write_all(&plain).context("writing to stdout")?;
    }
    out.flush().context("writing to stdout")?;
    Ok(crate::EXIT_OK)
}
