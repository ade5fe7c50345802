//! Why a leaking store path is in the store: the chains of references from a GC root (a
//! system or profile generation, a `result` link) or from a scanned closure's top down to it.
//!
//! For each leaking store path: `nix-store --query --roots` names the GC roots whose closure
//! holds it; each root's target, and each `--closure` argument that holds it, is a *top*.
//! `nix-store --query --graph <top>` gives the reference edges of the top's closure (one call
//! per top, at most [`MAX_TOPS`] per leak), and a breadth-first search from the leak over
//! "is referenced by" edges gives the shortest chain `leak ← … ← top`. A leak reachable from
//! no root and no top is garbage: `nix-store --gc` would delete it.
//!
//! Only paths under the real store directory are looked up; a failing `nix-store` is reported
//! in [`Referrers::note`] and never fails the audit.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Most tops (roots and closure arguments) a chain is computed for, per leaking path.
pub(crate) const MAX_TOPS: usize = 8;
/// Most leaking paths whose chains are computed; the others get a note.
pub(crate) const MAX_LEAKS: usize = 64;

/// One chain from a top down to the leaking path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The GC root link (`/nix/var/nix/profiles/system-42-link`), when the top is a root's
    /// target; `None` for a scanned closure's top.
    pub root: Option<String>,
    /// Store paths from the leak (first) up to the top (last), each referenced by the next.
    pub paths: Vec<PathBuf>,
}

/// The chains of one leaking store path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Referrers {
    /// The leaking store path.
    pub store_path: PathBuf,
    /// Chains from roots and tops, shortest first per top.
    pub chains: Vec<Chain>,
    /// Why the chains are incomplete or missing (a `nix-store` error, garbage).
    pub note: Option<String>,
}

/// Computes the chains of `leaks` (store paths in `store_dir`) from their GC roots and from
/// those of `tops` whose closure holds them.
pub(crate) fn referrers(store_dir: &Path, leaks: &[PathBuf], tops: &[PathBuf]) -> Vec<Referrers> {
    let mut graphs: HashMap<PathBuf, Result<Graph, String>> = HashMap::new();
    let mut out = Vec::new();
    for (n, leak) in leaks.iter().enumerate() {
        let mut r = Referrers {
            store_path: leak.clone(),
            ..Referrers::default()
        };
        if n >= MAX_LEAKS {
            r.note = Some(format!(
                "not looked up (only the first {MAX_LEAKS} leaking paths are)"
            ));
            out.push(r);
            continue;
        }
        let mut targets: Vec<(Option<String>, PathBuf)> = match roots(leak) {
            Ok(roots) => roots.into_iter().map(|(l, t)| (Some(l), t)).collect(),
            Err(e) => {
                r.note = Some(e);
                Vec::new()
            }
        };
        targets.extend(tops.iter().map(|t| (None, t.clone())));
        let mut seen = HashSet::new();
        targets.retain(|(_, t)| seen.insert(t.clone()));
        for (root, top) in targets.into_iter().take(MAX_TOPS) {
            let graph = graphs
                .entry(top.clone())
                .or_insert_with(|| Graph::of(store_dir, &top));
            match graph {
                Ok(g) => {
                    if let Some(paths) = g.chain(leak, &top) {
                        r.chains.push(Chain { root, paths });
                    }
                }
                Err(e) => r.note = Some(e.clone()),
            }
        }
        if r.chains.is_empty() && r.note.is_none() {
            r.note = Some("reachable from no GC root (garbage: nix-store --gc deletes it)".into());
        }
        out.push(r);
    }
    out
}

fn nix_store(args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let mut cmd = crate::child::command("nix-store");
    cmd.args(args);
    let line = format!(
        "nix-store {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    super::command_stdout(cmd, line)
        .map(|o| String::from_utf8_lossy(&o).into_owned())
        .map_err(|e| e.to_string())
}

/// The GC roots of `path`: `(link, target store path)`.
fn roots(path: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let out = nix_store(&["--query".as_ref(), "--roots".as_ref(), path.as_os_str()])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .map(|(link, target)| (link.trim().to_string(), PathBuf::from(target.trim())))
        .collect())
}

/// The reference graph of one closure: for each path, the paths that refer to it.
struct Graph {
    referrers: HashMap<PathBuf, Vec<PathBuf>>,
}

impl Graph {
    fn of(store_dir: &Path, top: &Path) -> Result<Graph, String> {
        let out = nix_store(&["--query".as_ref(), "--graph".as_ref(), top.as_os_str()])?;
        let mut referrers: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        for line in out.lines() {
            // "<reference>" -> "<referrer>" [color = …];
            let Some((a, b)) = line.split_once(" -> ") else {
                continue;
            };
            let name = |s: &str| s.trim().split('"').nth(1).map(|n| store_dir.join(n));
            if let (Some(reference), Some(referrer)) = (name(a), name(b)) {
                referrers.entry(reference).or_default().push(referrer);
            }
        }
        Ok(Graph { referrers })
    }

    /// The shortest chain from `leak` up to `top`, if `top`'s closure holds `leak`.
    fn chain(&self, leak: &Path, top: &Path) -> Option<Vec<PathBuf>> {
        let mut parent: HashMap<&Path, &Path> = HashMap::new();
        let mut queue = VecDeque::from([leak]);
        let mut found = leak == top;
        while let Some(node) = queue.pop_front() {
            if node == top {
                found = true;
                break;
            }
            for next in self.referrers.get(node).into_iter().flatten() {
                if next.as_path() != leak && !parent.contains_key(next.as_path()) {
                    parent.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        if !found {
            return None;
        }
        let mut paths = vec![top.to_path_buf()];
        let mut at = top;
        while let Some(&p) = parent.get(at) {
            paths.push(p.to_path_buf());
            at = p;
        }
        paths.reverse();
        Some(paths)
    }
}
