//! Names that become path components: generators, files, machines, admins.

/// Checks that `name` is one safe path component: non-empty, not `.`/`..`, no `/`, no leading
/// dot, and only `A-Z a-z 0-9 . _ - + @`.
pub(crate) fn check_component(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not a valid name"));
    }
    if name.contains('/') {
        return Err(format!(
            "{name:?} contains '/' (must be a single path component)"
        ));
    }
    if name.starts_with('.') {
        return Err(format!("{name:?} starts with '.'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@')))
    {
        return Err(format!(
            "{name:?} contains {c:?} (allowed: letters, digits, '.', '_', '-', '+', '@')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        for ok in ["openssh", "ssh_host_ed25519_key.pub", "tls-ca", "a+b@c"] {
            assert!(check_component(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "sp ace", "nul\0"] {
            assert!(check_component(bad).is_err(), "{bad:?}");
        }
    }
}
