//! Parsing age recipient strings as sops and age do: `age1…` (X25519), `age1NAME1…` (a plugin,
//! e.g. `age1yubikey1…`) and `ssh-ed25519`/`ssh-rsa` lines.

use super::Error;

/// Parses one recipient string (`age1…`, `age1NAME1…` or `ssh-ed25519 AAAA… [comment]`).
/// A plugin recipient needs `age-plugin-NAME` on `PATH` (see [`validate_recipient`] for a
/// check that does not).
pub(crate) fn parse_recipient(s: &str) -> Result<Box<dyn age::Recipient + Send + Sync>, Error> {
    let s = s.trim();
    if let Some(r) = super::plugin::parse_recipient(s) {
        return super::plugin::recipient(&r?);
    }
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
        reason: "unknown recipient type (expected age1…, age1PLUGIN1… or ssh-ed25519 …)".into(),
    })
}

/// Checks that a recipient string parses, without keeping it. A plugin recipient is only
/// parsed: its plugin need not be installed where the inventory is edited.
pub(crate) fn validate_recipient(s: &str) -> Result<(), Error> {
    if let Some(r) = super::plugin::parse_recipient(s.trim()) {
        return r.map(|_| ());
    }
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
        // A YubiKey recipient parses without the plugin; wrapping needs it on PATH.
        let hrp = bech32::Hrp::parse("age1yubikey").unwrap();
        let yk = bech32::encode::<bech32::Bech32>(hrp, &[2u8; 33]).unwrap();
        let yk = yk.as_str();
        assert!(
            validate_recipient(yk).is_ok(),
            "{:?}",
            validate_recipient(yk)
        );
        assert!(validate_recipient("age1yubikey1qqqq").is_err());
    }
}
