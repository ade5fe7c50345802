//! [`age::Callbacks`] on the terminal: what plugins (a YubiKey's "touch your key", a PIN) and
//! passphrase-protected identity files ask the user. With no terminal every request answers
//! `None`, so a plugin or a passphrase identity fails with its own error instead of hanging.

use age::secrecy::SecretString;

use crate::tty;

/// Callbacks that talk to `/dev/tty` (never stdin or stdout, which may carry data); messages
/// go to stderr. Passphrases and PINs are read with echo off.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TtyCallbacks;

impl age::Callbacks for TtyCallbacks {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }

    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        let no = no_string.unwrap_or("no");
        let question = format!("{message} [{yes_string}/{no}]");
        let answer = tty::ask_line_once(&question)?.ok()?;
        let answer = std::str::from_utf8(&answer).ok()?.trim().to_string();
        Some(answer == yes_string || answer.eq_ignore_ascii_case("y"))
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        let answer = tty::ask_line_once(description)?.ok()?;
        String::from_utf8(answer.to_vec()).ok()
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        let answer = tty::ask_hidden_once(description)?.ok()?;
        let text = String::from_utf8(answer.to_vec()).ok()?;
        Some(SecretString::from(text))
    }
}
