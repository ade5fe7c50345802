//! The file-level operations behind `varsmith sops edit|set|unset|rotate|filestatus`:
//! open a file (decrypt, verify, remember IVs), change its tree, and seal it again.
//!
//! Invariants: a file is only re-sealed after its MAC verified; re-sealing keeps the data
//! key, recipients, crypt rule and `mac_only_encrypted`, writes a new `lastmodified` and
//! MAC, and reuses the IV of every unchanged value (so its ciphertext is byte-identical, as
//! with sops). `rotate` draws a new data key (IVs are still reused, as sops does: harmless
//! under a new key).

use super::api::{data_key, load, verify_mac, wrap_for};
use super::crypto::{self, DataKey, IvStash};
use super::error::{Error, Result};
use super::gofmt;
use super::metadata::Metadata;
use super::store::{self, StoreOptions};
use super::tree::Tree;
use super::{Format, walk};
use crate::keys::Identities;

/// A decrypted, verified file ready to be changed and sealed again.
pub(crate) struct Opened {
    /// The plaintext tree.
    pub tree: Tree,
    /// The metadata it had.
    pub metadata: Metadata,
    key: DataKey,
    stash: IvStash,
}

/// Decrypts `file` and verifies its MAC, remembering each value's IV.
pub(crate) fn open(file: &[u8], format: Format, ids: &Identities, origin: &str) -> Result<Opened> {
    let (p, metadata) = load(file, format, origin)?;
    let key = data_key(&metadata, ids, origin)?;
    let mut tree = p.tree;
    let (mac, stash) = walk::decrypt_tree_stashing(
        &mut tree,
        &key,
        &metadata.rule,
        metadata.mac_only_encrypted,
        origin,
    )?;
    verify_mac(&metadata, &key, &mac, origin)?;
    Ok(Opened {
        tree,
        metadata,
        key,
        stash,
    })
}

impl Opened {
    /// The file's data key, for a MAC bound to this file (only holders of an identity that
    /// decrypts it can compute one: see `crate::store::rotation`).
    pub(crate) fn data_key(&self) -> &DataKey {
        &self.key
    }

    /// Encrypts `tree` (the edited plaintext) with this file's data key and metadata.
    pub(crate) fn seal(
        self,
        tree: Tree,
        format: Format,
        stores: &StoreOptions,
        origin: &str,
    ) -> Result<Vec<u8>> {
        let Opened {
            metadata,
            key,
            stash,
            ..
        } = self;
        seal_with(tree, metadata, &key, stash, format, stores, origin)
    }

    /// `rotate`: a new data key for the same tree, wrapped for `recipients` (the file's own
    /// when empty).
    pub(crate) fn rotate(
        self,
        recipients: &[String],
        format: Format,
        stores: &StoreOptions,
        origin: &str,
    ) -> Result<Vec<u8>> {
        let Opened {
            tree,
            mut metadata,
            stash,
            ..
        } = self;
        let key = crypto::new_data_key();
        let rs: Vec<String> = if recipients.is_empty() {
            metadata.age.iter().map(|a| a.recipient.clone()).collect()
        } else {
            recipients.to_vec()
        };
        if rs.is_empty() {
            return Err(Error::malformed(origin, "no age recipients left"));
        }
        metadata.age = wrap_for(&key, &rs, origin)?;
        seal_with(tree, metadata, &key, stash, format, stores, origin)
    }

    /// The recipients of the file, in order.
    pub(crate) fn recipients(&self) -> Vec<String> {
        self.metadata
            .age
            .iter()
            .map(|a| a.recipient.clone())
            .collect()
    }
}

fn seal_with(
    mut tree: Tree,
    mut metadata: Metadata,
    key: &[u8; 32],
    stash: IvStash,
    format: Format,
    stores: &StoreOptions,
    origin: &str,
) -> Result<Vec<u8>> {
    let mac = walk::encrypt_tree_reusing(
        &mut tree,
        key,
        stash,
        &metadata.rule,
        metadata.mac_only_encrypted,
        origin,
    )?;
    metadata.lastmodified = gofmt::now_rfc3339();
    metadata.version = super::metadata::VERSION.to_string();
    metadata.mac =
        crypto::Sealer::new(key).seal(mac.as_bytes(), metadata.lastmodified.as_bytes(), "str");
    store::emit_encrypted_with(&tree, &metadata.to_value(), format, stores, origin)
}

/// `filestatus`: whether `file` is a sops file (has sops metadata). A file that does not
/// parse in `format` is an error.
pub(crate) fn is_encrypted(file: &[u8], format: Format, origin: &str) -> Result<bool> {
    match load(file, format, origin) {
        Ok(_) => Ok(true),
        Err(Error::NoMetadata { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}
