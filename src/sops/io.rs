//! Bounded reads of input files and stdin for the `varsmith sops` commands.
//!
//! Every read stops after the limit (default [`DEFAULT_MAX_INPUT`], override with
//! `VARSMITH_SOPS_MAX_INPUT` in bytes): a bigger input is refused as malformed (exit 2),
//! naming the file, without reading or allocating more than the limit plus one byte.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::limits::DEFAULT_MAX_INPUT;

/// The input size limit in bytes (`VARSMITH_SOPS_MAX_INPUT`, else the default).
pub(crate) fn max_input() -> u64 {
    std::env::var("VARSMITH_SOPS_MAX_INPUT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_INPUT)
}

/// Reads at most `limit` bytes from `r`; more is an error naming `origin`.
pub(crate) fn read_all_limited(
    r: impl Read,
    limit: u64,
    origin: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| Error::Io {
            origin: origin.to_string(),
            cause: source,
        })?;
    if buf.len() as u64 > limit {
        return Err(Error::malformed(
            origin,
            format!("input larger than {limit} bytes (raise VARSMITH_SOPS_MAX_INPUT to allow it)"),
        ));
    }
    Ok(buf)
}

/// Reads a file of at most `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>> {
    let origin = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|source| Error::Io {
        origin: origin.clone(),
        cause: source,
    })?;
    read_all_limited(f, limit, &origin)
}
