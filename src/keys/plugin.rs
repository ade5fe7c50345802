//! age plugins, found on `PATH` as `age-plugin-NAME` the way age finds them: recipients
//! `age1NAME1…` (e.g. `age1yubikey1…`) and identities `AGE-PLUGIN-NAME-1…` (e.g. from
//! `age-plugin-yubikey --identity`, `age-plugin-fido2-hmac`). The plugin binary is only needed
//! when a file key is wrapped or unwrapped: a plugin recipient parses (and `admin add` accepts
//! it) without the plugin installed.

use super::Error;
use super::callbacks::TtyCallbacks;

/// A parsed plugin recipient (`age1NAME1…`); `None` when `s` does not look like one.
pub(crate) fn parse_recipient(s: &str) -> Option<Result<age::plugin::Recipient, Error>> {
    let hrp_end = s.rfind('1')?;
    // `age1` + NAME + `1` + data: the x25519 form (`age1` + data) has no second separator.
    if !s.starts_with("age1") || hrp_end <= 3 {
        return None;
    }
    Some(s.parse().map_err(|e: &str| Error::BadRecipient {
        recipient: s.to_string(),
        reason: format!("not an age plugin recipient: {e}"),
    }))
}

/// The recipient that wraps file keys through `age-plugin-NAME` (asked on the terminal when
/// the plugin needs the user). Errors when the plugin is not on `PATH`.
pub(crate) fn recipient(
    r: &age::plugin::Recipient,
) -> Result<Box<dyn age::Recipient + Send + Sync>, Error> {
    let p =
        age::plugin::RecipientPluginV1::new(r.plugin(), std::slice::from_ref(r), &[], TtyCallbacks)
            .map_err(|e| Error::BadRecipient {
                recipient: r.to_string(),
                reason: plain(&e.to_string()),
            })?;
    Ok(Box::new(p))
}

/// One identity per plugin for `ids` (all identities of one plugin go to one plugin process,
/// as age does). Errors when a plugin is not on `PATH`, naming `origin`.
pub(crate) fn identities(
    ids: &[age::plugin::Identity],
    origin: &str,
) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>, Error> {
    let mut names: Vec<&str> = ids.iter().map(|i| i.plugin()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            age::plugin::IdentityPluginV1::new(name, ids, TtyCallbacks)
                .map(|p| Box::new(p) as Box<dyn age::Identity + Send + Sync>)
                .map_err(|e| Error::BadIdentity {
                    origin: origin.to_string(),
                    reason: plain(&e.to_string()),
                })
        })
        .collect()
}

/// age's localized messages without the Unicode isolation marks around their arguments.
fn plain(s: &str) -> String {
    s.replace(['\u{2068}', '\u{2069}'], "")
}
