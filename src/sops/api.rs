//! High-level operations: encrypt, decrypt (with MAC verification), recipients, update keys.

use indexmap::IndexMap;
use zeroize::Zeroizing;

use super::crypto::{self, DataKey, OpenError, Sealer};
use super::error::{Error, Result};
use super::gofmt;
use super::metadata::{AgeKey, Metadata, VERSION};
use super::rules::CryptRule;
use super::store::{self, Parsed};
use super::tree::{Bytes, Key, Map, Tree, Value};
use super::{Format, walk};
use crate::keys::Identities;

/// How to encrypt a file.
#[derive(Debug, Clone, Default)]
pub struct EncryptOptions {
    /// age recipients (`age1…` or `ssh-ed25519 …`), one `enc` blob each, in this order.
    pub recipients: Vec<String>,
    /// The crypt rule (default: `unencrypted_suffix: _unencrypted`).
    pub rule: Option<CryptRule>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

/// A decrypted file: the plaintext tree and the metadata it had.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext tree.
    pub tree: Tree,
    /// The metadata.
    pub metadata: Metadata,
    /// The data key (zeroized on drop).
    pub data_key: DataKey,
}

/// Encrypts plaintext file bytes in `format`, as `sops encrypt` does.
pub fn encrypt(
    plain: &[u8],
    format: Format,
    opts: &EncryptOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    let p = store::parse(plain, format, origin)?;
    store::check_plain(&p, format, origin)?;
    encrypt_tree(p.tree, format, opts, origin)
}

/// Encrypts a plaintext tree and emits it in `format`.
pub fn encrypt_tree(
    tree: Tree,
    format: Format,
    opts: &EncryptOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    encrypt_tree_with(tree, format, opts, &store::StoreOptions::default(), origin)
}

/// Encrypts plaintext file bytes, writing with the `.sops.yaml` `stores:` settings.
pub(crate) fn encrypt_with(
    plain: &[u8],
    format: Format,
    opts: &EncryptOptions,
    stores: &store::StoreOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    let p = store::parse(plain, format, origin)?;
    store::check_plain(&p, format, origin)?;
    encrypt_tree_with(p.tree, format, opts, stores, origin)
}

/// [`encrypt_tree`] with `stores:` settings.
pub(crate) fn encrypt_tree_with(
    mut tree: Tree,
    format: Format,
    opts: &EncryptOptions,
    stores: &store::StoreOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    if opts.recipients.is_empty() {
        return Err(Error::malformed(origin, "no age recipients given"));
    }
    let key = crypto::new_data_key();
    let age = wrap_for(&key, &opts.recipients, origin)?;
    let (rule, implicit) = match format {
        Format::Binary => (CryptRule::All, true),
        _ => (opts.rule.clone().unwrap_or_default(), false),
    };
    let mac_only = opts.mac_only_encrypted && format != Format::Binary;
    let mac_plain = walk::encrypt_tree(&mut tree, &key, &rule, mac_only, origin)?;
    let lastmodified = gofmt::now_rfc3339();
    let mac = Sealer::new(&key).seal(mac_plain.as_bytes(), lastmodified.as_bytes(), "str");
    let md = Metadata {
        age,
        lastmodified,
        mac,
        rule,
        rule_implicit: implicit,
        mac_only_encrypted: mac_only,
        version: VERSION.to_string(),
    };
    store::emit_encrypted_with(&tree, &md.to_value(), format, stores, origin)
}

pub(super) fn load(file: &[u8], format: Format, origin: &str) -> Result<(Parsed, Metadata)> {
    let p = store::parse(file, format, origin)?;
    let md = p.metadata.as_ref().ok_or_else(|| Error::NoMetadata {
        origin: origin.to_string(),
    })?;
    let md = Metadata::from_value(md, origin)?;
    Ok((p, md))
}

pub(super) fn data_key(md: &Metadata, ids: &Identities, origin: &str) -> Result<DataKey> {
    if md.age.is_empty() {
        return Err(Error::malformed(
            origin,
            "no age keys found in the sops metadata",
        ));
    }
    for a in &md.age {
        if !a
            .enc
            .trim_end()
            .ends_with("-----END AGE ENCRYPTED FILE-----")
        {
            return Err(Error::malformed(
                origin,
                format!("the age key for {} is truncated or malformed", a.recipient),
            ));
        }
    }
    for a in &md.age {
        if let Some(k) = crypto::unwrap_key(ids, &a.enc) {
            return Ok(k);
        }
    }
    Err(Error::NoIdentity {
        origin: origin.to_string(),
        recipients: md
            .age
            .iter()
            .map(|a| a.recipient.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        searched: if ids.searched.is_empty() {
            format!("{} identities", ids.len())
        } else {
            ids.searched.join(", ")
        },
    })
}

/// Decrypts a sops file and verifies its MAC.
pub fn decrypt(file: &[u8], format: Format, ids: &Identities, origin: &str) -> Result<Decrypted> {
    let (p, md) = load(file, format, origin)?;
    let key = data_key(&md, ids, origin)?;
    let mut tree = p.tree;
    let computed = walk::decrypt_tree(&mut tree, &key, &md.rule, md.mac_only_encrypted, origin)?;
    verify_mac(&md, &key, &computed, origin)?;
    Ok(Decrypted {
        tree,
        metadata: md,
        data_key: key,
    })
}

pub(super) fn verify_mac(
    md: &Metadata,
    key: &[u8; 32],
    computed: &str,
    origin: &str,
) -> Result<()> {
    if md.mac.is_empty() {
        return Err(Error::mac(
            origin,
            "MAC mismatch: the file has no MAC (sops.mac is missing or empty)",
        ));
    }
    let aad = gofmt::rfc3339_seconds(&md.lastmodified)
        .ok_or_else(|| Error::malformed(origin, "sops.lastmodified is not an RFC 3339 time"))?;
    let (stored, _) =
        crypto::open(key, md.mac.as_bytes(), aad.as_bytes()).map_err(|e| match e {
            OpenError::Malformed(why) => {
                Error::malformed(origin, format!("sops.mac is malformed ({why})"))
            }
            OpenError::Auth => Error::mac(
                origin,
                "cannot decrypt the MAC (sops.mac or sops.lastmodified was changed)",
            ),
        })?;
    if stored.as_slice() != computed.as_bytes() {
        return Err(Error::mac(
            origin,
            "MAC mismatch: values were changed, reordered, added or removed since the file was written",
        ));
    }
    Ok(())
}

/// Decrypts, verifies and emits the plaintext as `sops decrypt` prints it.
pub fn decrypt_to_plaintext(
    file: &[u8],
    format: Format,
    ids: &Identities,
    origin: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let d = decrypt(file, format, ids, origin)?;
    Ok(Zeroizing::new(store::emit_plain(&d.tree, format, origin)?))
}

/// See [`super::encrypt_flat_yaml`].
pub(super) fn encrypt_flat_yaml(
    entries: &[(String, &[u8])],
    recipients: &[String],
) -> Result<Vec<u8>> {
    let mut m = Map::default();
    for (k, v) in entries {
        if m.get(k).is_some() {
            return Err(Error::malformed(
                "<flat secrets>",
                format!("duplicate key {k:?}"),
            ));
        }
        m.push(k, Value::Str(Bytes::new(v.to_vec())));
    }
    let opts = EncryptOptions {
        recipients: recipients.to_vec(),
        ..Default::default()
    };
    encrypt_tree(
        Tree { branches: vec![m] },
        Format::Yaml,
        &opts,
        "<flat secrets>",
    )
}

/// See [`super::decrypt_flat`].
pub(super) fn decrypt_flat(
    file: &[u8],
    format: Format,
    ids: &Identities,
    origin: &str,
) -> Result<IndexMap<String, Zeroizing<Vec<u8>>>> {
    let d = decrypt(file, format, ids, origin)?;
    let mut out = IndexMap::new();
    for b in &d.tree.branches {
        for (k, v) in &b.0 {
            let Key::Str(k) = k else { continue };
            let bytes = match v {
                Value::Str(s) => Zeroizing::new(s.as_slice().to_vec()),
                Value::Map(_) | Value::Seq(_) => {
                    return Err(Error::malformed(
                        origin,
                        format!("key {k:?} holds a nested value; expected a flat file of strings"),
                    ));
                }
                Value::Null => Zeroizing::new(Vec::new()),
                Value::Bool(b) => Zeroizing::new(b.to_string().into_bytes()),
                Value::Float(f) => Zeroizing::new(gofmt::format_float_g(*f).into_bytes()),
                other => other.to_bytes(),
            };
            out.insert(k.clone(), bytes);
        }
    }
    Ok(out)
}

/// See [`super::recipients`].
pub(super) fn recipients(file: &[u8], format: Format, origin: &str) -> Result<Vec<String>> {
    let (_, md) = load(file, format, origin)?;
    Ok(md.age.into_iter().map(|a| a.recipient).collect())
}

/// See [`super::update_keys`].
pub(super) fn update_keys(
    file: &[u8],
    format: Format,
    ids: &Identities,
    recipients: &[String],
    origin: &str,
) -> Result<Vec<u8>> {
    if recipients.is_empty() {
        return Err(Error::malformed(origin, "no age recipients given"));
    }
    let (p, mut md) = load(file, format, origin)?;
    let key = data_key(&md, ids, origin)?;
    let age = wrap_for(&key, recipients, origin)?;
    md.age = age;
    store::emit_encrypted(&p.tree, &md.to_value(), format, origin)
}

/// Wraps the data key for each recipient (one armored age file each, in the given order).
pub(super) fn wrap_for(
    key: &crypto::DataKey,
    recipients: &[String],
    origin: &str,
) -> Result<Vec<AgeKey>, Error> {
    recipients
        .iter()
        .map(|r| {
            let r = r.trim();
            let enc = crypto::wrap_key(key, r).map_err(|source| Error::Key {
                origin: origin.to_string(),
                cause: source,
            })?;
            Ok(AgeKey {
                recipient: r.to_string(),
                enc,
            })
        })
        .collect()
}
