//! `varsmith machine …`: parses the edit, applies it through [`crate::ops::machine`], prints
//! one line per change to stdout (notices to stderr).

use crate::cli::args::{CmdResult, MachineCmd, MachineGeneratorsCmd};
use crate::ops::machine::{self, Change};
use crate::workspace::{INVENTORY_FILE, Machine};

use super::core_cmd::Context;

/// Runs a `machine` subcommand.
pub(crate) fn run(ctx: &Context, cmd: MachineCmd) -> CmdResult {
    let mut ws = ctx.workspace()?;
    let out = machine::apply(&mut ws, change_of(cmd))?;
    for n in &out.notices {
        eprintln!("{n}");
    }
    if out.changes.is_empty() {
        eprintln!(
            "{}: nothing to change; {INVENTORY_FILE} left as it was",
            out.name
        );
    }
    for c in &out.changes {
        println!("{c}");
    }
    Ok(0)
}

fn change_of(cmd: MachineCmd) -> Change {
    match cmd {
        MachineCmd::Add {
            name,
            target,
            system,
            tags,
            generators,
        } => Change::Add {
            name,
            machine: Machine {
                target,
                system,
                tags,
                generators,
                deploy: None,
            },
        },
        MachineCmd::Remove { name } => Change::Remove { name },
        MachineCmd::Edit(a) => Change::Edit {
            name: a.name,
            add_tags: a.add_tag,
            remove_tags: a.remove_tag,
            target: a.target,
            system: a.system,
        },
        MachineCmd::Generators(MachineGeneratorsCmd::Add { name, generators }) => {
            Change::Generators {
                name,
                add: generators,
                remove: Vec::new(),
            }
        }
        MachineCmd::Generators(MachineGeneratorsCmd::Remove { name, generators }) => {
            Change::Generators {
                name,
                add: Vec::new(),
                remove: generators,
            }
        }
    }
}
