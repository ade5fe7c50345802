//! `install --host H --root /mnt`: from the installer, place the machine's host keys (under
//! `<root>/etc/ssh`, or `<root>/persist/etc/ssh`) and its activation secrets (under
//! `<root>/var/lib/varsmith/activation/<g>/<f>`, modes as declared, owned by root until the
//! new system's activation) on the mounted target, then run
//! `nixos-install --flake .#H --root <root>`.
//!
//! Each file is written to a fresh temporary file in its directory and renamed into place, so
//! it appears whole; an existing symlink at a destination is replaced, never followed.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::Error;
use super::activation::SecretFile;
use super::hostkeys::KeyBundle;

/// The nixos-install argv (program first); `attr` is the flake output to install.
pub(crate) fn argv(attr: &str, root: &Path, show_trace: bool) -> Vec<String> {
    let mut v = vec![
        "nixos-install".to_string(),
        "--flake".to_string(),
        format!(".#{attr}"),
        "--root".to_string(),
        root.to_string_lossy().into_owned(),
    ];
    v.extend(show_trace.then(|| "--show-trace".to_string()));
    v
}

/// The files placed under the root: `(relative path, mode)`, in order.
pub(crate) fn layout(
    bundle_files: &[(&str, u32)],
    persist: bool,
    activation: &[(String, String, u32)],
) -> Vec<(PathBuf, u32)> {
    let ssh = if persist {
        "persist/etc/ssh"
    } else {
        "etc/ssh"
    };
    let mut v: Vec<(PathBuf, u32)> = bundle_files
        .iter()
        .map(|(n, m)| (Path::new(ssh).join(n), *m))
        .collect();
    for (g, f, m) in activation {
        v.push((Path::new("var/lib/varsmith/activation").join(g).join(f), *m));
    }
    v
}

/// Writes the bundle and the activation secrets under `root`; returns the paths written.
pub(crate) fn place(
    root: &Path,
    bundle: &KeyBundle,
    persist: bool,
    activation: &[SecretFile],
) -> Result<Vec<PathBuf>, Error> {
    if !root.is_dir() {
        return Err(Error::Usage(format!(
            "--root {}: not a directory",
            root.display()
        )));
    }
    let ssh = if persist {
        "persist/etc/ssh"
    } else {
        "etc/ssh"
    };
    let mut written = Vec::new();
    for f in &bundle.files {
        written.push(write_under(
            root,
            &Path::new(ssh).join(f.name),
            &f.bytes,
            f.mode,
        )?);
    }
    for s in activation {
        let rel = Path::new("var/lib/varsmith/activation")
            .join(&s.generator)
            .join(&s.file);
        written.push(write_under(root, &rel, &s.bytes, s.spec.mode)?);
    }
    Ok(written)
}

/// Creates the parent directories (0755) and writes `rel` atomically with `mode`.
fn write_under(root: &Path, rel: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, Error> {
    let dest = root.join(rel);
    let dir = dest.parent().unwrap_or(root).to_path_buf();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&dir)
        .map_err(|e| Error::io(&dir, e))?;
    use crate::replace::{Mode, replace_file};
    replace_file(&dest, bytes, Mode::Fixed(mode), ".varsmith-install.")
        .map_err(|e| Error::io(&dest, e))?;
    Ok(dest)
}
