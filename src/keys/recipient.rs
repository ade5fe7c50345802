//! Parsing age recipient strings as sops does: `age1…` (X25519) and `ssh-…` lines.

use super::Error;

/// Parses one recipient string (`age1…` or `ssh-ed25519 AAAA… [comment]`).
pub fn parse_recipient(s: &str) -> Result<Box<dyn age::Recipient + Send + Sync>, Error> {
    let s = s.trim();
    if s.starts_with("ssh-") {
        let r: age::ssh::Recipient = s.parse().map_err(|e| Error::BadRecipient {
            recipient: s.to_string(),
            reason: format!("{e:?}"),
        })?;
        return Ok(Box::new(r));
    }
    if s.starts_with("age1") {
        let r: age::x25519::Recipient = s.parse().map_err(|e: &str| Error::BadRecipient {
            recipient: s.to_string(),
            reason: e.to_string(),
        })?;
        return Ok(Box::new(r));
    }
    Err(Error::BadRecipient {
        recipient: s.to_string(),
        reason: "unknown recipient type (expected age1… or ssh-ed25519 …)".into(),
    })
}

/// Checks that a recipient string parses, without keeping it.
pub fn validate_recipient(s: &str) -> Result<(), Error> {
    parse_recipient(s).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_x25519_and_ssh() {
        assert!(
            parse_recipient("age1msq0jj2pxeww4cqqrpwkn8vf7earzh4ylkr9e0n0p325uuqseuus8qpzle")
                .is_ok()
        );
        assert!(parse_recipient("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQcXSnjv6sQAjGdHpJ5nx4iVsyYR9g5Nj8GsxrgZxtV test").is_ok());
        assert!(parse_recipient("pgp:1234").is_err());
        assert!(parse_recipient("age1notvalid").is_err());
    }
}
