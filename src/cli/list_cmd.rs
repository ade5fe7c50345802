//! `varsmith list HOST [--json]`: a machine's vars, one line per file under a header, with
//! what it is (secret, fact, admins-only), how it lands on the host and whether it is up to date.

use std::io::Write;

use serde::Serialize;

use super::core_cmd::Context;
use crate::UsageError;
use crate::cli::args::{CmdResult, ListArgs};
use crate::store::Owner;
use crate::workspace::NeededFor;

/// One var of `list --json`.
#[derive(Serialize)]
struct Var {
    /// `GEN/FILE`, as `get` and `set` take it.
    var: String,
    generator: String,
    file: String,
    /// Encrypted (true) or a public fact.
    secret: bool,
    /// Deployed to the host (false: admins only).
    deploy: bool,
    /// One value set for every machine using the generator.
    shared: bool,
    /// `null` when unknown (the flake does not evaluate; see `workspace::stored`).
    owner: Option<String>,
    group: Option<String>,
    /// Octal, four digits (`"0400"`); `null` when unknown.
    mode: Option<String>,
    needed_for: NeededFor,
    /// `ok`, or why `generate` would run it (`missing`, `changed`, `torn`, `stale`), or
    /// `unknown` (the flake does not evaluate: its definitions are unknown).
    state: &'static str,
    /// The state as `list` prints it (`ok` or the reason's text).
    state_text: String,
}

/// The document of `list --json`.
#[derive(Serialize)]
struct Listing {
    machine: String,
    vars: Vec<Var>,
}

/// Runs `list`.
pub(super) fn run(ctx: &Context, a: ListArgs) -> CmdResult {
    let target = match (a.host, a.user) {
        (_, Some(u)) => super::core_cmd::Target::User(u),
        (Some(h), None) => super::core_cmd::Target::Machine(h),
        (None, None) => return Err(UsageError::new("expected a machine or --user USER").into()),
    };
    let listing = collect(ctx, &target)?;
    if a.json {
        super::json_out::print(&listing)?;
        return Ok(crate::EXIT_OK);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "VAR\tKIND\tON HOST\tSTATE")?;
    for v in &listing.vars {
        let kind = match (v.secret, v.deploy) {
            (false, _) => "fact",
            (true, true) => "secret",
            (true, false) => "secret (admins only)",
        };
        let on_host = if v.secret && v.deploy {
            match (&v.mode, &v.owner, &v.group) {
                (Some(m), Some(o), Some(g)) => format!("{m} {o}:{g}"),
                _ => "unknown".to_string(),
            }
        } else {
            "-".to_string()
        };
        let shared = if v.shared { ", shared" } else { "" };
        writeln!(
            out,
            "{}\t{kind}{shared}\t{on_host}\t{}",
            v.var, v.state_text
        )?;
    }
    out.flush()?;
    Ok(crate::EXIT_OK)
}

/// Every file of every generator the machine or user uses, in its dependency-first order.
fn collect(ctx: &Context, target: &super::core_cmd::Target) -> anyhow::Result<Listing> {
    let ws = ctx.stored_workspace()?;
    let defs = ws.definitions()?;
    let (own, gens, _, _) = target.resolve(&ws, &defs)?;
    let graph = crate::plan::Graph::build(&defs);
    let mut vars = Vec::new();
    for (name, g) in gens {
        let owner = if g.share { Owner::Shared } else { own.clone() };
        let reason = graph
            .find(&owner, name)
            .and_then(|i| crate::plan::status(&ws.root, &graph, i));
        // A definition read from the stored layout knows its files, nothing else.
        let unknown = matches!(target, super::core_cmd::Target::Machine(h) if ws.is_stored(h))
            && g.source.starts_with(ws.root.join("sops"));
        let (state, state_text) = match &reason {
            _ if unknown => (
                "unknown",
                "unknown (the flake does not evaluate)".to_string(),
            ),
            None => ("ok", "ok".to_string()),
            Some(r) => (crate::ops::generate::reason_code(r), r.to_string()),
        };
        for (file, spec) in &g.files {
            vars.push(Var {
                var: format!("{name}/{file}"),
                generator: name.clone(),
                file: file.clone(),
                secret: spec.secret,
                deploy: spec.deploy,
                shared: g.share,
                owner: (!unknown).then(|| spec.owner.clone()),
                group: (!unknown).then(|| spec.group.clone()),
                mode: (!unknown).then(|| format!("{:04o}", spec.mode)),
                needed_for: spec.needed_for,
                state,
                state_text: state_text.clone(),
            });
        }
    }
    Ok(Listing {
        machine: match target {
            super::core_cmd::Target::Machine(h) => h.clone(),
            super::core_cmd::Target::User(_) => own.to_string(),
        },
        vars,
    })
}
