//! Who a secrets file is encrypted to: the host's age recipient (from its SSH host key, or
//! `key.json` given by hand) and every admin; shared files to every machine using them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use super::Owner;
use super::layout::host_key_json;
use crate::workspace::{Definitions, HOST_KEY_GENERATOR, HOST_KEY_PUBS, Workspace};

/// One entry of a `key.json` file (`[{"publickey": "age1…", "type": "age"}]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct KeyJsonEntry {
    /// The age recipient.
    pub publickey: String,
    /// Always `age`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Reads a `key.json`; `Ok(None)` when absent.
pub(crate) fn read_key_json(root: &Path, path: &Path) -> Result<Option<Vec<String>>, Error> {
    // Parsed once per version of the file while a read cache is active (a fleet-wide pass
    // asks for each machine's recipients once per generator).
    let keys = super::fs::read_parsed(root, path, super::MAX_STORE_FILE, |bytes| {
        let entries: Vec<KeyJsonEntry> =
            serde_json::from_slice(bytes).map_err(|e| Error::Malformed {
                path: path.to_path_buf(),
                msg: format!(
                    "expected [{{\"publickey\": \"age1…\", \"type\": \"age\"}}]: {}",
                    crate::workspace::quote::parser_message(&e.to_string())
                ),
            })?;
        Ok::<_, Error>(
            entries
                .into_iter()
                .map(|e| e.publickey)
                .collect::<Vec<String>>(),
        )
    })?;
    Ok(keys.map(|k| k.as_ref().clone()))
}

/// The host's age recipients: derived from its `openssh` public key fact when present (what
/// sops-nix uses on the host), else from `key.json`; then, while a host key rotation is
/// pending ([`super::rotation`]), the recipients it had before that the workspace recorded. Empty when none exists.
pub(crate) fn host_recipients(root: &Path, host: &str) -> Result<Vec<String>, Error> {
    // varsmith's own host key fact wins; then `key.json` (given by hand, imported from clan —
    // whose hosts decrypt with `/var/lib/sops-nix/key.txt` —, or written from the host key by
    // `generate`); then the public half of a ported clan `openssh` generator.
    let mut out = match derived_from(root, host, &HOST_KEY_PUBS[..1])? {
        Some(r) => vec![r],
        None => match read_key_json(root, &host_key_json(root, host))? {
            Some(v) if !v.is_empty() => v,
            _ => derived_from(root, host, &HOST_KEY_PUBS[1..])?
                .into_iter()
                .collect(),
        },
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
pub(super) fn derived_host_recipient(root: &Path, host: &str) -> Result<Option<String>, Error> {
    derived_from(root, host, HOST_KEY_PUBS)
}

/// The recipient derived from the first of `names` the host's `openssh` facts hold.
fn derived_from(root: &Path, host: &str, names: &[&str]) -> Result<Option<String>, Error> {
    let dir = Owner::Machine(host.to_string()).facts_dir(root, HOST_KEY_GENERATOR);
    let mut found = None;
    for name in names {
        let p = dir.join(name);
        if let Some(bytes) = super::read_file_shared(root, &p)? {
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

/// A home-manager user's age recipients, from `sops/users/<user>/key.json` (`varsmith user
/// add`); empty when the user is not registered.
pub(crate) fn user_recipients(root: &Path, user: &str) -> Result<Vec<String>, Error> {
    Ok(read_key_json(root, &super::layout::admin_key_json(root, user))?.unwrap_or_default())
}

/// The recipients a secrets file of `owner`'s generator `gen_name` must have: hosts (for
/// deployed files; a user's recipient for a user's, never a host's), then admins, without
/// duplicates. A shared file goes to every machine and every registered user using it.
pub(crate) fn expected_recipients(
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
            Owner::User(_) => {
                if let Some(u) = owner.user() {
                    out.extend(user_recipients(&ws.root, u)?);
                }
            }
            Owner::Shared => {
                for (m, gens) in &defs.machines {
                    if gens.contains_key(gen_name) {
                        out.extend(host_recipients(&ws.root, m)?);
                    }
                }
                for (u, gens) in &defs.users {
                    if gens.contains_key(gen_name) {
                        let u = u.split('@').next().unwrap_or(u);
                        out.extend(user_recipients(&ws.root, u)?);
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

/// The mirror of the inventory that the Nix module and `lib.flakeCheck` read (they cannot
/// parse `varsmith.yaml`), beside it: `{"admins": {"<name>": "<recipient>", …}, "machines":
/// ["<machine declared in varsmith.yaml>", …]}`, in inventory order. Written by `init`,
/// `admin add/remove`, `machine add/remove` and `rekey`; absent in workspaces from before it
/// existed (then nothing compares admins on the Nix side).
pub(crate) const ADMINS_MIRROR: &str = "varsmith.admins.json";

/// The content of [`ADMINS_MIRROR`].
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mirror {
    /// Admin name -> age recipient (trimmed).
    pub admins: indexmap::IndexMap<String, String>,
    /// Machines declared in `varsmith.yaml` (flake machines are configurations).
    #[serde(default)]
    pub machines: Vec<String>,
}

impl Mirror {
    /// The mirror of the workspace at `root` as its `varsmith.yaml` declares it now.
    pub(crate) fn of_yaml(root: &Path) -> Result<Mirror, Error> {
        let ws = crate::workspace::Workspace::load(root).map_err(|e| Error::Malformed {
            path: root.join(crate::workspace::INVENTORY_FILE),
            msg: e.to_string(),
        })?;
        Ok(Mirror {
            admins: ws
                .inventory
                .admins
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_string()))
                .collect(),
            machines: ws.inventory.machines.keys().cloned().collect(),
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Writes [`ADMINS_MIRROR`] from the `varsmith.yaml` at `root` when it differs; returns
/// whether it was written.
pub(crate) fn write_admins_mirror(root: &Path) -> Result<bool, Error> {
    let want = Mirror::of_yaml(root)?.to_bytes();
    let path = root.join(ADMINS_MIRROR);
    if super::read_file(root, &path)?.as_deref() == Some(want.as_slice()) {
        return Ok(false);
    }
    super::write_atomic(root, &path, &want)?;
    Ok(true)
}

/// Whether [`ADMINS_MIRROR`] exists and differs from what `varsmith.yaml` declares.
pub(crate) fn admins_mirror_differs(root: &Path) -> Result<bool, Error> {
    let path = root.join(ADMINS_MIRROR);
    let Some(bytes) = super::read_file_shared(root, &path)? else {
        return Ok(false);
    };
    let have: Mirror = serde_json::from_slice(&bytes).map_err(|e| Error::Malformed {
        path: path.clone(),
        msg: format!(
            "expected {{\"admins\": {{\"<admin>\": \"<recipient>\"}}, \"machines\": […]}}: {e}"
        ),
    })?;
    Ok(have != Mirror::of_yaml(root)?)
}

/// The recipients of the sops file `bytes` at `path` (shown as `origin`): those recorded in its
/// generator's manifest when the bytes are the recorded ones (same SHA-256), so an unchanged
/// file is not parsed; else read from its metadata. Recorded recipients are trimmed, parsed
/// ones as sops wrote them: callers compare trimmed.
pub(crate) fn file_recipients(
    root: &Path,
    path: &Path,
    bytes: &[u8],
    origin: &str,
) -> Result<Vec<String>, crate::sops::Error> {
    use sha2::{Digest, Sha256};
    if let Some(rec) = super::recorded(root, path)
        && rec.sha256 == hex::encode(Sha256::digest(bytes))
    {
        return Ok(rec.recipients);
    }
    crate::sops::recipients(bytes, crate::sops::Format::Yaml, origin)
}
