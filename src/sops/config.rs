//! `.sops.yaml` lookup and creation-rule selection, as sops does for `encrypt`.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::error::{Error, Result};
use super::rules::CryptRule;
use super::tree::{Map, Value};

/// What the matching creation rule asks for.
#[derive(Debug, Clone, Default)]
pub struct CreationRule {
    /// age recipients, in order.
    pub age: Vec<String>,
    /// The crypt rule, if the rule sets one.
    pub rule: Option<CryptRule>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

/// The nearest `.sops.yaml`, from `start` upward (at most 100 parents, like sops).
pub fn find_config(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    for _ in 0..100 {
        let d = dir?;
        let p = d.join(".sops.yaml");
        if p.is_file() {
            return Some(p);
        }
        dir = d.parent();
    }
    None
}

fn strings(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |s: &[u8]| {
        for part in String::from_utf8_lossy(s).split(',') {
            let p = part.trim();
            if !p.is_empty() {
                out.push(p.to_string());
            }
        }
    };
    match v {
        Some(Value::Str(s)) => push(s.as_slice()),
        Some(Value::Seq(items)) => {
            for it in items {
                if let Value::Str(s) = it {
                    push(s.as_slice());
                }
            }
        }
        _ => {}
    }
    out
}

fn text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::Str(s)) => Some(String::from_utf8_lossy(s.as_slice()).into_owned()),
        _ => None,
    }
}

/// Selects the first creation rule of `config` matching `file` (path relative to the config's
/// directory when inside it) and returns its keys and crypt rule.
pub fn rule_for(config: &Path, file: &Path) -> Result<CreationRule> {
    let origin = config.display().to_string();
    let bytes = std::fs::read(config).map_err(|source| Error::Io {
        origin: origin.clone(),
        source,
    })?;
    let docs = super::yaml::parse(&bytes, &origin)?;
    let root = docs.into_iter().next().unwrap_or_default();
    let Some(Value::Seq(rules)) = root.get("creation_rules") else {
        return Err(Error::malformed(&origin, "no creation_rules"));
    };
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = config
        .parent()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()));
    let rel = match dir.as_ref().and_then(|d| abs.strip_prefix(d).ok()) {
        Some(r) => r.to_string_lossy().into_owned(),
        None => abs.to_string_lossy().into_owned(),
    };
    for r in rules {
        let Value::Map(r) = r else { continue };
        if let Some(re) = text(r.get("path_regex")).filter(|s| !s.is_empty()) {
            let re = Regex::new(&re)
                .map_err(|e| Error::malformed(&origin, format!("invalid path_regex: {e}")))?;
            if !re.is_match(&rel) {
                continue;
            }
        }
        return creation_rule(r, &origin);
    }
    Err(Error::malformed(
        &origin,
        format!("no matching creation rules found for {rel}"),
    ))
}

fn creation_rule(r: &Map, origin: &str) -> Result<CreationRule> {
    let mut age = strings(r.get("age"));
    if age.is_empty()
        && let Some(Value::Seq(groups)) = r.get("key_groups")
    {
        if groups.len() > 1 {
            return Err(Error::malformed(
                origin,
                "several key_groups (Shamir) are not supported",
            ));
        }
        if let Some(Value::Map(g)) = groups.first() {
            age = strings(g.get("age"));
        }
    }
    if age.is_empty() {
        return Err(Error::malformed(
            origin,
            "the matching creation rule has no age recipients",
        ));
    }
    let mut rule = None;
    for k in CryptRule::KEYS {
        if let Some(v) = text(r.get(k)).filter(|s| !s.is_empty()) {
            if rule.is_some() {
                return Err(Error::malformed(
                    origin,
                    "more than one crypt rule in a creation rule",
                ));
            }
            rule = CryptRule::from_entry(k, &v)
                .map(|x| x.map_err(|e| Error::malformed(origin, format!("invalid {k}: {e}"))))
                .transpose()?;
        }
    }
    let mac_only_encrypted = matches!(r.get("mac_only_encrypted"), Some(Value::Bool(true)));
    Ok(CreationRule {
        age,
        rule,
        mac_only_encrypted,
    })
}
