//! Opening what a file holds, layer by layer: compressed streams ([`super::decompress`]),
//! tar members and zip members, nested (gzip in gzip, bzip2 in xz, a `.gz` inside a `.tgz`, a
//! deflated zip member), each decoded layer searched as a stream.
//!
//! * Every byte is searched once per layer that holds it as plain bytes: the file itself (by
//!   the walk), and each stream a decoder produced. Tar members and stored zip members are
//!   part of their archive's stream (already searched); they are only opened further when
//!   they start with a format's magic.
//! * A hit names its [`Layers`], outermost first (`gzip`, `tar member a.gz`, `gzip`); its
//!   offset is in the innermost decoded stream.
//! * Bounds (decompression bombs): at most [`MAX_LAYERS`] nested layers and
//!   [`super::decompress::MAX_DECOMPRESSED`] decoded bytes per file, all layers together
//!   ([`Limits`]). What lies beyond, and any stream that fails to decode after a valid
//!   header, is a *problem*: the file was not fully scanned, which the report counts against
//!   the verdict (fail closed).
//! * Member names come from the file: they are shown with control characters escaped, at
//!   most [`MAX_NAME_CHARS`] characters, and withheld when they hold a searched pattern.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::archive::{self, Archive};
use super::decompress::{self, Compression};
use super::scan::{Hit, Matcher};
use super::stream::StreamSearch;

/// Most nested layers opened below a file (compressions and archive members together).
pub(crate) const MAX_LAYERS: usize = 6;
/// Longest member name shown, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;
/// Bytes of a stream read to recognise its format (a tar header's magic is at 257).
pub(crate) const PEEK_LEN: usize = 512;
/// Read buffer of one layer.
const READ_BUF: usize = 64 << 10;

/// One layer a hit was found through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// A compressed stream.
    Compressed(Compression),
    /// A member of an archive, by its (shown) name.
    Member {
        /// tar or zip.
        archive: Archive,
        /// The member's name as shown (see the module docs).
        name: String,
    },
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Compressed(c) => write!(f, "{c}"),
            Layer::Member { archive, name } => write!(f, "{archive} member {name}"),
        }
    }
}

/// The layers a hit was found through, outermost first; empty for the file's own bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layers(pub Vec<Layer>);

impl Layers {
    /// True for the file's own bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The outermost compression, if any (the file's own format for a compressed file).
    pub(crate) fn outermost_compression(&self) -> Option<Compression> {
        self.0.iter().find_map(|l| match l {
            Layer::Compressed(c) => Some(*c),
            Layer::Member { .. } => None,
        })
    }

    /// Each layer's name, outermost first.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(Layer::to_string).collect()
    }
}

/// Innermost first, as a finding reads: `gzip in tar member a.gz in gzip`.
impl fmt::Display for Layers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(" in ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// The bounds of one file's layers (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most nested layers.
    pub max_layers: usize,
    /// Most decoded bytes, all layers together.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_layers: MAX_LAYERS,
            max_bytes: decompress::MAX_DECOMPRESSED,
        }
    }
}

/// What opening one file's layers did.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// Decoded bytes searched.
    pub decoded: u64,
    /// Why the file was not fully scanned (empty: it was).
    pub problems: Vec<String>,
}

/// What a stream holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A compressed stream.
    Compressed(Compression),
    /// An archive whose members are walked.
    Archive(Archive),
}

/// The kind of a stream starting with `head` (at least [`PEEK_LEN`] bytes when it has them).
pub(crate) fn detect(head: &[u8]) -> Option<Kind> {
    decompress::detect(head)
        .map(Kind::Compressed)
        .or_else(|| archive::detect(head).map(Kind::Archive))
}

/// Where hits go, with the layers they were found through.
pub(crate) type Emit<'a> = &'a mut dyn FnMut(Hit, &Layers);

/// The state shared by every layer of one file.
pub(super) struct Ctx<'a> {
    matcher: &'a Matcher,
    limits: Limits,
    decoded: Cell<u64>,
    exhausted: Cell<bool>,
    problems: RefCell<Vec<String>>,
    emit: RefCell<Emit<'a>>,
    bufs: RefCell<&'a mut Vec<Vec<u8>>>,
}

impl Ctx<'_> {
    pub(super) fn problem(&self, layers: &Layers, msg: impl fmt::Display) {
        let at = if layers.is_empty() {
            String::new()
        } else {
            format!(" (in {layers})")
        };
        self.problems.borrow_mut().push(format!("{msg}{at}"));
    }

    /// A member name as shown (see the module docs).
    pub(super) fn member_name(&self, raw: &[u8]) -> String {
        let mut secret = false;
        self.matcher.find(raw, |_| secret = true);
        if secret {
            return "[name withheld: it holds a secret]".to_string();
        }
        let s = crate::term::escape_controls(&String::from_utf8_lossy(raw));
        if s.chars().count() > MAX_NAME_CHARS {
            format!("{}…", s.chars().take(MAX_NAME_CHARS).collect::<String>())
        } else {
            s
        }
    }

    /// Turns the result of reading a layer into a problem of that layer; only running out
    /// of budget stops the layers around it.
    pub(super) fn settle(&self, layers: &Layers, r: io::Result<()>) -> io::Result<()> {
        match r {
            Ok(()) => Ok(()),
            Err(e) if self.exhausted.get() => Err(e),
            Err(e) => {
                self.problem(layers, e);
                Ok(())
            }
        }
    }
}

/// Opens the layers of the file at `path`, whose first bytes are of `kind`; hits go to
/// `emit` with their layers. `bufs` are search buffers, reused across files (the caller
/// wipes them).
pub(crate) fn open_file(
    matcher: &Matcher,
    path: &Path,
    kind: Kind,
    limits: Limits,
    bufs: &mut Vec<Vec<u8>>,
    emit: Emit<'_>,
) -> Opened {
    let ctx = Ctx {
        matcher,
        limits,
        decoded: Cell::new(0),
        exhausted: Cell::new(false),
        problems: RefCell::new(Vec::new()),
        emit: RefCell::new(emit),
        bufs: RefCell::new(bufs),
    };
    let mut layers = Layers::default();
    let r = File::open(path).and_then(|f| {
        open(
            &ctx,
            kind,
            &mut BufReader::with_capacity(READ_BUF, f),
            &mut layers,
        )
    });
    if ctx.exhausted.get() {
        ctx.problem(
            &layers,
            format!(
                "over {} decoded bytes, the rest was not searched",
                limits.max_bytes
            ),
        );
    } else if let Err(e) = r {
        ctx.problem(&layers, e);
    }
    Opened {
        decoded: ctx.decoded.get(),
        problems: ctx.problems.into_inner(),
    }
}

/// Opens `input`, of `kind`, below `layers`.
pub(super) fn open(
    ctx: &Ctx<'_>,
    kind: Kind,
    input: &mut dyn BufRead,
    layers: &mut Layers,
) -> io::Result<()> {
    if layers.0.len() >= ctx.limits.max_layers {
        let what = match kind {
            Kind::Compressed(c) => c.to_string(),
            Kind::Archive(a) => a.to_string(),
        };
        ctx.problem(
            layers,
            format!(
                "more than {} nested layers: a further {what} layer was not opened",
                ctx.limits.max_layers
            ),
        );
        return Ok(());
    }
    match kind {
        Kind::Compressed(c) => decoded(ctx, c, input, layers),
        Kind::Archive(Archive::Tar) => archive::tar(ctx, input, layers),
        Kind::Archive(Archive::Zip) => archive::zip(ctx, input, layers),
    }
}

/// Decodes `input` (compressed with `c`) as a new layer: searched, then opened further.
pub(super) fn decoded(
    ctx: &Ctx<'_>,
    c: Compression,
    input: &mut dyn BufRead,
    layers: &mut Layers,
) -> io::Result<()> {
    layers.0.push(Layer::Compressed(c));
    let r = decompress::decoder(c, input).and_then(|mut dec| produced(ctx, &mut dec, layers));
    let r = ctx.settle(layers, r);
    layers.0.pop();
    r
}

/// Searches `src`, the stream of the innermost of `layers`, and opens what it holds.
fn produced(ctx: &Ctx<'_>, src: &mut dyn Read, layers: &mut Layers) -> io::Result<()> {
    let mut buf = ctx.bufs.borrow_mut().pop().unwrap_or_default();
    let here = layers.clone();
    let r = {
        let search = StreamSearch::new(ctx.matcher, &mut buf, |h| {
            (ctx.emit.borrow_mut())(h, &here);
        });
        let mut tee = Tee {
            inner: src,
            search: Some(search),
            ctx,
        };
        let r = content(ctx, &mut tee, layers);
        if let Some(s) = tee.search.take() {
            s.finish();
        }
        r
    };
    ctx.bufs.borrow_mut().push(buf);
    r
}

/// Opens what `src` holds, below `layers` (its first bytes decide), then reads it to its
/// end: a member's bytes are read through its archive's stream, which searches them.
pub(super) fn content(ctx: &Ctx<'_>, src: &mut dyn Read, layers: &mut Layers) -> io::Result<()> {
    let mut head = Vec::with_capacity(PEEK_LEN);
    (&mut *src).take(PEEK_LEN as u64).read_to_end(&mut head)?;
    let kind = detect(&head);
    let mut rest = BufReader::with_capacity(READ_BUF, io::Cursor::new(head).chain(src));
    if let Some(kind) = kind {
        open(ctx, kind, &mut rest, layers)?;
    }
    io::copy(&mut rest, &mut io::sink()).map(|_| ())
}

/// A reader that searches what it reads and counts it against the file's budget.
struct Tee<'s, 'c, F: FnMut(Hit)> {
    inner: &'s mut dyn Read,
    search: Option<StreamSearch<'s, F>>,
    ctx: &'s Ctx<'c>,
}

impl<F: FnMut(Hit)> Read for Tee<'_, '_, F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let limit = || io::Error::other("decoded size limit");
        if self.ctx.exhausted.get() {
            return Err(limit());
        }
        let n = self.inner.read(out)?;
        let left = self.ctx.limits.max_bytes - self.ctx.decoded.get();
        let take = n.min(usize::try_from(left).unwrap_or(usize::MAX));
        if let Some(s) = &mut self.search {
            io::Write::write_all(s, &out[..take])?;
        }
        self.ctx.decoded.set(self.ctx.decoded.get() + take as u64);
        if take < n {
            self.ctx.exhausted.set(true);
            return Err(limit());
        }
        Ok(n)
    }
}
