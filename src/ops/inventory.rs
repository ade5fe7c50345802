//! `varsmith.yaml` as the commands that edit it (init, admin, machine) read and write it.
//!
//! Invariants: an edit changes only the lines of its entries (comments and layout stay,
//! [`InventoryDoc`]), the new text must parse back to exactly the intended inventory before
//! anything is written, the write is atomic through [`crate::store`], and the admins mirror the
//! Nix module reads ([`crate::store::write_admins_mirror`]) is refreshed after it. Flake
//! machines merged into a [`Workspace`]'s inventory are never written to the file.

use std::path::Path;

use anyhow::Context as _;

use crate::UsageError;
use crate::store;
use crate::workspace::inventory_edit::InventoryDoc;
use crate::workspace::{INVENTORY_FILE, Inventory};

/// Parses `text` as `root`'s `varsmith.yaml` (bounded, errors name the file); empty text is
/// an empty inventory.
pub(crate) fn parse(root: &Path, text: &str) -> anyhow::Result<Inventory> {
    let path = root.join(INVENTORY_FILE);
    crate::workspace::bounds::check_yaml(text)
        .map_err(|m| UsageError::new(format!("{}: {m}", path.display())))?;
    if text.trim().is_empty() {
        return Ok(Inventory::default());
    }
    Ok(yaml_serde::from_str(text)
        .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?)
}

/// Reads `root`'s `varsmith.yaml` as text lines and as the inventory it holds (without flake
/// machines). A missing or non-UTF-8 file is a usage error naming it.
pub(crate) fn read(root: &Path) -> anyhow::Result<(InventoryDoc, Inventory)> {
    let path = root.join(INVENTORY_FILE);
    let bytes = store::read_file(root, &path)?
        .ok_or_else(|| UsageError::new(format!("{}: not found", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| UsageError::new(format!("{}: not UTF-8 text", path.display())))?;
    let inventory = parse(root, &text)?;
    Ok((InventoryDoc::new(&text), inventory))
}

/// Writes the edited `doc` when it reads back as `want` (else a usage error, nothing written),
/// then refreshes the admins mirror.
pub(crate) fn write(root: &Path, doc: &InventoryDoc, want: &Inventory) -> anyhow::Result<()> {
    let text = doc.text();
    let path = root.join(INVENTORY_FILE);
    if parse(root, &text).ok().as_ref() != Some(want) {
        return Err(UsageError::new(format!(
            "{}: the in-place edit would not read back as intended (unusual layout); nothing written, edit the file by hand",
            path.display()
        ))
        .into());
    }
    store::write_atomic(root, &path, text.as_bytes())?;
    store::write_admins_mirror(root)?;
    Ok(())
}

/// Saves `inv` (its admins changed) and the admins mirror: as line edits of the existing file
/// when only admins changed, else the whole file serialized.
pub(crate) fn save(root: &Path, inv: &Inventory) -> anyhow::Result<()> {
    if !save_admins(root, inv)? {
        let text = yaml_serde::to_string(inv).context("serializing varsmith.yaml")?;
        store::write_atomic(root, &root.join(INVENTORY_FILE), text.as_bytes())?;
    }
    store::write_admins_mirror(root)?;
    Ok(())
}

/// Saves a change of `inv`'s admins into the existing `varsmith.yaml` as line edits (comments
/// and layout stay), when that is all that changed and the result reads back as intended.
/// `Ok(false)` when it does not apply (no file yet, other sections changed, an unusual
/// layout): the caller then writes the whole file. Machines that are in `inv` but not in the
/// file (merged from the flake) are not written.
fn save_admins(root: &Path, inv: &Inventory) -> anyhow::Result<bool> {
    let path = root.join(INVENTORY_FILE);
    let Some(text) = store::read_file(root, &path)?.and_then(|b| String::from_utf8(b).ok()) else {
        return Ok(false);
    };
    let Ok(old) = parse(root, &text) else {
        return Ok(false);
    };
    let same_rest = old.deploy == inv.deploy
        && old
            .machines
            .iter()
            .all(|(n, m)| inv.machines.get(n) == Some(m));
    if !same_rest {
        return Ok(false);
    }
    let mut doc = InventoryDoc::new(&text);
    for name in old.admins.keys().filter(|n| !inv.admins.contains_key(*n)) {
        if doc.remove_admin(name).is_err() {
            return Ok(false);
        }
    }
    for (name, r) in inv
        .admins
        .iter()
        .filter(|(n, r)| old.admins.get(*n) != Some(r))
    {
        if doc.set_admin(name, r).is_err() {
            return Ok(false);
        }
    }
    let mut want = old;
    want.admins = inv.admins.clone();
    let new = doc.text();
    if parse(root, &new).ok().as_ref() != Some(&want) {
        return Ok(false);
    }
    store::write_atomic(root, &path, new.as_bytes())?;
    Ok(true)
}
