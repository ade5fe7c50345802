//! "Did you mean": the one wording for a name that is not there, whatever kind of name it is.
//!
//! Every lookup of a machine, generator or file by a name the user typed words its error with
//! [`unknown`]: `unknown machine "cinabar" (did you mean "cinnabar"?)`. The suggestion is the
//! known name most similar to the typed one by Jaro similarity, as clap suggests subcommands,
//! and only when it is similar enough ([`THRESHOLD`]); with no close name and a short list
//! the known names are listed instead, so the user sees what exists.

/// The smallest Jaro similarity (0 to 1) of a suggestion; clap's value.
pub(crate) const THRESHOLD: f64 = 0.7;

/// Known names listed when none is close enough, at most this many.
const LISTED: usize = 8;

/// The known name closest to `name` (Jaro similarity at least [`THRESHOLD`]); the first of
/// equally close ones. `None` when `name` itself is known or nothing is close.
pub(crate) fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        if k == name {
            return None;
        }
        let score = strsim::jaro(name, k);
        if score >= THRESHOLD && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| k)
}

/// `unknown KIND "NAME" (did you mean "X"?)`; without a close name, `(known: a, b)` when
/// there are at most a few (eight), `(no KIND is defined)` when there is none, else nothing
/// after the name. `kind` is `machine`, `generator`, `file`, `admin`, `command`.
pub(crate) fn unknown<'a>(
    kind: &str,
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> String {
    let known: Vec<&str> = known.into_iter().collect();
    let mut msg = format!("unknown {kind} {name:?}");
    if let Some(k) = closest(name, known.iter().copied()) {
        msg.push_str(&format!(" (did you mean {k:?}?)"));
    } else if known.is_empty() {
        msg.push_str(&format!(" (no {kind} is defined)"));
    } else if known.len() <= LISTED {
        msg.push_str(&format!(" (known: {})", known.join(", ")));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name() {
        let known = ["cinnabar", "electrum", "jasper"];
        assert_eq!(closest("cinabar", known), Some("cinnabar"));
        assert_eq!(closest("electrun", known), Some("electrum"));
        assert_eq!(closest("zzz", known), None);
        assert_eq!(closest("jasper", known), None);
    }

    #[test]
    fn one_wording() {
        assert_eq!(
            unknown("machine", "cinabar", ["cinnabar", "electrum"]),
            r#"unknown machine "cinabar" (did you mean "cinnabar"?)"#
        );
        assert_eq!(
            unknown("generator", "qq", ["openssh", "wireguard"]),
            r#"unknown generator "qq" (known: openssh, wireguard)"#
        );
        assert_eq!(
            unknown("machine", "x", []),
            r#"unknown machine "x" (no machine is defined)"#
        );
        let many: Vec<String> = (0..20).map(|i| format!("host{i:02}")).collect();
        assert_eq!(
            unknown("machine", "qqqqqqqqqq", many.iter().map(String::as_str)),
            r#"unknown machine "qqqqqqqqqq""#
        );
    }
}
