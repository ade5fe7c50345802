//! Searching streams and files with a [`Matcher`], in bounded memory.
//!
//! Streams (and files up to [`MMAP_THRESHOLD`] bytes) go through one reusable buffer: each
//! step reads up to [`CHUNK_LEN`] new bytes after the bytes kept from the previous step, and
//! searches the range of starts no earlier step owned, keeping the back context before it and
//! [`Matcher::tail`] bytes after it (at the end of the stream, everything is owned). The
//! same logic takes pushed data ([`SearchSink`], an [`io::Write`] for decompressors).
//! Bigger files are memory-mapped and searched in windows of [`MAP_WINDOW`] bytes whose pages
//! are released after the search (`MADV_DONTNEED`), so the resident set stays at about one
//! window per thread.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use zeroize::Zeroize;

use super::scan::{Hit, Matcher};

/// Files bigger than this are memory-mapped.
pub(crate) const MMAP_THRESHOLD: u64 = 16 << 20;
/// Bytes read per step.
pub(crate) const CHUNK_LEN: usize = 256 << 10;
/// Bytes of a mapped file searched before their pages are released.
pub(crate) const MAP_WINDOW: usize = 8 << 20;
/// Alignment of released ranges: a multiple of every page size in use (4, 16, 64 KiB).
const RELEASE_ALIGN: usize = 64 << 10;
/// Bytes of a file kept for format detection ([`Searched::head`]): a tar header's magic is
/// at offset 257.
pub(crate) const HEAD_LEN: usize = super::layers::PEEK_LEN;

/// What a search read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Searched {
    /// Bytes searched.
    pub bytes: u64,
    /// The first [`HEAD_LEN`] bytes (fewer for a shorter stream).
    pub head: [u8; HEAD_LEN],
    /// How many bytes of `head` are valid.
    pub head_len: usize,
}

impl Default for Searched {
    fn default() -> Self {
        Searched {
            bytes: 0,
            head: [0; HEAD_LEN],
            head_len: 0,
        }
    }
}

impl Searched {
    /// The valid part of [`Searched::head`].
    pub(crate) fn head(&self) -> &[u8] {
        &self.head[..self.head_len]
    }
}

/// The buffered, windowed search of one stream (see the module docs).
pub(crate) struct StreamSearch<'a, F: FnMut(Hit)> {
    matcher: &'a Matcher,
    buf: &'a mut Vec<u8>,
    emit: F,
    /// Valid bytes in `buf`.
    filled: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Stream offset up to which starts have been searched.
    owned_until: u64,
    searched: Searched,
}

impl<'a, F: FnMut(Hit)> StreamSearch<'a, F> {
    /// Starts a search of a stream, using `buf` (reused across streams) for its bytes.
    pub(crate) fn new(matcher: &'a Matcher, buf: &'a mut Vec<u8>, emit: F) -> Self {
        let keep = matcher.context().back + matcher.tail();
        if buf.len() < CHUNK_LEN + keep {
            buf.resize(CHUNK_LEN + keep, 0);
        }
        StreamSearch {
            matcher,
            buf,
            emit,
            filled: 0,
            base: 0,
            owned_until: 0,
            searched: Searched::default(),
        }
    }

    /// Free space for the next bytes.
    fn space(&mut self) -> &mut [u8] {
        let end = self.buf.len();
        &mut self.buf[self.filled..end]
    }

    /// Records `n` bytes written into [`StreamSearch::space`]; searches when it is full.
    fn advance(&mut self, n: usize) {
        if self.searched.head_len < HEAD_LEN {
            let from = self.searched.bytes as usize;
            let take = (HEAD_LEN - from).min(n);
            let at = self.filled;
            self.searched.head[from..from + take].copy_from_slice(&self.buf[at..at + take]);
            self.searched.head_len += take;
        }
        self.filled += n;
        self.searched.bytes += n as u64;
        if self.filled == self.buf.len() {
            self.step(false);
        }
    }

    /// Searches the bytes not yet owned (all of them at the end of the stream), then keeps
    /// the back context and the tail for the next step.
    fn step(&mut self, end: bool) {
        let tail = if end { 0 } else { self.matcher.tail() };
        let own_to = (self.base + self.filled as u64).saturating_sub(tail as u64);
        if own_to > self.owned_until {
            let from = (self.owned_until - self.base) as usize;
            let to = (own_to - self.base) as usize;
            let base = self.base;
            let emit = &mut self.emit;
            self.matcher
                .search(&self.buf[..self.filled], from..to, &mut |h: Hit| {
                    emit(Hit {
                        offset: base + h.offset,
                        ..h
                    })
                });
            self.owned_until = own_to;
        }
        if end {
            return;
        }
        let keep_from = self
            .owned_until
            .saturating_sub(self.matcher.context().back as u64)
            .max(self.base);
        let k = (keep_from - self.base) as usize;
        self.buf.copy_within(k..self.filled, 0);
        self.filled -= k;
        self.base = keep_from;
    }

    /// Ends the stream: searches what is left.
    pub(crate) fn finish(mut self) -> Searched {
        self.step(true);
        self.searched
    }

    /// Reads `reader` to its end into the search.
    pub(crate) fn read_from(&mut self, reader: &mut impl Read) -> io::Result<()> {
        loop {
            match reader.read(self.space()) {
                Ok(0) => return Ok(()),
                Ok(n) => self.advance(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<F: FnMut(Hit)> Write for StreamSearch<'_, F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let space = self.space();
        let n = space.len().min(data.len());
        space[..n].copy_from_slice(&data[..n]);
        self.advance(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Searches a stream to its end; `emit` gets stream offsets.
pub(crate) fn find_in_reader(
    matcher: &Matcher,
    reader: &mut impl Read,
    buf: &mut Vec<u8>,
    emit: impl FnMut(Hit),
) -> io::Result<Searched> {
    let mut s = StreamSearch::new(matcher, buf, emit);
    s.read_from(reader)?;
    Ok(s.finish())
}

/// Searches the file at `path` of size `len` (from its metadata), using `buf` for reads.
pub(crate) fn find_in_file(
    matcher: &Matcher,
    path: &Path,
    len: u64,
    buf: &mut Vec<u8>,
    mut emit: impl FnMut(Hit),
) -> io::Result<Searched> {
    let mut file = File::open(path)?;
    if len > MMAP_THRESHOLD {
        // SAFETY: the map is read-only and dropped before returning. If another process
        // truncates the file meanwhile, reads past the end fault (SIGBUS); store paths are
        // immutable, and for other files that is the documented risk of mmap, as in ripgrep.
        if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
            find_in_map(matcher, &map, &mut emit);
            let mut searched = Searched {
                bytes: map.len() as u64,
                head_len: map.len().min(HEAD_LEN),
                ..Searched::default()
            };
            searched.head[..searched.head_len].copy_from_slice(&map[..searched.head_len]);
            return Ok(searched);
        }
    }
    find_in_reader(matcher, &mut file, buf, emit)
}

/// Searches a mapped file window by window (see the module docs).
fn find_in_map(matcher: &Matcher, map: &memmap2::Mmap, emit: &mut impl FnMut(Hit)) {
    let _ = map.advise(memmap2::Advice::Sequential);
    let back = matcher.context().back;
    let tail = matcher.tail();
    let len = map.len();
    let mut pos = 0usize;
    let mut released = 0usize;
    while pos < len {
        let owned_to = len.min(pos + MAP_WINDOW);
        let from = pos.saturating_sub(back);
        let to = len.min(owned_to + tail);
        matcher.search(
            &map[from..to],
            pos - from..owned_to - from,
            &mut |h: Hit| {
                emit(Hit {
                    offset: h.offset + from as u64,
                    ..h
                })
            },
        );
        let release_to = owned_to.saturating_sub(back) & !(RELEASE_ALIGN - 1);
        if release_to > released {
            // SAFETY: a read-only, file-backed mapping: MADV_DONTNEED only drops the pages
            // from this mapping (a later access would fault them in again from the file);
            // the range is below the next window and never read again.
            let _ = unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    released,
                    release_to - released,
                )
            };
            released = release_to;
        }
        pos = owned_to;
    }
}

/// Zeroizes a scan buffer (it may hold a leaked value read back from disk).
pub(crate) fn wipe(buf: &mut Vec<u8>) {
    buf.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{PatternSet, Secret};
    use zeroize::Zeroizing;

    fn matcher(n: usize) -> (Matcher, Vec<Vec<u8>>) {
        let values: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("secret-value-{i:04}-xyz").into_bytes())
            .collect();
        let secrets: Vec<Secret> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Secret::new(format!("h/g/{i}"), Zeroizing::new(v.clone())))
            .collect();
        (Matcher::new(PatternSet::new(&secrets)).unwrap(), values)
    }

    fn raw_offsets(m: &Matcher, v: &[u8], hits: &[Hit]) -> Vec<u64> {
        hits.iter()
            .filter(|h| m.pattern_set().patterns()[h.pattern].as_slice() == v)
            .map(|h| h.offset)
            .collect()
    }

    #[test]
    fn mapped_files_find_matches_across_windows_once() {
        let (m, values) = matcher(20);
        let v = &values[3];
        let len = (MMAP_THRESHOLD as usize) + MAP_WINDOW + 1000;
        let mut data = vec![b'.'; len];
        let mut want = Vec::new();
        for at in [
            0,
            MAP_WINDOW - 5,
            2 * MAP_WINDOW - v.len(),
            2 * MAP_WINDOW,
            len - v.len(),
        ] {
            data[at..at + v.len()].copy_from_slice(v);
            want.push(at as u64);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, &data).unwrap();
        let mut hits = Vec::new();
        let searched =
            find_in_file(&m, &path, len as u64, &mut Vec::new(), |h| hits.push(h)).unwrap();
        assert_eq!(searched.bytes, len as u64);
        assert_eq!(searched.head(), &data[..HEAD_LEN]);
        assert_eq!(raw_offsets(&m, v, &hits), want);
    }

    #[test]
    fn chunk_boundaries_find_each_match_once() {
        for n in [1, 20] {
            let (m, values) = matcher(n);
            let v = &values[0];
            let wrapped_len = 2 * CHUNK_LEN + 64;
            // Place the value across every position around the first chunk boundaries.
            for shift in 0..v.len() + 2 {
                let pos = CHUNK_LEN - v.len() + shift;
                let mut data = vec![b'.'; CHUNK_LEN * 3];
                data[pos..pos + v.len()].copy_from_slice(v);
                let tail = wrapped_len + shift;
                data[tail..tail + v.len()].copy_from_slice(v);
                let mut hits = Vec::new();
                let searched =
                    find_in_reader(&m, &mut data.as_slice(), &mut Vec::new(), |h| hits.push(h))
                        .unwrap();
                assert_eq!(searched.bytes, data.len() as u64);
                let want = vec![pos as u64, tail as u64];
                assert_eq!(raw_offsets(&m, v, &hits), want, "n={n} shift={shift}");
                // The same pushed through the sink in odd-sized writes.
                let mut buf = Vec::new();
                let mut pushed = Vec::new();
                let mut sink = StreamSearch::new(&m, &mut buf, |h| pushed.push(h));
                for part in data.chunks(77_777) {
                    sink.write_all(part).unwrap();
                }
                sink.finish();
                assert_eq!(
                    raw_offsets(&m, v, &pushed),
                    want,
                    "sink n={n} shift={shift}"
                );
            }
        }
    }

    /// Base64 wrapped at 64 columns, placed across a chunk boundary at every shift, is
    /// confirmed at the start of its base64 text (several fragments may confirm it: the
    /// report merges equal findings).
    #[test]
    fn wrapped_base64_across_chunk_boundaries() {
        use base64::Engine as _;
        let value = b"a-long-secret-value-that-spans-more-than-one-base64-line-0123456789";
        let set = PatternSet::build(
            &[Secret::new("h/g/f", Zeroizing::new(value.to_vec()))],
            false,
        );
        let m = Matcher::new(set).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        let wrapped: Vec<u8> = encoded
            .as_bytes()
            .chunks(64)
            .flat_map(|l| l.iter().copied().chain(*b"\r\n"))
            .collect();
        for shift in (0..wrapped.len() + 2).step_by(7) {
            let pos = CHUNK_LEN - wrapped.len() + shift;
            let mut data = vec![b'.'; 2 * CHUNK_LEN];
            data[pos..pos + wrapped.len()].copy_from_slice(&wrapped);
            let mut offsets = Vec::new();
            find_in_reader(&m, &mut data.as_slice(), &mut Vec::new(), |h| {
                let o = m.pattern_set().origins(h.pattern)[h.origin];
                if o.encoding.name() == "base64-wrapped" {
                    offsets.push(h.offset);
                }
            })
            .unwrap();
            offsets.dedup();
            assert_eq!(offsets, [pos as u64], "shift {shift}");
        }
    }
}
