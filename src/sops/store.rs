//! Stores: parse and emit each file format around one [`Tree`].

use super::error::{Error, Result};
use super::metadata::take_sops;
use super::tree::{Bytes, Key, Map, Tree, Value};
use super::{Format, dotenv, json, yaml};

/// Output settings of the stores (`.sops.yaml` `stores:`). Defaults: YAML indent 4, JSON
/// and binary-envelope indent -1 (a tab); a JSON indent n >= 0 means n spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// `stores.yaml.indent` (0 = default 4).
    pub yaml_indent: usize,
    /// `stores.json.indent`.
    pub json_indent: i64,
    /// `stores.json_binary.indent`.
    pub json_binary_indent: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            yaml_indent: 0,
            json_indent: -1,
            json_binary_indent: -1,
        }
    }
}

impl StoreOptions {
    fn yaml(&self, docs: &[Map]) -> Vec<u8> {
        match self.yaml_indent {
            0 => yaml::emit(docs),
            n => yaml::emit_indented(docs, n),
        }
    }
    fn json(&self, m: &Map, binary: bool) -> Vec<u8> {
        let i = if binary {
            self.json_binary_indent
        } else {
            self.json_indent
        };
        match usize::try_from(i) {
            Ok(n) => json::emit_indented(m, &" ".repeat(n)),
            Err(_) => json::emit(m),
        }
    }
}

fn ini_unsupported(origin: &str) -> Error {
    Error::malformed(
        origin,
        "INI files are not supported (sops' INI store is not implemented); \
         use --input-type binary to keep the file as one encrypted value",
    )
}

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
            let md = dotenv::take_metadata(&mut m, origin)?;
            return Ok(Parsed {
                tree: Tree { branches: vec![m] },
                metadata: md,
            });
        }
        Format::Ini => return Err(ini_unsupported(origin)),
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
pub(crate) fn emit_encrypted(
    tree: &Tree,
    metadata: &Value,
    format: Format,
    origin: &str,
) -> Result<Vec<u8>> {
    emit_encrypted_with(tree, metadata, format, &StoreOptions::default(), origin)
}

/// [`emit_encrypted`] with `stores:` settings.
pub(crate) fn emit_encrypted_with(
    tree: &Tree,
    metadata: &Value,
    format: Format,
    opts: &StoreOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    match format {
        Format::Ini => Err(ini_unsupported(origin)),
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
            Ok(opts.yaml(&docs))
        }
        Format::Json | Format::Binary => {
            let mut d = tree.branches.first().cloned().unwrap_or_default();
            d.push("sops", metadata.clone());
            Ok(opts.json(&d, format == Format::Binary))
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
    emit_plain_with(tree, format, &StoreOptions::default(), origin)
}

/// [`emit_plain`] with `stores:` settings.
pub(crate) fn emit_plain_with(
    tree: &Tree,
    format: Format,
    opts: &StoreOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    match format {
        Format::Ini => Err(ini_unsupported(origin)),
        Format::Yaml => Ok(opts.yaml(&tree.branches)),
        Format::Json => Ok(opts.json(&tree.branches.first().cloned().unwrap_or_default(), false)),
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
pub(crate) fn check_plain(p: &Parsed, format: Format, origin: &str) -> Result<()> {
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
