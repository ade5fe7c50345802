//! `varsmith machine add|remove|edit|generators`: inventory edits that keep `varsmith.yaml`'s
//! comments and layout ([`crate::workspace::inventory_edit`]).
//!
//! Each edit, under the workspace lock: reads the file, changes only the lines of the entry,
//! checks that the new text parses back to exactly the intended inventory and that the
//! machines' generators resolve (an unknown generator name is exit 2, nothing written), and
//! writes it atomically through [`crate::store`]. It returns one line per change
//! (`cinnabar: generators += wireguard`) for the CLI to print; an edit that changes nothing
//! writes nothing.

use crate::UsageError;
use crate::store::lock::{Mode, WorkspaceLock};
use crate::workspace::inventory_edit::{EditError, InventoryDoc};
use crate::workspace::{INVENTORY_FILE, Inventory, Machine, Workspace};

/// One machine edit, as the CLI parsed it.
#[derive(Debug)]
pub(crate) enum Change {
    /// `machine add NAME …`.
    Add {
        /// The new machine's name (a path component).
        name: String,
        /// Its entry.
        machine: Machine,
    },
    /// `machine remove NAME` (its files stay: `check` reports them as an orphan).
    Remove {
        /// The machine to remove from `varsmith.yaml`.
        name: String,
    },
    /// `machine edit NAME …`: fields left `None` or empty stay as they are.
    Edit {
        /// The machine to edit.
        name: String,
        /// Tags to append (those not already there).
        add_tags: Vec<String>,
        /// Tags to take out (each must be there).
        remove_tags: Vec<String>,
        /// A new deploy target.
        target: Option<String>,
        /// A new system.
        system: Option<String>,
    },
    /// `machine generators add|remove NAME GEN…`.
    Generators {
        /// The machine to edit.
        name: String,
        /// Generators to append (those not already there).
        add: Vec<String>,
        /// Generators to take out (each must be there).
        remove: Vec<String>,
    },
}

/// What an edit did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The machine edited.
    pub(crate) name: String,
    /// One line per change (empty: nothing changed, nothing written).
    pub(crate) changes: Vec<String>,
    /// Requests that changed nothing (`cinnabar: already has tag db`).
    pub(crate) notices: Vec<String>,
}

/// The file being edited: its text as lines, the inventory the edit should produce, and what
/// changed so far.
struct Edit {
    doc: InventoryDoc,
    want: Inventory,
    out: Outcome,
}

/// Applies one machine edit to `ws`'s `varsmith.yaml`.
pub(crate) fn apply(ws: &mut Workspace, change: Change) -> anyhow::Result<Outcome> {
    let _lock = WorkspaceLock::acquire(&ws.root, Mode::Exclusive, "varsmith machine")?;
    let (doc, want) = super::inventory::read(&ws.root)?;
    let mut e = Edit {
        doc,
        want,
        out: Outcome::default(),
    };
    let name = match change {
        Change::Add { name, machine } => {
            add(ws, &mut e, &name, machine)?;
            name
        }
        Change::Remove { name } => {
            remove(ws, &mut e, &name)?;
            name
        }
        Change::Edit {
            name,
            add_tags,
            remove_tags,
            target,
            system,
        } => {
            edit(ws, &mut e, &name, (&add_tags, &remove_tags), target, system)?;
            name
        }
        Change::Generators { name, add, remove } => {
            generators(ws, &mut e, &name, &add, &remove)?;
            name
        }
    };
    e.out.name = name.clone();
    if e.out.changes.is_empty() {
        return Ok(e.out);
    }
    // The definitions of the whole fleet (flake machines included) must still resolve.
    match e.want.machines.get(&name) {
        Some(m) => ws.inventory.machines.insert(name.clone(), m.clone()),
        None => ws.inventory.machines.shift_remove(&name),
    };
    ws.definitions()?;
    super::inventory::write(&ws.root, &e.doc, &e.want)?;
    Ok(e.out)
}

fn remove(ws: &Workspace, e: &mut Edit, name: &str) -> anyhow::Result<()> {
    yaml_machine(ws, e, name)?;
    let shared = shared_generators_of(ws, name)?;
    e.doc.remove_machine(name).map_err(|x| edit_error(ws, x))?;
    e.want.machines.shift_remove(name);
    e.out.changes.push(format!(
        "{name}: removed (its files under sops/machines/{name} stay; `check` reports them as an orphan until you delete them)"
    ));
    if !shared.is_empty() {
        let flags: Vec<String> = shared.iter().map(|g| format!("-g {g}")).collect();
        e.out.changes.push(format!(
            "{name} could read the shared secrets of {}: if it is gone for good, rotate them (`varsmith generate --regenerate {} --all`) and deploy",
            shared.join(", "),
            flags.join(" ")
        ));
    }
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
    e.out.changes.push(format!("{name}: added{what}"));
    e.want.machines.insert(name.to_string(), m);
    Ok(())
}

fn edit(
    ws: &Workspace,
    e: &mut Edit,
    name: &str,
    (add_tags, remove_tags): (&[String], &[String]),
    target: Option<String>,
    system: Option<String>,
) -> anyhow::Result<()> {
    let mut m = yaml_machine(ws, e, name)?;
    let tags = change_list(
        name,
        "tag",
        &m.tags,
        add_tags,
        remove_tags,
        &mut e.out.notices,
    )?;
    if let Some(t) = tags {
        e.doc
            .set_list(name, "tags", &t.0)
            .map_err(|x| edit_error(ws, x))?;
        m.tags = t.0;
        e.out
            .changes
            .extend(t.1.into_iter().map(|c| format!("{name}: tags {c}")));
    }
    if let Some(t) = target.filter(|t| m.target.as_ref() != Some(t)) {
        e.doc
            .set_scalar(name, "target", Some(&t))
            .map_err(|x| edit_error(ws, x))?;
        e.out.changes.push(format!("{name}: target = {t}"));
        m.target = Some(t);
    }
    if let Some(s) = system.filter(|s| *s != m.system) {
        e.doc
            .set_scalar(name, "system", Some(&s))
            .map_err(|x| edit_error(ws, x))?;
        e.out.changes.push(format!("{name}: system = {s}"));
        m.system = s;
    }
    e.want.machines.insert(name.to_string(), m);
    Ok(())
}

fn generators(
    ws: &Workspace,
    e: &mut Edit,
    name: &str,
    add: &[String],
    remove: &[String],
) -> anyhow::Result<()> {
    let mut m = yaml_machine(ws, e, name)?;
    let notices = &mut e.out.notices;
    if let Some((list, changes)) =
        change_list(name, "generator", &m.generators, add, remove, notices)?
    {
        e.doc
            .set_list(name, "generators", &list)
            .map_err(|x| edit_error(ws, x))?;
        m.generators = list;
        e.out.changes.extend(
            changes
                .into_iter()
                .map(|c| format!("{name}: generators {c}")),
        );
    }
    e.want.machines.insert(name.to_string(), m);
    Ok(())
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
    notices: &mut Vec<String>,
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
            notices.push(format!("{machine}: already has {what} {a}"));
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
