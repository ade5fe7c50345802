//! The fleet's own keys are never excused as upstream examples.
//!
//! [`super::report::KeyFinding::is_example`] excuses key material in a store path's test or
//! documentation files (sops-nix's test keys are in every closure using it). That excuse must
//! never cover one of this workspace's keys: an admin identity or a host key whose age
//! recipient is one the workspace records (inventory admins, hosts' recipients, every
//! recipient of its sops files). Each excused key is read back from its file and its
//! recipient derived (age keys, OpenSSH ed25519 keys through ssh-to-age); a key that is the
//! workspace's, or that cannot be read back raw to check (encoded, compressed, unreadable),
//! is counted. Nothing here returns or prints key bytes.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroizing;

use super::keys::KeyKind;
use super::patterns::Encoding;
use super::report::{KeyFinding, Location, Report};

/// Why an example-located key is counted after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotExcused {
    /// Its recipient is one of the workspace's (admin or host).
    OwnKey,
    /// It could not be read back raw to compare with the workspace's recipients.
    Unverified,
}

impl NotExcused {
    /// The note shown next to the key in the human report.
    pub fn note(self) -> &'static str {
        match self {
            NotExcused::OwnKey => {
                " [one of this workspace's keys (admin or host): counted, even in a test or documentation file]"
            }
            NotExcused::Unverified => {
                " [in a test or documentation file, but not readable raw to check it is not this workspace's: counted]"
            }
        }
    }
}

/// Longest stretch read back after a key's offset (an OpenSSH ed25519 key is ~400 bytes).
const READ_BACK: u64 = 16 * 1024;

/// The age recipients of the workspace at `root`: inventory admins, every recipient of its
/// sops files, and each machine's host recipients. Unreadable parts are skipped (the audit
/// reports sops files it cannot read elsewhere).
pub(crate) fn workspace_recipients(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Ok(ws) = crate::workspace::Workspace::load(root) {
        out.extend(ws.inventory.admins.values().cloned());
        for host in ws.inventory.machines.keys() {
            if let Ok(rs) = crate::store::host_recipients(root, host) {
                out.extend(rs);
            }
        }
    }
    if let Ok(files) = super::collect::secret_files(root) {
        for (path, _, _) in files {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let origin = path.display().to_string();
            if let Ok(rs) = crate::sops::recipients(&bytes, crate::sops::Format::Yaml, &origin) {
                out.extend(rs);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Marks every example-located key that is one of `own` (or cannot be checked) as counted.
pub(crate) fn mark(report: &mut Report, own: &[String]) {
    for k in &mut report.keys {
        if k.is_example() {
            k.not_excused = check(k, own);
        }
    }
}

fn check(k: &KeyFinding, own: &[String]) -> Option<NotExcused> {
    let Location::Store { file, .. } = &k.location else {
        return None;
    };
    if k.encoding != Encoding::Raw || !k.layers.is_empty() {
        return Some(NotExcused::Unverified);
    }
    let Some(text) = read_back(file, k.offset) else {
        return Some(NotExcused::Unverified);
    };
    let recipient = match k.kind {
        KeyKind::Age => age_recipient(&text),
        KeyKind::Pem => openssh_recipient(&text),
        // WireGuard keys are never age recipients; a generated one is a finding of its own.
        KeyKind::WireGuard => None,
    };
    recipient
        .filter(|r| own.contains(r))
        .map(|_| NotExcused::OwnKey)
}

fn read_back(file: &Path, offset: u64) -> Option<Zeroizing<Vec<u8>>> {
    let mut f = std::fs::File::open(file).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = Zeroizing::new(Vec::with_capacity(READ_BACK as usize));
    f.take(READ_BACK).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The recipient of the `AGE-SECRET-KEY-1…` token at the start of `text`.
fn age_recipient(text: &[u8]) -> Option<String> {
    let end = text
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'-'))
        .unwrap_or(text.len());
    let token = Zeroizing::new(std::str::from_utf8(&text[..end]).ok()?.to_string());
    let id = age::x25519::Identity::from_str(&token).ok()?;
    Some(id.to_public().to_string())
}

/// The ssh-to-age recipient of the OpenSSH ed25519 private key block at the start of `text`.
fn openssh_recipient(text: &[u8]) -> Option<String> {
    const END: &[u8] = b"-----END OPENSSH PRIVATE KEY-----";
    let start = text.windows(11).position(|w| w == b"-----BEGIN ")?;
    let rel = text[start..].windows(END.len()).position(|w| w == END)?;
    let block = &text[start..start + rel + END.len()];
    let pem = Zeroizing::new(std::str::from_utf8(block).ok()?.to_string());
    let age_key = crate::keys::ssh_to_age::private_to_age(&pem).ok()?;
    age_recipient(age_key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_and_openssh_keys_map_to_their_recipients() {
        let id = age::x25519::Identity::generate();
        let secret =
            Zeroizing::new(secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string());
        let text = format!("{}\nmore", secret.as_str());
        assert_eq!(
            age_recipient(text.as_bytes()),
            Some(id.to_public().to_string())
        );
        assert_eq!(age_recipient(b"AGE-SECRET-KEY-1NOTAKEY"), None);
    }
}
