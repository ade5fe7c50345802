//! Grouping of identical `check` findings for the terminal: after `admin add`, every file
//! lacks the same recipient, and one line per file (thousands on a large fleet) hides the
//! one thing to do. Findings whose kind and problem (the detail after the leading `<file>: `,
//! up to the advice after `; `) are equal are one line naming how many files, with their
//! advice when all share it; `--verbose` lists every finding instead.

use super::check::Finding;

/// One line to print: a single finding (`owner/generator: kind: detail`, as `--verbose`
/// prints every finding), or a group of identical ones (`kind: N files (…): problem`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The finding kind.
    pub kind: String,
    /// The whole line.
    pub text: String,
}

/// The detail without its leading subject (`sops/…/x.yaml: `), or `None` when it has none.
fn rest(detail: &str) -> Option<(&str, &str)> {
    let (subject, rest) = detail.split_once(": ")?;
    (subject.contains('/') && !subject.contains(' ')).then_some((subject, rest))
}

/// The lines for `findings`: identical findings (same kind, same problem) of two or more
/// files become one line `N files (first, …): problem; advice`; order of first appearance.
pub(crate) fn group(findings: &[Finding]) -> Vec<Line> {
    type Key = (String, String);
    let mut order: Vec<Key> = Vec::new();
    let mut groups: std::collections::HashMap<Key, Vec<&Finding>> = Default::default();
    for f in findings {
        let key = match rest(&f.detail) {
            Some((_, r)) => (f.kind.clone(), problem(r).0.to_string()),
            None => (
                f.kind.clone(),
                format!("\0{}/{}:{}", f.owner, f.generator, f.detail),
            ),
        };
        let g = groups.entry(key.clone()).or_default();
        if g.is_empty() {
            order.push(key);
        }
        g.push(f);
    }
    order
        .into_iter()
        .map(|key| {
            let members = &groups[&key];
            let first = members[0];
            if members.len() == 1 {
                return Line {
                    kind: first.kind.clone(),
                    text: format!(
                        "{}/{}: {}: {}",
                        first.owner, first.generator, first.kind, first.detail
                    ),
                };
            }
            let (subject, r) = rest(&first.detail).unwrap_or(("", ""));
            let advice = problem(r).1;
            let same = members
                .iter()
                .all(|m| rest(&m.detail).is_some_and(|(_, x)| problem(x).1 == advice));
            let advice = match (same, advice) {
                (true, "") => String::new(),
                (true, a) => format!("; {a}"),
                (false, _) => "; `--verbose` gives each file's fix".to_string(),
            };
            Line {
                kind: key.0.clone(),
                text: format!(
                    "{}: {} files ({subject}, …; `--verbose` lists them): {}{advice}",
                    key.0,
                    members.len(),
                    key.1
                ),
            }
        })
        .collect()
}

/// The problem and the advice of a detail (split at the first `; `).
fn problem(r: &str) -> (&str, &str) {
    r.split_once("; ").unwrap_or((r, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(file: &str, detail: &str) -> Finding {
        Finding {
            owner: "m".into(),
            generator: "g".into(),
            kind: "recipients".into(),
            detail: format!("{file}: {detail}"),
            source: file.into(),
        }
    }

    #[test]
    fn identical_findings_of_many_files_are_one_line() {
        let all = [
            f(
                "sops/a.yaml",
                "recipient age1bob missing; run `varsmith rekey`",
            ),
            f(
                "sops/b.yaml",
                "recipient age1bob missing; run `varsmith rekey`",
            ),
            f("sops/c.yaml", "other"),
        ];
        let lines = group(&all);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0].text,
            "recipients: 2 files (sops/a.yaml, …; `--verbose` lists them): recipient age1bob missing; run `varsmith rekey`"
        );
        assert_eq!(lines[1].text, "m/g: recipients: sops/c.yaml: other");
    }
}
