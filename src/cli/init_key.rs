//! The admin key of `varsmith init`: the key file's existing age key, or a new one.

use std::path::Path;

/// The recipient to register for the new workspace's admin: with `new_key`, or when `file`
/// holds no age key, a new key appended to `file` (never overwriting); otherwise the first
/// existing key's recipient, reused. Says on stderr which it did.
pub fn admin_recipient(file: &Path, new_key: bool) -> anyhow::Result<String> {
    if !new_key && let Some((r, count)) = crate::keys::existing::first_age_recipient(file)? {
        let which = if count > 1 {
            format!("the first of its {count} age keys")
        } else {
            "its age key".to_string()
        };
        eprintln!(
            "using {which} from {} ({r}); pass --new-key to add a new one",
            file.display()
        );
        return Ok(r);
    }
    let r = crate::keys::keygen::append_admin_key(file)?;
    eprintln!("added a new age key to {}", file.display());
    Ok(r)
}
