//! Which of the flake's files each configuration's evaluation read (from `nix eval -vv`), and
//! the per-configuration partition of the flake's files that the evaluation cache keys on.
//!
//! Nix logs `evaluating file '<path>'` (at `-vv`) the first time a process evaluates a file;
//! varsmith's apply function prints a marker (`builtins.trace`, with a per-run nonce the flake
//! cannot know) as it starts each configuration. A file's *window* is the configuration during
//! whose evaluation the process first evaluated it; files evaluated before the first marker
//! (the flake's `flake.nix`, whatever it forces to list its configurations) are in none.
//!
//! A file is **private** to configuration `C` (attribute `a`) when all of these hold, and
//! **global** otherwise:
//! 1. it is a tracked `.nix` file of the flake, evaluated in `C`'s window, in no other window
//!    and not before the first, in every process of the evaluation;
//! 2. its path (from the repository top) has a directory named `a` or is named `a.nix`, and
//!    no component is named after another configuration;
//! 3. no tracked file other than `C`'s private files names that directory or file in a path:
//!    `/a` followed by `/`, `.`, a quote, `;`, `)`, `]`, `}`, `$` or white space (`./hosts/a`,
//!    `../a/hw.nix`, `"${./hosts}/a"`, `./hosts + "/a"`).
//!
//! Condition 1 sees every configuration that needs a file except a later one in the same
//! process (a process evaluates a file once); 2 and 3 close that gap for the layouts fleets
//! use: a directory per machine, reached through the machine's own name
//! (`./machines + "/${name}"`). Not seen: a configuration that reaches another machine's
//! directory through a computed name (`hostDir "a"`); keep files that several machines import
//! outside the machines' own directories. Files read as data (`readFile`, `readDir`,
//! `pathExists`) are not logged by Nix, so they are always global; if the log has no file of
//! the flake (another Nix that reads sources without copying them), every file is global.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// The marker's fixed part: `trace: varsmith-window <nonce> <sha256 of the attribute>`.
const MARKER: &str = "varsmith-window";

/// What one `nix eval -vv` process evaluated: files before the first configuration, then per
/// configuration the files first evaluated in its window. Paths are relative to the source's
/// top (the repository's top level for a git flake).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Trace {
    /// Files evaluated before the first marker.
    pub(crate) pre: Vec<PathBuf>,
    /// Per marker, in order: the attribute and its window's files.
    pub(crate) windows: Vec<(String, Vec<PathBuf>)>,
}

/// A fresh nonce for one evaluation's markers.
pub(crate) fn nonce() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

/// Wraps the apply function `inner` (a function of the configurations returning an attribute
/// set with the same names) so each configuration's value prints its marker when forced.
pub(crate) fn with_markers(inner: &str, nonce: &str) -> String {
    format!(
        "cfgs: builtins.mapAttrs (attr: v: builtins.trace \"{MARKER} {nonce} ${{builtins.hashString \"sha256\" attr}}\" v) (({inner}) cfgs)"
    )
}

/// Nix's log line of a file it evaluates.
fn evaluated(line: &str) -> Option<&str> {
    line.strip_prefix("evaluating file '")?.strip_suffix('\'')
}

/// Splits a `nix eval -vv` stderr into the trace of `names` (`None` when the flake's own
/// `flake.nix`, at `rel/flake.nix` under the source, is not in the log) and the rest of the
/// log: what Nix would have printed without `-vv` and the markers.
pub(crate) fn parse(
    stderr: &str,
    nonce: &str,
    names: &[String],
    rel: &Path,
) -> (Option<Trace>, String) {
    let by_hash: HashMap<String, &String> = names
        .iter()
        .map(|n| (hex::encode(Sha256::digest(n.as_bytes())), n))
        .collect();
    let marker = format!("trace: {MARKER} {nonce} ");
    let flake_nix = Path::new("/").join(rel).join("flake.nix");
    let mut source: Option<String> = None;
    let mut trace = Trace::default();
    let mut rest = String::new();
    for line in stderr.lines() {
        if let Some(path) = evaluated(line) {
            if source.is_none()
                && let Some(top) = path.strip_suffix(&*flake_nix.to_string_lossy())
            {
                source = Some(top.to_string());
            }
            let Some(top) = &source else { continue };
            let Some(relpath) = path
                .strip_prefix(top.as_str())
                .and_then(|p| p.strip_prefix('/'))
            else {
                continue;
            };
            let relpath = PathBuf::from(relpath);
            match trace.windows.last_mut() {
                Some((_, files)) => files.push(relpath),
                None => trace.pre.push(relpath),
            }
        } else if let Some(hash) = line.strip_prefix(&marker) {
            if let Some(name) = by_hash.get(hash.trim()) {
                trace.windows.push(((*name).clone(), Vec::new()));
            }
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    (source.map(|_| trace), rest)
}

/// One configuration for the partition: its flake output and attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ConfigId {
    /// `nixosConfigurations`, `darwinConfigurations` or `homeConfigurations`.
    pub(crate) output: String,
    /// The attribute under it.
    pub(crate) attr: String,
}

/// The private files of each configuration (index into `configs`), by the rules of the module
/// docs. `traces`: every process of the evaluation, with its output (`None` when a process's log
/// had no file of the flake: then every file is global); `files`: every tracked file with its
/// contents (`None`: unreadable), relative to the top.
pub(crate) fn private_files(
    traces: &[(String, Option<Trace>)],
    configs: &[ConfigId],
    files: &[(PathBuf, Option<Vec<u8>>)],
) -> Vec<Vec<PathBuf>> {
    let mut out = vec![Vec::new(); configs.len()];
    if traces.iter().any(|(_, t)| t.is_none()) {
        return out;
    }
    let index: HashMap<&ConfigId, usize> =
        configs.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let attrs: HashSet<&str> = configs.iter().map(|c| c.attr.as_str()).collect();
    let tracked: HashSet<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
    // Where each file was evaluated: `None` = before a window or in several.
    let mut seen: HashMap<&Path, Option<usize>> = HashMap::new();
    for (output, t) in traces {
        let Some(t) = t else { continue };
        for f in &t.pre {
            seen.insert(f, None);
        }
        for (attr, fs) in &t.windows {
            let id = ConfigId {
                output: output.clone(),
                attr: attr.clone(),
            };
            let w = index.get(&id).copied();
            for f in fs {
                seen.entry(f)
                    .and_modify(|s| {
                        if *s != w {
                            *s = None;
                        }
                    })
                    .or_insert(w);
            }
        }
    }
    for (f, w) in seen {
        let Some(i) = w else { continue };
        if tracked.contains(f)
            && f.extension().is_some_and(|e| e == "nix")
            && named_for(f, &configs[i].attr, &attrs)
        {
            out[i].push(f.to_path_buf());
        }
    }
    // Condition 3: a path to a configuration's directory written in another file.
    let anchored: Vec<usize> = (0..configs.len()).filter(|&i| !out[i].is_empty()).collect();
    if anchored.is_empty() {
        return out;
    }
    let patterns: Vec<String> = anchored
        .iter()
        .map(|&i| format!("/{}", configs[i].attr))
        .collect();
    let Ok(ac) = aho_corasick::AhoCorasick::new(&patterns) else {
        return vec![Vec::new(); configs.len()];
    };
    let mut owner: HashMap<&Path, usize> = HashMap::new();
    for &i in &anchored {
        for f in &out[i] {
            owner.insert(f, i);
        }
    }
    let mut named_elsewhere = vec![false; configs.len()];
    for (path, body) in files {
        let Some(body) = body else { continue };
        let own = owner.get(path.as_path()).copied();
        for m in ac.find_overlapping_iter(body.as_slice()) {
            let i = anchored[m.pattern().as_usize()];
            if own == Some(i) {
                continue;
            }
            let next = body.get(m.end()).copied();
            if next.is_none_or(|b| b"/.\"';)]}$".contains(&b) || b.is_ascii_whitespace()) {
                named_elsewhere[i] = true;
            }
        }
    }
    for (i, named) in named_elsewhere.into_iter().enumerate() {
        if named {
            out[i].clear();
        }
    }
    for fs in &mut out {
        fs.sort();
    }
    out
}

/// Condition 2: `f` has a directory named `attr` or is `attr.nix`, and no component is named
/// after another configuration.
fn named_for(f: &Path, attr: &str, attrs: &HashSet<&str>) -> bool {
    let parts: Vec<&str> = f
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    let Some((last, dirs)) = parts.split_last() else {
        return false;
    };
    let stem = last.strip_suffix(".nix").unwrap_or(last);
    let mine = dirs.contains(&attr) || stem == attr;
    let others = dirs
        .iter()
        .chain(std::iter::once(&stem))
        .any(|p| *p != attr && attrs.contains(p));
    mine && !others
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(a: &str) -> ConfigId {
        ConfigId {
            output: "nixosConfigurations".into(),
            attr: a.into(),
        }
    }

    fn hash(a: &str) -> String {
        hex::encode(Sha256::digest(a.as_bytes()))
    }

    #[test]
    fn parses_windows_and_keeps_the_rest() {
        let n = "abc";
        let log = format!(
            "warning: Git tree is dirty\nevaluating file '/nix/store/x-source/fleet/flake.nix'\nevaluating file '/nix/store/y-source/lib/default.nix'\ntrace: varsmith-window {n} {}\nevaluating file '/nix/store/x-source/fleet/machines/a/default.nix'\ntrace: varsmith-window other {}\ntrace: varsmith-window {n} {}\nevaluating file '/nix/store/x-source/common.nix'\nerror: boom\n",
            hash("a"),
            hash("b"),
            hash("b")
        );
        let names = vec!["a".to_string(), "b".to_string()];
        let (t, rest) = parse(&log, n, &names, Path::new("fleet"));
        let t = t.expect("flake found");
        assert_eq!(t.pre, [PathBuf::from("fleet/flake.nix")]);
        assert_eq!(
            t.windows,
            [
                (
                    "a".to_string(),
                    vec![PathBuf::from("fleet/machines/a/default.nix")]
                ),
                ("b".to_string(), vec![PathBuf::from("common.nix")]),
            ]
        );
        // A marker with another nonce is the flake's own trace, kept in the log.
        assert_eq!(
            rest,
            format!(
                "warning: Git tree is dirty\ntrace: varsmith-window other {}\nerror: boom\n",
                hash("b")
            )
        );
        let (none, _) = parse(
            "evaluating file '/nix/store/y-source/flake.nix'\n",
            n,
            &names,
            Path::new("fleet"),
        );
        assert!(none.is_none());
    }

    fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        list.iter()
            .map(|(p, b)| (PathBuf::from(p), Some(b.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn machine_directories_are_private_and_shared_files_global() {
        let configs = [id("a"), id("b"), id("common")];
        let fs = files(&[
            (
                "flake.nix",
                "mapAttrs (n: _: mk (./machines + \"/${n}\")) (readDir ./machines)",
            ),
            ("common.nix", "{ }"),
            ("machines/a/default.nix", "{ imports = [ ./hw.nix ]; }"),
            ("machines/a/hw.nix", "{ }"),
            ("machines/b/default.nix", "{ }"),
            ("machines/common/default.nix", "{ }"),
            ("machines/common/b.nix", "{ }"),
        ]);
        let trace = Trace {
            pre: vec!["flake.nix".into()],
            windows: vec![
                (
                    "a".into(),
                    vec![
                        "common.nix".into(),
                        "machines/a/default.nix".into(),
                        "machines/a/hw.nix".into(),
                    ],
                ),
                ("b".into(), vec!["machines/b/default.nix".into()]),
                (
                    "common".into(),
                    vec![
                        "machines/common/default.nix".into(),
                        "machines/common/b.nix".into(),
                    ],
                ),
            ],
        };
        let p = private_files(
            &[("nixosConfigurations".into(), Some(trace))],
            &configs,
            &fs,
        );
        assert_eq!(
            p[0],
            [
                PathBuf::from("machines/a/default.nix"),
                PathBuf::from("machines/a/hw.nix")
            ]
        );
        assert_eq!(p[1], [PathBuf::from("machines/b/default.nix")]);
        // `machines/common/b.nix` names another machine: global.
        assert_eq!(p[2], [PathBuf::from("machines/common/default.nix")]);
    }

    #[test]
    fn a_directory_named_elsewhere_or_seen_twice_is_global() {
        let configs = [id("a"), id("b")];
        let fs = files(&[
            ("flake.nix", "{ }"),
            ("machines/a/default.nix", "{ }"),
            ("machines/a/shared.nix", "{ }"),
            (
                "machines/b/default.nix",
                "{ imports = [ ../a/shared.nix ]; }",
            ),
        ]);
        let windows = vec![
            (
                "a".into(),
                vec![
                    "machines/a/default.nix".into(),
                    "machines/a/shared.nix".into(),
                ],
            ),
            ("b".into(), vec!["machines/b/default.nix".into()]),
        ];
        let t = Trace {
            pre: vec!["flake.nix".into()],
            windows: windows.clone(),
        };
        let p = private_files(&[("nixosConfigurations".into(), Some(t))], &configs, &fs);
        // b names `../a/…`: nothing of a is private; b's own file still is.
        assert!(p[0].is_empty(), "{p:?}");
        assert_eq!(p[1], [PathBuf::from("machines/b/default.nix")]);

        // Another process evaluated a's file in b's window: global.
        let fs = files(&[
            ("flake.nix", "{ }"),
            ("machines/a/default.nix", "{ }"),
            ("machines/b/default.nix", "{ }"),
        ]);
        let t1 = Trace {
            pre: vec![],
            windows: vec![("a".into(), vec!["machines/a/default.nix".into()])],
        };
        let t2 = Trace {
            pre: vec![],
            windows: vec![(
                "b".into(),
                vec![
                    "machines/a/default.nix".into(),
                    "machines/b/default.nix".into(),
                ],
            )],
        };
        let p = private_files(
            &[
                ("nixosConfigurations".into(), Some(t1)),
                ("nixosConfigurations".into(), Some(t2)),
            ],
            &configs,
            &fs,
        );
        assert!(p[0].is_empty(), "{p:?}");
        // A process without the flake in its log: nothing is private.
        let p = private_files(&[("nixosConfigurations".into(), None)], &configs, &fs);
        assert!(p.iter().all(Vec::is_empty));
    }
}
