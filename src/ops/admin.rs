//! `varsmith init` and `varsmith admin add|remove`: the admins of `varsmith.yaml` and their
//! `sops/users/<name>/key.json`, edited under the workspace lock without evaluating a flake.
//!
//! A change is all or nothing: names and recipients are validated before anything is written.
//! Nothing here prints: outcomes and warnings are returned for the CLI to show.

use std::path::Path;

use crate::UsageError;
use crate::store::lock::{Mode, WorkspaceLock};
use crate::store::{self, KeyJsonEntry};
use crate::workspace::{INVENTORY_FILE, Inventory, Workspace};

use super::inventory;

/// Creates `root`'s `varsmith.yaml` with one admin, or completes one that has no admin yet
/// (the template's). `recipient` is asked for only after those checks pass, so a refused init
/// creates no key. Returns the admin's recipient.
pub(crate) fn init(
    root: &Path,
    name: &str,
    recipient: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let path = root.join(INVENTORY_FILE);
    let existing = match path.exists() {
        false => None,
        true => match Workspace::load(root) {
            Ok(ws) if ws.inventory.admins.is_empty() => Some(ws.inventory),
            Ok(_) => {
                return Err(UsageError::new(format!(
                    "{} already exists and has admins; add one with `varsmith admin add NAME AGE_RECIPIENT`",
                    path.display()
                ))
                .into());
            }
            Err(e) => return Err(UsageError::new(e.to_string()).into()),
        },
    };
    crate::workspace::names::check_component(name)
        .map_err(|e| UsageError::new(format!("admin name: {e}")))?;
    let recipient = recipient()?;
    std::fs::create_dir_all(root)?;
    let mut inv: Inventory = existing.unwrap_or_default();
    inv.admins.insert(name.to_string(), recipient.clone());
    inventory::save(root, &inv)?;
    write_key_json(root, name, &recipient)?;
    Ok(recipient)
}

/// What `admin add` did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AdminAdd {
    /// The admin already had exactly this key: nothing written.
    Unchanged,
    /// A new admin.
    New,
    /// An existing admin's key replaced (`--replace`).
    Replaced,
}

/// `admin add`: an existing name is refused unless `replace`; a key another admin already
/// has is accepted, and the other names are returned (one person, two names).
pub(crate) fn add(
    ws: &mut Workspace,
    name: &str,
    recipient: &str,
    replace: bool,
) -> anyhow::Result<(AdminAdd, Vec<String>)> {
    let _lock = WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith admin add")?;
    crate::workspace::names::check_component(name)
        .map_err(|e| UsageError::new(format!("admin name: {e}")))?;
    crate::keys::validate_recipient(recipient)?;
    let file = ws.root.join(INVENTORY_FILE);
    let added = match ws.inventory.admins.get(name) {
        Some(old) if old.trim() == recipient.trim() => {
            return Ok((AdminAdd::Unchanged, Vec::new()));
        }
        Some(_) if !replace => {
            return Err(UsageError::new(format!(
                "{}: admin {name} already exists with another key; pass --replace to replace it",
                file.display()
            ))
            .into());
        }
        Some(_) => AdminAdd::Replaced,
        None => AdminAdd::New,
    };
    let same_key: Vec<String> = ws
        .inventory
        .admins
        .iter()
        .filter(|(other, r)| *other != name && r.trim() == recipient.trim())
        .map(|(other, _)| other.clone())
        .collect();
    ws.inventory
        .admins
        .insert(name.to_string(), recipient.to_string());
    inventory::save(&ws.root, &ws.inventory)?;
    write_key_json(&ws.root, name, recipient)?;
    Ok((added, same_key))
}

/// `admin remove`: the last admin is refused (no one could decrypt or rekey); an unknown
/// name is a usage error with a suggestion.
pub(crate) fn remove(ws: &mut Workspace, name: &str) -> anyhow::Result<()> {
    let _lock = WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith admin remove")?;
    if ws.inventory.admins.len() == 1 && ws.inventory.admins.contains_key(name) {
        return Err(UsageError::new(format!(
            "{}: {name} is the last admin; add another one first (`varsmith admin add NAME age1…`), or no one could decrypt or rekey the secrets",
            ws.root.join(INVENTORY_FILE).display()
        ))
        .into());
    }
    if ws.inventory.admins.shift_remove(name).is_none() {
        let known = ws.inventory.admins.keys().map(String::as_str);
        return Err(UsageError::new(crate::suggest::unknown("admin", name, known)).into());
    }
    inventory::save(&ws.root, &ws.inventory)?;
    let mut b = store::Batch::new(&ws.root);
    b.remove(&store::admin_key_json(&ws.root, name))?;
    b.commit()?;
    Ok(())
}

/// Writes `sops/users/<name>/key.json` (clan's layout) for an admin.
fn write_key_json(root: &Path, name: &str, recipient: &str) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(&[KeyJsonEntry {
        publickey: recipient.to_string(),
        kind: "age".into(),
    }])?;
    json.push(b'\n');
    store::write_atomic(root, &store::admin_key_json(root, name), &json)?;
    Ok(())
}
