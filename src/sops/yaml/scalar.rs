//! Quoted scalars: finding the closing quote, line folding, escapes.

/// The index of the quote closing the quoted scalar that `text` starts with (quote `q`).
pub(super) fn quoted_end(text: &str, q: u8) -> Option<usize> {
    scan_quoted(text, q, 1).ok()
}

/// Finds the closing quote of a quoted scalar in `text`, scanning from byte `from`.
/// `Err(resume)` when it is not there yet: scan again from `resume` once more text is added.
pub(super) fn scan_quoted(text: &str, q: u8, from: usize) -> std::result::Result<usize, usize> {
    let b = text.as_bytes();
    let mut i = from;
    while i < b.len() {
        if q == b'"' && b[i] == b'\\' {
            if i + 1 >= b.len() {
                return Err(i);
            }
            i += 2;
            continue;
        }
        if b[i] == q {
            if q == b'\'' && b.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Ok(i);
        }
        i += 1;
    }
    Err(i)
}

/// Folds the line breaks of a multi-line quoted scalar (one break → space, n → n-1 newlines).
fn fold_lines(s: &str) -> String {
    if !s.contains('\n') {
        return s.to_string();
    }
    let parts: Vec<&str> = s.split('\n').collect();
    let mut out = String::new();
    let mut empties = 0;
    for (i, p) in parts.iter().enumerate() {
        let p = if i == 0 {
            p.trim_end()
        } else if i == parts.len() - 1 {
            p.trim_start()
        } else {
            p.trim()
        };
        if i > 0 && p.is_empty() && i < parts.len() - 1 {
            empties += 1;
            continue;
        }
        if i > 0 {
            if empties > 0 {
                for _ in 0..empties {
                    out.push('\n');
                }
            } else {
                out.push(' ');
            }
            empties = 0;
        }
        out.push_str(p);
    }
    out
}

pub(super) fn fold_single(body: &str) -> Vec<u8> {
    fold_lines(&body.replace("''", "'")).into_bytes()
}

pub(super) fn unescape_double(body: &str) -> std::result::Result<Vec<u8>, String> {
    // Escaped line breaks join lines without a space.
    let folded = fold_lines(&body.replace("\\\n", "\u{0}\u{1}"));
    let folded = folded.replace("\u{0}\u{1} ", "").replace("\u{0}\u{1}", "");
    let mut out = Vec::new();
    let mut it = folded.chars().peekable();
    let push = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = it.next() {
        if c != '\\' {
            push(&mut out, c);
            continue;
        }
        let e = it.next().ok_or("bad escape at end of string")?;
        let hex = |it: &mut std::iter::Peekable<std::str::Chars>,
                   n: usize|
         -> std::result::Result<u32, String> {
            let s: String = (0..n).filter_map(|_| it.next()).collect();
            u32::from_str_radix(&s, 16).map_err(|_| "bad hex escape".to_string())
        };
        match e {
            '0' => out.push(0),
            'a' => out.push(7),
            'b' => out.push(8),
            't' | '\t' => out.push(9),
            'n' => out.push(b'\n'),
            'v' => out.push(11),
            'f' => out.push(12),
            'r' => out.push(b'\r'),
            'e' => out.push(0x1b),
            ' ' => out.push(b' '),
            '"' => out.push(b'"'),
            '/' => out.push(b'/'),
            '\\' => out.push(b'\\'),
            'N' => push(&mut out, '\u{85}'),
            '_' => push(&mut out, '\u{a0}'),
            'L' => push(&mut out, '\u{2028}'),
            'P' => push(&mut out, '\u{2029}'),
            'x' => {
                let v = hex(&mut it, 2)?;
                push(&mut out, char::from_u32(v).ok_or("bad escape")?)
            }
            'u' => {
                let v = hex(&mut it, 4)?;
                push(&mut out, char::from_u32(v).unwrap_or('\u{fffd}'))
            }
            'U' => {
                let v = hex(&mut it, 8)?;
                push(&mut out, char::from_u32(v).ok_or("bad escape")?)
            }
            _ => return Err("unknown escape in double-quoted scalar".into()),
        }
    }
    Ok(out)
}
