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

use super::Error;
use super::activation::SecretFile;
use super::hostkeys::KeyBundle;
use super::known_hosts::KnownHosts;
use crate::process::tmpfs::PlaintextDir;

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
    /// The flake attribute to install (`.#<attr>`); `None`: the machine's name.
    pub flake_attr: Option<String>,
    /// The installer's host public key (`TYPE BASE64`), verified out of band: nixos-anywhere's
    /// ssh then accepts that key only (`pin_wrapper`). `None`: trust on first use, which the
    /// caller must have asked for explicitly.
    pub installer_key: Option<String>,
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
            flake_attr: None,
            installer_key: None,
        }
    }
}

/// The private `--extra-files` tree on tmpfs; removed on drop, on a signal, and by the next
/// run's sweep after a SIGKILL. Beside the tree (not inside it) it holds the disk encryption
/// keys, one file each, passed as `--disk-encryption-keys REMOTE LOCAL`.
#[derive(Debug)]
pub struct ExtraFiles {
    dir: PlaintextDir,
    root: PathBuf,
    disk_keys: Vec<(String, PathBuf)>,
}

/// Where nixos-anywhere puts a partitioning secret on the installer.
pub(crate) fn disk_key_path(generator: &str, file: &str) -> String {
    format!("/run/partitioning-secrets/{generator}/{file}")
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
            write_private(&ssh_dir.join(f.name), &f.bytes, f.mode)?;
        }
        Ok(ExtraFiles {
            dir,
            root,
            disk_keys: Vec::new(),
        })
    }

    /// Adds the activation secrets under `var/lib/varsmith/activation/<g>/<f>` of the tree
    /// (modes as declared; owned by root until the new system's activation) and the
    /// partitioning secrets as disk encryption keys beside it.
    pub(crate) fn add_secrets(
        &mut self,
        activation: &[SecretFile],
        disk: &[SecretFile],
    ) -> Result<(), Error> {
        for s in activation {
            let mut d = self.root.clone();
            for c in ["var", "lib", "varsmith", "activation", s.generator.as_str()] {
                d.push(c);
                if !d.is_dir() {
                    mkdir_0755(&d)?;
                }
            }
            write_private(&d.join(&s.file), &s.bytes, s.spec.mode)?;
        }
        for s in disk {
            let d = self.dir.path().join("disk-keys").join(&s.generator);
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
            let p = d.join(&s.file);
            write_private(&p, &s.bytes, 0o400)?;
            self.disk_keys
                .push((disk_key_path(&s.generator, &s.file), p));
        }
        Ok(())
    }

    /// The `(remote, local)` pairs of `--disk-encryption-keys`.
    pub(crate) fn disk_keys(&self) -> &[(String, PathBuf)] {
        &self.disk_keys
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

/// Writes a new file (never through an existing one) and sets its mode.
fn write_private(p: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .map_err(|e| Error::io(p, e))?;
    file.write_all(bytes).map_err(|e| Error::io(p, e))?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(p, e))
}

fn mkdir_0755(p: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(p)
        .and_then(|_| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| Error::io(p, e))
}

/// The nixos-anywhere argv (program first) for machine `host`; `disk_keys` are the
/// `(remote, local)` pairs of `--disk-encryption-keys`.
pub fn command(
    host: &str,
    target: &str,
    extra_files: &Path,
    disk_keys: &[(String, PathBuf)],
    o: &BootstrapOptions,
) -> Vec<String> {
    let mut v = vec![
        o.program.clone(),
        "--flake".to_string(),
        format!(".#{}", o.flake_attr.as_deref().unwrap_or(host)),
        "--extra-files".to_string(),
        extra_files.to_string_lossy().into_owned(),
    ];
    for (remote, local) in disk_keys {
        v.push("--disk-encryption-keys".into());
        v.push(remote.clone());
        v.push(local.to_string_lossy().into_owned());
    }
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

/// The alias the installer's key is pinned as (never the machine's own alias: the installer
/// is another system than the one it installs).
pub(crate) fn installer_alias(host: &str) -> String {
    format!("{host}.installer")
}

/// Writes, under `dir`, a pin file holding the installer's key alone and an `ssh` wrapper that
/// runs the real ssh with that pin first; returns the wrapper's directory, to put first on
/// nixos-anywhere's `PATH`.
///
/// Why a wrapper: nixos-anywhere starts every ssh (and ssh-copy-id, and `NIX_SSHOPTS` for
/// nix copy) with `-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no` *before* the
/// user's `--ssh-option`s, and ssh keeps the first value of an option, so a pin passed as
/// `--ssh-option` would be ignored. The wrapper's options come before nixos-anywhere's.
/// The installer keeps this key across its kexec (nixos-images' kexec installer reuses the
/// running system's host keys); the installed system's key is the machine's own, pinned after.
pub(crate) fn pin_wrapper(dir: &Path, host: &str, key: &str) -> Result<PathBuf, Error> {
    let mut f = key.split_whitespace();
    let (Some(kind), Some(b64)) = (f.next(), f.next()) else {
        return Err(Error::Usage(format!(
            "{host}: --installer-host-key: expected an OpenSSH public key line (TYPE BASE64)"
        )));
    };
    let real = super::sync_which("ssh").ok_or_else(|| Error::Spawn {
        program: "ssh".into(),
        cause: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    let alias = installer_alias(host);
    let pins = dir.join("installer_known_hosts");
    write_private(&pins, format!("{alias} {kind} {b64}\n").as_bytes(), 0o644)?;
    let bin = dir.join("ssh-pin");
    mkdir_0755(&bin)?;
    let kh = KnownHosts::at(&pins);
    let opts: String = kh
        .pin_options(&alias)
        .iter()
        .map(|o| format!(" -o {}", super::deploy::quote(o)))
        .collect();
    let script = format!(
        "#!/bin/sh\nexec {}{opts} \"$@\"\n",
        super::deploy::quote(&real.to_string_lossy())
    );
    write_private(&bin.join("ssh"), script.as_bytes(), 0o755)?;
    Ok(bin)
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
    run_with(flake_root, bundle, (&[], &[]), target, o, known_hosts)
}

/// [`run`] with the machine's `(activation, partitioning)` secrets: the first in the
/// extra-files tree, the second as `--disk-encryption-keys`.
pub(crate) fn run_with(
    flake_root: &Path,
    bundle: &KeyBundle,
    secrets: (&[SecretFile], &[SecretFile]),
    target: &str,
    o: &BootstrapOptions,
    known_hosts: &KnownHosts,
) -> Result<(), Error> {
    super::no_leading_dash("target", target)?;
    super::ssh::check_options(&o.ssh_options)?;
    let mut tree = ExtraFiles::build(bundle, o.persist)?;
    tree.add_secrets(secrets.0, secrets.1)?;
    let argv = command(&bundle.host, target, tree.root(), tree.disk_keys(), o);
    eprintln!(
        "+ {}",
        shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default()
    );
    let mut cmd = crate::child::command(&argv[0]);
    if let Some(key) = &o.installer_key {
        let bin = pin_wrapper(tree.private_dir(), &bundle.host, key)?;
        let mut path = vec![bin];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let joined = std::env::join_paths(path).map_err(|e| Error::Usage(e.to_string()))?;
        cmd.env("PATH", joined);
    }
    let status = cmd
        .args(&argv[1..])
        .current_dir(flake_root)
        .status()
        .map_err(|source| Error::Spawn {
            program: o.program.clone(),
            cause: source,
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
