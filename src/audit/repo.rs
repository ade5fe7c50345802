//! The workspace audit: plaintext files, git history, and fully-encrypted sops files.
//!
//! * Working tree: every file except `.git/` and the sops secret directories
//!   (`sops/**/secrets/`, which hold ciphertext by design). Public facts and `key.json` under
//!   `sops/` are searched too: a secret must not leak into a fact either. Ignore files are
//!   not honoured (an ignored file on disk can still be copied into the store by a path
//!   literal); symlinks (`result` → `/nix/store/…`) are not followed.
//! * History: every blob reachable from any ref (`git rev-list --all --objects`), read through
//!   one `git cat-file --batch`. A hit names the blob's path and the oldest commit that added
//!   it (`git log --all --find-object`), so a secret committed and deleted later is found.
//! * sops files: every YAML/JSON file under `sops/` with a top-level `sops` key must have no
//!   plaintext leaf: each string is `ENC[AES256_GCM,…]` or empty, except under the `sops`
//!   metadata key and under keys ending with the file's `unencrypted_suffix` (default
//!   `_unencrypted`). Numbers and booleans in plaintext are flagged too; nulls are skipped, as
//!   sops does. Limitation: YAML comments are not seen (sops encrypts them; serde drops them).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use ignore::DirEntry;

use super::Error;
use super::report::PlaintextLeaf;
use super::scan::{Hit, Matcher};
use super::stream::{find_in_reader, wipe};
use super::walk::{MAX_HITS_PER_FILE, WalkOptions, WalkOutcome, scan_roots};

/// A hit in a git blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobHit {
    /// The blob's object id.
    pub blob: String,
    /// A path the blob had.
    pub path: String,
    /// The oldest commit that added the blob, if found.
    pub commit: Option<String>,
    /// The occurrence (offset in the blob).
    pub hit: Hit,
}

/// What the history scan found and read.
#[derive(Debug, Default)]
pub(crate) struct HistoryOutcome {
    /// Hits in blobs.
    pub hits: Vec<BlobHit>,
    /// Blobs searched.
    pub blobs: u64,
    /// Bytes searched.
    pub bytes: u64,
    /// Blobs with more than [`MAX_HITS_PER_FILE`] occurrences, and how many were not listed.
    pub truncated: Vec<(String, u64)>,
}

/// True when a working-tree entry is left out of the plaintext scan (see the module docs).
fn prune_worktree(root: &Path, entry: &DirEntry) -> bool {
    let Ok(rel) = entry.path().strip_prefix(root) else {
        return false;
    };
    let mut comps = rel.components();
    match comps.next() {
        Some(Component::Normal(c)) if c == ".git" => rel.components().count() == 1,
        Some(Component::Normal(c)) if c == "sops" => {
            entry.file_name() == "secrets" && entry.file_type().is_some_and(|t| t.is_dir())
        }
        _ => false,
    }
}

/// Searches the working tree of the workspace at `root`.
pub(crate) fn scan_worktree(root: &Path, matcher: &Matcher, opts: &WalkOptions) -> WalkOutcome {
    let prune = |e: &DirEntry| prune_worktree(root, e);
    scan_roots(&[root.to_path_buf()], matcher, &prune, opts)
}

fn git(root: &Path) -> Command {
    let mut cmd = crate::child::command("git");
    cmd.arg("-C").arg(root);
    cmd
}

fn git_output(root: &Path, args: &[&str]) -> Result<Vec<u8>, Error> {
    let mut cmd = git(root);
    cmd.args(args);
    super::command_stdout(cmd, format!("git {}", args.join(" ")))
}

/// True when `root` is inside a git work tree.
pub(crate) fn is_git_repo(root: &Path) -> bool {
    git_output(root, &["rev-parse", "--is-inside-work-tree"])
        .map(|o| o.starts_with(b"true"))
        .unwrap_or(false)
}

/// Searches every blob reachable from any ref of the repository at `root`.
pub(crate) fn scan_history(root: &Path, matcher: &Matcher) -> Result<HistoryOutcome, Error> {
    let listing = git_output(root, &["rev-list", "--all", "--objects"])?;
    // Objects with a path: blobs and trees (commits have none). Keep the first path seen.
    let mut paths: HashMap<String, String> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&listing).lines() {
        let Some((oid, path)) = line.split_once(' ') else {
            continue;
        };
        if path.is_empty() || paths.contains_key(oid) {
            continue;
        }
        paths.insert(oid.to_string(), path.to_string());
        order.push(oid.to_string());
    }
    let mut outcome = HistoryOutcome::default();
    if order.is_empty() {
        return Ok(outcome);
    }
    let command = "git cat-file --batch".to_string();
    let cmd_err = |e: io::Error| Error::Command {
        command: command.clone(),
        msg: e.to_string(),
    };
    let mut child = git(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(cmd_err)?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(cmd_err(io::Error::other("no pipes")));
    };
    let input: String = order.iter().map(|o| format!("{o}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut reader = BufReader::with_capacity(1 << 16, stdout);
    let mut buf = Vec::new();
    let mut header = String::new();
    let result = (|| -> io::Result<()> {
        for _ in 0..order.len() {
            header.clear();
            if reader.read_line(&mut header)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "git cat-file ended early",
                ));
            }
            let fields: Vec<&str> = header.split_whitespace().collect();
            let [oid, kind, size] = fields[..] else {
                continue; // "<oid> missing"
            };
            let size: u64 = size
                .parse()
                .map_err(|_| io::Error::other("bad git cat-file header"))?;
            let mut body = (&mut reader).take(size);
            if kind == "blob" {
                let path = paths.get(oid).map(String::as_str).unwrap_or_default();
                search_blob(matcher, oid, path, &mut body, &mut buf, &mut outcome)?;
            } else {
                io::copy(&mut body, &mut io::sink())?;
            }
            let mut nl = [0u8; 1];
            reader.read_exact(&mut nl)?;
        }
        Ok(())
    })();
    wipe(&mut buf);
    let _ = writer.join();
    let _ = child.wait();
    result.map_err(cmd_err)?;
    name_commits(root, &mut outcome.hits);
    Ok(outcome)
}

/// Searches one blob's body, adding its hits (at most [`MAX_HITS_PER_FILE`]) and counts.
fn search_blob(
    matcher: &Matcher,
    oid: &str,
    path: &str,
    body: &mut impl Read,
    buf: &mut Vec<u8>,
    outcome: &mut HistoryOutcome,
) -> io::Result<()> {
    let hits = &mut outcome.hits;
    let mut count = 0u64;
    let searched = find_in_reader(matcher, body, buf, |hit| {
        count += 1;
        if count <= MAX_HITS_PER_FILE {
            hits.push(BlobHit {
                blob: oid.to_string(),
                path: path.to_string(),
                commit: None,
                hit,
            })
        }
    })?;
    if count > MAX_HITS_PER_FILE {
        let more = count - MAX_HITS_PER_FILE;
        outcome
            .truncated
            .push((format!("git blob {oid} ({path})"), more));
    }
    outcome.blobs += 1;
    outcome.bytes += searched.bytes;
    Ok(())
}

/// Fills in the commit that added each hit's blob (one `git log` per blob).
fn name_commits(root: &Path, hits: &mut [BlobHit]) {
    let mut commits: HashMap<String, Option<String>> = HashMap::new();
    for hit in hits {
        let commit = commits
            .entry(hit.blob.clone())
            .or_insert_with(|| adding_commit(root, &hit.blob));
        hit.commit = commit.clone();
    }
}

/// The oldest commit that added or removed `blob`, i.e. the one that added it.
fn adding_commit(root: &Path, blob: &str) -> Option<String> {
    let arg = format!("--find-object={blob}");
    let out = git_output(root, &["log", "--all", "--reverse", "--format=%H", &arg]).ok()?;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .map(|s| s.trim().to_string())
}

/// Checks every sops file under `<root>/sops` for plaintext leaves (see the module docs).
/// Files that do not parse, or are not sops documents, are not sops files and are ignored.
pub(crate) fn check_sops_files(root: &Path) -> Result<Vec<PlaintextLeaf>, Error> {
    let mut files = Vec::new();
    collect_files(&root.join("sops"), &mut files)?;
    files.sort();
    let mut leaves = Vec::new();
    for file in files {
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "yaml" | "yml" | "json") {
            continue;
        }
        let bytes = std::fs::read(&file).map_err(|source| Error::Io {
            path: file.clone(),
            cause: source,
        })?;
        let Ok(doc) = yaml_serde::from_slice::<yaml_serde::Value>(&bytes) else {
            continue;
        };
        let yaml_serde::Value::Mapping(map) = &doc else {
            continue;
        };
        let Some(meta) = map.get("sops") else {
            continue;
        };
        let suffix = meta
            .get("unencrypted_suffix")
            .and_then(|v| v.as_str())
            .unwrap_or("_unencrypted")
            .to_string();
        let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        for (k, v) in map {
            let key = key_name(k);
            if key == "sops" {
                continue;
            }
            plaintext_leaves(v, &key, &suffix, &mut |path| {
                leaves.push(PlaintextLeaf {
                    file: rel.clone(),
                    key: path,
                })
            });
        }
    }
    Ok(leaves)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                path: dir.to_path_buf(),
                cause: source,
            });
        }
    };
    for entry in rd {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            cause: source,
        })?;
        let ft = entry.file_type().map_err(|source| Error::Io {
            path: entry.path(),
            cause: source,
        })?;
        if ft.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn key_name(k: &yaml_serde::Value) -> String {
    match k {
        yaml_serde::Value::String(s) => s.clone(),
        yaml_serde::Value::Number(n) => n.to_string(),
        yaml_serde::Value::Bool(b) => b.to_string(),
        _ => "?".to_string(),
    }
}

/// Calls `flag(key path)` for each plaintext leaf of `v` (at key path `path`).
fn plaintext_leaves(v: &yaml_serde::Value, path: &str, suffix: &str, flag: &mut dyn FnMut(String)) {
    let last = path.rsplit(':').next().unwrap_or(path);
    if last.ends_with(suffix) {
        return;
    }
    match v {
        yaml_serde::Value::Null => {}
        yaml_serde::Value::String(s) => {
            let encrypted = s.starts_with("ENC[AES256_GCM,") && s.ends_with(']');
            if !s.is_empty() && !encrypted {
                flag(path.to_string());
            }
        }
        yaml_serde::Value::Bool(_) | yaml_serde::Value::Number(_) => flag(path.to_string()),
        yaml_serde::Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                plaintext_leaves(item, &format!("{path}[{i}]"), suffix, flag);
            }
        }
        yaml_serde::Value::Mapping(map) => {
            for (k, item) in map {
                plaintext_leaves(item, &format!("{path}:{}", key_name(k)), suffix, flag);
            }
        }
        yaml_serde::Value::Tagged(t) => plaintext_leaves(&t.value, path, suffix, flag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_plaintext_but_not_metadata_or_unencrypted() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("sops/machines/h/secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(
            secrets.join("g.yaml"),
            "password: ENC[AES256_GCM,data:abc,iv:x,tag:y,type:str]\n\
             leaked: hunter2hunter2\n\
             empty: ''\n\
             note_unencrypted: visible\n\
             nested:\n  port: 22\n  list:\n    - ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]\n    - oops\n\
             sops:\n  mac: whatever\n  version: 3.11.0\n",
        )
        .unwrap();
        std::fs::write(secrets.join("notsops.yaml"), "plain: value\n").unwrap();
        let leaves = check_sops_files(dir.path()).unwrap();
        let keys: Vec<&str> = leaves.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys, ["leaked", "nested:port", "nested:list[1]"]);
        assert!(leaves[0].file.ends_with("g.yaml"));
    }
}
