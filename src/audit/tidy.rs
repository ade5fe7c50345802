//! Tidying a report before it is shown: findings that describe the same leak are merged, and
//! names of store paths that hold a secret are withheld.
//!
//! * A `line N` finding is dropped where a whole-value encoding of the same var was found in
//!   the same file (or decompressed stream): the line is part of that leak.
//! * ASCII text in UTF-16LE also matches the UTF-16BE pattern one byte later (and the other
//!   way round): of two such hits only the one at an even offset is kept.
//! * Store paths whose *name* holds a secret are rewritten with [`names::WITHHELD`] in every
//!   location, reference chain and message.

use std::collections::HashSet;
use std::path::PathBuf;

use super::Encoding;
use super::layers::Layers;
use super::names;
use super::report::{Finding, KeyFinding, Location, Report};

/// Drops `line N` findings of a var in a file (or stream) where a whole-value encoding of
/// the same var was found: the lines are part of that finding.
pub(crate) fn drop_covered_lines(report: &mut Report) {
    let whole: HashSet<(String, String, Layers)> = report
        .findings
        .iter()
        .filter(|f| f.encoding.is_whole())
        .map(|f| (f.location.to_string(), f.var.clone(), f.layers.clone()))
        .collect();
    report.findings.retain(|f| {
        f.encoding.is_whole()
            || !whole.contains(&(f.location.to_string(), f.var.clone(), f.layers.clone()))
    });
}

/// Drops the shadow of a UTF-16 hit: ASCII text in UTF-16LE also matches the UTF-16BE
/// pattern one byte later (and the other way round), so of two such hits at neighbouring
/// offsets only the one at an even offset (where UTF-16 text starts in practice) is kept.
pub(crate) fn drop_utf16_shadows(report: &mut Report) {
    type Key = (String, String, Layers, bool, u64);
    fn key(location: &Location, what: String, c: Layers, e: Encoding, at: u64) -> Option<Key> {
        match e {
            Encoding::Utf16 { big_endian } => Some((location.to_string(), what, c, big_endian, at)),
            _ => None,
        }
    }
    fn shadowed(seen: &HashSet<Key>, k: Option<Key>) -> bool {
        let Some((l, w, c, be, at)) = k else {
            return false;
        };
        at % 2 == 1
            && [at - 1, at + 1]
                .iter()
                .any(|&o| seen.contains(&(l.clone(), w.clone(), c.clone(), !be, o)))
    }
    let of_finding = |f: &Finding| {
        key(
            &f.location,
            f.var.clone(),
            f.layers.clone(),
            f.encoding,
            f.offset,
        )
    };
    let of_key = |k: &KeyFinding| {
        key(
            &k.location,
            k.kind.name().to_string(),
            k.layers.clone(),
            k.encoding,
            k.offset,
        )
    };
    let seen: HashSet<Key> = report
        .findings
        .iter()
        .filter_map(of_finding)
        .chain(report.keys.iter().filter_map(of_key))
        .collect();
    report.findings.retain(|f| !shadowed(&seen, of_finding(f)));
    report.keys.retain(|k| !shadowed(&seen, of_key(k)));
}

/// Withholds the names of store paths that hold a secret everywhere in the report.
pub(crate) fn redact_names(report: &mut Report) {
    let named: Vec<PathBuf> = report
        .findings
        .iter()
        .filter_map(|f| match &f.location {
            Location::StoreName { store_path } => Some(store_path.clone()),
            _ => None,
        })
        .collect();
    let r = names::Redactor::new(&named);
    if r.is_empty() {
        return;
    }
    let location = |l: &mut Location| match l {
        Location::Store { store_path, file } => {
            *store_path = r.path(store_path);
            *file = r.path(file);
        }
        Location::StoreName { store_path } => *store_path = r.path(store_path),
        Location::File { path } => *path = r.path(path),
        Location::GitBlob { .. } => {}
    };
    report
        .findings
        .iter_mut()
        .for_each(|f| location(&mut f.location));
    report
        .keys
        .iter_mut()
        .for_each(|k| location(&mut k.location));
    for refs in &mut report.referrers {
        refs.store_path = r.path(&refs.store_path);
        refs.chains
            .iter_mut()
            .flat_map(|c| c.paths.iter_mut())
            .for_each(|p| *p = r.path(p));
        refs.note = refs.note.as_deref().map(|n| r.text(n));
    }
    report.errors.iter_mut().for_each(|e| *e = r.text(e));
    report
        .truncated
        .iter_mut()
        .for_each(|(p, _)| *p = r.text(p));
}
