//! A minimal ustar writer: the framing of push-keys' stdin stream. Remote `tar -x` (GNU,
//! busybox and bsdtar all read ustar) splits the stream back into files, so no length parsing
//! happens in shell. The archive is built in a zeroizing buffer because it holds key bytes.

use zeroize::Zeroizing;

const BLOCK: usize = 512;

/// Builds a ustar archive of regular files `(name, mode, bytes)`, owned by uid/gid 0, mtime 0.
/// Names must be short (< 100 bytes) single path components; the caller controls them.
pub(crate) fn archive(files: &[(&str, u32, &[u8])]) -> Zeroizing<Vec<u8>> {
    let total: usize = files
        .iter()
        .map(|(_, _, b)| BLOCK + b.len().div_ceil(BLOCK) * BLOCK)
        .sum::<usize>()
        + 2 * BLOCK;
    let mut out = Zeroizing::new(Vec::with_capacity(total));
    for (name, mode, bytes) in files {
        out.extend_from_slice(&header(name, *mode, bytes.len()));
        out.extend_from_slice(bytes);
        let pad = bytes.len().div_ceil(BLOCK) * BLOCK - bytes.len();
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
    out
}

fn header(name: &str, mode: u32, size: usize) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = name.as_bytes();
    let len = n.len().min(99);
    h[..len].copy_from_slice(&n[..len]);
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size as u64);
    octal(&mut h[136..148], 0);
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    octal(&mut h[148..155], sum as u64);
    h
}

/// Writes `v` as zero-padded octal digits followed by a NUL, filling `field`.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// The tests' one "is this tool here?" helper (a missing `tar` fails in CI instead of skipping).
#[cfg(test)]
#[allow(dead_code, unreachable_pub)] // shared with the integration tests, which use all of it
#[path = "../../tests/util/ci.rs"]
mod ci;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_tar_reads_it() {
        if !super::ci::require("tar") {
            return;
        }
        let out = crate::child::command("tar")
            .arg("--version")
            .output()
            .expect("run tar --version");
        assert!(out.status.success());
        let d = tempfile::tempdir().unwrap();
        let big = vec![7u8; 1500];
        let a = archive(&[("a", 0o600, b"hello\n"), ("b.pub", 0o644, &big)]);
        assert_eq!(a.len() % 512, 0);
        let mut child = crate::child::command("tar")
            .args(["-x", "-o", "-f", "-", "-C"])
            .arg(d.path())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&a).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read(d.path().join("a")).unwrap(), b"hello\n");
        assert_eq!(std::fs::read(d.path().join("b.pub")).unwrap(), big);
    }
}
