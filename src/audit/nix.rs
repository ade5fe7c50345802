//! Store closures, via the real `nix-store`.

use std::path::PathBuf;

use super::Error;

/// The closure of `paths` (`nix-store --query --requisites`): every store path they reference,
/// transitively, themselves included. Sorted and deduplicated.
pub(crate) fn closure(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = crate::child::command("nix-store");
    cmd.arg("--query").arg("--requisites").args(paths);
    let command = format!(
        "nix-store --query --requisites {}",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let stdout = super::command_stdout(cmd, command)?;
    let mut result: Vec<PathBuf> = String::from_utf8_lossy(&stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    result.sort();
    result.dedup();
    Ok(result)
}
