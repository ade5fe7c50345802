//! sops tree paths (`["db"]["hosts"][0]`), as `--extract`, `set` and `unset` take them.

use super::error::{Error, Result};

/// One path component: a mapping key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// `["key"]` or `['key']`.
    Key(String),
    /// `[0]`.
    Index(usize),
}

/// Parses a sops tree path like sops' `parseTreePath`: components split at `[`, each ending
/// in `]`, quoted (a key) or a decimal integer (an index). An empty path is refused.
pub(crate) fn parse(arg: &str) -> Result<Vec<Step>> {
    let bad = |why: String| Error::InvalidPath {
        msg: format!("invalid tree path {arg:?}: {why} (expected e.g. [\"key\"][0])"),
    };
    let mut out = Vec::new();
    for part in arg.split('[') {
        if part.is_empty() {
            continue;
        }
        let inner = part
            .strip_suffix(']')
            .ok_or_else(|| bad(format!("component {part:?} does not end with ]")))?;
        let quoted = ['"', '\''].iter().find_map(|q| {
            inner
                .strip_prefix(*q)
                .and_then(|r| r.strip_suffix(*q))
                .filter(|_| inner.len() >= 2)
        });
        match quoted {
            Some(k) => out.push(Step::Key(k.to_string())),
            None => out.push(Step::Index(inner.parse().map_err(|_| {
                bad(format!(
                    "component {inner:?} is neither quoted nor an index"
                ))
            })?)),
        }
    }
    if out.is_empty() {
        return Err(bad("empty path".into()));
    }
    Ok(out)
}

/// The path as sops prints it in errors (`['a'][0]`).
pub(crate) fn display(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => format!("['{k}']"),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_sops() {
        assert_eq!(
            parse(r#"["a"]['b'][3]"#).unwrap(),
            vec![Step::Key("a".into()), Step::Key("b".into()), Step::Index(3)]
        );
        for bad in ["a.b", "[a]", r#"["a""#, "", "[-1]"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
