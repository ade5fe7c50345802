//! Stores: parse and emit each file format around one [`Tree`].

use super::error::{Error, Result};
use super::metadata::take_sops;
use super::tree::{Bytes, Key, Map, Tree, Value};
use super::{Format, dotenv, json, yaml};

/// A parsed file: the data tree and, if present, the raw `sops` metadata value.
pub struct Parsed {
    /// The data (metadata removed).
    pub tree: Tree,
    /// The `sops` metadata, if the file has it.
    pub metadata: Option<Value>,
}

/// Parses a plaintext or encrypted file.
pub fn parse(b: &[u8], format: Format, origin: &str) -> Result<Parsed> {
    let mut docs = match format {
        Format::Yaml => yaml::parse(b, origin)?,
        Format::Json => vec![json::parse(b, origin)?],
        Format::Dotenv => {
            let mut m = dotenv::parse(b, origin)?;
            let md = dotenv::take_metadata(&mut m);
            return Ok(Parsed {
                tree: Tree { branches: vec![m] },
                metadata: md,
            });
        }
        Format::Binary => {
            // An encrypted binary file is a JSON envelope; anything else is raw data.
            if let Ok(m) = json::parse(b, origin) {
                if m.get("sops").is_some() {
                    vec![m]
                } else {
                    vec![raw_binary(b)]
                }
            } else {
                vec![raw_binary(b)]
            }
        }
    };
    if format == Format::Yaml
        && docs.iter().all(|d| d.0.is_empty())
        && b.iter().all(|c| c.is_ascii_whitespace())
    {
        return Err(Error::malformed(
            origin,
            "file is empty; it must contain at least one document",
        ));
    }
    let mut metadata = None;
    for d in &mut docs {
        while let Some(md) = take_sops(d) {
            if metadata.is_none() {
                metadata = Some(md);
            }
        }
    }
    Ok(Parsed {
        tree: Tree { branches: docs },
        metadata,
    })
}

fn raw_binary(b: &[u8]) -> Map {
    let mut m = Map::default();
    m.push("data", Value::Str(Bytes::new(b.to_vec())));
    m
}

/// Emits an encrypted tree with its metadata.
pub fn emit_encrypted(
    tree: &Tree,
    metadata: &Value,
    format: Format,
    origin: &str,
) -> Result<Vec<u8>> {
    match format {
        Format::Yaml => {
            let docs: Vec<Map> = tree
                .branches
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    d.push("sops", metadata.clone());
                    d
                })
                .collect();
            Ok(yaml::emit(&docs))
        }
        Format::Json | Format::Binary => {
            let mut d = tree.branches.first().cloned().unwrap_or_default();
            d.push("sops", metadata.clone());
            Ok(json::emit(&d))
        }
        Format::Dotenv => dotenv::emit(
            &tree.branches.first().cloned().unwrap_or_default(),
            Some(metadata),
            origin,
        ),
    }
}

/// Emits a decrypted tree as plaintext (binary: the raw bytes of `data`).
pub fn emit_plain(tree: &Tree, format: Format, origin: &str) -> Result<Vec<u8>> {
    match format {
        Format::Yaml => Ok(yaml::emit(&tree.branches)),
        Format::Json => Ok(json::emit(
            &tree.branches.first().cloned().unwrap_or_default(),
        )),
        Format::Dotenv => dotenv::emit(
            &tree.branches.first().cloned().unwrap_or_default(),
            None,
            origin,
        ),
        Format::Binary => match tree.branches.first().and_then(|m| m.get("data")) {
            Some(Value::Str(b)) => Ok(b.as_slice().to_vec()),
            _ => Err(Error::malformed(
                origin,
                "no binary data found in tree (no string `data` key)",
            )),
        },
    }
}

/// Checks sops' structural rules for a tree to be encrypted (no `sops` key).
pub fn check_plain(p: &Parsed, format: Format, origin: &str) -> Result<()> {
    if p.metadata.is_some() {
        return Err(Error::AlreadyEncrypted {
            origin: origin.to_string(),
        });
    }
    if format == Format::Dotenv {
        for (k, _) in p.tree.branches.iter().flat_map(|b| b.0.iter()) {
            if matches!(k, Key::Str(s) if s.starts_with("sops_")) {
                return Err(Error::AlreadyEncrypted {
                    origin: origin.to_string(),
                });
            }
        }
    }
    Ok(())
}
