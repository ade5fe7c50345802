//! `.sops.yaml` lookup and creation-rule selection, as sops does for `encrypt`.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::error::{Error, Result};
use super::rules::CryptRule;
use super::store::StoreOptions;
use super::tree::{Map, Value};

/// Key kinds a creation rule may name that varsmith cannot use (it wraps data keys for age
/// recipients only). A rule naming any of them is refused rather than silently dropped.
const UNSUPPORTED_KEYS: [(&str, &str); 7] = [
    ("pgp", "PGP"),
    ("kms", "AWS KMS"),
    ("gcp_kms", "GCP KMS"),
    ("azure_keyvault", "Azure Key Vault"),
    ("hc_vault_transit_uri", "HashiCorp Vault"),
    ("hckms", "HuaweiCloud KMS"),
    ("aws_profile", "AWS KMS"),
];

/// What the matching creation rule asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreationRule {
    /// age recipients, in order.
    pub age: Vec<String>,
    /// The crypt rule, if the rule sets one.
    pub rule: Option<CryptRule>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

/// The nearest `.sops.yaml`, from `start` upward (at most 100 parents, like sops).
pub(crate) fn find_config(start: &Path) -> Option<PathBuf> {
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

fn load(config: &Path) -> Result<Map> {
    let origin = config.display().to_string();
    let bytes = read_no_symlink(config, &origin)?;
    if bytes.len() as u64 > super::limits::DEFAULT_MAX_INPUT {
        return Err(Error::malformed(&origin, "the config file is too large"));
    }
    let docs = super::yaml::parse(&bytes, &origin)?;
    Ok(docs.into_iter().next().unwrap_or_default())
}

/// Reads `config` without following a symlink there (a cloned repository's `.sops.yaml ->
/// ~/.config/sops/age/keys.txt` must not be read, nor quoted in an error), a regular file only,
/// at most one byte more than the input limit.
fn read_no_symlink(config: &Path, origin: &str) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| Error::Io {
        origin: origin.to_string(),
        cause: source,
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(config)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::malformed(
                origin,
                "is a symlink; varsmith never reads .sops.yaml through a symlink (replace it with the real file)",
            ),
            _ => io(e),
        })?;
    if !f.metadata().map_err(io)?.is_file() {
        return Err(Error::malformed(origin, "not a regular file"));
    }
    let mut bytes = Vec::new();
    f.take(super::limits::DEFAULT_MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// The `stores:` settings of `config` (`yaml.indent`, `json.indent`, `json_binary.indent`),
/// which sops applies to everything it writes; defaults when absent.
pub(crate) fn stores_for(config: &Path) -> Result<StoreOptions> {
    let origin = config.display().to_string();
    let root = load(config)?;
    let mut opts = StoreOptions::default();
    let Some(stores) = root.get("stores") else {
        return Ok(opts);
    };
    let Value::Map(stores) = stores else {
        return Err(Error::malformed(&origin, "stores: must be a mapping"));
    };
    let indent = |name: &str| -> Result<Option<i64>> {
        match stores.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Map(m)) => match m.get("indent") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Int(i)) => Ok(Some(*i)),
                Some(_) => Err(Error::malformed(
                    &origin,
                    format!("stores.{name}.indent must be an integer"),
                )),
            },
            Some(_) => Err(Error::malformed(
                &origin,
                format!("stores.{name} must be a mapping"),
            )),
        }
    };
    if let Some(i) = indent("yaml")? {
        if i < 0 {
            return Err(Error::malformed(
                &origin,
                "stores.yaml.indent: YAML negative indentation not accepted",
            ));
        }
        opts.yaml_indent = i as usize;
    }
    for (name, slot) in [
        ("json", &mut opts.json_indent),
        ("json_binary", &mut opts.json_binary_indent),
    ] {
        if let Some(i) = indent(name)? {
            if i < -1 {
                return Err(Error::malformed(
                    &origin,
                    format!(
                        "stores.{name}.indent: JSON indentation smaller than -1 is not accepted"
                    ),
                ));
            }
            *slot = i;
        }
    }
    Ok(opts)
}

/// Selects the first creation rule of `config` matching `file` (path relative to the config's
/// directory when inside it) and returns its keys and crypt rule.
pub(crate) fn rule_for(config: &Path, file: &Path) -> Result<CreationRule> {
    let origin = config.display().to_string();
    let root = load(config)?;
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

/// Refuses a rule (or key group) naming keys varsmith cannot wrap for.
fn refuse_unsupported(r: &Map, origin: &str) -> Result<()> {
    for (k, what) in UNSUPPORTED_KEYS {
        if !strings(r.get(k)).is_empty() {
            return Err(Error::malformed(
                origin,
                format!(
                    "the matching creation rule has {what} keys (`{k}`); varsmith encrypts for age \
                     recipients only, and will not drop them silently"
                ),
            ));
        }
    }
    Ok(())
}

fn creation_rule(r: &Map, origin: &str) -> Result<CreationRule> {
    refuse_unsupported(r, origin)?;
    if let Some(Value::Seq(groups)) = r.get("key_groups") {
        for g in groups {
            if let Value::Map(g) = g {
                refuse_unsupported(g, origin)?;
            }
        }
    }
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
