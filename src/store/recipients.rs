//! Who a secrets file is encrypted to: the host's age recipient (from its SSH host key, or
//! `key.json` given by hand) and every admin; shared files to every machine using them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use super::layout::{Owner, host_key_json};
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, HOST_KEY_PUBS, Workspace};

/// One entry of a `key.json` file (`[{"publickey": "age1…", "type": "age"}]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyJsonEntry {
    /// The age recipient.
    pub publickey: String,
    /// Always `age`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Reads a `key.json`; `Ok(None)` when absent.
pub fn read_key_json(root: &Path, path: &Path) -> Result<Option<Vec<String>>, Error> {
    let Some(bytes) = super::read_file(root, path)? else {
        return Ok(None);
    };
    let entries: Vec<KeyJsonEntry> =
        serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            msg: format!(
                "expected [{{\"publickey\": \"age1…\", \"type\": \"age\"}}]: {}",
                crate::workspace::quote::parser_message(&e.to_string())
            ),
        })?;
    Ok(Some(entries.into_iter().map(|e| e.publickey).collect()))
}

/// The host's age recipients: derived from its `openssh` public key fact when present (what
/// sops-nix uses on the host), else from `key.json`; then, while a host key rotation is
/// pending ([`super::rotation`]), the recipients it had before that the workspace recorded. Empty when none exists.
pub fn host_recipients(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    let mut out = match derived_host_recipient(root, host)? {
        Some(r) => vec![r],
        None => read_key_json(root, &host_key_json(root, host))?.unwrap_or_default(),
    };
    // Only the old recipients the workspace recorded itself: a planted record adds nothing.
    for r in super::rotation::honoured(root, host)? {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The recipient derived from the host's `openssh` public key fact, if it has one.
pub fn derived_host_recipient(root: &Path, host: &str) -> Result<Option<String>, Error> {
    let dir = Owner::Machine(host.to_string()).facts_dir(root, HOST_KEY_GENERATOR);
    let mut found = None;
    for name in HOST_KEY_PUBS {
        let p = dir.join(name);
        if let Some(bytes) = super::read_file(root, &p)? {
            found = Some((p, bytes));
            break;
        }
    }
    let Some((pub_path, bytes)) = found else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&bytes);
    convert_cached(&line)
        .map(Some)
        .map_err(|e| Error::Malformed {
            path: pub_path.clone(),
            msg: e.to_string(),
        })
}

/// ssh-to-age of a public key line, memoized (a fleet run asks for each host many times).
fn convert_cached(line: &str) -> Result<String, crate::keys::Error> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static CACHE: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);
    let key = line.trim().to_string();
    if let Some(r) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return Ok(r);
    }
    let r = crate::keys::ssh_to_age::public_to_age(&key)?;
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new).insert(key, r.clone());
    }
    Ok(r)
}

/// The recipients a secrets file of `owner`'s generator `gen_name` must have: hosts (for
/// deployed files) then admins, without duplicates.
pub fn expected_recipients(
    ws: &Workspace,
    defs: &Definitions,
    owner: &Owner,
    gen_name: &str,
    admin_only: bool,
) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    if !admin_only {
        match owner {
            Owner::Machine(m) => out.extend(host_recipients(&ws.root, m)?),
            Owner::Shared => {
                for (m, gens) in &defs.machines {
                    if gens.contains_key(gen_name) {
                        out.extend(host_recipients(&ws.root, m)?);
                    }
                }
                // A declared external shared file (`varsmith import sops --shared`) is for
                // every machine.
                if out.is_empty()
                    && super::external::External::read(&ws.root)?.declares(owner, gen_name)
                {
                    for m in defs.machines.keys() {
                        out.extend(host_recipients(&ws.root, m)?);
                    }
                }
            }
        }
    }
    // Recipients as sops records them: without surrounding whitespace (an ssh public key
    // line with an empty comment ends in a space).
    out.extend(ws.inventory.admins.values().map(|r| r.trim().to_string()));
    let mut seen = std::collections::HashSet::new();
    out.retain(|r| seen.insert(r.clone()));
    Ok(out)
}
