//! `check`'s comparison of `.sops.yaml` with the inventory: varsmith's block must hold exactly
//! the rules and recipients [`super::expected`] gives (an added recipient is a finding: plain
//! `sops updatekeys` would add it to the host's files), and no rule of the user's before the
//! block may match varsmith's paths (sops takes the first matching rule). The user's rules and
//! the sops files outside `sops/machines/` and `sops/shared/` are none of check's business.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{BEGIN, Rule, expected, find_block, path};
use crate::store::{self, Owner, sopsfiles};
use crate::workspace::quote::{parser_message, scrub_keys};
use crate::workspace::{Definitions, Workspace};

#[derive(Deserialize, Default)]
struct RawFile {
    #[serde(default)]
    creation_rules: Vec<RawRule>,
}

#[derive(Deserialize)]
struct RawRule {
    #[serde(default)]
    path_regex: Option<String>,
    #[serde(default)]
    key_groups: Vec<RawGroup>,
    #[serde(flatten)]
    other: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Deserialize)]
struct RawGroup {
    #[serde(default)]
    age: Vec<String>,
    #[serde(flatten)]
    other: BTreeMap<String, yaml_serde::Value>,
}

fn shown(s: &str) -> String {
    crate::term::escape_controls(&scrub_keys(s))
}

/// Whether varsmith wrote anything yet (a workspace before its first generate has no rules).
fn has_vars(ws: &Workspace, defs: &Definitions) -> Result<bool, store::Error> {
    for m in defs.machines.keys() {
        if !sopsfiles::files_of(&ws.root, &Owner::Machine(m.clone()))?.is_empty() {
            return Ok(true);
        }
    }
    for u in defs.users.keys() {
        if !sopsfiles::files_of(&ws.root, &Owner::User(u.clone()))?.is_empty() {
            return Ok(true);
        }
    }
    Ok(!sopsfiles::files_of(&ws.root, &Owner::Shared)?.is_empty())
}

/// What is wrong with `.sops.yaml`, one message each (empty: it matches the inventory).
pub(crate) fn drift(ws: &Workspace, defs: &Definitions) -> Result<Vec<String>, store::Error> {
    let want = expected(ws, defs)?;
    let file = path(ws);
    let bytes = store::read_file_shared(&ws.root, &file)?;
    let Some(text) = bytes.as_deref().map(String::from_utf8_lossy) else {
        return Ok(if has_vars(ws, defs)? {
            vec!["missing: `varsmith rekey` writes varsmith's creation rules".into()]
        } else {
            Vec::new()
        });
    };
    let (b, e, indent) = match find_block(&text) {
        Ok(Some(x)) => x,
        Ok(None) if !has_vars(ws, defs)? => return Ok(Vec::new()),
        Ok(None) => {
            return Ok(vec![format!(
                "has no varsmith block ({BEGIN:?} …); `varsmith rekey` adds it"
            )]);
        }
        Err(m) => return Ok(vec![m]),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let block: String = lines[b..e]
        .iter()
        .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
        .collect();
    let have = match yaml_serde::from_str::<Option<Vec<RawRule>>>(&block) {
        Ok(r) => r.unwrap_or_default(),
        Err(err) => {
            return Ok(vec![format!(
                "varsmith's block does not parse: {}",
                parser_message(&err.to_string())
            )]);
        }
    };
    let mut out = compare(&want, &have);
    out.extend(shadows(&text, &have, &want));
    Ok(out)
}

/// The block's rules against the expected ones.
fn compare(want: &[Rule], have: &[RawRule]) -> Vec<String> {
    let mut out = Vec::new();
    for h in have {
        let Some(re) = &h.path_regex else {
            out.push("varsmith's block holds a rule without path_regex".into());
            continue;
        };
        let Some(w) = want.iter().find(|w| &w.path_regex == re) else {
            out.push(format!(
                "rule {} in varsmith's block is not one the inventory implies",
                shown(re)
            ));
            continue;
        };
        let mut keys: Vec<&String> = h.other.keys().collect();
        keys.extend(h.key_groups.iter().flat_map(|g| g.other.keys()));
        if !keys.is_empty() || h.key_groups.len() != 1 {
            let keys: Vec<String> = keys.iter().map(|k| shown(k)).collect();
            out.push(format!(
                "rule {re}: key groups or keys varsmith does not write ({})",
                keys.join(", ")
            ));
        }
        let age: Vec<&str> = h
            .key_groups
            .iter()
            .flat_map(|g| g.age.iter().map(|a| a.trim()))
            .collect();
        for a in age.iter().filter(|a| !w.age.iter().any(|x| x == *a)) {
            out.push(format!(
                "rule {re}: extra recipient {} (not implied by varsmith.yaml; `sops updatekeys` would add it to those files)",
                shown(a)
            ));
        }
        for a in w.age.iter().filter(|a| !age.contains(&a.as_str())) {
            out.push(format!("rule {re}: recipient {a} missing"));
        }
    }
    for w in want {
        if !have
            .iter()
            .any(|h| h.path_regex.as_deref() == Some(&w.path_regex))
        {
            out.push(format!(
                "rule {} missing from varsmith's block",
                w.path_regex
            ));
        }
    }
    if !out.is_empty() {
        out.push("`varsmith rekey` rewrites varsmith's block".into());
    }
    out
}

/// A path each expected rule matches (what sops would be asked about).
fn sample(rule: &Rule) -> String {
    rule.path_regex
        .trim_start_matches('^')
        .trim_end_matches('$')
        .replace("[^/]+", "x")
        .replace('\\', "")
}

/// The user's rules before varsmith's block that match one of varsmith's paths.
fn shadows(text: &str, block: &[RawRule], want: &[Rule]) -> Vec<String> {
    let Ok(all) = yaml_serde::from_str::<Option<RawFile>>(text) else {
        return Vec::new();
    };
    let all = all.unwrap_or_default().creation_rules;
    let regexes =
        |r: &[RawRule]| -> Vec<Option<String>> { r.iter().map(|x| x.path_regex.clone()).collect() };
    let mine = regexes(block);
    let Some(start) = (0..=all.len().saturating_sub(mine.len()))
        .find(|&i| all.len() >= mine.len() && regexes(&all[i..i + mine.len()]) == mine)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in &all[..start] {
        let re = r.path_regex.as_deref().unwrap_or("");
        let Ok(rx) = regex::Regex::new(re) else {
            continue;
        };
        if let Some(p) = want.iter().map(sample).find(|p| rx.is_match(p)) {
            out.push(format!(
                "rule {} before varsmith's block matches {p}: sops takes the first matching rule, so it would pick that one's recipients for varsmith's files; move it after the block or narrow its path_regex",
                if re.is_empty() { "without path_regex".into() } else { shown(re) }
            ));
        }
    }
    out
}
