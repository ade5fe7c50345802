//! Checks run at a pattern hit before it counts ([`Check`]): wrapped base64 matched across
//! line breaks, and key markers confirmed on the text around them. Both read at most
//! [`Context`] bytes around the hit; callers keep that much of the stream around a window.

use super::encode::MIN_WRAP_WIDTH;
use super::keys;
use super::patterns::{Check, Origin, PatternSet, Source};

/// Bytes of context a check may read before a hit's start and after its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Context {
    /// Before the hit.
    pub back: usize,
    /// After the hit.
    pub fwd: usize,
}

impl Context {
    /// The context the checks of `set` need.
    pub(crate) fn of(set: &PatternSet) -> Context {
        let wrapped = set.max_wrapped_len();
        let wrapped = wrapped + max_breaks(wrapped);
        // UTF-16 markers: twice the ASCII context, plus one unit of alignment.
        let key = 2 * keys::CONTEXT + 2;
        let n = wrapped.max(key);
        Context { back: n, fwd: n }
    }
}

/// Line-break bytes a wrapped text of `len` characters may hold (`\r\n` per line).
fn max_breaks(len: usize) -> usize {
    2 * (len / MIN_WRAP_WIDTH + 2)
}

/// Runs `origin`'s check on the hit `hay[start..end]`; returns the offset in `hay` where the
/// finding starts, or `None` when the check fails.
pub(crate) fn confirm(
    set: &PatternSet,
    origin: &Origin,
    hay: &[u8],
    start: usize,
    end: usize,
) -> Option<usize> {
    match origin.check {
        Check::None => Some(start),
        Check::Wrapped { full, at } => {
            let full = set.wrapped(full)?;
            wrapped(full, usize::try_from(at).ok()?, hay, start, end)
        }
        Check::Key { utf16 } => {
            let Source::Key(kind) = origin.source else {
                return None;
            };
            let back = match utf16 {
                None => {
                    let before = &hay[start.saturating_sub(keys::CONTEXT)..start];
                    let after = &hay[end..hay.len().min(end + keys::CONTEXT)];
                    keys::confirm(kind, before, after)?
                }
                Some(be) => {
                    let from = start - (start.min(2 * keys::CONTEXT) & !1);
                    let before = keys::narrow(&hay[from..start], be);
                    let to = hay.len().min(end + 2 * keys::CONTEXT);
                    let after = keys::narrow(&hay[end..to], be);
                    2 * keys::confirm(kind, &before, &after)?
                }
            };
            Some(start - back)
        }
    }
}

/// Matches the base64 text `full`, whose fragment at `at` is `hay[start..end]`, around the
/// hit with `\r` and `\n` skipped; returns where `full` starts in `hay` when at least one line
/// break falls inside it (an unbroken text is the plain base64 pattern's finding).
fn wrapped(full: &[u8], at: usize, hay: &[u8], start: usize, end: usize) -> Option<usize> {
    let limit = max_breaks(full.len());
    let mut breaks = 0;
    let mut i = start;
    for &want in full.get(..at)?.iter().rev() {
        loop {
            i = i.checked_sub(1)?;
            match hay[i] {
                b'\n' | b'\r' if breaks < limit => breaks += 1,
                b if b == want => break,
                _ => return None,
            }
        }
    }
    let first = i;
    let mut j = end;
    for &want in full.get(at + (end - start)..)? {
        loop {
            let b = *hay.get(j)?;
            j += 1;
            match b {
                b'\n' | b'\r' if breaks < limit => breaks += 1,
                b if b == want => break,
                _ => return None,
            }
        }
    }
    (breaks > 0).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_skips_breaks_and_needs_one() {
        let full = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        // Fragment "MNOPQRSTUVWX" at 12.
        let hay = b"..ABCDE\r\nFGHIJKLMNOPQRSTUVWX..";
        let start = 2 + 5 + 2 + 7;
        assert_eq!(wrapped(full, 12, hay, start, start + 12), Some(2));
        let flat = b"..ABCDEFGHIJKLMNOPQRSTUVWX..";
        assert_eq!(wrapped(full, 12, flat, 14, 26), None);
        let wrong = b"..ABCDX\r\nFGHIJKLMNOPQRSTUVWX..";
        assert_eq!(wrapped(full, 12, wrong, start, start + 12), None);
        // Fragment at 0, break after it.
        let hay = b"ABCDEFGHIJKLMN\nOPQRSTUVWX";
        assert_eq!(wrapped(full, 0, hay, 0, 12), Some(0));
        // Text cut by the end of the buffer.
        assert_eq!(wrapped(full, 0, b"ABCDEFGHIJKL\nMN", 0, 12), None);
    }
}
