//! `bootstrap`: nixos-anywhere with the host keys as `--extra-files`, then pinning the
//! installed host's key.
//!
//! The tree lives in a fresh 0700 directory on tmpfs; the `--extra-files` root is a 0755
//! subdirectory of it (nixos-anywhere copies that root with `tar -p` onto the new system's
//! `/`, so a 0700 root would make `/` unreadable for every non-root user). The tree is removed
//! when [`ExtraFiles`] drops: on success, on error, on panic, and by a signal handler on
//! Ctrl-C/SIGTERM.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Error;
use super::hostkeys::KeyBundle;
use super::known_hosts::KnownHosts;
use crate::run::tmpfs::PlaintextDir;

/// Options of one bootstrap.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// Keys under `persist/etc/ssh` instead of `etc/ssh`.
    pub persist: bool,
    /// `--no-reboot`.
    pub no_reboot: bool,
    /// `--no-disko-deps`.
    pub no_disko_deps: bool,
    /// `--debug`.
    pub debug: bool,
    /// `K=V` options passed on as `--ssh-option K=V`.
    pub ssh_options: Vec<String>,
    /// The program to run (`nixos-anywhere`).
    pub program: String,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            persist: false,
            no_reboot: false,
            no_disko_deps: false,
            debug: false,
            ssh_options: Vec::new(),
            program: "nixos-anywhere".to_string(),
        }
    }
}

/// The private `--extra-files` tree on tmpfs; removed on drop, on a signal, and by the next
/// run's sweep after a SIGKILL.
#[derive(Debug)]
pub struct ExtraFiles {
    dir: PlaintextDir,
    root: PathBuf,
}

impl ExtraFiles {
    /// Writes `bundle`'s files under `etc/ssh/` (or `persist/etc/ssh/`) of a new private tree.
    pub fn build(bundle: &KeyBundle, persist: bool) -> Result<ExtraFiles, Error> {
        let dir = PlaintextDir::new(None).map_err(|e| Error::Usage(e.to_string()))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir.path(), e))?;
        let root = dir.path().join("extra-files");
        let rel: &[&str] = if persist {
            &["persist", "etc", "ssh"]
        } else {
            &["etc", "ssh"]
        };
        let mut ssh_dir = root.clone();
        mkdir_0755(&ssh_dir)?;
        for c in rel {
            ssh_dir.push(c);
            mkdir_0755(&ssh_dir)?;
        }
        for f in &bundle.files {
            let p = ssh_dir.join(f.name);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)
                .map_err(|e| Error::io(&p, e))?;
            use std::io::Write;
            file.write_all(&f.bytes).map_err(|e| Error::io(&p, e))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(f.mode))
                .map_err(|e| Error::io(&p, e))?;
        }
        Ok(ExtraFiles { dir, root })
    }

    /// The directory to pass as `--extra-files`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The private parent directory (removed with the tree).
    pub fn private_dir(&self) -> &Path {
        self.dir.path()
    }
}

fn mkdir_0755(p: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(p)
        .and_then(|_| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| Error::io(p, e))
}

/// The nixos-anywhere argv (program first) for machine `host`.
pub fn command(host: &str, target: &str, extra_files: &Path, o: &BootstrapOptions) -> Vec<String> {
    let mut v = vec![
        o.program.clone(),
        "--flake".to_string(),
        format!(".#{host}"),
        "--extra-files".to_string(),
        extra_files.to_string_lossy().into_owned(),
    ];
    if o.no_reboot {
        v.push("--no-reboot".into());
    }
    if o.no_disko_deps {
        v.push("--no-disko-deps".into());
    }
    if o.debug {
        v.push("--debug".into());
    }
    for s in &o.ssh_options {
        v.push("--ssh-option".into());
        v.push(s.clone());
    }
    v.push(target.to_string());
    v
}

/// Runs nixos-anywhere for `bundle.host` on `target` from the flake at `flake_root`, then pins
/// the installed host key in `known_hosts`. The extra-files tree is gone when this returns.
pub fn run(
    flake_root: &Path,
    bundle: &KeyBundle,
    target: &str,
    o: &BootstrapOptions,
    known_hosts: &KnownHosts,
) -> Result<(), Error> {
    super::no_leading_dash("target", target)?;
    for s in &o.ssh_options {
        if !s.contains('=') || s.starts_with('-') {
            return Err(Error::Usage(format!(
                "invalid --ssh-option {s:?}: expected KEY=VALUE"
            )));
        }
    }
    let tree = ExtraFiles::build(bundle, o.persist)?;
    let argv = command(&bundle.host, target, tree.root(), o);
    eprintln!(
        "+ {}",
        shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default()
    );
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(flake_root)
        .env_remove("SOPS_AGE_KEY")
        .status()
        .map_err(|source| Error::Spawn {
            program: o.program.clone(),
            source,
        })?;
    drop(tree);
    if !status.success() {
        return Err(Error::Tool {
            what: format!("{} for {}", o.program, bundle.host),
            status,
        });
    }
    known_hosts.pin_installed(&bundle.host, &bundle.host_public, false)?;
    Ok(())
}
