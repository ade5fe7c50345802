//! Limits checked on YAML text before it reaches the YAML parser: its size, its nesting depth
//! (flow collections and block indentation) and its number of aliases. A definition file
//! nested 100,000 deep or an alias bomb is refused at once with a clear error instead of
//! exhausting the stack, memory or time of the parser.

/// Largest YAML input (inventory, definition, prompts file).
pub(crate) const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of collections.
pub(crate) const MAX_DEPTH: usize = 64;
/// Most aliases (`*name`) in one document.
pub(crate) const MAX_ALIASES: usize = 64;

/// Checks `text` against the limits; the error says which one.
pub(crate) fn check_yaml(text: &str) -> Result<(), String> {
    if text.len() > MAX_BYTES {
        return Err(format!("larger than {MAX_BYTES} bytes"));
    }
    let mut aliases = 0;
    let mut indents: Vec<usize> = Vec::new();
    for line in text.lines() {
        let body = line.trim_start_matches([' ', '-']);
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        while indents.last().is_some_and(|&i| i >= indent) {
            indents.pop();
        }
        indents.push(indent);
        if indents.len() > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let (depth, n) = scan_line(body);
        aliases += n;
        if indents.len() + depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        if aliases > MAX_ALIASES {
            return Err(format!("more than {MAX_ALIASES} aliases"));
        }
    }
    Ok(())
}

/// The deepest flow nesting reached on one line and its aliases (outside quotes and comments).
/// Flow collections spanning lines are counted per line, which only ever undercounts a depth
/// the parser then still bounds by its own recursion limit.
fn scan_line(body: &str) -> (usize, usize) {
    let (mut depth, mut max, mut aliases) = (0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for c in body.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if matches!(prev, ' ' | '[' | '{' | ',' | ':') => quote = Some(c),
            (None, '#') if prev == ' ' => break,
            (None, '[' | '{') => {
                depth += 1;
                max = max.max(depth);
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            (None, '*') if matches!(prev, ' ' | '[' | '{' | ',') => aliases += 1,
            _ => {}
        }
        prev = c;
    }
    (max, aliases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_deep_nesting_and_alias_bombs_accepts_normal_files() {
        let deep = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(check_yaml(&deep).unwrap_err().contains("nested"));
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        assert!(check_yaml(&block).unwrap_err().contains("nested"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12u8 {
            let (p, c) = ((b'a' + i - 1) as char, (b'a' + i) as char);
            bomb.push_str(&format!(
                "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            ));
        }
        assert!(check_yaml(&bomb).unwrap_err().contains("aliases"));
        let ok = "description: x\nfiles:\n  a: { secret: false, mode: \"0400\" }\nscript: |\n  echo '*' \"[\" > $out/a # [[[\n";
        assert_eq!(check_yaml(ok), Ok(()));
    }
}
