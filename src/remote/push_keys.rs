//! `push-keys`: installs a machine's key files on a running target over one ssh connection.
//!
//! Framing: the key files travel on ssh's stdin as a ustar stream (`super::tar`) together
//! with a `SHA256SUMS` manifest. The remote `sh -c` script (which holds no secret) extracts it
//! under `umask 077` into a fresh `mktemp -d` directory next to the destination, checks the
//! manifest, sets owner and modes, renames each file into place (same file system, so each
//! file appears whole) and prints the installed files' SHA-256, which is compared with the
//! local bytes. On any failure the trap removes the temporary directory, so an interrupted or
//! refused push leaves nothing half-written.

use sha2::{Digest, Sha256};

use super::Error;
use super::hostkeys::KeyBundle;
use super::ssh::Ssh;

/// Manifest file name inside the stream.
const SUMS: &str = "SHA256SUMS";

/// The directory keys go to: `/etc/ssh`, or `/persist/etc/ssh` for impermanence setups.
pub(crate) fn ssh_dir(persist: bool) -> &'static str {
    if persist {
        "/persist/etc/ssh"
    } else {
        "/etc/ssh"
    }
}

/// What was installed.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The remote paths written, in order.
    pub installed: Vec<String>,
    /// The host key's fingerprint (`SHA256:…`).
    pub fingerprint: String,
}

fn q(s: &str) -> String {
    shlex::try_quote(s)
        .map(|c| c.into_owned())
        .unwrap_or_default()
}

/// The remote script: extract, verify, install, print checksums. Holds no secret.
pub(crate) fn remote_script(dir: &str, files: &[(&str, u32)]) -> String {
    let mut s = format!("set -eu\ndir={}\n", q(dir));
    s.push_str(&extract_and_check());
    s.push_str(&install(files));
    s
}

/// Makes the destination, extracts stdin into a private temporary directory next to it
/// (removed on exit) and checks the manifest.
pub(crate) fn extract_and_check() -> String {
    concat!(
        "umask 022\n",
        "mkdir -p \"$dir\"\n",
        "umask 077\n",
        "tmp=$(mktemp -d \"$dir/.varsmith-push.XXXXXX\")\n",
        "trap 'rm -rf \"$tmp\"' EXIT\n",
        "trap 'exit 1' HUP INT TERM\n",
        "if command -v sha256sum >/dev/null 2>&1; then sum() { sha256sum \"$@\"; }; ",
        "else sum() { shasum -a 256 \"$@\"; }; fi\n",
        "tar -x -o -f - -C \"$tmp\"\n",
        "cd \"$tmp\"\n",
        "sum -c SHA256SUMS >/dev/null || { echo 'varsmith: received files do not match their checksums' >&2; exit 1; }\n",
    )
    .to_string()
}

/// Sets owner and modes, renames every file into place, prints the installed files' sums.
fn install(files: &[(&str, u32)]) -> String {
    let mut s = String::new();
    for (name, mode) in files {
        let n = q(name);
        s.push_str(&format!(
            "[ ! -d \"$dir\"/{n} ] || {{ echo \"varsmith: $dir/\"{n}' is a directory' >&2; exit 1; }}\n"
        ));
        s.push_str(&format!("chown 0:0 {n}\nchmod {mode:04o} {n}\n"));
    }
    for (name, _) in files {
        let n = q(name);
        s.push_str(&format!("mv -f {n} \"$dir\"/{n}\n"));
    }
    s.push_str("cd \"$dir\"\nsum");
    for (name, _) in files {
        s.push(' ');
        s.push_str(&q(name));
    }
    s.push('\n');
    s
}

/// Installs `bundle` on the target reached by `ssh`, under `ssh_dir``(persist)`, and checks
/// that the installed files hash to the local bytes.
pub fn push(ssh: &Ssh, bundle: &KeyBundle, persist: bool) -> Result<PushReport, Error> {
    let dir = ssh_dir(persist);
    let mut sums = String::new();
    let mut expected = Vec::new();
    for f in &bundle.files {
        let h = hex::encode(Sha256::digest(&*f.bytes));
        sums.push_str(&format!("{h}  {}\n", f.name));
        expected.push((f.name, h));
    }
    let mut entries: Vec<(&str, u32, &[u8])> = bundle
        .files
        .iter()
        .map(|f| (f.name, 0o600, &f.bytes[..]))
        .collect();
    entries.push((SUMS, 0o600, sums.as_bytes()));
    let stream = super::tar::archive(&entries);
    let modes: Vec<(&str, u32)> = bundle.files.iter().map(|f| (f.name, f.mode)).collect();
    let out = ssh.run_script(&remote_script(dir, &modes), &stream)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, hash) in &expected {
        let ok = stdout.lines().any(|l| {
            let mut it = l.split_whitespace();
            it.next() == Some(hash.as_str())
                && it.next().map(|n| n.trim_start_matches('*')) == Some(name)
        });
        if !ok {
            return Err(Error::Verify {
                target: ssh.target().to_string(),
                path: format!("{dir}/{name}"),
            });
        }
    }
    Ok(PushReport {
        installed: bundle
            .files
            .iter()
            .map(|f| format!("{dir}/{}", f.name))
            .collect(),
        fingerprint: bundle.fingerprint(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_quotes_and_orders() {
        let s = remote_script("/persist/etc/ssh", &[("a", 0o600), ("a.pub", 0o644)]);
        assert!(s.contains("dir=/persist/etc/ssh\n"));
        assert!(s.contains("chmod 0644 a.pub"));
        let check = s.find("sum -c").unwrap();
        let mv = s.find("mv -f").unwrap();
        assert!(check < mv);
        assert!(s.ends_with("sum a a.pub\n"));
    }
}
