//! Host key rotation guard: a plan that reruns the host key generator (`openssh`) of a machine
//! that already has a host recipient would replace a key the host still uses, so that every
//! secret re-encrypted to the new key stops decrypting there. It is refused (exit 2, naming the
//! machine) unless `--rotate-host-key` is given; then a pending-rotation record keeps the old
//! recipient on the machine's files until the new key is on the host
//! ([`crate::store::rotation`]).

use crate::UsageError;
use crate::error::{Failure, Kind};
use crate::plan::{Graph, Planned};
use crate::store::{self, Owner};
use crate::workspace::{HOST_KEY_GENERATOR, Workspace};

use super::Report;

/// Machines whose existing host key the plan would replace, with their current recipients.
fn replaced(
    ws: &Workspace,
    graph: &Graph,
    plan: &[Planned],
) -> Result<Vec<(String, Vec<String>)>, store::Error> {
    let mut out = Vec::new();
    for p in plan {
        let n = &graph.nodes[p.node];
        let Owner::Machine(m) = &n.owner else {
            continue;
        };
        if n.generator.name != HOST_KEY_GENERATOR {
            continue;
        }
        let have = store::host_recipients(&ws.root, m)?;
        if !have.is_empty() {
            out.push((m.clone(), have));
        }
    }
    Ok(out)
}

/// Refuses a plan that replaces an existing host key unless `allowed` or a rotation of that
/// machine is already pending.
pub(super) fn guard(
    ws: &Workspace,
    graph: &Graph,
    plan: &[Planned],
    allowed: bool,
) -> anyhow::Result<()> {
    if allowed {
        return Ok(());
    }
    // A machine whose rotation is already pending keeps its old recipients whatever runs
    // (a crashed rotation is repaired, a second one stacks on the first).
    let mut machines = Vec::new();
    for (m, _) in replaced(ws, graph, plan)? {
        // A planted record (no verified old recipient) excuses nothing; an unsealed one (a run
        // stopped before sealing it) lets the rerun repair the host key, honouring nothing.
        if !store::rotation::genuine(&ws.root, &m)? && !store::rotation::unsealed(&ws.root, &m)? {
            machines.push(m);
        }
    }
    if machines.is_empty() {
        return Ok(());
    }
    Err(UsageError::new(format!(
        "machine {}: this would replace the existing host key ({HOST_KEY_GENERATOR}), which the host still uses: every secret re-encrypted to the new key would stop decrypting there. Pass --rotate-host-key to rotate it (the old key stays a recipient until `varsmith push-keys` installs the new one), or leave {HOST_KEY_GENERATOR} out of -g/--regenerate",
        machines.join(", machine ")
    ))
    .into())
}

/// Records the rotations the plan makes (with the lock held, before anything runs). Returns
/// (machine, record created now) for [`settle`].
pub(super) fn begin(
    ws: &Workspace,
    graph: &Graph,
    plan: &[Planned],
    allowed: bool,
) -> anyhow::Result<Vec<(String, bool)>> {
    guard(ws, graph, plan, allowed)?;
    let mut out = Vec::new();
    for (m, old) in replaced(ws, graph, plan)? {
        let created = store::rotation::begin(&ws.root, &m, &old)?;
        out.push((m, created));
    }
    Ok(out)
}

/// Drops the records created by [`begin`] whose host key run did not complete (the host key
/// was not replaced); seals the others with the new host key file's data key
/// ([`store::rotation::seal`]) and reports them.
pub(super) fn settle(
    ws: &Workspace,
    began: &[(String, bool)],
    ids: &crate::keys::Identities,
    report: &mut Report,
) {
    for (m, created) in began {
        let label = format!("{m}/{HOST_KEY_GENERATOR}");
        if report.done.contains(&label) {
            if let Err(e) = store::rotation::seal(&ws.root, m, ids) {
                let why = format!("authenticating the rotation record: {e}");
                report.failed.push((label, Failure::new(Kind::Failed, why)));
                continue;
            }
            // Tracked with the rest (git staging): the record is workspace state.
            report
                .written
                .push(store::rotation::record_path(&ws.root, m));
            report
                .written
                .push(store::rotation::recorded_path(&ws.root, m));
            eprintln!(
                "{m}: host key rotated; its secrets stay encrypted to the old key too until `varsmith push-keys {m}` (or bootstrap) installs the new one"
            );
            continue;
        }
        if *created && let Err(e) = store::rotation::clear(&ws.root, m) {
            report
                .failed
                .push((label, Failure::new(Kind::Failed, e.to_string())));
        }
    }
}
