//! Key generation: admin age keys appended to a key file (host keys come from the bundled
//! `openssh` generator, run by ssh-keygen in the sandbox).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::Error;

/// Generates a new X25519 age identity and appends it to `path` (created with mode 0600, parent
/// directories created). Existing keys in the file are kept; nothing is ever overwritten.
/// Returns the new public recipient (`age1…`).
pub fn append_admin_key(path: &Path) -> Result<String, Error> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        cause: e,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let created = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let secret = id.to_string();
    let mut text = Zeroizing::new(String::new());
    text.push_str(&format!(
        "# created: {created}\n# public key: {recipient}\n"
    ));
    text.push_str(secret.expose_secret());
    text.push('\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    // An existing file keeps its content but is tightened to 0600.
    let meta = f.metadata().map_err(io)?;
    if meta.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    if meta.len() > 0 {
        // Make sure the new key starts on its own line.
        let existing = std::fs::read(path).map_err(io)?;
        if existing.last() != Some(&b'\n') {
            f.write_all(b"\n").map_err(io)?;
        }
    }
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/keys.txt");
        let r1 = append_admin_key(&p).unwrap();
        let r2 = append_admin_key(&p).unwrap();
        assert_ne!(r1, r2);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.matches("AGE-SECRET-KEY-1").count(), 2);
        assert!(text.contains(&r1) && text.contains(&r2));
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
