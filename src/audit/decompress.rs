//! Compression formats: recognised by their magic bytes (not their name) and decoded as a
//! stream, so a leak inside a `.gz` man page, an `.xz` kernel module or a `.zst` / `.bz2` /
//! `.lzma` asset is found. Nested layers, tar and zip members are opened by
//! [`super::layers`], which also bounds their depth and total size.
//!
//! * Formats: gzip (all members), xz (all streams), legacy `.lzma` (lzma_alone), zstd (all
//!   frames), bzip2 (all streams); raw deflate only as a zip member's method (it has no magic).
//! * Crates: `flate2` (zlib-rs backend), `ruzstd`, `bzip2` (its default `libbz2-rs-sys`
//!   backend): pure Rust. xz and lzma go through `liblzma` (the maintained fork of `xz2`, C
//!   liblzma): the pure-Rust `lzma-rs` decoded at half its speed (measured: 62 MB of the
//!   bench's xz files in 4.3 s against 2.1 s, one thread, same load), and xz is the format of
//!   most compressed kernel modules and firmware in a NixOS closure. Its decoders run with a
//!   memory limit of [`XZ_MEMLIMIT`] (a stream that needs more is reported, not decoded).

use std::fmt;
use std::io::{self, BufRead, Read};

/// Most decompressed bytes searched per file, all nested layers together (4 GiB).
pub(crate) const MAX_DECOMPRESSED: u64 = 4 << 30;
/// Memory limit of one xz or lzma decoder (`xz -9` needs 65 MiB).
pub(crate) const XZ_MEMLIMIT: u64 = 128 << 20;

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Compression {
    /// gzip (RFC 1952), deflate method.
    Gzip,
    /// xz.
    Xz,
    /// Zstandard.
    Zstd,
    /// bzip2.
    Bzip2,
    /// Legacy `.lzma` (the lzma_alone format of LZMA Utils and `xz --format=lzma`).
    Lzma,
    /// Raw deflate (RFC 1951): only a zip member's method, never detected.
    Deflate,
}

impl Compression {
    /// The format's name: `gzip`, `xz`, `zstd`, `bzip2`, `lzma`, `deflate`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Deflate => "deflate",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The format of a file starting with `head`, from its magic bytes.
pub(crate) fn detect(head: &[u8]) -> Option<Compression> {
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        Some(Compression::Gzip)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(Compression::Xz)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        && head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
    {
        Some(Compression::Bzip2)
    } else if is_lzma_alone(head) {
        Some(Compression::Lzma)
    } else {
        None
    }
}

/// The lzma_alone header, which has no magic: the properties byte `0x5d` (lc=3, lp=0, pb=2,
/// what every encoder writes), a dictionary size of `2^n` or `2^n + 2^(n-1)` (n ≥ 12, as
/// liblzma's decoder requires), an uncompressed size that is unknown (all ones) or under
/// 2^38, and the range coder's first byte, always 0. Random data passes with odds of about
/// 1 in 2^50.
fn is_lzma_alone(head: &[u8]) -> bool {
    if head.len() < 14 || head[0] != 0x5d || head[13] != 0 {
        return false;
    }
    let dict = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let mut size = [0u8; 8];
    size.copy_from_slice(&head[5..13]);
    let size = u64::from_le_bytes(size);
    let n = 31 - dict.leading_zeros().min(31);
    let pow = dict.is_power_of_two();
    let pow_half = n >= 1 && dict == (1 << n) | (1 << (n - 1));
    dict >= 1 << 12 && (pow || pow_half) && (size == u64::MAX || size < 1 << 38)
}

/// A decoder of `format` reading the compressed bytes from `input`. Decoders consume only
/// the bytes of their stream (zip members are delimited this way), except that gzip, xz,
/// bzip2 and zstd read every concatenated stream or frame that follows.
pub(crate) fn decoder<'a>(
    format: Compression,
    input: impl BufRead + 'a,
) -> io::Result<Box<dyn Read + 'a>> {
    use liblzma::stream::{CONCATENATED, Stream};
    let lzma = |e: liblzma::stream::Error| io::Error::other(e.to_string());
    Ok(match format {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Deflate => Box::new(flate2::bufread::DeflateDecoder::new(input)),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(input)),
        Compression::Xz => {
            let stream = Stream::new_stream_decoder(XZ_MEMLIMIT, CONCATENATED).map_err(lzma)?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(input, stream))
        }
        Compression::Lzma => {
            let stream = Stream::new_lzma_decoder(XZ_MEMLIMIT).map_err(lzma)?;
            Box::new(liblzma::bufread::XzDecoder::new_stream(input, stream))
        }
        Compression::Zstd => Box::new(ZstdFrames {
            frame: None,
            idle: Some(input),
        }),
    })
}

type ZstdFrame<R> = ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>;

/// Every zstd frame of a stream, one after the other.
struct ZstdFrames<R: BufRead> {
    frame: Option<ZstdFrame<R>>,
    /// The input between frames (None once it failed).
    idle: Option<R>,
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(f) = &mut self.frame {
                let n = f.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            if let Some(f) = self.frame.take() {
                self.idle = Some(f.into_inner());
            }
            let Some(mut input) = self.idle.take() else {
                return Ok(0);
            };
            if input.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(input)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            self.frame = Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(detect(b"\x1f\x8b\x08\x00"), Some(Compression::Gzip));
        assert_eq!(detect(b"\xfd7zXZ\x00\x00"), Some(Compression::Xz));
        assert_eq!(detect(b"\x28\xb5\x2f\xfd\x00"), Some(Compression::Zstd));
        assert_eq!(detect(b"BZh91AY&SY\x00"), Some(Compression::Bzip2));
        assert_eq!(detect(b"BZh9 not bzip"), None);
        assert_eq!(detect(b"plain text"), None);
    }

    #[test]
    fn lzma_alone_headers() {
        let mut h = vec![
            0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
        ];
        assert_eq!(detect(&h), Some(Compression::Lzma));
        h[3] = 0xc0; // 12 MiB: 2^23 + 2^22
        assert_eq!(detect(&h), Some(Compression::Lzma));
        h[3] = 0x81; // not a power of two (or one and a half)
        assert_eq!(detect(&h), None);
        h[3] = 0x80;
        h[13] = 1; // the range coder's first byte
        assert_eq!(detect(&h), None);
    }

    #[test]
    fn gzip_round_trip_and_corrupt_data() {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello compressed world").unwrap();
        let mut data = enc.finish().unwrap();
        let mut out = Vec::new();
        decoder(Compression::Gzip, data.as_slice())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello compressed world");
        data.truncate(data.len() - 12);
        let err = decoder(Compression::Gzip, data.as_slice())
            .unwrap()
            .read_to_end(&mut Vec::new());
        assert!(err.is_err());
    }
}
