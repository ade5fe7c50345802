//! Which leaves are encrypted (`_unencrypted` suffix and the other crypt rules).

use regex::bytes::Regex;

/// One of sops' six crypt rules (at most one per file).
#[derive(Debug, Clone)]
pub enum CryptRule {
    /// Encrypt unless a path component ends with the suffix.
    UnencryptedSuffix(String),
    /// Encrypt only if a path component ends with the suffix.
    EncryptedSuffix(String),
    /// Encrypt unless a path component matches.
    UnencryptedRegex(Regex),
    /// Encrypt only if a path component matches.
    EncryptedRegex(Regex),
    /// Encrypt unless a comment in the active comment stack matches.
    UnencryptedCommentRegex(Regex),
    /// Encrypt only if a comment in the active comment stack matches.
    EncryptedCommentRegex(Regex),
    /// Encrypt everything (binary store).
    All,
}

impl Default for CryptRule {
    fn default() -> Self {
        CryptRule::UnencryptedSuffix("_unencrypted".into())
    }
}

impl CryptRule {
    /// sops' `shouldBeEncrypted`. For a comment, the stack already holds the comment itself
    /// (so a comment matching `unencrypted_comment_regex` stays plaintext), and under
    /// `encrypted_comment_regex` that last entry is skipped (the matching line stays
    /// plaintext, the ones after it are encrypted).
    pub(crate) fn should_encrypt_item(
        &self,
        path: &[String],
        comments: &[Vec<String>],
        is_comment: bool,
    ) -> bool {
        let last = comments.len().checked_sub(1);
        let skip = |i: usize, j: usize| {
            is_comment && Some(i) == last && j + 1 == comments.get(i).map_or(0, |c| c.len())
        };
        let any_comment = |re: &Regex| {
            comments.iter().enumerate().any(|(i, cs)| {
                cs.iter()
                    .enumerate()
                    .any(|(j, c)| !skip(i, j) && re.is_match(c.as_bytes()))
            })
        };
        match self {
            CryptRule::UnencryptedSuffix(s) => !path.iter().any(|p| p.ends_with(s.as_str())),
            CryptRule::EncryptedSuffix(s) => path.iter().any(|p| p.ends_with(s.as_str())),
            CryptRule::UnencryptedRegex(r) => !path.iter().any(|p| r.is_match(p.as_bytes())),
            CryptRule::EncryptedRegex(r) => path.iter().any(|p| r.is_match(p.as_bytes())),
            CryptRule::UnencryptedCommentRegex(r) => {
                !comments.iter().flatten().any(|c| r.is_match(c.as_bytes()))
            }
            CryptRule::EncryptedCommentRegex(r) => any_comment(r),
            CryptRule::All => true,
        }
    }

    /// The metadata key and value for this rule (`None` for [`CryptRule::All`]).
    pub(crate) fn metadata_entry(&self) -> Option<(&'static str, String)> {
        Some(match self {
            CryptRule::UnencryptedSuffix(s) => ("unencrypted_suffix", s.clone()),
            CryptRule::EncryptedSuffix(s) => ("encrypted_suffix", s.clone()),
            CryptRule::UnencryptedRegex(r) => ("unencrypted_regex", r.as_str().to_string()),
            CryptRule::EncryptedRegex(r) => ("encrypted_regex", r.as_str().to_string()),
            CryptRule::UnencryptedCommentRegex(r) => {
                ("unencrypted_comment_regex", r.as_str().to_string())
            }
            CryptRule::EncryptedCommentRegex(r) => {
                ("encrypted_comment_regex", r.as_str().to_string())
            }
            CryptRule::All => return None,
        })
    }

    /// Builds a rule from its metadata key; `None` for an unknown key.
    pub(crate) fn from_entry(key: &str, value: &str) -> Option<Result<CryptRule, regex::Error>> {
        let re = || Regex::new(value);
        Some(match key {
            "unencrypted_suffix" => Ok(CryptRule::UnencryptedSuffix(value.into())),
            "encrypted_suffix" => Ok(CryptRule::EncryptedSuffix(value.into())),
            "unencrypted_regex" => re().map(CryptRule::UnencryptedRegex),
            "encrypted_regex" => re().map(CryptRule::EncryptedRegex),
            "unencrypted_comment_regex" => re().map(CryptRule::UnencryptedCommentRegex),
            "encrypted_comment_regex" => re().map(CryptRule::EncryptedCommentRegex),
            _ => return None,
        })
    }

    /// The metadata keys of all rules, in 3.11 struct order.
    pub const KEYS: [&'static str; 6] = [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ];
}
