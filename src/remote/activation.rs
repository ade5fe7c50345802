//! A machine's `activation` (and `partitioning`) secrets: which files, decrypted from the
//! workspace, and `deploy`'s upload of the activation ones to
//! `/var/lib/varsmith/activation/<g>/<f>` (modes, owner and group as declared) before it
//! activates, as clan does.
//!
//! The upload is push-keys' framing: a ustar stream on ssh's stdin with a `SHA256SUMS`
//! manifest, extracted under `umask 077` into a temporary directory beside the destination,
//! checked, then each file renamed into place; the installed files' hashes are compared with
//! the local bytes. Secret bytes only travel on stdin; the script holds paths and modes.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Error;
use super::deploy::Cmd;
use super::ssh::Ssh;
use crate::keys::Identities;
use crate::store::Owner;
use crate::workspace::{FileSpec, Generator, NeededFor};

/// Where activation secrets land on the host.
pub(crate) const ACTIVATION_DIR: &str = "/var/lib/varsmith/activation";

/// One decrypted secret. Its bytes zeroize on drop and never show in `Debug`.
pub(crate) struct SecretFile {
    /// Generator.
    pub generator: String,
    /// File name.
    pub file: String,
    /// Declared owner, group and mode.
    pub spec: FileSpec,
    /// Contents.
    pub bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SecretFile({}/{}, {} bytes)",
            self.generator,
            self.file,
            self.bytes.len()
        )
    }
}

/// The `(generator, file, spec)` of every `secret && deploy` file needed `needed`, in
/// definition order. Decrypts nothing.
pub(crate) fn specs<'a>(
    gens: impl IntoIterator<Item = &'a Generator>,
    needed: NeededFor,
) -> Vec<(&'a Generator, &'a str, &'a FileSpec)> {
    gens.into_iter()
        .flat_map(|g| g.files.iter().map(move |(f, s)| (g, f.as_str(), s)))
        .filter(|(_, _, s)| s.secret && s.deploy && s.needed_for == needed)
        .collect()
}

/// Decrypts machine `host`'s secrets needed `needed` from the workspace at `root`.
pub(crate) fn load<'a>(
    root: &std::path::Path,
    host: &str,
    gens: impl IntoIterator<Item = &'a Generator>,
    needed: NeededFor,
    ids: &Identities,
) -> Result<Vec<SecretFile>, Error> {
    let mut out = Vec::new();
    type Decrypted = indexmap::IndexMap<String, Zeroizing<Vec<u8>>>;
    let mut cache: Option<(String, std::path::PathBuf, Decrypted)> = None;
    for (g, f, spec) in specs(gens, needed) {
        if cache.as_ref().is_none_or(|(n, _, _)| n != &g.name) {
            let owner = if g.share {
                Owner::Shared
            } else {
                Owner::Machine(host.to_string())
            };
            let path = owner.secrets_file(root, &g.name);
            let text = match std::fs::read(&path) {
                Ok(t) => Zeroizing::new(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotGenerated {
                        host: host.to_string(),
                        generator: g.name.clone(),
                        path,
                    });
                }
                Err(e) => return Err(Error::io(&path, e)),
            };
            let origin = path.display().to_string();
            let map = crate::sops::decrypt_flat(&text, crate::sops::Format::Yaml, ids, &origin)?;
            cache = Some((g.name.clone(), path, map));
        }
        let Some((_, path, map)) = cache.as_mut() else {
            continue;
        };
        let bytes = map.shift_remove(f).ok_or_else(|| Error::BadKey {
            path: path.clone(),
            msg: format!("{host}: generator {}: no entry {f:?}", g.name),
        })?;
        out.push(SecretFile {
            generator: g.name.clone(),
            file: f.to_string(),
            spec: spec.clone(),
            bytes,
        });
    }
    Ok(out)
}

fn q(s: &str) -> String {
    super::deploy::quote(s)
}

/// The upload script for files `(generator, file, owner, group, mode)`; the stream holds them
/// as entries `0`, `1`, … plus `SHA256SUMS`. Holds no secret.
///
/// A file whose owner or group does not exist on the target yet (a user the same deploy
/// creates) is staged owned by root, with its mode: the module's activation snippet gives it
/// its owner and group once users exist, as after `bootstrap` and `install`. A file whose
/// owner exists gets it at once, so a deploy that fails after the upload leaves no service
/// without its file.
pub(crate) fn upload_script(files: &[(&str, &str, &str, &str, u32)]) -> String {
    let mut s = format!("set -eu\ndir={}\n", q(ACTIVATION_DIR));
    s.push_str(&super::push_keys::extract_and_check());
    for (i, (g, f, owner, group, mode)) in files.iter().enumerate() {
        s.push_str(&format!(
            "umask 022\nmkdir -p \"$dir\"/{g}\numask 077\nchown {} {i} 2>/dev/null || chown 0:0 {i}\nchmod {mode:04o} {i}\nmv -f {i} \"$dir\"/{g}/{f}\n",
            q(&format!("{owner}:{group}")),
            g = q(g),
            f = q(f),
        ));
    }
    s.push_str("cd \"$dir\"\nsum");
    for (g, f, ..) in files {
        s.push_str(&format!(" {}", q(&format!("{g}/{f}"))));
    }
    s.push('\n');
    s
}

/// A prepared upload: the ssh command, its stdin and the sums to find.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    /// `ssh … sh -c SCRIPT`.
    pub cmd: Cmd,
    stream: Zeroizing<Vec<u8>>,
    expected: Vec<(String, String)>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Upload({:?}, {} bytes)",
            self.cmd.argv,
            self.stream.len()
        )
    }
}

/// The upload command of `files` (its stdin: their stream).
pub(crate) fn upload_cmd(ssh: &Ssh, files: &[(&str, &str, &str, &str, u32)]) -> Result<Cmd, Error> {
    let mut c = Cmd::new(ssh.script_argv(&upload_script(files))?);
    c.input = super::deploy::Input::Secrets;
    Ok(c)
}

impl Upload {
    /// The upload of the files `specs` describes, without their bytes: what a dry run shows
    /// (never run).
    pub(crate) fn preview(
        ssh: &Ssh,
        specs: &[(&Generator, &str, &FileSpec)],
    ) -> Result<Upload, Error> {
        let meta: Vec<(&str, &str, &str, &str, u32)> = specs
            .iter()
            .map(|(g, f, s)| {
                (
                    g.name.as_str(),
                    *f,
                    s.owner.as_str(),
                    s.group.as_str(),
                    s.mode,
                )
            })
            .collect();
        Ok(Upload {
            cmd: upload_cmd(ssh, &meta)?,
            stream: Zeroizing::new(Vec::new()),
            expected: Vec::new(),
        })
    }
}

/// Prepares the upload of `files` over `ssh`.
pub(crate) fn upload(ssh: &Ssh, files: &[SecretFile]) -> Result<Upload, Error> {
    let meta: Vec<(&str, &str, &str, &str, u32)> = files
        .iter()
        .map(|s| {
            let sp = &s.spec;
            (
                s.generator.as_str(),
                s.file.as_str(),
                sp.owner.as_str(),
                sp.group.as_str(),
                sp.mode,
            )
        })
        .collect();
    let names: Vec<String> = (0..files.len()).map(|i| i.to_string()).collect();
    let mut sums = String::new();
    let mut expected = Vec::new();
    for (s, n) in files.iter().zip(&names) {
        let h = hex::encode(Sha256::digest(&*s.bytes));
        sums.push_str(&format!("{h}  {n}\n"));
        expected.push((h, format!("{}/{}", s.generator, s.file)));
    }
    let mut entries: Vec<(&str, u32, &[u8])> = files
        .iter()
        .zip(&names)
        .map(|(s, n)| (n.as_str(), 0o600, &s.bytes[..]))
        .collect();
    entries.push(("SHA256SUMS", 0o600, sums.as_bytes()));
    Ok(Upload {
        cmd: upload_cmd(ssh, &meta)?,
        stream: super::tar::archive(&entries),
        expected,
    })
}

/// Runs the upload; `Err` holds a one-line reason (never a secret).
pub(crate) fn run(u: &Upload) -> Result<(), String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = crate::child::command(&u.cmd.argv[0])
        .args(&u.cmd.argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", u.cmd.argv[0]))?;
    if let Some(mut w) = child.stdin.take() {
        let _ = w.write_all(&u.stream);
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "uploading activation secrets failed ({}): {last}",
            out.status
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (hash, name) in &u.expected {
        let ok = stdout.lines().any(|l| {
            let mut it = l.split_whitespace();
            it.next() == Some(hash.as_str()) && it.next() == Some(name.as_str())
        });
        if !ok {
            return Err(format!(
                "{ACTIVATION_DIR}/{name} on the target does not match the local value"
            ));
        }
    }
    Ok(())
}
