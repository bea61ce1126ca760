//! Class II payloads at rest (DESIGN.md §4): collection keys, and sealing a payload with
//! XChaCha20-Poly1305 before it enters the Raft log or the private store.
//!
//! The node that accepts a class II submission checks the payload against the leaf's
//! commitment ([`gridledger_core::private::check_payload`]) and seals `salt || payload`
//! under its collection's key, with the leaf hash as associated data, so a sealed payload
//! cannot be moved to another leaf. The sealed bytes ride beside the leaf in the Raft
//! entry and land in `Cf::Private` on every replica; only nodes configured with the
//! collection's key can open them.
//!
//! Keys are files `<collection>.key` (64 hex digits) in the configured directory, handed
//! to the nodes of the collection's member orgs out of band (docs/OPERATIONS.md).

use std::collections::BTreeMap;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use gridledger_core::merkle::Hash;
use gridledger_core::private::SALT_LEN;

/// Bytes of the random nonce in front of each sealed payload.
pub const NONCE_LEN: usize = 24;
/// Associated-data domain.
const AAD_DOMAIN: &[u8] = b"gridledger/private/v1";

/// Errors of the private store.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// The node holds no key for the collection.
    #[error(
        "this node holds no key for collection {0:?}: class II payloads of that collection are \
         read and accepted only through nodes of its member orgs"
    )]
    NoKey(String),
    /// A key file is malformed.
    #[error("collection key {path}: {why}")]
    BadKey {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Decryption failed: wrong key, or the stored bytes were altered.
    #[error(
        "the sealed payload of leaf {0} does not open with this node's key (altered or sealed under another key)"
    )]
    Open(u64),
}

/// The collection keys this node holds.
#[derive(Default)]
pub struct CollectionKeys {
    keys: BTreeMap<String, [u8; 32]>,
}

impl std::fmt::Debug for CollectionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: never print key material.
        f.debug_struct("CollectionKeys")
            .field("collections", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CollectionKeys {
    /// Loads every `<name>.key` file of `dir` (a missing directory holds no keys).
    ///
    /// # Errors
    /// An unreadable directory or a malformed key file.
    pub fn load(dir: &Path) -> Result<Self, PrivateError> {
        let mut keys = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self { keys }),
            Err(e) => {
                return Err(PrivateError::BadKey {
                    path: dir.display().to_string(),
                    why: e.to_string(),
                });
            }
        };
        for e in entries.flatten() {
            let path = e.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".key"))
            else {
                continue;
            };
            let bad = |why: String| PrivateError::BadKey {
                path: path.display().to_string(),
                why,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            let bytes = hex::decode(text.trim()).map_err(|e| bad(format!("not hex: {e}")))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| bad("a collection key is 32 bytes (64 hex digits)".into()))?;
            keys.insert(name.to_string(), key);
        }
        Ok(Self { keys })
    }

    /// Keys given directly (tests).
    pub fn from_keys(keys: impl IntoIterator<Item = (String, [u8; 32])>) -> Self {
        Self {
            keys: keys.into_iter().collect(),
        }
    }

    /// Writes a fresh random key for `collection` into `dir` unless one exists (dev).
    ///
    /// # Errors
    /// I/O.
    pub fn ensure_key(dir: &Path, collection: &str) -> std::io::Result<()> {
        use rand::RngCore as _;
        let path = dir.join(format!("{collection}.key"));
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)?;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        crate::config::write_secret(&path, &hex::encode(k))
    }

    /// Names of the collections this node holds keys for.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    fn cipher(&self, collection: &str) -> Result<XChaCha20Poly1305, PrivateError> {
        let k = self
            .keys
            .get(collection)
            .ok_or_else(|| PrivateError::NoKey(collection.to_string()))?;
        Ok(XChaCha20Poly1305::new(k.into()))
    }

    /// Seals `salt || payload` for the leaf with hash `leaf_hash`: nonce || ciphertext.
    ///
    /// # Errors
    /// No key for the collection.
    pub fn seal(
        &self,
        collection: &str,
        leaf_hash: &Hash,
        salt: &[u8; SALT_LEN],
        payload: &[u8],
    ) -> Result<Vec<u8>, PrivateError> {
        use rand::RngCore as _;
        let cipher = self.cipher(collection)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let plain = [salt.as_slice(), payload].concat();
        let aad = [AAD_DOMAIN, leaf_hash.as_slice()].concat();
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
        Ok([nonce.as_slice(), &ct].concat())
    }

    /// Opens what [`Self::seal`] made: (salt, payload).
    ///
    /// # Errors
    /// No key, or the bytes do not authenticate (`index` names the leaf in the message).
    pub fn open(
        &self,
        collection: &str,
        leaf_hash: &Hash,
        index: u64,
        sealed: &[u8],
    ) -> Result<([u8; SALT_LEN], Vec<u8>), PrivateError> {
        let cipher = self.cipher(collection)?;
        if sealed.len() < NONCE_LEN + 16 + SALT_LEN {
            return Err(PrivateError::Open(index));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = [AAD_DOMAIN, leaf_hash.as_slice()].concat();
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| PrivateError::Open(index))?;
        let (salt, payload) = plain.split_at(SALT_LEN);
        Ok((
            salt.try_into().expect("split at SALT_LEN"),
            payload.to_vec(),
        ))
    }
}

/// Opens the class II record at leaf `index` of `ledger`: the leaf's collection and
/// commitment, and either the purge that deleted its payload or the salt and payload,
/// checked against the commitment (the store is not trusted either).
///
/// # Errors
/// NOT_FOUND for a leaf past the tree, FAILED_PRECONDITION when the leaf is not class II,
/// this node lacks the collection's key or the payload; INTERNAL when the stored bytes do
/// not open or match.
pub fn open_record<S: crate::store::Store>(
    ledger: &crate::ledger::Ledger<S>,
    keys: &CollectionKeys,
    index: u64,
) -> Result<gridledger_services::backend::PrivateRecord, gridledger_services::ServiceError> {
    use gridledger_core::metrology::keys as k;
    use gridledger_services::ServiceError;
    let leaf = ledger.entry(index)?.leaf;
    let (_, body) = gridledger_core::tx::decode(&leaf)
        .map_err(|e| ServiceError::Internal(format!("leaf {index} does not decode: {e}")))?;
    let Some(c) = gridledger_core::private::class_ii(&body) else {
        return Err(ServiceError::FailedPrecondition(format!(
            "leaf {index} is not a class II record"
        )));
    };
    let mut rec = gridledger_services::backend::PrivateRecord {
        leaf_index: index,
        record_type: c.record_type.to_string(),
        collection: c.collection.to_string(),
        commitment: c.commitment.to_vec(),
        purged_by: None,
        salt: Vec::new(),
        payload: Vec::new(),
    };
    if let Some((by, _)) = ledger.metrology_record(&k::purged(&hex::encode(c.commitment)))? {
        rec.purged_by = Some(by);
        return Ok(rec);
    }
    let sealed = ledger.sealed_payload(index)?.ok_or_else(|| {
        ServiceError::FailedPrecondition(format!(
            "this node does not hold the class II payload of leaf {index}"
        ))
    })?;
    let (salt, payload) = keys
        .open(
            c.collection,
            &gridledger_core::merkle::leaf_hash(&leaf),
            index,
            &sealed,
        )
        .map_err(|e| match e {
            PrivateError::NoKey(_) => ServiceError::FailedPrecondition(e.to_string()),
            e => ServiceError::Internal(e.to_string()),
        })?;
    if gridledger_core::private::commitment(&salt, &payload).as_slice() != c.commitment {
        return Err(ServiceError::Internal(format!(
            "the stored payload of leaf {index} does not match its commitment"
        )));
    }
    rec.salt = salt.to_vec();
    rec.payload = payload;
    Ok(rec)
}

/// The customer of meter `asset` according to its current binding on the ledger: `None`
/// when the meter has no binding, `Some("")` when the binding says vacant or its payload
/// was purged, else the account.
///
/// # Errors
/// As [`open_record`]: notably FAILED_PRECONDITION when this node holds no key for the
/// binding's collection.
pub fn current_customer<S: crate::store::Store>(
    ledger: &crate::ledger::Ledger<S>,
    keys: &CollectionKeys,
    asset: &str,
) -> Result<Option<String>, gridledger_services::ServiceError> {
    let Some((index, _)) =
        ledger.metrology_record(&gridledger_core::metrology::keys::binding(asset))?
    else {
        return Ok(None);
    };
    let rec = open_record(ledger, keys, index)?;
    if rec.purged_by.is_some() {
        return Ok(Some(String::new()));
    }
    let b = gridledger_core::private::decode_binding(&rec.payload).map_err(|e| {
        gridledger_services::ServiceError::Internal(format!("stored binding of leaf {index}: {e}"))
    })?;
    Ok(Some(b.account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_payloads_open_only_for_their_leaf_and_key() {
        let keys = CollectionKeys::from_keys([("readings".to_string(), [7u8; 32])]);
        let other = CollectionKeys::from_keys([("readings".to_string(), [8u8; 32])]);
        let leaf = [1u8; 32];
        let salt = [2u8; 32];
        let sealed = keys.seal("readings", &leaf, &salt, b"values").unwrap();
        assert_eq!(
            keys.open("readings", &leaf, 5, &sealed).unwrap(),
            (salt, b"values".to_vec())
        );
        // Another leaf, another key, an altered byte, a missing key: all refused.
        assert!(matches!(
            keys.open("readings", &[9u8; 32], 5, &sealed),
            Err(PrivateError::Open(5))
        ));
        assert!(other.open("readings", &leaf, 5, &sealed).is_err());
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(keys.open("readings", &leaf, 5, &bad).is_err());
        assert!(matches!(
            keys.seal("bindings", &leaf, &salt, b"x"),
            Err(PrivateError::NoKey(_))
        ));
        // Two seals of the same payload differ (fresh nonces).
        assert_ne!(
            sealed,
            keys.seal("readings", &leaf, &salt, b"values").unwrap()
        );
    }
}
