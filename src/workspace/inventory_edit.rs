//! Comment-preserving edits of `varsmith.yaml`: machine entries added or removed, a machine's
//! `tags`/`generators` lists and `target`/`system` scalars changed, by rewriting only the lines
//! that hold them. Every other byte of the file (comments, blank lines, key order, quoting,
//! indentation, the other machines) stays as it was.
//!
//! Invariants: an edit touches only the lines of the entry it changes (a block-style list keeps
//! its remaining items' lines, comments included, and gets new items appended in its style; a
//! flow list `[a, b]` is rewritten on its line, keeping the comment after it). A layout this
//! editor does not understand (a flow-style `machines:` or machine mapping, a multi-line flow
//! list) is [`EditError::Unsupported`], never a guess; callers also re-parse the result and
//! compare it with the intended inventory before anything is written.

use super::Machine;

/// Default indentation step for new blocks when the file shows none (two spaces).
const DEFAULT_STEP: usize = 2;

/// Why an edit could not be made in place.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    /// The machine is not a block entry under `machines:`.
    #[error("no machine {0:?} under `machines:`")]
    UnknownMachine(String),
    /// The file's layout around the edit is one this editor does not rewrite.
    #[error("{0}; edit varsmith.yaml by hand")]
    Unsupported(String),
}

/// `varsmith.yaml` as lines, edited in place.
#[derive(Debug, Clone)]
pub(crate) struct InventoryDoc {
    lines: Vec<String>,
}

/// A key line and the end (exclusive) of its block: the line after its last content line.
#[derive(Debug, Clone, Copy)]
struct Span {
    key: usize,
    end: usize,
}

/// A `key: rest` line: its indentation, key (unquoted) and the text after the colon.
struct KeyLine<'a> {
    indent: usize,
    key: String,
    rest: &'a str,
}

impl InventoryDoc {
    /// The document of `text` (any text; the edits find what they need or refuse).
    pub(crate) fn new(text: &str) -> InventoryDoc {
        let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        InventoryDoc { lines }
    }

    /// The edited text (every line ends with a newline).
    pub(crate) fn text(&self) -> String {
        let mut s = String::with_capacity(self.lines.iter().map(|l| l.len() + 1).sum());
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// Sets machine `name`'s list `field` (`tags`, `generators`) to `values`, which must be
    /// the old list with some items removed and new ones appended (the order the file keeps).
    pub(crate) fn set_list(
        &mut self,
        name: &str,
        field: &str,
        values: &[String],
    ) -> Result<(), EditError> {
        let m = self.machine(name)?;
        match self.field(m, field) {
            None => {
                if values.is_empty() {
                    return Ok(());
                }
                let line = format!("{field}: {}", flow_list(values));
                self.insert_field(m, &line)
            }
            Some(f) => self.replace_list(f, field, values),
        }
    }

    /// Sets (or with `None` removes) machine `name`'s scalar `field` (`target`, `system`),
    /// keeping a comment after the old value.
    pub(crate) fn set_scalar(
        &mut self,
        name: &str,
        field: &str,
        value: Option<&str>,
    ) -> Result<(), EditError> {
        let m = self.machine(name)?;
        match (self.field(m, field), value) {
            (None, None) => Ok(()),
            (None, Some(v)) => self.insert_field(m, &format!("{field}: {}", scalar(v))),
            (Some(f), None) => {
                self.lines.drain(f.key..f.end);
                Ok(())
            }
            (Some(f), Some(v)) => {
                if f.end > f.key + 1 {
                    return Err(EditError::Unsupported(format!(
                        "machine {name}: {field} spans several lines"
                    )));
                }
                let line = &self.lines[f.key];
                let k = key_line(line).ok_or_else(|| internal(name))?;
                let (_, comment) = split_comment(k.rest);
                let new = format!("{}{field}: {}{comment}", " ".repeat(k.indent), scalar(v));
                self.lines[f.key] = new;
                Ok(())
            }
        }
    }

    /// Appends machine `name` at the end of `machines:` (creating that key when missing), in
    /// the indentation the file already uses.
    pub(crate) fn add_machine(&mut self, name: &str, m: &Machine) -> Result<(), EditError> {
        let (at, ci, gi) = match self.machines()? {
            Some(ms) => {
                let ci = self.child_indent(ms).unwrap_or(DEFAULT_STEP);
                let gi = self.field_indent(ms, ci);
                (ms.end.max(ms.key + 1), ci, gi)
            }
            None => {
                self.lines.push("machines:".to_string());
                (self.lines.len(), DEFAULT_STEP, 2 * DEFAULT_STEP)
            }
        };
        let mut block = Vec::new();
        let pad = " ".repeat(gi);
        if let Some(t) = &m.target {
            block.push(format!("{pad}target: {}", scalar(t)));
        }
        if !m.system.is_empty() && m.system != "x86_64-linux" {
            block.push(format!("{pad}system: {}", scalar(&m.system)));
        }
        if !m.tags.is_empty() {
            block.push(format!("{pad}tags: {}", flow_list(&m.tags)));
        }
        if !m.generators.is_empty() {
            block.push(format!("{pad}generators: {}", flow_list(&m.generators)));
        }
        let head = format!(
            "{}{}:{}",
            " ".repeat(ci),
            scalar(name),
            if block.is_empty() { " {}" } else { "" }
        );
        block.insert(0, head);
        self.lines.splice(at..at, block);
        Ok(())
    }

    /// Removes machine `name`'s lines (comments above it stay).
    pub(crate) fn remove_machine(&mut self, name: &str) -> Result<(), EditError> {
        let m = self.machine(name)?;
        self.lines.drain(m.key..m.end.max(m.key + 1));
        Ok(())
    }

    /// The `machines:` key, with its block; `None` when the file has none. A non-empty
    /// flow mapping is unsupported; an empty `{}` becomes a block key.
    fn machines(&mut self) -> Result<Option<Span>, EditError> {
        self.top("machines")
    }

    /// The top-level block mapping `key:` with its block; `None` when the file has none. A
    /// non-empty flow mapping is unsupported; an empty `{}` becomes a block key.
    fn top(&mut self, key: &str) -> Result<Option<Span>, EditError> {
        let Some(at) = (0..self.lines.len())
            .find(|&i| key_line(&self.lines[i]).is_some_and(|k| k.indent == 0 && k.key == key))
        else {
            return Ok(None);
        };
        let rest = key_line(&self.lines[at]).map(|k| k.rest.to_string());
        let (value, comment) = split_comment(rest.as_deref().unwrap_or(""));
        match value {
            "" | "~" | "null" => {}
            "{}" => self.lines[at] = format!("{key}:{comment}"),
            _ => {
                return Err(EditError::Unsupported(format!(
                    "`{key}:` is written as a flow mapping"
                )));
            }
        }
        Ok(Some(Span {
            key: at,
            end: self.block_end(at, 0),
        }))
    }

    /// Sets admin `name`'s recipient: its line's value is replaced (a comment after it stays),
    /// or a new line is appended to `admins:` (created at the end of the file when missing).
    pub(crate) fn set_admin(&mut self, name: &str, recipient: &str) -> Result<(), EditError> {
        let Some(a) = self.top("admins")? else {
            self.lines.push("admins:".to_string());
            let line = format!(
                "{}{}: {}",
                " ".repeat(DEFAULT_STEP),
                scalar(name),
                scalar(recipient)
            );
            self.lines.push(line);
            return Ok(());
        };
        let ci = self.child_indent(a).unwrap_or(DEFAULT_STEP);
        let pad = " ".repeat(ci);
        let new = |comment: &str| format!("{pad}{}: {}{comment}", scalar(name), scalar(recipient));
        match self.admin(a, ci, name) {
            Some(e) => {
                if e.end > e.key + 1 {
                    return Err(EditError::Unsupported(format!(
                        "admin {name}'s recipient spans several lines"
                    )));
                }
                let k = key_line(&self.lines[e.key]).ok_or_else(|| internal(name))?;
                let comment = split_comment(k.rest).1.to_string();
                self.lines[e.key] = new(&comment);
            }
            None => {
                let at = a.end.max(a.key + 1);
                self.lines.insert(at, new(""));
            }
        }
        Ok(())
    }

    /// Removes admin `name`'s line; an admin that is not there changes nothing.
    pub(crate) fn remove_admin(&mut self, name: &str) -> Result<(), EditError> {
        let Some(a) = self.top("admins")? else {
            return Ok(());
        };
        let ci = self.child_indent(a).unwrap_or(DEFAULT_STEP);
        if let Some(e) = self.admin(a, ci, name) {
            self.lines.drain(e.key..e.end);
        }
        Ok(())
    }

    /// Admin `name`'s line (and continuation lines) inside the `admins:` block `a`.
    fn admin(&self, a: Span, ci: usize, name: &str) -> Option<Span> {
        let key = (a.key + 1..a.end)
            .find(|&i| key_line(&self.lines[i]).is_some_and(|k| k.indent == ci && k.key == name))?;
        Some(Span {
            key,
            end: self.block_end(key, ci),
        })
    }

    /// Machine `name`'s key line and block.
    fn machine(&mut self, name: &str) -> Result<Span, EditError> {
        let ms = self
            .machines()?
            .ok_or_else(|| EditError::UnknownMachine(name.to_string()))?;
        let ci = self
            .child_indent(ms)
            .ok_or_else(|| EditError::UnknownMachine(name.to_string()))?;
        let key = (ms.key + 1..ms.end)
            .find(|&i| key_line(&self.lines[i]).is_some_and(|k| k.indent == ci && k.key == name))
            .ok_or_else(|| EditError::UnknownMachine(name.to_string()))?;
        let rest = key_line(&self.lines[key]).map(|k| k.rest.to_string());
        let (value, comment) = split_comment(rest.as_deref().unwrap_or(""));
        match value {
            "" | "~" | "null" => {}
            "{}" => self.lines[key] = format!("{}{}:{comment}", " ".repeat(ci), scalar(name)),
            _ => {
                return Err(EditError::Unsupported(format!(
                    "machine {name} is written as a flow mapping"
                )));
            }
        }
        Ok(Span {
            key,
            end: self.block_end(key, ci),
        })
    }

    /// `field` of machine block `m`: its key line and the end of its value's lines.
    fn field(&self, m: Span, field: &str) -> Option<Span> {
        let gi = self.child_indent(m)?;
        let key = (m.key + 1..m.end).find(|&i| {
            key_line(&self.lines[i]).is_some_and(|k| k.indent == gi && k.key == field)
        })?;
        Some(Span {
            key,
            end: self.block_end(key, gi),
        })
    }

    /// Inserts `line` (without indentation) as a new field at the end of machine block `m`.
    fn insert_field(&mut self, m: Span, line: &str) -> Result<(), EditError> {
        let gi = match self.child_indent(m) {
            Some(gi) => gi,
            None => {
                let ms = self.machines()?.ok_or_else(|| internal("machines"))?;
                let ci = self.child_indent(ms).unwrap_or(DEFAULT_STEP);
                self.field_indent(ms, ci)
            }
        };
        let at = m.end.max(m.key + 1);
        self.lines.insert(at, format!("{}{line}", " ".repeat(gi)));
        Ok(())
    }

    /// Rewrites list field `f` to `values`: a flow list on its line, a block list item by item.
    fn replace_list(&mut self, f: Span, field: &str, values: &[String]) -> Result<(), EditError> {
        let k = key_line(&self.lines[f.key]).ok_or_else(|| internal(field))?;
        let indent = k.indent;
        let (value, comment) = split_comment(k.rest);
        let comment = comment.to_string();
        if value.starts_with('[') {
            if f.end > f.key + 1 || !value.ends_with(']') {
                return Err(EditError::Unsupported(format!(
                    "{field} is a flow list over several lines"
                )));
            }
            let pad = " ".repeat(indent);
            self.lines[f.key] = format!("{pad}{field}: {}{comment}", flow_list(values));
            return Ok(());
        }
        if !value.is_empty() {
            return Err(EditError::Unsupported(format!("{field} is not a list")));
        }
        if values.is_empty() {
            let pad = " ".repeat(indent);
            self.lines[f.key] = format!("{pad}{field}: []{comment}");
            self.lines.drain(f.key + 1..f.end);
            return Ok(());
        }
        self.replace_block_items(f, field, values)
    }

    /// A block list: drops the items not in `values`, appends the new ones after the last.
    fn replace_block_items(
        &mut self,
        f: Span,
        field: &str,
        values: &[String],
    ) -> Result<(), EditError> {
        let mut old = Vec::new();
        let mut item_indent = None;
        for i in f.key + 1..f.end {
            let line = &self.lines[i];
            if !is_content(line) {
                continue;
            }
            let Some(v) = block_item(line) else {
                return Err(EditError::Unsupported(format!(
                    "{field} holds something other than `- item` lines"
                )));
            };
            item_indent.get_or_insert(indent_of(line));
            old.push((i, v));
        }
        let pad = " ".repeat(item_indent.unwrap_or(indent_of(&self.lines[f.key])));
        let added: Vec<String> = values
            .iter()
            .filter(|v| !old.iter().any(|(_, o)| o == *v))
            .map(|v| format!("{pad}- {}", scalar(v)))
            .collect();
        let last = old.last().map(|(i, _)| i + 1).unwrap_or(f.key + 1);
        self.lines.splice(last..last, added);
        for (i, v) in old.iter().rev() {
            if !values.contains(v) {
                self.lines.remove(*i);
            }
        }
        Ok(())
    }

    /// The end (exclusive) of the block of the key at line `key` with indentation `indent`:
    /// after the last content line that is deeper (or a `- ` item at the same indentation).
    fn block_end(&self, key: usize, indent: usize) -> usize {
        let mut end = key + 1;
        for i in key + 1..self.lines.len() {
            let line = &self.lines[i];
            if !is_content(line) {
                continue;
            }
            let n = indent_of(line);
            if n < indent || (n == indent && !line[n..].starts_with("- ")) {
                break;
            }
            end = i + 1;
        }
        end
    }

    /// Indentation of the first content line inside block `s`.
    fn child_indent(&self, s: Span) -> Option<usize> {
        (s.key + 1..s.end)
            .map(|i| &self.lines[i])
            .find(|l| is_content(l))
            .map(|l| indent_of(l))
    }

    /// Indentation of a machine's fields: as in the first machine that has one, else one
    /// step deeper than the machines (`ci`).
    fn field_indent(&self, ms: Span, ci: usize) -> usize {
        (ms.key + 1..ms.end)
            .filter(|&i| key_line(&self.lines[i]).is_some_and(|k| k.indent == ci))
            .find_map(|i| {
                let m = Span {
                    key: i,
                    end: self.block_end(i, ci),
                };
                self.child_indent(m)
            })
            .unwrap_or(ci + ci.max(DEFAULT_STEP))
    }
}

fn internal(what: &str) -> EditError {
    EditError::Unsupported(format!("{what}: unexpected layout"))
}

/// Not blank and not a comment.
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Parses a `key: rest` line (plain, `'single'` or `"double"` quoted key); `None` for a list
/// item, a comment or anything else.
fn key_line(line: &str) -> Option<KeyLine<'_>> {
    if !is_content(line) {
        return None;
    }
    let indent = indent_of(line);
    let s = &line[indent..];
    if s.starts_with("- ") || s == "-" {
        return None;
    }
    let (key, after) = match s.chars().next()? {
        q @ ('\'' | '"') => {
            let close = s[1..].find(q)? + 1;
            (s[1..close].to_string(), &s[close + 1..])
        }
        _ => {
            let colon = s
                .char_indices()
                .find(|&(i, c)| c == ':' && s[i + 1..].chars().next().is_none_or(|n| n == ' '))?
                .0;
            (s[..colon].trim_end().to_string(), &s[colon..])
        }
    };
    let rest = after.trim_start().strip_prefix(':')?;
    Some(KeyLine {
        indent,
        key,
        rest: rest.trim_start(),
    })
}

/// The value of a `- item` line (unquoted, without a trailing comment).
fn block_item(line: &str) -> Option<String> {
    let s = line.trim_start().strip_prefix('-')?;
    if !s.is_empty() && !s.starts_with(' ') {
        return None;
    }
    let (v, _) = split_comment(s.trim_start());
    Some(unquote(v))
}

/// Splits `value  # comment` into the value and the comment with its leading spaces (`""`
/// when there is none). A `#` inside quotes or brackets is part of the value.
fn split_comment(rest: &str) -> (&str, &str) {
    let mut quote = None;
    let mut depth = 0i32;
    let b = rest.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'[' | b'{') => depth += 1,
            (None, b']' | b'}') => depth -= 1,
            (None, b'#') if depth <= 0 && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') => {
                let v = rest[..i].trim_end();
                return (v, &rest[v.len()..]);
            }
            _ => {}
        }
    }
    (rest.trim_end(), "")
}

fn unquote(v: &str) -> String {
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].replace("''", "'");
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        return v[1..v.len() - 1].to_string();
    }
    v.to_string()
}

/// `[a, b]` with each item as a YAML scalar.
fn flow_list(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| scalar(v)).collect();
    format!("[{}]", items.join(", "))
}

/// `s` as a plain YAML scalar when that reads back as the same string, else single-quoted.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@/+".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        )
        && s.parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o");
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# fleet\nadmins:\n  alice: age1x   # the admin\nmachines:\n  # the controller\n  cinnabar:\n    target: root@c.example.org  # public IP\n    tags: [vps, zt]   # roles\n    generators:\n      - openssh   # host key\n      - password\n\n  electrum: {}\ndeploy:\n  order: [zt]\n";

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn block_list_keeps_item_comments_and_appends() {
        let mut d = InventoryDoc::new(DOC);
        d.set_list("cinnabar", "generators", &list(&["openssh", "wireguard"]))
            .unwrap();
        let t = d.text();
        assert!(
            t.contains("      - openssh   # host key\n      - wireguard\n\n  electrum"),
            "{t}"
        );
        assert!(!t.contains("password"), "{t}");
        assert_eq!(t.replace("      - wireguard\n", "      - password\n"), DOC);
    }

    #[test]
    fn flow_list_keeps_its_comment_and_empty_machine_gets_a_block() {
        let mut d = InventoryDoc::new(DOC);
        d.set_list("cinnabar", "tags", &list(&["vps"])).unwrap();
        d.set_list("electrum", "generators", &list(&["openssh"]))
            .unwrap();
        d.set_scalar("cinnabar", "target", Some("root@10.0.0.1"))
            .unwrap();
        let t = d.text();
        assert!(t.contains("    tags: [vps]   # roles\n"), "{t}");
        assert!(
            t.contains("  electrum:\n    generators: [openssh]\ndeploy:"),
            "{t}"
        );
        assert!(
            t.contains("    target: root@10.0.0.1  # public IP\n"),
            "{t}"
        );
    }

    #[test]
    fn add_and_remove_machines() {
        let mut d = InventoryDoc::new(DOC);
        let m = Machine {
            tags: list(&["x y"]),
            generators: list(&["openssh"]),
            system: "aarch64-darwin".into(),
            ..Machine::default()
        };
        d.add_machine("new", &m).unwrap();
        let t = d.text();
        assert!(
            t.contains("  electrum: {}\n  new:\n    system: aarch64-darwin\n    tags: ['x y']\n    generators: [openssh]\ndeploy:"),
            "{t}"
        );
        d.remove_machine("new").unwrap();
        assert_eq!(d.text(), DOC);
        assert!(matches!(
            d.remove_machine("nope"),
            Err(EditError::UnknownMachine(_))
        ));
        let mut e = InventoryDoc::new("admins: {}\n");
        e.add_machine("a", &Machine::default()).unwrap();
        assert_eq!(e.text(), "admins: {}\nmachines:\n  a: {}\n");
    }

    #[test]
    fn admins_are_set_and_removed_on_their_own_lines() {
        let mut d = InventoryDoc::new(DOC);
        d.set_admin("alice", "age1y").unwrap();
        d.set_admin("bob", "ssh-ed25519 AAAA bob").unwrap();
        let t = d.text();
        assert!(
            t.contains("  alice: age1y   # the admin\n  bob: 'ssh-ed25519 AAAA bob'\nmachines:"),
            "{t}"
        );
        d.remove_admin("bob").unwrap();
        d.set_admin("alice", "age1x").unwrap();
        assert_eq!(d.text(), DOC);
    }

    #[test]
    fn same_indent_sequences_quoted_items_and_key_comments() {
        let doc = "machines:  # all\n  m1:  # first\n    generators:\n    - 'openssh'\n    - password  # pw\n    tags: []\n";
        let mut d = InventoryDoc::new(doc);
        d.set_list("m1", "generators", &list(&["password", "wireguard"]))
            .unwrap();
        d.set_list("m1", "tags", &list(&["a"])).unwrap();
        assert_eq!(
            d.text(),
            "machines:  # all\n  m1:  # first\n    generators:\n    - password  # pw\n    - wireguard\n    tags: [a]\n"
        );
        d.set_list("m1", "generators", &[]).unwrap();
        assert_eq!(
            d.text(),
            "machines:  # all\n  m1:  # first\n    generators: []\n    tags: [a]\n"
        );
    }

    #[test]
    fn refuses_flow_mappings() {
        let mut d = InventoryDoc::new("machines: {a: {generators: [x]}}\n");
        assert!(matches!(
            d.set_list("a", "generators", &[]),
            Err(EditError::Unsupported(_))
        ));
        assert_eq!(scalar("yes"), "'yes'");
        assert_eq!(scalar("root@h.example.org"), "root@h.example.org");
        assert_eq!(split_comment("[a, '#b'] # c"), ("[a, '#b']", " # c"));
    }
}
