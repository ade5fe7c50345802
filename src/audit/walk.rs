//! The parallel directory walk: every regular file under some roots, searched once per inode.
//!
//! `ignore::WalkParallel` with every filter off (no `.gitignore`, hidden files included), no
//! symlink following (a symlink's target is scanned where it lives, if it is in scope). Each
//! walker thread owns one reusable read buffer, zeroized when the thread finishes.
//!
//! Hard links (an optimised store links identical files together, and `/nix/store/.links` is
//! the pool of them) are searched once: files with a link count above one are keyed by
//! `(device, inode)`; the other paths of a searched inode are remembered, and a hit in the
//! inode is reported for each of its paths, so every store path holding the leak is named.
//!
//! A file whose first bytes are a compression or archive format's magic is opened layer by
//! layer ([`super::layers`]: nested compression, tar and zip members), each decoded stream
//! searched; its hits carry their layers. Files that cannot be read, or opened in full, are
//! listed in [`WalkOutcome::errors`] (`could not fully scan`): they were not (fully)
//! searched.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::{DirEntry, ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};

use super::layers::{self, Layers, Limits};
use super::scan::{Hit, Matcher};
use super::stream::{self, wipe};

/// Occurrences listed per file; the rest are only counted ([`WalkOutcome::truncated`]).
pub(crate) const MAX_HITS_PER_FILE: u64 = 1000;

/// One occurrence of one pattern in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHit {
    /// The file.
    pub path: PathBuf,
    /// The occurrence; its offset is in the file, or in its innermost decoded stream.
    pub hit: Hit,
    /// The layers (compressions, archive members) it was found through; empty: the file.
    pub layers: Layers,
}

/// What a walk found and how much it read.
#[derive(Debug, Default)]
pub(crate) struct WalkOutcome {
    /// Every hit, one per path (hard links expanded).
    pub hits: Vec<RawHit>,
    /// Regular files searched (distinct inodes).
    pub files: u64,
    /// Bytes searched (raw file bytes).
    pub bytes: u64,
    /// Compressed files searched decompressed.
    pub compressed_files: u64,
    /// Decompressed bytes searched.
    pub decompressed_bytes: u64,
    /// Entries that could not be read (or decompressed in full), as `path: error`.
    pub errors: Vec<String>,
    /// Files with more than [`MAX_HITS_PER_FILE`] occurrences, and how many were not listed.
    pub truncated: Vec<(PathBuf, u64)>,
}

/// Decides whether a directory entry is left out (a directory is then not descended into).
pub(crate) type Prune<'a> = dyn Fn(&DirEntry) -> bool + Sync + 'a;

/// Prunes `/nix/store/.links` (an entry named `.links` right under a root).
pub(crate) fn prune_store_links(entry: &DirEntry) -> bool {
    entry.depth() == 1 && entry.file_name() == ".links"
}

/// Options of a walk.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Walker threads (0: the number of cores).
    pub threads: usize,
    /// Do not search compressed files decompressed (default: they are), for comparison.
    pub no_decompress: bool,
    /// Bounds of the layers opened per file (default: `Limits::default`).
    pub limits: Limits,
}

#[derive(Default)]
struct Shared {
    /// Inodes with more than one link, and their paths other than the one searched (kept
    /// small: in an optimised store nearly every file has a second link, in `.links`).
    links: Mutex<HashMap<(u64, u64), Vec<PathBuf>>>,
    totals: Mutex<Totals>,
}

#[derive(Default)]
struct Totals {
    hits: Vec<(RawHit, Option<(u64, u64)>)>,
    files: u64,
    bytes: u64,
    compressed_files: u64,
    decompressed_bytes: u64,
    errors: Vec<String>,
    truncated: Vec<(PathBuf, u64)>,
}

struct Visitor<'s> {
    shared: &'s Shared,
    matcher: &'s Matcher,
    prune: &'s Prune<'s>,
    opts: &'s WalkOptions,
    buf: Vec<u8>,
    /// Search buffers of decoded layers.
    layer_bufs: Vec<Vec<u8>>,
    local: Totals,
}

impl Drop for Visitor<'_> {
    fn drop(&mut self) {
        wipe(&mut self.buf);
        self.layer_bufs.iter_mut().for_each(wipe);
        let local = std::mem::take(&mut self.local);
        if let Ok(mut t) = self.shared.totals.lock() {
            t.hits.extend(local.hits);
            t.files += local.files;
            t.bytes += local.bytes;
            t.compressed_files += local.compressed_files;
            t.decompressed_bytes += local.decompressed_bytes;
            t.errors.extend(local.errors);
            t.truncated.extend(local.truncated);
        }
    }
}

impl ParallelVisitor for Visitor<'_> {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                self.local.errors.push(e.to_string());
                return WalkState::Continue;
            }
        };
        if (self.prune)(&entry) {
            return WalkState::Skip;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            return WalkState::Continue;
        }
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.local.errors.push(format!("{}: {e}", path.display()));
                return WalkState::Continue;
            }
        };
        let key = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
        if let Some(key) = key {
            let Ok(mut links) = self.shared.links.lock() else {
                return WalkState::Quit;
            };
            match links.entry(key) {
                Entry::Occupied(mut aliases) => {
                    aliases.get_mut().push(path.to_path_buf());
                    return WalkState::Continue;
                }
                Entry::Vacant(v) => {
                    v.insert(Vec::new());
                }
            }
        }
        if meta.len() == 0 {
            self.local.files += 1;
            return WalkState::Continue;
        }
        self.search(path, meta.len(), key);
        WalkState::Continue
    }
}

/// Collects the hits of one file (raw or decompressed), listing at most
/// [`MAX_HITS_PER_FILE`].
struct FileHits<'a> {
    hits: &'a mut Vec<(RawHit, Option<(u64, u64)>)>,
    path: &'a Path,
    key: Option<(u64, u64)>,
    count: u64,
}

impl FileHits<'_> {
    fn push(&mut self, hit: Hit, layers: &Layers) {
        self.count += 1;
        if self.count <= MAX_HITS_PER_FILE {
            let raw = RawHit {
                path: self.path.to_path_buf(),
                hit,
                layers: layers.clone(),
            };
            self.hits.push((raw, self.key));
        }
    }
}

impl Visitor<'_> {
    /// Searches one file raw, then opens its layers when it is compressed or an archive.
    fn search(&mut self, path: &Path, len: u64, key: Option<(u64, u64)>) {
        let mut sink = FileHits {
            hits: &mut self.local.hits,
            path,
            key,
            count: 0,
        };
        let none = Layers::default();
        let result = stream::find_in_file(self.matcher, path, len, &mut self.buf, |h| {
            sink.push(h, &none)
        });
        let kind = match result {
            Ok(searched) => {
                self.local.files += 1;
                self.local.bytes += searched.bytes;
                layers::detect(searched.head()).filter(|_| !self.opts.no_decompress)
            }
            Err(e) => {
                self.local.errors.push(format!("{}: {e}", path.display()));
                None
            }
        };
        if let Some(kind) = kind {
            let opened = layers::open_file(
                self.matcher,
                path,
                kind,
                self.opts.limits,
                &mut self.layer_bufs,
                &mut |h, l| sink.push(h, l),
            );
            self.local.compressed_files += 1;
            self.local.decompressed_bytes += opened.decoded;
            for p in opened.problems {
                let p = format!("{}: could not fully scan: {p}", path.display());
                self.local.errors.push(p);
            }
        }
        if sink.count > MAX_HITS_PER_FILE {
            let more = sink.count - MAX_HITS_PER_FILE;
            self.local.truncated.push((path.to_path_buf(), more));
        }
    }
}

struct Builder<'s> {
    shared: &'s Shared,
    matcher: &'s Matcher,
    prune: &'s Prune<'s>,
    opts: &'s WalkOptions,
}

impl<'s> ParallelVisitorBuilder<'s> for Builder<'s> {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Visitor {
            shared: self.shared,
            matcher: self.matcher,
            prune: self.prune,
            opts: self.opts,
            buf: Vec::new(),
            layer_bufs: Vec::new(),
            local: Totals::default(),
        })
    }
}

/// Searches every regular file under `roots` (files or directories) with `matcher`, in
/// parallel, leaving out what `prune` says.
pub(crate) fn scan_roots(
    roots: &[PathBuf],
    matcher: &Matcher,
    prune: &Prune<'_>,
    opts: &WalkOptions,
) -> WalkOutcome {
    let Some((first, rest)) = roots.split_first() else {
        return WalkOutcome::default();
    };
    let mut wb = WalkBuilder::new(first);
    for r in rest {
        wb.add(r);
    }
    wb.standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(false)
        .git_global(false)
        .git_exclude(false)
        .follow_links(false)
        .threads(opts.threads);
    let shared = Shared::default();
    let mut builder = Builder {
        shared: &shared,
        matcher,
        prune,
        opts,
    };
    wb.build_parallel().visit(&mut builder);
    let links = shared.links.into_inner().unwrap_or_else(|e| e.into_inner());
    let totals = shared
        .totals
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let mut hits = Vec::with_capacity(totals.hits.len());
    for (hit, key) in totals.hits {
        let aliases = key.and_then(|k| links.get(&k)).map(Vec::as_slice);
        for alias in aliases.unwrap_or(&[]) {
            hits.push(RawHit {
                path: alias.clone(),
                ..hit.clone()
            });
        }
        hits.push(hit);
    }
    WalkOutcome {
        hits,
        files: totals.files,
        bytes: totals.bytes,
        compressed_files: totals.compressed_files,
        decompressed_bytes: totals.decompressed_bytes,
        errors: totals.errors,
        truncated: totals.truncated,
    }
}

/// The store path (`<store>/<hash>-<name>`) holding `file`, if `file` is under `store`.
pub(crate) fn store_path_of(store: &Path, file: &Path) -> Option<PathBuf> {
    let rel = file.strip_prefix(store).ok()?;
    let first = rel.components().next()?;
    Some(store.join(first))
}
