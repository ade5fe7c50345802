//! A machine's SSH host key pair and the fleet's global identity, decrypted from the
//! workspace and checked against their committed public halves.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::Error;
use crate::keys::Identities;

/// Name of the host's private key file (and of its sops entry).
pub const HOST_KEY: &str = "ssh_host_ed25519_key";
/// Name of the host's public key file.
pub const HOST_PUB: &str = "ssh_host_ed25519_key.pub";
/// Name of the global identity's private key file (and of its sops entry).
pub const GLOBAL_KEY: &str = "global_ed25519";
/// The generator producing the host key.
pub const OPENSSH_GENERATOR: &str = "openssh";
/// The shared generator producing the global identity.
pub const GLOBAL_GENERATOR: &str = "global-identity";

/// One file to install, with its mode. Its bytes zeroize on drop.
pub struct KeyFile {
    /// File name (one path component) under the ssh directory.
    pub name: &'static str,
    /// Permission bits.
    pub mode: u32,
    /// Contents.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("name", &self.name)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Everything installed on a target: the host key pair and optionally the global identity.
#[derive(Debug)]
pub struct KeyBundle {
    /// The machine.
    pub host: String,
    /// The host's public key line (as committed in the facts).
    pub host_public: String,
    /// Files to install, in installation order.
    pub files: Vec<KeyFile>,
}

impl KeyBundle {
    /// Builds a bundle from plaintext parts, checking that `private` is an OpenSSH key whose
    /// public half is `public`. `origin` names the files in errors.
    pub fn from_parts(
        host: &str,
        private: Zeroizing<Vec<u8>>,
        public: &[u8],
        global: Option<Zeroizing<Vec<u8>>>,
        origin: &KeyPaths,
    ) -> Result<KeyBundle, Error> {
        let public_text = std::str::from_utf8(public).map_err(|_| Error::BadKey {
            path: origin.host_public.clone(),
            msg: "not UTF-8".into(),
        })?;
        let pk =
            ssh_key::PublicKey::from_openssh(public_text.trim()).map_err(|e| Error::BadKey {
                path: origin.host_public.clone(),
                msg: format!("not an OpenSSH public key: {e}"),
            })?;
        let sk = ssh_key::PrivateKey::from_openssh(&*private).map_err(|_| Error::BadKey {
            path: origin.host_secret.clone(),
            msg: format!("entry {HOST_KEY:?} is not an OpenSSH private key"),
        })?;
        if sk.public_key().key_data() != pk.key_data() {
            return Err(Error::KeyMismatch {
                host: host.to_string(),
                secret: origin.host_secret.clone(),
                public: origin.host_public.clone(),
            });
        }
        let mut files = vec![
            KeyFile {
                name: HOST_KEY,
                mode: 0o600,
                bytes: private,
            },
            KeyFile {
                name: HOST_PUB,
                mode: 0o644,
                bytes: Zeroizing::new(public.to_vec()),
            },
        ];
        if let Some(g) = global {
            files.push(KeyFile {
                name: GLOBAL_KEY,
                mode: 0o600,
                bytes: g,
            });
        }
        Ok(KeyBundle {
            host: host.to_string(),
            host_public: public_text.trim().to_string(),
            files,
        })
    }

    /// The SHA256 fingerprint of the host's public key (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        ssh_key::PublicKey::from_openssh(&self.host_public)
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string())
            .unwrap_or_else(|_| "?".into())
    }
}

/// The files a bundle holds (name, mode), in installation order, without decrypting
/// anything (what a dry run shows).
pub(crate) fn bundle_files(with_global: bool) -> Vec<(&'static str, u32)> {
    let mut v = vec![(HOST_KEY, 0o600), (HOST_PUB, 0o644)];
    if with_global {
        v.push((GLOBAL_KEY, 0o600));
    }
    v
}

/// Whether push-keys and bootstrap install the global identity by default: when the machine
/// lists the `global-identity` generator or the workspace holds its value. A machine without
/// it gets only its host key; `--no-global` leaves it out in every case.
pub(crate) fn wants_global(root: &Path, machine: &crate::workspace::Machine, host: &str) -> bool {
    machine.generators.iter().any(|g| g == GLOBAL_GENERATOR)
        || KeyPaths::new(root, host).global_secret.is_file()
}

/// Where a machine's key material lives in the workspace.
#[derive(Debug, Clone)]
pub struct KeyPaths {
    /// `sops/machines/<host>/secrets/openssh.yaml`.
    pub host_secret: PathBuf,
    /// `sops/machines/<host>/facts/openssh/ssh_host_ed25519_key.pub`.
    pub host_public: PathBuf,
    /// `sops/shared/secrets/global-identity.yaml`.
    pub global_secret: PathBuf,
    /// `sops/shared/facts/global-identity/global_ed25519.pub`.
    pub global_public: PathBuf,
}

impl KeyPaths {
    /// The paths for machine `host` of the workspace at `root`.
    pub fn new(root: &Path, host: &str) -> KeyPaths {
        let m = root.join("sops/machines").join(host);
        let s = root.join("sops/shared");
        KeyPaths {
            host_secret: m.join("secrets").join(format!("{OPENSSH_GENERATOR}.yaml")),
            host_public: m.join("facts").join(OPENSSH_GENERATOR).join(HOST_PUB),
            global_secret: s.join("secrets").join(format!("{GLOBAL_GENERATOR}.yaml")),
            global_public: s
                .join("facts")
                .join(GLOBAL_GENERATOR)
                .join(format!("{GLOBAL_KEY}.pub")),
        }
    }

    /// The first missing file as an error, or `None` when everything needed exists.
    pub fn missing(&self, host: &str, with_global: bool) -> Option<Error> {
        let mut need = vec![
            (&self.host_secret, "the SSH host key", OPENSSH_GENERATOR),
            (&self.host_public, "the SSH host key", OPENSSH_GENERATOR),
        ];
        if with_global {
            need.push((&self.global_secret, "the global identity", GLOBAL_GENERATOR));
        }
        need.into_iter()
            .find(|(p, _, _)| !p.is_file())
            .map(|(p, what, generator)| Error::MissingKey {
                host: host.to_string(),
                what,
                generator,
                path: p.clone(),
            })
    }

    /// The generators whose outputs are missing (for `--generate`).
    pub(crate) fn missing_generators(&self, with_global: bool) -> Vec<&'static str> {
        let mut g = Vec::new();
        if !self.host_secret.is_file() || !self.host_public.is_file() {
            g.push(OPENSSH_GENERATOR);
        }
        if with_global && !self.global_secret.is_file() {
            g.push(GLOBAL_GENERATOR);
        }
        g
    }
}

/// Decrypts machine `host`'s key pair (and the global identity when `with_global`) from the
/// workspace at `root`.
pub fn load(
    root: &Path,
    host: &str,
    ids: &Identities,
    with_global: bool,
) -> Result<KeyBundle, Error> {
    let paths = KeyPaths::new(root, host);
    if let Some(e) = paths.missing(host, with_global) {
        return Err(e);
    }
    let private = decrypt_entry(&paths.host_secret, HOST_KEY, ids)?;
    let public = std::fs::read(&paths.host_public).map_err(|e| Error::io(&paths.host_public, e))?;
    let global = if with_global {
        let g = decrypt_entry(&paths.global_secret, GLOBAL_KEY, ids)?;
        check_global(&g, &paths)?;
        Some(g)
    } else {
        None
    };
    KeyBundle::from_parts(host, private, &public, global, &paths)
}

/// Checks the global identity against its public half when both are OpenSSH keys.
fn check_global(private: &[u8], paths: &KeyPaths) -> Result<(), Error> {
    let Ok(public) = std::fs::read_to_string(&paths.global_public) else {
        return Ok(());
    };
    let (Ok(sk), Ok(pk)) = (
        ssh_key::PrivateKey::from_openssh(private),
        ssh_key::PublicKey::from_openssh(public.trim()),
    ) else {
        return Ok(());
    };
    if sk.public_key().key_data() != pk.key_data() {
        return Err(Error::KeyMismatch {
            host: GLOBAL_GENERATOR.to_string(),
            secret: paths.global_secret.clone(),
            public: paths.global_public.clone(),
        });
    }
    Ok(())
}

/// Decrypts one entry of a sops YAML file.
fn decrypt_entry(path: &Path, key: &str, ids: &Identities) -> Result<Zeroizing<Vec<u8>>, Error> {
    let file = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let origin = path.display().to_string();
    let mut map = crate::sops::decrypt_flat(&file, crate::sops::Format::Yaml, ids, &origin)?;
    map.shift_remove(key).ok_or_else(|| Error::BadKey {
        path: path.to_path_buf(),
        msg: format!("no entry {key:?}"),
    })
}
