//! Reading `$out` back: every declared file, each a regular file (no symlink, no directory),
//! none larger than the output limit. As clan, anything else the script leaves in `$out` is
//! discarded with one warning line on stderr (names only); a missing declared file is an error.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use indexmap::IndexMap;

use super::sandbox::{Error, Files};
use crate::secret::SecretBytes;
use crate::workspace::Generator;

/// Reads `$out` of generator `g` (run by `who`), each file at most `max` bytes.
pub(crate) fn collect(g: &Generator, out_dir: &Path, who: &str, max: u64) -> Result<Files, Error> {
    let found = scan(g, out_dir, who)?;
    let mut files = IndexMap::new();
    for name in g.files.keys() {
        if !found.contains(name) {
            return Err(bad(
                who,
                format!("declared file {name} was not produced in $out"),
            ));
        }
        files.insert(
            name.clone(),
            read_bounded(&out_dir.join(name), who, name, max)?,
        );
    }
    Ok(files)
}

fn bad(who: &str, msg: String) -> Error {
    Error::Outputs {
        who: who.to_string(),
        msg,
    }
}

/// Declared names in `$out`, each checked to be a regular file; undeclared entries are
/// ignored (one warning line names them).
fn scan(g: &Generator, out_dir: &Path, who: &str) -> Result<HashSet<String>, Error> {
    let mut found = HashSet::new();
    let mut ignored: Vec<String> = Vec::new();
    let rd = std::fs::read_dir(out_dir).map_err(super::sandbox::io(who, "reading $out"))?;
    for entry in rd {
        let entry = entry.map_err(super::sandbox::io(who, "reading $out"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(super::sandbox::io(who, format!("reading $out/{name}")))?;
        let kind = if meta.file_type().is_symlink() {
            "a symlink"
        } else if meta.is_dir() {
            "a directory"
        } else if !meta.is_file() {
            "not a regular file"
        } else {
            ""
        };
        if !g.files.contains_key(&name) {
            ignored.push(crate::term::escape_controls(&name));
            continue;
        }
        if !kind.is_empty() {
            return Err(bad(
                who,
                format!("$out/{name} is {kind}, not a regular file"),
            ));
        }
        found.insert(name);
    }
    if !ignored.is_empty() {
        ignored.sort();
        eprintln!(
            "warning: {who}: discarded undeclared $out entries: {}",
            ignored.join(", ")
        );
    }
    Ok(found)
}

/// Reads one output (never following a symlink swapped in after the scan), at most `max` bytes.
fn read_bounded(path: &Path, who: &str, name: &str, max: u64) -> Result<SecretBytes, Error> {
    let what = || format!("reading $out/{name}");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(super::sandbox::io(who, what()))?;
    let len = f.metadata().map_err(super::sandbox::io(who, what()))?.len();
    if len > max {
        return Err(bad(
            who,
            format!(
                "$out/{name} is {len} bytes, more than the output limit of {max} bytes (--max-output)"
            ),
        ));
    }
    let mut buf = Vec::with_capacity(len as usize + 1);
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(super::sandbox::io(who, what()))?;
    let buf = SecretBytes::new(buf);
    if buf.len() as u64 > max {
        return Err(bad(
            who,
            format!("$out/{name} is more than the output limit of {max} bytes (--max-output)"),
        ));
    }
    Ok(buf)
}
