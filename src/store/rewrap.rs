//! Re-wrapping data keys of secrets files whose recipients differ from the expected set (an
//! admin added or removed, a host key rotated, a machine started using a shared generator),
//! like `sops updatekeys`: values, `lastmodified` and MAC unchanged.

use std::path::{Path, PathBuf};

use super::{Error, Owner};
use crate::keys::Identities;
use crate::workspace::{Definitions, Generator, Workspace};

/// Same recipients, ignoring order, surrounding blanks and duplicates.
pub(crate) fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a: Vec<&str> = a.iter().map(|s| s.trim()).collect();
    let mut b: Vec<&str> = b.iter().map(|s| s.trim()).collect();
    a.sort_unstable();
    b.sort_unstable();
    a.dedup();
    b.dedup();
    a == b
}

/// Re-wraps the secrets files of (`owner`, `g`) that exist and whose recipients are not exactly
/// the expected ones. Returns the paths rewritten.
pub(crate) fn rewrap(
    ws: &Workspace,
    defs: &Definitions,
    owner: &Owner,
    g: &Generator,
    ids: &Identities,
) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for (path, admin_only) in [
        (owner.secrets_file(&ws.root, &g.name), false),
        (owner.admin_secrets_file(&ws.root, &g.name), true),
    ] {
        // Most generators have no admins-only file: skip the recipients work for it.
        if !super::fs::exists_nofollow(&ws.root, &path) {
            continue;
        }
        let want = super::expected_recipients(ws, defs, owner, &g.name, admin_only)?;
        if !rewrap_file(&ws.root, &path, &want, ids)? {
            continue;
        }
        out.push(path);
    }
    Ok(out)
}

/// `path` as messages show it: relative to the workspace.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Whether the sops file at `path` (its `bytes`) is encrypted to other recipients than `want`.
fn differs(root: &Path, path: &Path, bytes: &[u8], want: &[String]) -> Result<bool, Error> {
    let have = super::recipients::file_recipients(root, path, bytes, &shown(root, path))?;
    Ok(!same_set(want, &have))
}

/// Whether [`rewrap`] of `owner`'s generator `g` has anything to do: `Ok(true)` when one of
/// its secrets files has other recipients than expected, without writing anything (the
/// read-only half, run for the whole fleet in parallel; an error is left to `rewrap` to
/// report).
pub(crate) fn needs_rewrap(
    ws: &Workspace,
    defs: &Definitions,
    owner: &Owner,
    g: &Generator,
) -> Result<bool, Error> {
    for (path, admin_only) in [
        (owner.secrets_file(&ws.root, &g.name), false),
        (owner.admin_secrets_file(&ws.root, &g.name), true),
    ] {
        let Some(bytes) = super::read_file_shared(&ws.root, &path)? else {
            continue;
        };
        let want = super::expected_recipients(ws, defs, owner, &g.name, admin_only)?;
        if differs(&ws.root, &path, &bytes, &want)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Re-wraps the data key of the sops file at `path` for exactly `want` when its recipients
/// differ (values, `lastmodified` and MAC unchanged). Returns whether it was rewritten;
/// `false` also when the file does not exist.
pub(crate) fn rewrap_file(
    root: &Path,
    path: &Path,
    want: &[String],
    ids: &Identities,
) -> Result<bool, Error> {
    let Some(bytes) = super::read_file(root, path)? else {
        return Ok(false);
    };
    if !differs(root, path, &bytes, want)? {
        return Ok(false);
    }
    let origin = shown(root, path);
    if want.is_empty() {
        return Err(Error::Malformed {
            path: path.to_path_buf(),
            msg: "no recipient to encrypt to (no admin in varsmith.yaml)".into(),
        });
    }
    let new = crate::sops::update_keys(&bytes, crate::sops::Format::Yaml, ids, want, &origin)?;
    let Some(_gate) = crate::process::signals::commit_gate() else {
        return Err(Error::Interrupted);
    };
    super::write_atomic(root, path, &new)?;
    super::rerecord(root, path, &bytes)?;
    Ok(true)
}
