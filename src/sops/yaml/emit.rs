//! A YAML emitter that writes what go-yaml v3 (indent 4, unlimited width) writes for sops.

use base64::Engine;

use super::resolve::plain_is_str;
use crate::sops::gofmt::format_float_g;
use crate::sops::tree::{Key, Map, Value};

/// sops' default YAML indentation.
pub(crate) const DEFAULT_INDENT: usize = 4;

struct Em {
    /// go-yaml's `best_indent`.
    best: usize,
    out: Vec<u8>,
    column: usize,
    indention: bool,
    whitespace: bool,
}

fn printable(c: char) -> bool {
    c == '\n'
        || (' '..='~').contains(&c)
        || ('\u{A0}'..='\u{D7FF}').contains(&c)
        || (('\u{E000}'..='\u{FFFD}').contains(&c) && c != '\u{FEFF}')
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c),
    }
}

struct Analysis {
    multiline: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

/// What `analyze` found in a scalar (go-yaml's analysis flags).
#[derive(Default)]
struct Flags {
    block_ind: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
    special: bool,
    line_breaks: bool,
    tabs: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let mut f = Flags {
        block_ind: s.starts_with("---") || s.starts_with("..."),
        ..Flags::default()
    };
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_ws = true;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let followed_ws = is_blankz(chars.get(i + 1).copied());
        let last = i + 1 == chars.len();
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => f.block_ind = true,
                '?' | ':' | '-' if followed_ws => f.block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_ws => f.block_ind = true,
                '#' if preceded_ws => f.block_ind = true,
                _ => {}
            }
        }
        // go-yaml v3: a tab rules out plain and single-quoted styles but still allows a
        // literal block, unlike other non-printable characters.
        if c == '\t' {
            f.tabs = true;
        } else if !printable(c) {
            f.special = true;
        }
        if c == ' ' {
            if i == 0 {
                f.leading_space = true;
            }
            if last {
                f.trailing_space = true;
            }
            if prev_break {
                f.break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            f.line_breaks = true;
            if i == 0 {
                f.leading_break = true;
            }
            if last {
                f.trailing_break = true;
            }
            if prev_space {
                f.space_break = true;
            }
            prev_break = true;
            prev_space = false;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = is_blankz(Some(c));
    }
    decide(&f)
}

/// go-yaml's `yaml_emitter_analyze_scalar` verdict from the scanned flags.
fn decide(f: &Flags) -> Analysis {
    let mut a = Analysis {
        multiline: f.line_breaks,
        block_plain: true,
        single: true,
        block: true,
    };
    if f.leading_space || f.leading_break || f.trailing_space || f.trailing_break {
        a.block_plain = false;
    }
    if f.trailing_space {
        a.block = false;
    }
    if f.break_space {
        a.block_plain = false;
        a.single = false;
    }
    if f.space_break || f.tabs || f.special {
        a.block_plain = false;
        a.single = false;
    }
    if f.space_break || f.special {
        a.block = false;
    }
    if f.line_breaks {
        a.block_plain = false;
    }
    if f.block_ind {
        a.block_plain = false;
    }
    a
}

#[derive(PartialEq, Clone, Copy)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Em {
    fn put(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.column += s.chars().count();
    }
    /// go-yaml's `put_break`: a newline, and the next line starts indented.
    fn newline(&mut self) {
        self.out.push(b'\n');
        self.column = 0;
        self.indention = true;
    }
    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.newline();
        }
        while self.column < indent {
            self.put(" ");
        }
        self.whitespace = true;
        self.indention = true;
    }
    fn indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(" ");
        }
        self.put(ind);
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }
    fn comment_lines(&mut self, comments: &[&str], indent: usize) {
        for c in comments {
            self.write_indent(indent);
            self.put("#");
            self.put(c);
            self.newline();
            self.indention = true;
            self.whitespace = true;
        }
    }

    fn string(&mut self, s: &[u8], simple_key: bool, block_indent: usize) {
        let Ok(s) = std::str::from_utf8(s) else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(s);
            self.indicator("!!binary", true, false, false);
            self.plain(&b64);
            return;
        };
        let can_plain = plain_is_str(s);
        let mut style = if s.contains('\n') {
            Style::Literal
        } else if can_plain {
            Style::Plain
        } else {
            Style::Double
        };
        let a = analyze(s);
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain || (s.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || simple_key) {
            style = Style::Double;
        }
        match style {
            Style::Plain => self.plain(s),
            Style::Single => {
                self.indicator("'", true, false, false);
                self.put(&s.replace('\'', "''"));
                self.indicator("'", false, false, false);
            }
            Style::Double => self.double(s),
            Style::Literal => self.literal(s, block_indent),
        }
    }

    fn plain(&mut self, s: &str) {
        if !self.whitespace {
            self.put(" ");
        }
        self.put(s);
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, s: &str) {
        self.indicator("\"", true, false, false);
        let mut buf = String::new();
        for c in s.chars() {
            if !printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                buf.push('\\');
                match c {
                    '\0' => buf.push('0'),
                    '\u{7}' => buf.push('a'),
                    '\u{8}' => buf.push('b'),
                    '\t' => buf.push('t'),
                    '\n' => buf.push('n'),
                    '\u{b}' => buf.push('v'),
                    '\u{c}' => buf.push('f'),
                    '\r' => buf.push('r'),
                    '\u{1b}' => buf.push('e'),
                    '"' => buf.push('"'),
                    '\\' => buf.push('\\'),
                    '\u{85}' => buf.push('N'),
                    '\u{a0}' => buf.push('_'),
                    '\u{2028}' => buf.push('L'),
                    '\u{2029}' => buf.push('P'),
                    c if (c as u32) <= 0xFF => buf.push_str(&format!("x{:02X}", c as u32)),
                    c if (c as u32) <= 0xFFFF => buf.push_str(&format!("u{:04X}", c as u32)),
                    c => buf.push_str(&format!("U{:08X}", c as u32)),
                }
            } else {
                buf.push(c);
            }
        }
        self.put(&buf);
        self.indicator("\"", false, false, false);
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.indicator("|", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|c| *c == ' ' || is_break(*c)) {
            self.put(&self.best.to_string());
        }
        let last = chars.last().copied();
        if !last.is_some_and(is_break) {
            self.put("-");
        } else if chars.len() == 1
            || chars
                .get(chars.len().wrapping_sub(2))
                .is_some_and(|c| is_break(*c))
        {
            self.put("+");
        }
        // go-yaml v3 always breaks the line after the header (go-yaml issue 755).
        self.newline();
        self.whitespace = true;
        let mut breaks = true;
        for line_part in split_keep(s) {
            match line_part {
                Part::Break => {
                    self.newline();
                    self.indention = true;
                    breaks = true;
                }
                Part::Text(t) => {
                    if breaks {
                        self.write_indent(indent);
                        breaks = false;
                    }
                    self.put(t);
                    self.indention = false;
                }
            }
        }
    }

    fn scalar(&mut self, v: &Value, block_indent: usize) {
        match v {
            Value::Str(b) => self.string(b.as_slice(), false, block_indent),
            Value::Int(i) => self.plain(&i.to_string()),
            Value::Float(f) => {
                let s = if f.is_nan() {
                    ".nan".to_string()
                } else if *f == f64::INFINITY {
                    ".inf".to_string()
                } else if *f == f64::NEG_INFINITY {
                    "-.inf".to_string()
                } else {
                    format_float_g(*f)
                };
                self.plain(&s)
            }
            Value::Bool(b) => self.plain(if *b { "true" } else { "false" }),
            Value::Time(t) => self.plain(t),
            Value::Null => self.plain("null"),
            Value::Comment(c) => self.plain(c),
            Value::Map(_) | Value::Seq(_) => {}
        }
    }

    fn key(&mut self, k: &str) {
        if k == "<<" {
            self.indicator("!!merge", true, false, false);
            self.plain("<<");
        } else {
            self.string(k.as_bytes(), true, 0);
        }
    }

    /// Emits a value after `key:` or `-`; `indent` is the emitter indent of the owner.
    fn node(&mut self, v: &Value, child_indent: usize) {
        match v {
            Value::Map(m) if !m.0.iter().all(|(k, _)| matches!(k, Key::Comment(_))) => {
                self.map(m, child_indent)
            }
            Value::Map(m) => {
                self.indicator("{}", true, false, false);
                let cs: Vec<&str> =
                    m.0.iter()
                        .filter_map(|(k, _)| match k {
                            Key::Comment(c) => Some(c.as_str()),
                            Key::Str(_) => None,
                        })
                        .collect();
                self.comment_lines(&cs, child_indent);
            }
            Value::Seq(items) if !items.iter().all(|v| matches!(v, Value::Comment(_))) => {
                self.seq(items, child_indent)
            }
            Value::Seq(_) => self.indicator("[]", true, false, false),
            leaf => self.scalar(leaf, child_indent),
        }
    }

    fn map(&mut self, m: &Map, indent: usize) {
        let mut pending: Vec<&str> = Vec::new();
        for (k, v) in &m.0 {
            match k {
                Key::Comment(c) => pending.push(c),
                Key::Str(k) => {
                    self.comment_lines(&pending, indent);
                    pending.clear();
                    self.write_indent(indent);
                    self.key(k);
                    self.indicator(":", false, false, false);
                    let child = self.best * ((indent + self.best) / self.best);
                    self.node(v, child);
                }
            }
        }
        self.comment_lines(&pending, indent);
    }

    fn seq(&mut self, items: &[Value], indent: usize) {
        let mut pending: Vec<&str> = Vec::new();
        for v in items {
            if let Value::Comment(c) = v {
                pending.push(c);
                continue;
            }
            self.comment_lines(&pending, indent);
            pending.clear();
            self.write_indent(indent);
            self.indicator("-", true, false, true);
            self.node(v, indent + 2);
        }
        self.comment_lines(&pending, indent);
    }
}

enum Part<'a> {
    Break,
    Text(&'a str),
}

fn split_keep(s: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let mut st = 0;
    for (i, c) in s.char_indices() {
        if is_break(c) {
            if i > st {
                out.push(Part::Text(&s[st..i]));
            }
            out.push(Part::Break);
            st = i + c.len_utf8();
        }
    }
    if st < s.len() {
        out.push(Part::Text(&s[st..]));
    }
    out
}

/// Emits documents (each a mapping), separated by `---`, as go-yaml v3 with indent 4.
pub(crate) fn emit(docs: &[Map]) -> Vec<u8> {
    emit_indented(docs, DEFAULT_INDENT)
}

/// Emits documents with `indent` spaces per level (`.sops.yaml` `stores.yaml.indent`); like
/// go-yaml, an indent outside 2..=9 means 2.
pub(crate) fn emit_indented(docs: &[Map], indent: usize) -> Vec<u8> {
    let best = if (2..=9).contains(&indent) { indent } else { 2 };
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"---\n");
        }
        let mut em = Em {
            best,
            out: Vec::new(),
            column: 0,
            indention: true,
            whitespace: true,
        };
        if d.0.iter().all(|(k, _)| matches!(k, Key::Comment(_))) && !d.0.is_empty() {
            em.map(d, 0);
        } else if d.0.is_empty() {
            em.put("{}");
        } else {
            em.map(d, 0);
        }
        if em.column != 0 {
            em.newline();
        }
        out.extend_from_slice(&em.out);
    }
    out
}

/// Emits one value as go-yaml marshals it on its own (a list as a block sequence, a scalar
/// followed by a newline).
pub(crate) fn emit_value(v: &Value) -> Vec<u8> {
    let mut em = Em {
        best: DEFAULT_INDENT,
        out: Vec::new(),
        column: 0,
        indention: true,
        whitespace: true,
    };
    match v {
        Value::Map(m) => em.map(m, 0),
        Value::Seq(items) => em.seq(items, 0),
        leaf => em.scalar(leaf, 0),
    }
    if em.column != 0 {
        em.newline();
    }
    em.out
}
