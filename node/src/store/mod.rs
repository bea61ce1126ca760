//! Storage: an ordered key-value store with column families and atomic batches.
//!
//! # Contract
//! - **Column families** ([`Cf`]) are separate key spaces, one per kind of data. Keys
//!   compare bytewise; integer keys are written big-endian so they sort numerically.
//! - **Reads** see every batch whose [`Store::write`] returned `Ok`, and nothing of a
//!   batch that has not returned (batches are atomic: all or nothing, also after a crash).
//! - **Durable** means: after `write(batch, Durability::Sync)` returns `Ok`, the batch
//!   survives a process crash and a power loss (the write-ahead log is fsynced).
//!   `Durability::Buffered` survives a process crash but may be lost on power loss.
//! - **Ranges** are half-open: `[from, to)`.
//! - **Errors** mean the store is broken (I/O error, corruption), never "not found":
//!   absence is `Ok(None)`. A caller that gets an error must stop writing.
//!
//! The ledger is written against this trait only, so the same ledger code runs on
//! RocksDB ([`rocks::RocksStore`]) and in memory ([`mem::MemStore`]); both pass
//! [`conformance::run`].

pub mod conformance;
pub mod mem;
pub mod rocks;

use bytes::Bytes;

/// Column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cf {
    /// leaf index (u64 BE) → SignedTx bytes.
    Leaves,
    /// level (u8) || index (u64 BE) → 32-byte perfect-subtree hash.
    Nodes,
    /// height (u64 BE) → canonical block header bytes.
    Blocks,
    /// first leaf index (u64 BE) → height (u64 BE), to find a leaf's block.
    BlockStarts,
    /// signer key (32) || nonce (u64 BE) → empty.
    Nonces,
    /// typed record keys (see `ledger::state`) → values.
    State,
    /// single keys: tip, checkpoint, counters.
    Meta,
    /// Node-local identity data (accounts, refresh tokens, revocations). Not part of the
    /// ledger: never hashed, never replicated, not rebuilt from the log.
    Auth,
    /// Raft log: index (u64 BE) → entry (JSON).
    RaftLog,
    /// Raft metadata: vote, committed and purged log ids.
    RaftMeta,
    /// Class II payloads (DESIGN.md §4): leaf index (u64 BE) → sealed salt and payload
    /// (XChaCha20-Poly1305 under the collection key). Written at apply from the Raft
    /// entry's sidecar, deleted by a purge, never hashed, and kept across a reindex (the
    /// log holds only commitments, so this cannot be rebuilt from it).
    Private,
}

impl Cf {
    /// Every column family, in a fixed order.
    pub const ALL: [Cf; 11] = [
        Cf::Leaves,
        Cf::Nodes,
        Cf::Blocks,
        Cf::BlockStarts,
        Cf::Nonces,
        Cf::State,
        Cf::Meta,
        Cf::Auth,
        Cf::RaftLog,
        Cf::RaftMeta,
        Cf::Private,
    ];

    /// The column family's name on disk.
    pub fn name(self) -> &'static str {
        match self {
            Cf::Leaves => "leaves",
            Cf::Nodes => "nodes",
            Cf::Blocks => "blocks",
            Cf::BlockStarts => "block_starts",
            Cf::Nonces => "nonces",
            Cf::State => "state",
            Cf::Meta => "meta",
            Cf::Auth => "auth",
            Cf::RaftLog => "raft_log",
            Cf::RaftMeta => "raft_meta",
            Cf::Private => "private",
        }
    }
}

impl Cf {
    /// Whether the column family belongs to one channel's ledger, so a [`Scope`] applies
    /// to its keys. `Auth` and the Raft families belong to the node as a whole.
    pub fn per_channel(self) -> bool {
        !matches!(self, Cf::Auth | Cf::RaftLog | Cf::RaftMeta)
    }
}

/// Confines a store handle to one channel's key space: every key of a per-channel
/// column family gets the scope's prefix, and reads never see keys outside it.
///
/// The system channel uses the empty scope, so its keys are unprefixed. A data channel's
/// prefix is `0xFF || name || 0x00`: the system ledger's range reads (big-endian indexes
/// below 2^56, tree levels below 64, ASCII record names) never reach a key starting with
/// 0xFF, and its only reads of random keys (nonces) are point reads of 40-byte keys, which
/// a prefixed key (longer) can never equal. The 0x00 terminator keeps channel `a` from
/// containing channel `ab`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(Vec<u8>);

impl Scope {
    /// The scope of a data channel.
    pub fn channel(name: &str) -> Self {
        let mut p = Vec::with_capacity(name.len() + 2);
        p.push(0xFF);
        p.extend_from_slice(name.as_bytes());
        p.push(0x00);
        Self(p)
    }

    /// Whether this is the empty (system) scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored key for `key`.
    pub fn key<'a>(&self, cf: Cf, key: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.0.is_empty() || !cf.per_channel() {
            std::borrow::Cow::Borrowed(key)
        } else {
            std::borrow::Cow::Owned([self.0.as_slice(), key].concat())
        }
    }

    /// Whether a stored key is inside this scope.
    pub fn contains(&self, cf: Cf, stored: &[u8]) -> bool {
        !cf.per_channel() || stored.starts_with(&self.0)
    }

    /// The caller's key for a stored key inside this scope.
    pub fn strip(&self, cf: Cf, mut stored: Vec<u8>) -> Vec<u8> {
        if !self.0.is_empty() && cf.per_channel() {
            stored.drain(..self.0.len());
        }
        stored
    }

    /// Prefixes every operation of a batch.
    pub fn batch(&self, mut batch: WriteBatch) -> WriteBatch {
        if !self.0.is_empty() {
            for (cf, k, _) in &mut batch.ops {
                if cf.per_channel() {
                    k.splice(0..0, self.0.iter().copied());
                }
            }
        }
        batch
    }
}

/// How hard a write must be persisted before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the write-ahead log before returning.
    Sync,
    /// Write to the log without fsync.
    Buffered,
}

/// Storage failure: the node is broken, not the request.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The engine reported an error.
    #[error("storage engine: {0}")]
    Engine(String),
    /// Data on disk does not decode.
    #[error("corrupt data in {cf}: {detail}")]
    Corrupt {
        /// Column family name.
        cf: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Result alias for storage.
pub type Result<T> = std::result::Result<T, StoreError>;

/// An atomic set of puts and deletes.
#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub(crate) ops: Vec<(Cf, Vec<u8>, Option<Bytes>)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a put. `Bytes` lets leaf bytes flow from the request to the engine without
    /// a copy in our code.
    pub fn put(&mut self, cf: Cf, key: impl Into<Vec<u8>>, value: impl Into<Bytes>) {
        self.ops.push((cf, key.into(), Some(value.into())));
    }

    /// Queues a delete.
    pub fn delete(&mut self, cf: Cf, key: impl Into<Vec<u8>>) {
        self.ops.push((cf, key.into(), None));
    }

    /// Number of queued operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An ordered key-value store. See the module docs for the contract.
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    ///
    /// # Errors
    /// [`StoreError`] when the engine fails; absence is `Ok(None)`.
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Reads many keys of one column family; results are in the order of `keys`.
    ///
    /// # Errors
    /// As [`Store::get`].
    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }

    /// The entry with the greatest key `<= key`.
    ///
    /// # Errors
    /// As [`Store::get`].
    fn seek_prev(&self, cf: Cf, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>>;

    /// Up to `limit` entries with keys in `[from, to)`, ascending.
    ///
    /// # Errors
    /// As [`Store::get`].
    fn scan(&self, cf: Cf, from: &[u8], to: &[u8], limit: usize)
    -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Applies a batch atomically.
    ///
    /// # Errors
    /// [`StoreError`]; nothing of the batch is visible then.
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()>;

    /// Another handle on the same store, confined to `scope` (see [`Scope`]). Writes
    /// through either handle are visible to the other, and batches stay atomic.
    fn scoped(&self, scope: Scope) -> Self
    where
        Self: Sized;

    /// Writes a consistent copy of the store to `dir` (a backup). Optional.
    ///
    /// # Errors
    /// [`StoreError::Engine`] if the backend cannot.
    fn checkpoint_to(&self, dir: &std::path::Path) -> Result<()> {
        let _ = dir;
        Err(StoreError::Engine("this store cannot write backups".into()))
    }
}
