//! What an error message may quote of its input: never a whole scalar, only a short escaped
//! excerpt that cannot be a key.
//!
//! A definition file can be anything a pull request puts there (a symlink to `keys.txt` is
//! refused by `workspace::read`, but a key pasted into a wrong-typed field is still text). Parser
//! messages such as serde's `invalid type: string "AGE-SECRET-KEY-1…", expected a map` are
//! rewritten by [`parser_message`]: every quoted input scalar becomes an [`excerpt`]; what serde
//! says it *expected* (our own field names and types) and the line/column stay. As a last line
//! of defence, [`scrub_keys`] removes key-shaped text (age secret keys, PEM/OpenSSH private key
//! blocks) from any message printed on stderr or in `--json`.

/// Characters of a scalar an excerpt keeps at most.
pub(crate) const EXCERPT_CHARS: usize = 8;

/// A short, escaped excerpt of input `s`: at most a quarter of it and at most
/// [`EXCERPT_CHARS`] characters, followed by `…` (so never the whole scalar, even a short one).
pub(crate) fn excerpt(s: &str) -> String {
    let n = s.chars().count();
    let keep = (n / 4).min(EXCERPT_CHARS);
    let head: String = s
        .chars()
        .take(keep)
        .flat_map(char::escape_default)
        .collect();
    format!("{head}…")
}

/// Rewrites a parser's (serde, YAML, JSON) message so that each quoted input scalar (`"…"` or
/// `` `…` ``) is an [`excerpt`]. Kept whole: what follows `expected` (the type's own
/// description), the field named by `missing field` / `duplicate field` (those are ours), and
/// an `unknown field` name that looks like one (at most 32 of `A-Z a-z 0-9 _ -`; a key-shaped
/// one is still scrubbed by [`scrub_keys`]).
pub(crate) fn parser_message(msg: &str) -> String {
    let (input, expected) = match msg.find("expected") {
        Some(i) => msg.split_at(i),
        None => (msg, ""),
    };
    let mut out = String::with_capacity(msg.len());
    let mut rest = input;
    while let Some(i) = rest.find(['"', '`']) {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        let q = from.chars().next().unwrap_or('"');
        let body = &from[1..];
        let end = closing(body, q);
        let scalar = &body[..end];
        let ours = before.ends_with("missing field ") || before.ends_with("duplicate field ");
        // A misspelt field name is worth showing when it looks like one (a short identifier).
        let field = before.ends_with("unknown field ")
            && scalar.len() <= 32
            && scalar
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        out.push(q);
        if field || ours && scalar.len() <= 40 && scalar.chars().all(|c| c.is_ascii_graphic()) {
            out.push_str(scalar);
        } else {
            out.push_str(&excerpt(scalar));
        }
        out.push(q);
        rest = body.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out.push_str(expected);
    scrub_keys(&out)
}

/// The byte index of the quote closing a scalar opened by `q` (a `"` scalar may hold `\"`);
/// the end of `body` when it is not closed.
fn closing(body: &str, q: char) -> usize {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if q == '"' && !escaped => escaped = true,
            c if c == q && !escaped => return i,
            _ => escaped = false,
        }
    }
    body.len()
}

/// Replaces key-shaped text in `msg`: age secret and plugin identities (`AGE-SECRET-KEY-1…`,
/// `AGE-PLUGIN-…-1…`) keep their prefix only, and a `-----BEGIN … PRIVATE KEY-----` block
/// (to its END line, or to the end of the message) becomes one `[private key redacted]`.
pub(crate) fn scrub_keys(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    loop {
        let age = find_ci(rest, "AGE-SECRET-KEY-1").or_else(|| find_ci(rest, "AGE-PLUGIN-"));
        let pem = private_block(rest);
        let next = match (age, pem) {
            (Some(a), Some(p)) => Some((a.min(p), a <= p)),
            (Some(a), None) => Some((a, true)),
            (None, Some(p)) => Some((p, false)),
            (None, None) => None,
        };
        let Some((i, is_age)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if is_age {
            let prefix_end = tail.find('1').map_or(tail.len(), |j| j + 1);
            out.push_str(&tail[..prefix_end]);
            out.push('…');
            let body_end = tail[prefix_end..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .map_or(tail.len(), |j| prefix_end + j);
            rest = &tail[body_end..];
        } else {
            out.push_str("[private key redacted]");
            rest = match tail.find("-----END") {
                Some(e) => {
                    let after = &tail[e + 8..];
                    after.find("-----").map_or("", |k| &after[k + 5..])
                }
                None => "",
            };
        }
    }
}

/// The start of the first `-----BEGIN … PRIVATE KEY-----` header in `s`.
fn private_block(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find("-----BEGIN").map(|i| i + from) {
        let header_end = s[i + 10..].find("-----").map_or(s.len(), |j| i + 10 + j);
        if s[i..header_end].contains("PRIVATE KEY") {
            return Some(i);
        }
        from = i + 10;
    }
    None
}

fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    hay.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AGE-SECRET-KEY-1QQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7LQPZRY9X8GF2TVDW0S3JN54KHCE";

    #[test]
    fn parser_messages_keep_types_and_positions_not_scalars() {
        let m = format!("invalid type: string \"{KEY}\", expected a map at line 3 column 1");
        let r = parser_message(&m);
        assert!(!r.contains("QQPZRY9X8GF2"), "{r}");
        assert!(r.contains("expected a map at line 3 column 1"), "{r}");
        let m = "unknown field `hunter2 is my password`, expected one of `script`, `files`";
        let r = parser_message(m);
        assert!(!r.contains("hunter2 is"), "{r}");
        assert!(r.contains("`script`, `files`"), "{r}");
        assert!(parser_message("unknown field `bogus`, expected").contains("`bogus`"));
        let r = parser_message(&format!("unknown field `{KEY}`, expected x"));
        assert!(!r.contains("QQPZRY9X8GF2"), "{r}");
        assert_eq!(
            parser_message("missing field `script` at line 1"),
            "missing field `script` at line 1"
        );
        let r = parser_message("invalid value: string \"a\\\"b secret-words\", expected x");
        assert!(!r.contains("secret-words"), "{r}");
    }

    #[test]
    fn key_shaped_text_is_scrubbed() {
        let r = scrub_keys(&format!("x: {KEY} y"));
        assert_eq!(r, "x: AGE-SECRET-KEY-1… y");
        let pem = "a -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n b";
        assert_eq!(scrub_keys(pem), "a [private key redacted]\n b");
        let cut = "-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEF";
        assert_eq!(scrub_keys(cut), "[private key redacted]");
        assert_eq!(scrub_keys("age1abc ok"), "age1abc ok");
        assert_eq!(excerpt("hunter2"), "h…");
    }
}
