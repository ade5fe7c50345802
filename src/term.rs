//! Terminal text: control characters escaped so that text from files, tools and definitions
//! (error messages, prompt questions, a tool's stderr) cannot move the cursor, set the title,
//! write the clipboard or fake another line when printed. A leaf module: it depends on nothing
//! else in the crate.

/// Like [`escape_controls`] but keeps line breaks (a tool's multi-line message).
pub(crate) fn escape_controls_keep_lines(s: &str) -> String {
    s.split('\n')
        .map(escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Escapes control characters (other than tab) as `\xNN` and DEL / C1 controls likewise.
pub(crate) fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c.is_control() && c != '\t') || c == '\u{7f}' {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}
