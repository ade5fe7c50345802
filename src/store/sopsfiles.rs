//! Every sops file under `sops/`, whoever made it: the secrets files of each machine
//! directory (`sops/machines/<h>/secrets/[admin/]*.yaml`, also for directories of machines no
//! longer in the inventory) and of `sops/shared/secrets/[admin/]`. `check` validates them all
//! and `rekey` re-wraps them all, so a hand-made file cannot keep a removed admin as a
//! recipient. Listing never follows a symlink (one is an error naming it).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::fs::{Dir, Entry};
use super::{Error, Owner};

/// One sops file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SopsFile {
    /// The file (absolute).
    pub path: PathBuf,
    /// The directory it lives in: a machine (maybe not in the inventory) or `shared`.
    pub owner: Owner,
    /// The file name without `.yaml`: the generator it belongs to, if one is declared.
    pub stem: String,
    /// Under `secrets/admin/` (admins only).
    pub admin_only: bool,
}

impl SopsFile {
    /// The path relative to the workspace root, for messages.
    pub(crate) fn shown(&self, root: &Path) -> String {
        self.path
            .strip_prefix(root)
            .unwrap_or(&self.path)
            .display()
            .to_string()
    }
}

/// Names of the machine directories under `sops/machines/` (sorted).
pub(crate) fn machine_dirs(root: &Path) -> Result<Vec<String>, Error> {
    subdirs(root, &root.join("sops/machines"))
}

/// Owner keys of the user directories under `sops/users/` that hold generator outputs
/// (`secrets/`, `facts/` or `state/`; an admin's directory holds only `key.json`): `alice`,
/// and `alice@host` for each `sops/users/alice/homes/alice@host/` (sorted).
pub(crate) fn user_dirs(root: &Path) -> Result<Vec<String>, Error> {
    let users = root.join("sops/users");
    let mut out = Vec::new();
    let has_outputs = |dir: &Path| {
        ["secrets", "facts", "state"]
            .iter()
            .any(|s| dir.join(s).is_dir())
    };
    for u in subdirs(root, &users)? {
        if has_outputs(&users.join(&u)) {
            out.push(u.clone());
        }
        let homes = users.join(&u).join("homes");
        for h in subdirs(root, &homes)? {
            if has_outputs(&homes.join(&h)) {
                out.push(h);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Names of the directories in `base` (sorted; none when it is missing; a symlink is an error).
fn subdirs(root: &Path, base: &Path) -> Result<Vec<String>, Error> {
    let base = base.to_path_buf();
    let mut out = Vec::new();
    for (name, e) in entries(root, &base)? {
        match e {
            Entry::Dir => out.push(name.to_string_lossy().into_owned()),
            Entry::Symlink => {
                return Err(Error::Symlink {
                    path: base.join(&name),
                });
            }
            _ => {}
        }
    }
    out.sort();
    Ok(out)
}

/// The sops files of `owner` (deployed and admins-only), sorted by path.
pub(crate) fn files_of(root: &Path, owner: &Owner) -> Result<Vec<SopsFile>, Error> {
    let mut out = Vec::new();
    let secrets = owner.base(root).join("secrets");
    for (dir, admin_only) in [(secrets.clone(), false), (secrets.join("admin"), true)] {
        for (name, e) in entries(root, &dir)? {
            let path = dir.join(&name);
            let Some(stem) = yaml_stem(&name) else {
                continue;
            };
            match e {
                Entry::File => out.push(SopsFile {
                    path,
                    owner: owner.clone(),
                    stem,
                    admin_only,
                }),
                Entry::Symlink => return Err(Error::Symlink { path }),
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn yaml_stem(name: &OsStr) -> Option<String> {
    let s = name.to_str()?;
    let stem = s.strip_suffix(".yaml")?;
    (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_string())
}

/// The entries of `dir` (absolute, under `root`) with their kinds; empty when it is missing.
fn entries(root: &Path, dir: &Path) -> Result<Vec<(std::ffi::OsString, Entry)>, Error> {
    // A missing directory (or parent) has no entries; a symlink or file on the way is an
    // error naming it.
    let Some(d) = Dir::open_existing(root, dir)? else {
        return Ok(Vec::new());
    };
    Ok(d.entries()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_yaml_files_of_every_machine_dir_and_refuses_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let m = root.join("sops/machines/a/secrets");
        std::fs::create_dir_all(m.join("admin")).unwrap();
        std::fs::write(m.join("g.yaml"), "x").unwrap();
        std::fs::write(m.join("admin/h.yaml"), "x").unwrap();
        std::fs::write(m.join("notes.txt"), "x").unwrap();
        std::fs::write(m.join(".tmp.yaml"), "x").unwrap();
        std::fs::create_dir_all(root.join("sops/machines/b")).unwrap();
        assert_eq!(machine_dirs(root).unwrap(), vec!["a", "b"]);
        let files = files_of(root, &Owner::Machine("a".into())).unwrap();
        let got: Vec<(&str, bool)> = files
            .iter()
            .map(|f| (f.stem.as_str(), f.admin_only))
            .collect();
        assert_eq!(got, vec![("h", true), ("g", false)]);
        assert!(files_of(root, &Owner::Shared).unwrap().is_empty());
        std::os::unix::fs::symlink(m.join("g.yaml"), m.join("l.yaml")).unwrap();
        let e = files_of(root, &Owner::Machine("a".into())).unwrap_err();
        assert!(matches!(e, Error::Symlink { .. }), "{e}");
    }
}
