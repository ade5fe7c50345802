//! tar and zip archives, walked member by member as a stream (no seeking, so an archive
//! inside a compressed stream or another archive is walked the same way).
//!
//! * tar: 512-byte ustar / GNU headers (checksum verified); GNU long names (`L`) and pax
//!   `path` records name the next member; regular files are members, everything else is
//!   skipped. Sizes in octal or GNU base-256. Two zero blocks (or the end) end the archive.
//! * zip: local file headers from the start, as `unzip` streaming does; the central directory
//!   ends the walk. Methods: stored, deflate, bzip2 (12), zstd (93), xz (95); a member of
//!   another method, an encrypted one, or a stored one of unknown size (data descriptor)
//!   cannot be searched and is a problem. ZIP64 sizes are read from the extra field.
//!   Walking local headers reads each byte once, so overlapping-member zip bombs are no
//!   bigger than their file; the size limit of [`super::layers`] bounds the rest.
//!
//! No crate: both formats are a few fixed-offset fields, and `tar` / `zip` want to own
//! their reader or seek it, which a nested stream cannot offer.

use std::fmt;
use std::io::{self, BufRead, Read};

use super::decompress::Compression;
use super::layers::{self, Ctx, Layer, Layers};

/// An archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Archive {
    /// tar (ustar, GNU, pax).
    Tar,
    /// zip (and jar, whl, …).
    Zip,
}

impl fmt::Display for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Archive::Tar => "tar",
            Archive::Zip => "zip",
        })
    }
}

const BLOCK: usize = 512;
/// Longest GNU long name or pax header read (longer ones are skipped).
const MAX_META: u64 = 64 << 10;
const ZIP_LOCAL: u32 = 0x0403_4b50;
const ZIP_DESCRIPTOR: u32 = 0x0807_4b50;
/// Signatures after the last member: central directory, end records, ZIP64 end records.
const ZIP_TRAILERS: [u32; 4] = [0x0201_4b50, 0x0605_4b50, 0x0606_4b50, 0x0706_4b50];

/// The archive format of a stream starting with `head`, if any.
pub(crate) fn detect(head: &[u8]) -> Option<Archive> {
    if head.len() >= 4 && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == ZIP_LOCAL {
        return Some(Archive::Zip);
    }
    let block: &[u8; BLOCK] = head.get(..BLOCK)?.try_into().ok()?;
    TarHeader::parse(block).map(|_| Archive::Tar)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads exactly `buf.len()` bytes; false at a clean end before the first byte.
fn read_block(input: &mut dyn Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn skip(input: &mut dyn Read, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut input.take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// One tar header.
struct TarHeader {
    name: Vec<u8>,
    size: u64,
    kind: u8,
}

impl TarHeader {
    /// A valid ustar or GNU header (magic and checksum), or None.
    fn parse(b: &[u8; BLOCK]) -> Option<TarHeader> {
        let posix = &b[257..263] == b"ustar\0";
        if !posix && &b[257..265] != b"ustar  \0" {
            return None;
        }
        let sum: u64 = b
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(x)
                }
            })
            .sum();
        if octal(&b[148..156])? != sum {
            return None;
        }
        let size = if b[124] & 0x80 != 0 {
            b[125..136].iter().try_fold(0u64, |acc, &x| {
                acc.checked_mul(256)?.checked_add(u64::from(x))
            })?
        } else {
            octal(&b[124..136])?
        };
        let field = |r: std::ops::Range<usize>| {
            let f = &b[r];
            f[..f.iter().position(|&x| x == 0).unwrap_or(f.len())].to_vec()
        };
        let mut name = field(0..100);
        let prefix = if posix { field(345..500) } else { Vec::new() };
        if !prefix.is_empty() {
            name = [prefix, b"/".to_vec(), name].concat();
        }
        Some(TarHeader {
            name,
            size,
            kind: b[156],
        })
    }
}

/// An octal field (NUL- or space-terminated, leading spaces allowed).
fn octal(f: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(f).ok()?;
    let s = s.trim_matches(|c| c == ' ' || c == '\0');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The `path` of a pax extended header, if it has one.
fn pax_path(data: &[u8]) -> Option<Vec<u8>> {
    let mut rest = data;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        let record = rest.get(sp + 1..len)?;
        if let Some(v) = record.strip_prefix(b"path=") {
            return Some(v.strip_suffix(b"\n").unwrap_or(v).to_vec());
        }
        rest = &rest[len..];
    }
    None
}

/// Walks a tar stream, opening each regular member that starts with a format's magic.
pub(super) fn tar(ctx: &Ctx<'_>, input: &mut dyn BufRead, layers: &mut Layers) -> io::Result<()> {
    let mut block = [0u8; BLOCK];
    let mut next_name: Option<Vec<u8>> = None;
    let mut offset = 0u64;
    while read_block(input, &mut block)? {
        if block.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let h = TarHeader::parse(&block)
            .ok_or_else(|| invalid(format!("tar: no valid header at offset {offset}")))?;
        let padded = h
            .size
            .checked_next_multiple_of(BLOCK as u64)
            .ok_or_else(|| invalid(format!("tar: bad size at offset {offset}")))?;
        offset += BLOCK as u64 + padded;
        match h.kind {
            b'L' | b'x' if h.size <= MAX_META => {
                let mut data = Vec::new();
                (&mut *input).take(h.size).read_to_end(&mut data)?;
                skip(input, padded - data.len() as u64)?;
                next_name = if h.kind == b'L' {
                    Some(data.split(|&b| b == 0).next().unwrap_or(&[]).to_vec())
                } else {
                    pax_path(&data).or(next_name)
                };
            }
            b'0' | b'\0' | b'7' => {
                let name = next_name.take().unwrap_or(h.name);
                let layer = Layer::Member {
                    archive: Archive::Tar,
                    name: ctx.member_name(&name),
                };
                member(ctx, input, h.size, layer, layers)?;
                skip(input, padded - h.size)?;
            }
            _ => skip(input, padded)?,
        }
    }
    Ok(())
}

/// A member of `size` bytes stored as they are in its archive's stream: opened when it
/// starts with a format's magic; read to its end either way.
fn member(
    ctx: &Ctx<'_>,
    input: &mut dyn BufRead,
    size: u64,
    layer: Layer,
    layers: &mut Layers,
) -> io::Result<()> {
    let mut m = input.take(size);
    layers.0.push(layer);
    let r = layers::content(ctx, &mut m, layers);
    let r = r.and_then(|()| match m.limit() {
        0 => Ok(()),
        _ => Err(invalid("the archive ends inside this member".into())),
    });
    let r = ctx.settle(layers, r);
    layers.0.pop();
    r
}

/// A zip local file header's fields.
struct ZipEntry {
    flags: u16,
    method: u16,
    csize: u64,
    zip64: bool,
    name: Vec<u8>,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the rest of a local file header (after its signature).
fn zip_entry(input: &mut dyn Read) -> io::Result<ZipEntry> {
    let mut h = [0u8; 26];
    input.read_exact(&mut h)?;
    let (nlen, xlen) = (usize::from(le16(&h, 22)), usize::from(le16(&h, 24)));
    let mut name = vec![0u8; nlen];
    input.read_exact(&mut name)?;
    let mut extra = vec![0u8; xlen];
    input.read_exact(&mut extra)?;
    let mut csize = u64::from(le32(&h, 14));
    let mut zip64 = false;
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (le16(&extra, at), usize::from(le16(&extra, at + 2)));
        let body = extra.get(at + 4..at + 4 + len).unwrap_or(&[]);
        if id == 1 && body.len() >= 16 {
            zip64 = true;
            let mut c = [0u8; 8];
            c.copy_from_slice(&body[8..16]);
            if csize == u64::from(u32::MAX) {
                csize = u64::from_le_bytes(c);
            }
        }
        at += 4 + len;
    }
    Ok(ZipEntry {
        flags: le16(&h, 2),
        method: le16(&h, 4),
        csize,
        zip64,
        name,
    })
}

/// The decoder of a zip method; `Ok(None)` for stored.
fn zip_method(method: u16) -> Result<Option<Compression>, String> {
    match method {
        0 => Ok(None),
        8 => Ok(Some(Compression::Deflate)),
        12 => Ok(Some(Compression::Bzip2)),
        93 => Ok(Some(Compression::Zstd)),
        95 => Ok(Some(Compression::Xz)),
        m => Err(format!(
            "compression method {m} is not supported: not searched"
        )),
    }
}

/// Walks a zip stream's local headers, searching each compressed member decoded and opening
/// any member that starts with a format's magic.
pub(super) fn zip(ctx: &Ctx<'_>, input: &mut dyn BufRead, layers: &mut Layers) -> io::Result<()> {
    let mut sig = [0u8; 4];
    while read_block(input, &mut sig)? {
        let sig = u32::from_le_bytes(sig);
        if ZIP_TRAILERS.contains(&sig) {
            return Ok(());
        }
        if sig != ZIP_LOCAL {
            return Err(invalid(
                "zip: no member header where one was expected".into(),
            ));
        }
        let e = zip_entry(input)?;
        let layer = Layer::Member {
            archive: Archive::Zip,
            name: ctx.member_name(&e.name),
        };
        let descriptor = e.flags & 8 != 0;
        let sized = !descriptor || e.csize != 0;
        let method = zip_method(e.method);
        let refuse = match (&method, e.flags & 1 != 0) {
            (_, true) => Some("encrypted: not searched".to_string()),
            (Err(why), _) => Some(why.clone()),
            (Ok(None), _) if !sized => Some("stored with an unknown size".to_string()),
            (Ok(Some(c)), _) if !sized && *c != Compression::Deflate => {
                Some(format!("{c} with an unknown size"))
            }
            _ => None,
        };
        if let Some(why) = refuse {
            layers.0.push(layer);
            ctx.problem(layers, format!("zip member {why}"));
            layers.0.pop();
            if !sized {
                return Err(invalid("zip: the members after it were not opened".into()));
            }
            skip(input, e.csize)?;
        } else {
            zip_member(ctx, input, &e, method.ok().flatten(), sized, layer, layers)?;
        }
        if descriptor {
            skip_descriptor(input, e.zip64)?;
        }
    }
    Ok(())
}

/// One searchable zip member: stored ones are part of the zip's stream, the others are
/// decoded as a layer of their own.
fn zip_member(
    ctx: &Ctx<'_>,
    input: &mut dyn BufRead,
    e: &ZipEntry,
    method: Option<Compression>,
    sized: bool,
    layer: Layer,
    layers: &mut Layers,
) -> io::Result<()> {
    let Some(c) = method else {
        return member(ctx, input, e.csize, layer, layers);
    };
    layers.0.push(layer);
    let r = if sized {
        let mut m = input.take(e.csize);
        let r = layers::decoded(ctx, c, &mut m, layers);
        r.and_then(|()| io::copy(&mut m, &mut io::sink()).map(|_| ()))
    } else {
        // Deflate ends by itself: the decoder reads exactly its stream.
        layers::decoded(ctx, c, input, layers)
    };
    layers.0.pop();
    r
}

/// Skips a data descriptor: an optional signature, the CRC, and both sizes.
fn skip_descriptor(input: &mut dyn BufRead, zip64: bool) -> io::Result<()> {
    let sizes = if zip64 { 16 } else { 8 };
    let head = input.fill_buf()?;
    let signed = head.len() >= 4 && le32(head, 0) == ZIP_DESCRIPTOR;
    skip(input, if signed { 8 } else { 4 } + sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records() {
        let data = b"20 ctime=1700000000\n17 path=a/b/c.gz\n";
        assert_eq!(pax_path(data).unwrap(), b"a/b/c.gz");
        assert_eq!(pax_path(b"garbage"), None);
    }

    #[test]
    fn tar_header_checksum_and_sizes() {
        let mut b = [0u8; BLOCK];
        b[..5].copy_from_slice(b"x.txt");
        b[124..135].copy_from_slice(b"00000000012");
        b[156] = b'0';
        b[257..263].copy_from_slice(b"ustar\0");
        let sum: u64 = b.iter().map(|&x| u64::from(x)).sum::<u64>() + 8 * 32;
        b[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        let h = TarHeader::parse(&b).unwrap();
        assert_eq!(
            (h.name.as_slice(), h.size, h.kind),
            (b"x.txt".as_slice(), 10, b'0')
        );
        b[0] = b'y';
        assert!(
            TarHeader::parse(&b).is_none(),
            "a bad checksum is no header"
        );
    }
}
