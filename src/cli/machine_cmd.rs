//! `varsmith machine add|remove|edit|generators`: inventory edits that keep `varsmith.yaml`'s
//! comments and layout ([`crate::workspace::inventory_edit`]).
//!
//! Each edit, under the workspace lock: reads the file, changes only the lines of the entry,
//! checks that the new text parses back to exactly the intended inventory and that the
//! machines' generators resolve (an unknown generator name is exit 2, nothing written), writes
//! it atomically through [`crate::store`], and prints one line per change
//! (`cinnabar: generators += wireguard`) to stdout. An edit that changes nothing writes nothing.

use crate::UsageError;
use crate::cli::args::{CmdResult, MachineCmd, MachineEditArgs, MachineGeneratorsCmd};
use crate::store::lock::{Mode, WorkspaceLock};
use crate::workspace::inventory_edit::{EditError, InventoryDoc};
use crate::workspace::{INVENTORY_FILE, Inventory, Machine, Workspace};

use std::path::Path;

use super::core_cmd::Context;

/// The file being edited: its text as lines, the inventory it parses to, and the inventory
/// the edit should produce.
struct Edit {
    doc: InventoryDoc,
    want: Inventory,
    changes: Vec<String>,
}

/// Runs a `machine` subcommand.
pub(crate) fn run(ctx: &Context, cmd: MachineCmd) -> CmdResult {
    let mut ws = ctx.workspace()?;
    let _lock = WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith machine")?;
    let mut e = read(&ws)?;
    let name = match cmd {
        MachineCmd::Add {
            name,
            target,
            system,
            tags,
            generators,
        } => {
            let m = Machine {
                target,
                system,
                tags,
                generators,
                deploy: None,
            };
            add(&ws, &mut e, &name, m)?;
            name
        }
        MachineCmd::Remove { name } => {
            yaml_machine(&ws, &e, &name)?;
            let shared = shared_generators_of(&ws, &name)?;
            e.doc
                .remove_machine(&name)
                .map_err(|x| edit_error(&ws, x))?;
            e.want.machines.shift_remove(&name);
            e.changes.push(format!(
                "{name}: removed (its files under sops/machines/{name} stay; `check` reports them as an orphan until you delete them)"
            ));
            if !shared.is_empty() {
                let flags: Vec<String> = shared.iter().map(|g| format!("-g {g}")).collect();
                e.changes.push(format!(
                    "{name} could read the shared secrets of {}: if it is gone for good, rotate them (`varsmith generate --regenerate {} --all`) and deploy",
                    shared.join(", "),
                    flags.join(" ")
                ));
            }
            name
        }
        MachineCmd::Edit(a) => {
            let name = a.name.clone();
            edit(&ws, &mut e, a)?;
            name
        }
        MachineCmd::Generators(g) => generators(&ws, &mut e, g)?,
    };
    if e.changes.is_empty() {
        eprintln!("{name}: nothing to change; {INVENTORY_FILE} left as it was");
        return Ok(0);
    }
    // The definitions of the whole fleet (flake machines included) must still resolve.
    match e.want.machines.get(&name) {
        Some(m) => ws.inventory.machines.insert(name.clone(), m.clone()),
        None => ws.inventory.machines.shift_remove(&name),
    };
    ws.definitions()?;
    write(&ws, &e)?;
    for c in &e.changes {
        println!("{c}");
    }
    Ok(0)
}

/// Reads `varsmith.yaml` as text and as the inventory it holds (without flake machines).
fn read(ws: &Workspace) -> anyhow::Result<Edit> {
    let path = ws.root.join(INVENTORY_FILE);
    let bytes = crate::store::read_file(&ws.root, &path)?
        .ok_or_else(|| UsageError::new(format!("{}: not found", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| UsageError::new(format!("{}: not UTF-8 text", path.display())))?;
    let want = parse(ws, &text)?;
    Ok(Edit {
        doc: InventoryDoc::new(&text),
        want,
        changes: Vec::new(),
    })
}

fn parse(ws: &Workspace, text: &str) -> anyhow::Result<Inventory> {
    parse_at(&ws.root, text)
}

fn parse_at(root: &Path, text: &str) -> anyhow::Result<Inventory> {
    let path = root.join(INVENTORY_FILE);
    crate::workspace::bounds::check_yaml(text)
        .map_err(|m| UsageError::new(format!("{}: {m}", path.display())))?;
    if text.trim().is_empty() {
        return Ok(Inventory::default());
    }
    Ok(yaml_serde::from_str(text)
        .map_err(|e| UsageError::new(format!("{}: {e}", path.display())))?)
}

/// Checks the edited text reads back as the intended inventory, then writes it atomically.
fn write(ws: &Workspace, e: &Edit) -> anyhow::Result<()> {
    let text = e.doc.text();
    let path = ws.root.join(INVENTORY_FILE);
    let back = parse(ws, &text).ok();
    if back.as_ref() != Some(&e.want) {
        return Err(UsageError::new(format!(
            "{}: the in-place edit would not read back as intended (unusual layout); nothing written, edit the file by hand",
            path.display()
        ))
        .into());
    }
    crate::store::write_atomic(&ws.root, &path, text.as_bytes())?;
    crate::store::write_admins_mirror(&ws.root)?;
    Ok(())
}

/// The shared generators with secrets that `machine` uses (whose values it could read).
fn shared_generators_of(ws: &Workspace, machine: &str) -> anyhow::Result<Vec<String>> {
    let defs = ws.definitions()?;
    Ok(defs
        .machines
        .get(machine)
        .map(|gens| {
            gens.values()
                .filter(|g| g.share && g.files.values().any(|f| f.secret))
                .map(|g| g.name.clone())
                .collect()
        })
        .unwrap_or_default())
}

fn edit_error(ws: &Workspace, e: EditError) -> anyhow::Error {
    UsageError::new(format!("{}: {e}", ws.root.join(INVENTORY_FILE).display())).into()
}

/// The machine `name` as `varsmith.yaml` has it; a flake-only machine is an error that says
/// to change the flake.
fn yaml_machine(ws: &Workspace, e: &Edit, name: &str) -> anyhow::Result<Machine> {
    if let Some(m) = e.want.machines.get(name) {
        return Ok(m.clone());
    }
    if ws.inventory.machines.contains_key(name) {
        return Err(UsageError::new(format!(
            "machine {name} is defined by the flake ({}), not in {INVENTORY_FILE}; change its configuration there",
            ws.flake_config(name).unwrap_or("a configuration")
        ))
        .into());
    }
    Err(UsageError::new(ws.inventory.unknown_machine(name)).into())
}

fn add(ws: &Workspace, e: &mut Edit, name: &str, m: Machine) -> anyhow::Result<()> {
    crate::workspace::names::check_component(name)
        .map_err(|x| UsageError::new(format!("machine name: {x}")))?;
    if let Some(attr) = ws.flake_config(name) {
        return Err(UsageError::new(format!(
            "machine {name} already exists: the flake's {attr} defines it; change its configuration there (e.g. `varsmith.generators.<name> = {{ }};`)"
        ))
        .into());
    }
    if e.want.machines.contains_key(name) || ws.inventory.machines.contains_key(name) {
        return Err(UsageError::new(format!(
            "machine {name} already exists; change it with `varsmith machine edit {name}` or `varsmith machine generators add {name} GEN…`"
        ))
        .into());
    }
    e.doc.add_machine(name, &m).map_err(|x| edit_error(ws, x))?;
    let mut what = Vec::new();
    if !m.generators.is_empty() {
        what.push(format!("generators: {}", m.generators.join(", ")));
    }
    if !m.tags.is_empty() {
        what.push(format!("tags: {}", m.tags.join(", ")));
    }
    let what = if what.is_empty() {
        String::new()
    } else {
        format!(" ({})", what.join("; "))
    };
    e.changes.push(format!("{name}: added{what}"));
    e.want.machines.insert(name.to_string(), m);
    Ok(())
}

fn edit(ws: &Workspace, e: &mut Edit, a: MachineEditArgs) -> anyhow::Result<()> {
    let name = a.name.as_str();
    let mut m = yaml_machine(ws, e, name)?;
    let tags = change_list(name, "tag", &m.tags, &a.add_tag, &a.remove_tag)?;
    if let Some(t) = tags {
        e.doc
            .set_list(name, "tags", &t.0)
            .map_err(|x| edit_error(ws, x))?;
        m.tags = t.0;
        e.changes
            .extend(t.1.into_iter().map(|c| format!("{name}: tags {c}")));
    }
    if let Some(t) = a.target.filter(|t| m.target.as_ref() != Some(t)) {
        e.doc
            .set_scalar(name, "target", Some(&t))
            .map_err(|x| edit_error(ws, x))?;
        e.changes.push(format!("{name}: target = {t}"));
        m.target = Some(t);
    }
    if let Some(s) = a.system.filter(|s| *s != m.system) {
        e.doc
            .set_scalar(name, "system", Some(&s))
            .map_err(|x| edit_error(ws, x))?;
        e.changes.push(format!("{name}: system = {s}"));
        m.system = s;
    }
    e.want.machines.insert(name.to_string(), m);
    Ok(())
}

fn generators(ws: &Workspace, e: &mut Edit, cmd: MachineGeneratorsCmd) -> anyhow::Result<String> {
    let (name, add, remove) = match cmd {
        MachineGeneratorsCmd::Add { name, generators } => (name, generators, Vec::new()),
        MachineGeneratorsCmd::Remove { name, generators } => (name, Vec::new(), generators),
    };
    let mut m = yaml_machine(ws, e, &name)?;
    if let Some((list, changes)) = change_list(&name, "generator", &m.generators, &add, &remove)? {
        e.doc
            .set_list(&name, "generators", &list)
            .map_err(|x| edit_error(ws, x))?;
        m.generators = list;
        e.changes.extend(
            changes
                .into_iter()
                .map(|c| format!("{name}: generators {c}")),
        );
    }
    e.want.machines.insert(name.clone(), m);
    Ok(name)
}

/// `old` with `remove` taken out and `add` appended (those not already there), and the
/// change lines (`+= a, b`, `-= c`); `None` when nothing changes. Removing an item that is
/// not there is an error (a typo, most likely).
fn change_list(
    machine: &str,
    what: &str,
    old: &[String],
    add: &[String],
    remove: &[String],
) -> anyhow::Result<Option<(Vec<String>, Vec<String>)>> {
    if let Some(r) = remove.iter().find(|r| !old.contains(r)) {
        return Err(UsageError::new(format!(
            "machine {machine} has no {what} {r:?} (it has: {})",
            old.join(", ")
        ))
        .into());
    }
    let mut list: Vec<String> = old
        .iter()
        .filter(|o| !remove.contains(o))
        .cloned()
        .collect();
    let mut added = Vec::new();
    for a in add {
        if list.contains(a) {
            eprintln!("{machine}: already has {what} {a}");
        } else {
            list.push(a.clone());
            added.push(a.clone());
        }
    }
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(format!("+= {}", added.join(", ")));
    }
    if !remove.is_empty() {
        changes.push(format!("-= {}", remove.join(", ")));
    }
    Ok((!changes.is_empty()).then_some((list, changes)))
}

/// Saves a change of `inv`'s admins into the existing `varsmith.yaml` as line edits (comments
/// and layout stay), when that is all that changed and the result reads back as intended.
/// `Ok(false)` when it does not apply (no file yet, other sections changed, an unusual
/// layout): the caller then writes the whole file. Machines that are in `inv` but not in the
/// file (merged from the flake) are not written.
pub(crate) fn save_admins(root: &Path, inv: &Inventory) -> anyhow::Result<bool> {
    let path = root.join(INVENTORY_FILE);
    let Some(text) = crate::store::read_file(root, &path)?.and_then(|b| String::from_utf8(b).ok())
    else {
        return Ok(false);
    };
    let Ok(old) = parse_at(root, &text) else {
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
    if parse_at(root, &new).ok().as_ref() != Some(&want) {
        return Ok(false);
    }
    crate::store::write_atomic(root, &path, new.as_bytes())?;
    Ok(true)
}
