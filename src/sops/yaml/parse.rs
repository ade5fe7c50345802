//! A small YAML reader for sops files: block and flow collections, plain/quoted/block
//! scalars, comments (kept as tree items), anchors/aliases, multi-document streams.

use std::collections::HashSet;

use base64::Engine;

use super::anchors::Anchors;
use super::flow::Flow;
use super::resolve::{Resolved, resolve_plain};
use super::scalar::{fold_single, quoted_end, scan_quoted, unescape_double};
use crate::sops::error::{Error, Result};
use crate::sops::limits::MAX_DEPTH;
use crate::sops::tree::{Bytes, Key, Map, Value};

struct Line {
    indent: usize,
    text: String,
    raw: String,
    no: usize,
}

impl Drop for Line {
    /// Source lines hold plaintext: wipe them.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.text.zeroize();
        self.raw.zeroize();
    }
}

impl Line {
    fn blank(&self) -> bool {
        self.text.trim().is_empty()
    }
    fn comment(&self) -> Option<&str> {
        self.text.strip_prefix('#')
    }
}

struct Parser<'a> {
    lines: Vec<Line>,
    cur: usize,
    anchors: Anchors,
    origin: &'a str,
    depth: usize,
    /// The document's last line is the file's last line and has no line break.
    unterminated: bool,
    /// An item was parsed since a collection last ended (the next one to end is innermost).
    fresh: bool,
}

/// Parses a YAML stream into documents. Each document must be a mapping (or empty).
pub(crate) fn parse(b: &[u8], origin: &str) -> Result<Vec<Map>> {
    let text =
        std::str::from_utf8(b).map_err(|_| Error::malformed(origin, "YAML input is not UTF-8"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs: Vec<Vec<Line>> = vec![Vec::new()];
    let mut explicit = false;
    let body = text.strip_suffix('\n').unwrap_or(text);
    // Whether the file's last line ended up in the last document (not a `---`/`...` marker).
    let mut last_line_in_doc = false;
    for (n, raw) in body.split('\n').enumerate() {
        last_line_in_doc = false;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw == "---" || raw.starts_with("--- ") || raw.starts_with("---\t") {
            if !docs
                .last()
                .is_some_and(|d| d.iter().all(|l| l.blank() || l.comment().is_some()))
                || explicit
            {
                docs.push(Vec::new());
            }
            explicit = true;
            let rest = raw[3..].trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(Error::malformed(
                    origin,
                    format!("line {}: content after '---' is not supported", n + 1),
                ));
            }
            continue;
        }
        if raw == "..." || raw.starts_with("... ") {
            continue;
        }
        if raw.starts_with('%') {
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        last_line_in_doc = true;
        if let Some(d) = docs.last_mut() {
            d.push(Line {
                indent,
                text: raw[indent..].to_string(),
                raw: raw.to_string(),
                no: n + 1,
            });
        }
    }
    if !explicit
        && docs
            .iter()
            .flatten()
            .all(|l| l.blank() || l.comment().is_some())
        && docs.iter().flatten().any(|l| l.comment().is_some())
    {
        return Err(Error::malformed(
            origin,
            "the file holds only comments, no YAML document (sops refuses it too)",
        ));
    }
    let unterminated = !text.is_empty() && !text.ends_with('\n') && last_line_in_doc;
    let n_docs = docs.len();
    let mut out = Vec::new();
    for (i, lines) in docs.into_iter().enumerate() {
        let mut p = Parser {
            lines,
            cur: 0,
            anchors: Anchors::default(),
            origin,
            depth: 0,
            unterminated: unterminated && i + 1 == n_docs,
            fresh: false,
        };
        out.push(p.document()?);
    }
    if out.len() > 1 && out[0].0.is_empty() && !explicit {
        out.remove(0);
    }
    Ok(out)
}

fn find_comment(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t'))
}

impl<'a> Parser<'a> {
    fn err(&self, no: usize, msg: &str) -> Error {
        Error::malformed(self.origin, format!("invalid YAML at line {no}: {msg}"))
    }

    fn line_no(&self) -> usize {
        self.lines
            .get(self.cur)
            .map(|l| l.no)
            .unwrap_or_else(|| self.lines.last().map(|l| l.no).unwrap_or(1))
    }

    /// Skips blank lines; collects comment lines (with their indent) until a content line.
    fn comments(&mut self) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        while let Some(l) = self.lines.get(self.cur) {
            if l.blank() {
                self.cur += 1;
            } else if let Some(c) = l.comment() {
                out.push((self.cur, l.indent, c.to_string()));
                self.cur += 1;
            } else {
                break;
            }
        }
        out
    }

    fn document(&mut self) -> Result<Map> {
        let save = self.cur;
        let _ = self.comments();
        let Some(l) = self.lines.get(self.cur) else {
            self.cur = save;
            let mut m = Map::default();
            for (_, _, c) in self.comments() {
                m.0.push((Key::Comment(c), Value::Null));
            }
            return Ok(m);
        };
        let no = l.no;
        if is_seq_line(&l.text) {
            return Err(Error::malformed(
                self.origin,
                format!("line {no}: the top level is a list; sops files must be a mapping"),
            ));
        }
        if l.text.starts_with('{') {
            return self.flow_document(save);
        }
        if split_key(&l.text).is_none() {
            return Err(Error::malformed(
                self.origin,
                format!("line {no}: the document is not a mapping; sops files must be a mapping"),
            ));
        }
        self.cur = save;
        let ind = l.indent;
        let m = self.map(ind)?;
        if self.cur < self.lines.len() {
            return Err(self.err(self.line_no(), "unexpected content (bad indentation?)"));
        }
        Ok(m)
    }

    /// A document written as one flow mapping (`{"a": 2}`, `{}`), which sops accepts.
    fn flow_document(&mut self, start: usize) -> Result<Map> {
        self.cur = start;
        let mut m = Map::default();
        for (_, _, c) in self.comments() {
            m.0.push((Key::Comment(c), Value::Null));
        }
        let (text, no) = match self.lines.get(self.cur) {
            Some(l) => (l.text.clone(), l.no),
            None => return Ok(m),
        };
        self.cur += 1;
        let (mut v, inline) = self.value_after(&text, 0, no, false)?;
        let Value::Map(body) = &mut v else {
            return Err(self.err(no, "the document is not a mapping"));
        };
        m.0.append(&mut body.0);
        let tail = self.comments();
        if self.cur < self.lines.len() {
            return Err(self.err(self.line_no(), "unexpected content after a flow mapping"));
        }
        for c in inline
            .into_iter()
            .chain(tail.into_iter().map(|(_, _, c)| c))
        {
            m.0.push((Key::Comment(c), Value::Null));
        }
        Ok(m)
    }

    /// How many of the comment lines `cs` before a dedent belong to the collection at
    /// `ind` that is ending (the rest go to an enclosing one), as go-yaml v3 attaches them:
    /// lines indented at least like the collection stay in it; and the collection holding
    /// the last item (the innermost one) also takes a first line indented deeper than the
    /// next content line, with the lines after it that are not dedented further.
    fn claim(&mut self, cs: &[(usize, usize, String)], ind: usize, in_seq: bool) -> usize {
        let innermost = std::mem::take(&mut self.fresh);
        let next = self.lines.get(self.cur).map(|l| l.indent);
        if in_seq && next.is_some_and(|n| n > ind) {
            return 0;
        }
        let mut prev = None;
        for (i, (_, cind, _)) in cs.iter().enumerate() {
            let first_claim = innermost && i == 0 && next.is_some_and(|n| *cind > n);
            let follows = prev.is_some_and(|p| *cind >= p) && i > 0;
            if !(*cind >= ind || first_claim || follows) {
                return i;
            }
            prev = Some(*cind);
        }
        cs.len()
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                self.line_no(),
                &format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn map(&mut self, ind: usize) -> Result<Map> {
        self.enter()?;
        let mut m = Map::default();
        let mut seen = HashSet::new();
        loop {
            let cs = self.comments();
            let dedent = match self.lines.get(self.cur) {
                None => true,
                Some(l) => l.indent < ind,
            };
            if dedent {
                let keep = self.claim(&cs, ind, false);
                if let Some((pos, _, _)) = cs.get(keep) {
                    self.cur = *pos;
                }
                for (_, _, c) in cs.into_iter().take(keep) {
                    m.0.push((Key::Comment(c), Value::Null));
                }
                break;
            }
            self.fresh = true;
            let l = &self.lines[self.cur];
            let no = l.no;
            if l.indent > ind {
                return Err(self.err(no, "bad indentation of a mapping entry"));
            }
            for (_, _, c) in cs {
                m.0.push((Key::Comment(c), Value::Null));
            }
            let text = l.text.clone();
            if is_seq_line(&text) {
                return Err(self.err(no, "a list item where a mapping key was expected"));
            }
            let (key, quoted, rest) =
                split_key(&text).ok_or_else(|| self.err(no, "expected a mapping key"))?;
            let key = if quoted {
                key
            } else {
                match resolve_plain(&key) {
                    Resolved::Value(Value::Str(_)) | Resolved::Merge => key,
                    Resolved::Value(v) => {
                        return Err(Error::malformed(
                            self.origin,
                            format!(
                                "line {no}: mapping key {key:?} is not a string (type {}); sops requires string keys",
                                if matches!(v, Value::Null) {
                                    "null"
                                } else {
                                    v.type_tag()
                                }
                            ),
                        ));
                    }
                    Resolved::Uint => {
                        return Err(Error::malformed(
                            self.origin,
                            format!("line {no}: mapping key {key:?} is not a string"),
                        ));
                    }
                }
            };
            if !seen.insert(key.clone()) {
                return Err(self.err(no, &format!("mapping key {key:?} already defined")));
            }
            self.cur += 1;
            let (v, comment) = self.value_after(&rest, ind, no, true)?;
            if let Some(c) = comment {
                m.0.push((Key::Comment(c), Value::Null));
            }
            m.0.push((Key::Str(key), v));
        }
        self.depth -= 1;
        Ok(m)
    }

    fn seq(&mut self, ind: usize) -> Result<Vec<Value>> {
        self.enter()?;
        let mut items = Vec::new();
        loop {
            let save = self.cur;
            let cs = self.comments();
            let stop = match self.lines.get(self.cur) {
                None => true,
                Some(l) => l.indent != ind || !is_seq_line(&l.text),
            };
            if stop {
                let keep = self.claim(&cs, ind, true);
                if let Some((pos, _, _)) = cs.get(keep) {
                    self.cur = *pos;
                }
                if self.cur < save {
                    self.cur = save;
                }
                for (_, _, c) in cs.into_iter().take(keep) {
                    items.push(Value::Comment(c));
                }
                break;
            }
            self.fresh = true;
            for (_, _, c) in cs {
                items.push(Value::Comment(c));
            }
            let l = &self.lines[self.cur];
            let no = l.no;
            let after = &l.text[1..];
            let sp = after.len() - after.trim_start_matches(' ').len();
            let content = after[sp..].to_string();
            if content.is_empty() || content.starts_with('#') {
                self.cur += 1;
                let comment = content.strip_prefix('#').map(|c| c.to_string());
                if let Some(c) = comment {
                    items.push(Value::Comment(c));
                }
                let v = self.nested(ind, no, false)?;
                items.push(v);
                continue;
            }
            let new_ind = ind + 1 + sp;
            self.lines[self.cur].indent = new_ind;
            self.lines[self.cur].text = content.clone();
            if is_seq_line(&content) {
                items.push(Value::Seq(self.seq(new_ind)?));
            } else if split_key(&content).is_some() {
                items.push(Value::Map(self.map(new_ind)?));
            } else {
                self.cur += 1;
                let (v, comment) = self.value_after(&content, ind, no, false)?;
                if let Some(c) = comment {
                    items.push(Value::Comment(c));
                }
                items.push(v);
            }
        }
        self.depth -= 1;
        Ok(items)
    }

    /// A value on following lines (after `key:` or `-` with nothing else).
    fn nested(&mut self, ind: usize, _no: usize, in_map: bool) -> Result<Value> {
        let save = self.cur;
        let _ = self.comments();
        let Some(l) = self.lines.get(self.cur) else {
            self.cur = save;
            return Ok(Value::Null);
        };
        let (lind, text) = (l.indent, l.text.clone());
        if lind > ind {
            self.cur = save;
            if is_seq_line(&text) {
                // comments before go into the sequence
                return Ok(Value::Seq(self.seq(lind)?));
            }
            if split_key(&text).is_some() {
                return Ok(Value::Map(self.map(lind)?));
            }
            let _ = self.comments();
            let no = self.lines[self.cur].no;
            self.cur += 1;
            let (v, _) = self.value_after(&text, ind, no, false)?;
            return Ok(v);
        }
        if in_map && lind == ind && is_seq_line(&text) {
            self.cur = save;
            return Ok(Value::Seq(self.seq(lind)?));
        }
        self.cur = save;
        Ok(Value::Null)
    }

    /// Parses the text after `key:` (or a seq item scalar). Returns the value and an inline
    /// comment. `ind` is the indent of the owning collection.
    fn value_after(
        &mut self,
        rest: &str,
        ind: usize,
        no: usize,
        in_map: bool,
    ) -> Result<(Value, Option<String>)> {
        let mut s = rest.trim_start().to_string();
        let mut anchor = None;
        let mut tag = None;
        loop {
            if let Some(r) = s.strip_prefix('&') {
                let end = r.find([' ', '\t']).unwrap_or(r.len());
                anchor = Some(r[..end].to_string());
                s = r[end..].trim_start().to_string();
            } else if s.starts_with('!') {
                let end = s.find([' ', '\t']).unwrap_or(s.len());
                tag = Some(s[..end].to_string());
                s = s[end..].trim_start().to_string();
            } else {
                break;
            }
        }
        let (v, comment) = if s.is_empty() || s.starts_with('#') {
            let c = s.strip_prefix('#').map(|c| c.to_string());
            (self.nested(ind, no, in_map)?, c)
        } else if let Some(r) = s.strip_prefix('*') {
            let end = r.find([' ', '\t']).unwrap_or(r.len());
            let name = &r[..end];
            let v = self.anchors.resolve(name).map_err(|m| self.err(no, &m))?;
            (v, comment_of(&r[end..]))
        } else if s.starts_with('|') || s.starts_with('>') {
            self.block_scalar(&s, ind, no)?
        } else if s.starts_with('"') || s.starts_with('\'') {
            self.quoted(&s, no)?
        } else if s.starts_with('[') || s.starts_with('{') {
            let (text, c) = self.gather_flow(&s, no)?;
            let mut fp = Flow {
                s: &text,
                b: text.as_bytes(),
                i: 0,
                depth: self.depth,
            };
            let v = fp.value(&mut self.anchors).map_err(|m| self.err(no, &m))?;
            fp.ws();
            if fp.i < fp.b.len() {
                return Err(self.err(no, "unexpected text after a flow collection"));
            }
            (v, c)
        } else {
            let (mut text, c) = match find_comment(&s) {
                Some(i) => (s[..i].trim_end().to_string(), Some(s[i + 1..].to_string())),
                None => (s.trim_end().to_string(), None),
            };
            // multi-line plain scalar continuation
            if c.is_none() {
                while let Some(l) = self.lines.get(self.cur) {
                    if l.blank()
                        || l.indent <= ind
                        || l.comment().is_some()
                        || (in_map && split_key(&l.text).is_some())
                    {
                        break;
                    }
                    text.push(' ');
                    text.push_str(l.text.trim_end());
                    self.cur += 1;
                }
            }
            (self.plain(&text, no)?, c)
        };
        let v = self.apply_tag(v, tag.as_deref(), no)?;
        if let Some(a) = anchor {
            self.anchors.define(a, &v);
        }
        Ok((v, comment))
    }

    fn plain(&self, text: &str, no: usize) -> Result<Value> {
        match resolve_plain(text) {
            Resolved::Value(v) => Ok(v),
            Resolved::Merge => Ok(Value::str(text)),
            Resolved::Uint => Err(Error::malformed(
                self.origin,
                format!(
                    "line {no}: integer out of the signed 64-bit range (sops cannot encrypt uint64)"
                ),
            )),
        }
    }

    fn apply_tag(&self, v: Value, tag: Option<&str>, no: usize) -> Result<Value> {
        let Some(tag) = tag else { return Ok(v) };
        let as_text = |v: &Value| -> Option<String> {
            match v {
                Value::Str(b) => Some(String::from_utf8_lossy(b.as_slice()).into_owned()),
                Value::Null => Some(String::new()),
                Value::Map(_) | Value::Seq(_) | Value::Comment(_) => None,
                other => Some(String::from_utf8_lossy(&other.to_bytes()).into_owned()),
            }
        };
        match tag {
            "!!str" => Ok(match &v {
                Value::Map(_) | Value::Seq(_) => v,
                _ => Value::str(&as_text(&v).unwrap_or_default()),
            }),
            "!!binary" => {
                let t: String = as_text(&v)
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                let b = base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .map_err(|_| self.err(no, "invalid !!binary base64"))?;
                Ok(Value::Str(Bytes::new(b)))
            }
            "!!int" | "!!float" | "!!bool" | "!!null" | "!!timestamp" => match &v {
                Value::Str(_) => self.plain(&as_text(&v).unwrap_or_default(), no),
                _ => Ok(v),
            },
            _ => Ok(v),
        }
    }

    fn block_scalar(
        &mut self,
        header: &str,
        ind: usize,
        no: usize,
    ) -> Result<(Value, Option<String>)> {
        let folded = header.starts_with('>');
        let mut chomp = 'c';
        let mut explicit = None;
        let mut comment = None;
        let hb = header[1..].char_indices();
        for (i, ch) in hb {
            match ch {
                '-' | '+' => chomp = ch,
                '1'..='9' => explicit = Some(ch as usize - '0' as usize),
                ' ' | '\t' => {
                    let r = header[1 + i..].trim_start();
                    if let Some(c) = r.strip_prefix('#') {
                        comment = Some(c.to_string());
                    } else if !r.is_empty() {
                        return Err(self.err(no, "invalid block scalar header"));
                    }
                    break;
                }
                _ => return Err(self.err(no, "invalid block scalar header")),
            }
        }
        // Determine the content indentation.
        let mut bind = explicit.map(|e| ind + e);
        if bind.is_none() {
            for l in &self.lines[self.cur..] {
                if !l.blank() {
                    bind = Some(l.indent);
                    break;
                }
            }
        }
        let bind = bind.unwrap_or(ind + 1);
        let mut lines: Vec<String> = Vec::new();
        if bind > ind {
            while let Some(l) = self.lines.get(self.cur) {
                if l.blank() && l.raw.len() <= bind.max(l.raw.len()) && l.indent < bind {
                    lines.push(String::new());
                } else if l.indent >= bind {
                    lines.push(l.raw[bind..].to_string());
                } else {
                    break;
                }
                self.cur += 1;
            }
        }
        // trailing empty lines
        let mut trailing = 0;
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
            trailing += 1;
        }
        let mut out = if folded {
            fold_block(&lines)
        } else {
            lines.join("\n")
        };
        if !lines.is_empty() {
            match chomp {
                '-' => {}
                '+' => out.push_str(&"\n".repeat(trailing + 1)),
                _ => out.push('\n'),
            }
        } else if chomp == '+' {
            out.push_str(&"\n".repeat(trailing));
        }
        // The file's last line has no line break: the newline counted for it is not there.
        let at_eof = self.unterminated && self.cur >= self.lines.len();
        if at_eof && chomp != '-' && (chomp == '+' || trailing == 0) && out.ends_with('\n') {
            out.pop();
        }
        Ok((Value::str(&out), comment))
    }

    fn quoted(&mut self, s: &str, no: usize) -> Result<(Value, Option<String>)> {
        let q = s.as_bytes()[0];
        // Gather lines until the closing quote; each byte is scanned once.
        let mut text = s.to_string();
        let mut from = 1;
        loop {
            match scan_quoted(&text, q, from) {
                Ok(end) => return self.quoted_done(&text, end, no),
                Err(resume) => from = resume,
            }
            let Some(l) = self.lines.get(self.cur) else {
                return Err(self.err(no, "unterminated quoted scalar"));
            };
            text.push('\n');
            text.push_str(l.raw.trim());
            self.cur += 1;
        }
    }

    fn quoted_done(&self, text: &str, end: usize, no: usize) -> Result<(Value, Option<String>)> {
        let body = &text[1..end];
        let v = if text.as_bytes()[0] == b'"' {
            unescape_double(body).map_err(|m| self.err(no, &m))?
        } else {
            fold_single(body)
        };
        let after = text[end + 1..].trim();
        let c = if after.is_empty() {
            None
        } else if let Some(c) = after.strip_prefix('#') {
            Some(c.to_string())
        } else {
            return Err(self.err(no, "unexpected text after a quoted scalar"));
        };
        Ok((Value::Str(Bytes::new(v)), c))
    }

    fn gather_flow(&mut self, s: &str, no: usize) -> Result<(String, Option<String>)> {
        let mut text = String::new();
        let mut scan = FlowScan::default();
        let mut line = s.to_string();
        loop {
            match scan.feed(&line) {
                FlowEnd::Closed(end) => {
                    text.push_str(&line[..end]);
                    let after = line[end..].trim();
                    if !after.is_empty() && !after.starts_with('#') {
                        return Err(self.err(no, "unexpected text after a flow collection"));
                    }
                    return Ok((text, after.strip_prefix('#').map(|c| c.to_string())));
                }
                FlowEnd::Open(cut) => {
                    text.push_str(&line[..cut]);
                    text.push(' ');
                    let Some(l) = self.lines.get(self.cur) else {
                        return Err(self.err(no, "unterminated flow collection"));
                    };
                    line = l.text.clone();
                    self.cur += 1;
                }
            }
        }
    }
}

/// Where a flow collection's line ends: closed at a byte index, or still open (the index
/// where a comment starts, or the line length).
enum FlowEnd {
    Closed(usize),
    Open(usize),
}

/// Bracket depth and quoting state carried from one line of a flow collection to the next.
#[derive(Default)]
struct FlowScan {
    depth: usize,
    quote: Option<u8>,
}

impl FlowScan {
    fn feed(&mut self, line: &str) -> FlowEnd {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match self.quote {
                Some(b'"') if c == b'\\' => i += 1,
                Some(q) if c == q => self.quote = None,
                Some(_) => {}
                None => match c {
                    b'"' | b'\'' => self.quote = Some(c),
                    b'#' if i == 0 || matches!(b[i - 1], b' ' | b'\t') => {
                        return FlowEnd::Open(i);
                    }
                    b'[' | b'{' => self.depth += 1,
                    b']' | b'}' => {
                        self.depth = self.depth.saturating_sub(1);
                        if self.depth == 0 {
                            return FlowEnd::Closed(i + 1);
                        }
                    }
                    _ => {}
                },
            }
            i += 1;
        }
        FlowEnd::Open(b.len())
    }
}

/// Joins the lines of a folded (`>`) block scalar: a single break between two ordinary
/// lines becomes a space; breaks around more-indented lines and empty lines are kept.
fn fold_block(lines: &[String]) -> String {
    let more = |l: &str| l.starts_with(' ') || l.starts_with('\t');
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            let prev = &lines[i - 1];
            if l.is_empty() {
                out.push('\n');
                continue;
            } else if prev.is_empty() {
                let last = lines[..i].iter().rev().find(|x| !x.is_empty());
                if more(l) || last.is_some_and(|x| more(x)) {
                    out.push('\n');
                }
            } else if more(l) || more(prev) {
                out.push('\n');
            } else {
                out.push(' ');
            }
        }
        out.push_str(l);
    }
    out
}

fn comment_of(s: &str) -> Option<String> {
    s.trim().strip_prefix('#').map(|c| c.to_string())
}

fn is_seq_line(t: &str) -> bool {
    t == "-" || t.starts_with("- ") || t.starts_with("-\t")
}

/// A key with a tag, as go-yaml writes merge keys (`!!merge <<: …`) or `!!str` keys.
/// Other tags on keys are not supported (the line is then not a mapping entry).
fn split_tagged_key(t: &str) -> Option<(String, bool, String)> {
    let end = t.find([' ', '\t'])?;
    let (tag, rest) = (&t[..end], t[end..].trim_start());
    let (key, quoted, rest) = split_key(rest)?;
    match tag {
        "!!merge" if key == "<<" && !quoted => Some((key, false, rest)),
        "!!str" | "!" => Some((key, true, rest)),
        _ => None,
    }
}

/// Splits `key: rest` (plain or quoted key). Returns (key, quoted, rest).
fn split_key(t: &str) -> Option<(String, bool, String)> {
    let b = t.as_bytes();
    if b.is_empty() || b[0] == b'#' || b[0] == b'[' || b[0] == b'{' || is_seq_line(t) {
        return None;
    }
    if b[0] == b'"' || b[0] == b'\'' {
        let end = quoted_end(t, b[0])?;
        let after = &t[end + 1..];
        let after_t = after.trim_start();
        let rest = after_t.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            return None;
        }
        let body = &t[1..end];
        let k = if b[0] == b'"' {
            unescape_double(body).ok()?
        } else {
            fold_single(body)
        };
        return Some((String::from_utf8(k).ok()?, true, rest.to_string()));
    }
    if b[0] == b'!' {
        return split_tagged_key(t);
    }
    if b[0] == b'|' || b[0] == b'>' || b[0] == b'*' || b[0] == b'&' || b[0] == b'?' {
        return None;
    }
    for i in 0..b.len() {
        if b[i] == b'#' && i > 0 && (b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return None;
        }
        if b[i] == b':' && (i + 1 == b.len() || b[i + 1] == b' ' || b[i + 1] == b'\t') {
            return Some((t[..i].trim_end().to_string(), false, t[i + 1..].to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(y: &str) -> Map {
        let mut d = parse(y.as_bytes(), "t").unwrap();
        assert_eq!(d.len(), 1);
        d.remove(0)
    }

    fn s(v: Option<&Value>) -> String {
        match v {
            Some(Value::Str(b)) => String::from_utf8(b.as_slice().to_vec()).unwrap(),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn scalars_and_styles() {
        let m = one(
            "a: plain text\nb: 'it''s'\nc: \"tab\\tq\\\"\"\nd: |\n  l1\n  l2\ne: >-\n  f1\n  f2\n\n  f3\nf: 0x1F\ng: ~\nh: !!binary aGVsbG8=\ni: !!str 123\nj: 2024-01-01\nk: \"2024-01-01\"\n",
        );
        assert_eq!(s(m.get("a")), "plain text");
        assert_eq!(s(m.get("b")), "it's");
        assert_eq!(s(m.get("c")), "tab\tq\"");
        assert_eq!(s(m.get("d")), "l1\nl2\n");
        assert_eq!(s(m.get("e")), "f1 f2\nf3");
        assert_eq!(m.get("f"), Some(&Value::Int(31)));
        assert_eq!(m.get("g"), Some(&Value::Null));
        assert_eq!(s(m.get("h")), "hello");
        assert_eq!(s(m.get("i")), "123");
        assert_eq!(
            m.get("j"),
            Some(&Value::Time("2024-01-01T00:00:00Z".into()))
        );
        assert_eq!(s(m.get("k")), "2024-01-01");
    }

    #[test]
    fn collections_comments_anchors_docs() {
        let d = parse(
            b"# head\nbase: &b {x: 1, y: [a, 'b c']}\nlist:\n- one # inline\n- k: v\n  k2: *b\nz: 1\n#ENC[AES256_GCM,data:x,iv:y,tag:z,type:comment]\n---\nsecond: 2\n",
            "t",
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0[0].0, Key::Comment(" head".into()));
        let Some(Value::Seq(items)) = d[0].get("list") else {
            panic!()
        };
        assert_eq!(items[0], Value::Comment(" inline".into()));
        let Value::Map(m) = &items[2] else { panic!() };
        assert_eq!(m.get("k2"), d[0].get("base"));
        assert!(matches!(&d[0].0.last().unwrap().0, Key::Comment(c) if c.starts_with("ENC[")));
        assert_eq!(d[1].get("second"), Some(&Value::Int(2)));
    }

    #[test]
    fn rejects_what_sops_rejects() {
        for bad in [
            "- a\n",
            "1: x\n",
            "a: 1\na: 2\n",
            "a: \"open\n",
            "just a scalar\n",
            "~: x\n",
        ] {
            let e = parse(bad.as_bytes(), "f.yaml").unwrap_err();
            assert_eq!(crate::error::HasKind::kind(&e).exit_code(), 2, "{bad:?}");
            assert!(e.to_string().starts_with("f.yaml: "), "{e}");
        }
    }

    #[test]
    fn go_yaml_v3_edges() {
        // Block scalars on an unterminated last line.
        assert_eq!(s(one("a: |\n  x").get("a")), "x");
        assert_eq!(s(one("a: |+\n  x\n  ").get("a")), "x\n");
        assert_eq!(s(one("a: |\n  x\n").get("a")), "x\n");
        // Top-level flow mappings, tagged keys.
        assert_eq!(one("{\"a\": 2}").get("a"), Some(&Value::Int(2)));
        assert!(one("{}\n").0.is_empty());
        let m = one("b: &b {x: 1}\nd:\n  !!merge <<: *b\n");
        let Some(Value::Map(d)) = m.get("d") else {
            panic!()
        };
        assert_eq!(d.get("<<"), m.get("b"));
        // A trailing comment deeper than the next key goes to the innermost collection.
        let m = one("a:\n  b:\n    - 1\n  # c\nz: 2\n");
        let Some(Value::Map(a)) = m.get("a") else {
            panic!()
        };
        let Some(Value::Seq(b)) = a.get("b") else {
            panic!()
        };
        assert_eq!(b[1], Value::Comment(" c".into()));
    }

    #[test]
    fn limits_are_errors_not_crashes() {
        let deep = format!("a: {}1{}\n", "[".repeat(5000), "]".repeat(5000));
        let e = parse(deep.as_bytes(), "d.yaml").unwrap_err().to_string();
        assert!(e.contains("d.yaml") && e.contains("nesting deeper"), "{e}");
        let ok = format!("a: {}1{}\n", "[".repeat(150), "]".repeat(150));
        assert!(parse(ok.as_bytes(), "ok.yaml").is_ok());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            bomb.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![
                    format!(
                        "*a{}",
                        if i == 1 {
                            String::new()
                        } else {
                            (i - 1).to_string()
                        }
                    );
                    8
                ]
                .join(", ")
            ));
        }
        let e = parse(bomb.as_bytes(), "b.yaml").unwrap_err().to_string();
        assert!(e.contains("alias"), "{e}");
        let e = parse(b"# just a comment\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only comments"), "{e}");
    }
}
