//! Block headers and their hash.
//!
//! Canonical header bytes (all integers big-endian):
//!
//! ```text
//! version      u8   = 1
//! height       u64  (first block is 1)
//! prev_hash    [32] (all zero for block 1)
//! first_index  u64  index of the block's first leaf
//! leaf_count   u64
//! tree_size    u64  = first_index + leaf_count
//! root         [32] RFC 9162 root at tree_size
//! timestamp_ms u64  proposer's clock, ms since the Unix epoch
//! proposer_len u16, proposer UTF-8 bytes
//! ```
//!
//! Block hash = SHA-256(0x02 || header bytes). The prefix 0x02 keeps block hashes apart
//! from RFC 9162 leaf (0x00) and node (0x01) hashes. A later version adds the state root.

use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Domain separator of block hashes.
pub const BLOCK_HASH_PREFIX: u8 = 0x02;
/// Header format version written by this code.
pub const BLOCK_VERSION: u8 = 1;

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHeader {
    /// Height, from 1.
    pub height: u64,
    /// Hash of the previous block (zero for height 1).
    pub prev_hash: Hash,
    /// First leaf index in this block.
    pub first_index: u64,
    /// Leaves in this block.
    pub leaf_count: u64,
    /// Tree size after this block.
    pub tree_size: u64,
    /// Root after this block.
    pub root: Hash,
    /// Proposer's timestamp (ms since epoch); the time contracts see.
    pub timestamp_ms: u64,
    /// Node id of the proposer.
    pub proposer: String,
}

/// Why header bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed block header: {0}")]
pub struct BlockError(pub String);

impl BlockHeader {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let p = self.proposer.as_bytes();
        let mut b = Vec::with_capacity(1 + 8 + 32 + 24 + 32 + 8 + 2 + p.len());
        b.push(BLOCK_VERSION);
        b.extend_from_slice(&self.height.to_be_bytes());
        b.extend_from_slice(&self.prev_hash);
        b.extend_from_slice(&self.first_index.to_be_bytes());
        b.extend_from_slice(&self.leaf_count.to_be_bytes());
        b.extend_from_slice(&self.tree_size.to_be_bytes());
        b.extend_from_slice(&self.root);
        b.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        let len =
            u16::try_from(p.len()).expect("proposer ids are short; config validation bounds them");
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(p);
        b
    }

    /// Decodes canonical bytes.
    ///
    /// # Errors
    /// [`BlockError`] on a wrong version, length or field.
    pub fn decode(b: &[u8]) -> Result<Self, BlockError> {
        let bad = |m: &str| BlockError(m.to_string());
        if b.len() < 107 {
            return Err(bad("too short"));
        }
        if b[0] != BLOCK_VERSION {
            return Err(BlockError(format!("unknown version {}", b[0])));
        }
        let u64_at = |o: usize| u64::from_be_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let h32 = |o: usize| -> Hash { b[o..o + 32].try_into().expect("32 bytes") };
        let plen = u16::from_be_bytes([b[105], b[106]]) as usize;
        if b.len() != 107 + plen {
            return Err(bad("length does not match proposer length"));
        }
        let proposer = std::str::from_utf8(&b[107..])
            .map_err(|_| bad("proposer is not UTF-8"))?
            .to_string();
        let h = Self {
            height: u64_at(1),
            prev_hash: h32(9),
            first_index: u64_at(41),
            leaf_count: u64_at(49),
            tree_size: u64_at(57),
            root: h32(65),
            timestamp_ms: u64_at(97),
            proposer,
        };
        if h.first_index.checked_add(h.leaf_count) != Some(h.tree_size) {
            return Err(bad("first_index + leaf_count != tree_size"));
        }
        Ok(h)
    }

    /// SHA-256(0x02 || canonical bytes).
    pub fn hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update([BLOCK_HASH_PREFIX]);
        h.update(self.encode());
        h.finalize().into()
    }
}
