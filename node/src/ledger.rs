//! The ledger: the Merkle log, blocks, checkpoints and the state contracts read, all
//! written through one `apply(ordered batch)` path (the path Raft drives later).
//!
//! `apply` is deterministic given the stored state, the batch and the block timestamp:
//! it runs the contracts against the state (plus an overlay of the block's own earlier
//! effects), appends the accepted leaves, and writes leaves, tree nodes, state, the block
//! header, the tip and the signed checkpoint in one synced write batch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use gridledger_core::block::BlockHeader;
use gridledger_core::checkpoint::Checkpoint;
use gridledger_core::contract::{self, BlockContext, Effect, Rejection, SignerInfo, StateView};
use gridledger_core::merkle::{self, Frontier, Hash, HashSource, ProofError};
use gridledger_core::note::{NoteSigner, SignedNote};
use gridledger_core::pb::{OrgKind, SignedTx};
use gridledger_core::receipt::Receipt;
use gridledger_core::tx;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::store::{Cf, Durability, Store, StoreError, WriteBatch};

/// Ledger errors. `Store` and `Corrupt` mean the node is broken; the others describe a
/// request that cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored data contradicts itself (tampering or a bug): the node must not sign.
    #[error("ledger corrupt: {0}")]
    Corrupt(String),
    /// No such leaf, block or size.
    #[error("{0}")]
    NotFound(String),
    /// A request argument is impossible (e.g. old size above new size).
    #[error("{0}")]
    InvalidArgument(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, LedgerError>;

/// The latest committed position, kept in memory and in `meta/tip`.
#[derive(Debug, Clone)]
pub struct Tip {
    /// Tree size.
    pub size: u64,
    /// Block height (0 before the first block).
    pub height: u64,
    /// Root at `size`.
    pub root: Hash,
    /// Hash of block `height` (zero before the first block).
    pub block_hash: Hash,
    /// The signed checkpoint note for `size`.
    pub checkpoint: Arc<str>,
    /// Accepted transactions by payload kind.
    pub counts: BTreeMap<String, u64>,
}

/// What happened to each transaction of a batch, in order.
#[derive(Debug)]
pub struct ApplyOutcome {
    /// Leaf index per accepted transaction, or the rule that rejected it.
    pub results: Vec<std::result::Result<u64, Rejection>>,
    /// Height of the block written (unchanged if every transaction was rejected).
    pub height: u64,
    /// Tree size after the batch.
    pub tree_size: u64,
    /// Whether the block created a channel (the node then opens its ledger).
    pub channels_changed: bool,
}

/// What a block's write batch carries besides the block, and how it is persisted.
#[derive(Debug)]
pub struct BlockWrite {
    /// Written in the block's batch, also when every transaction is rejected and no
    /// block is written (the consensus engine's applied position).
    pub extra: WriteBatch,
    /// Written only when a block is (the node's journal of block order).
    pub with_block: WriteBatch,
    /// `Sync` unless a durable log already holds the block and replays it after a crash
    /// (Raft's log: see `raft::state_machine`).
    pub durability: Durability,
    /// Sealed class II payloads by position in the block's leaves: stored under the leaf
    /// index of each accepted class II transaction (never hashed).
    pub private: Vec<crate::raft::Sidecar>,
}

impl Default for BlockWrite {
    fn default() -> Self {
        Self {
            extra: WriteBatch::new(),
            with_block: WriteBatch::new(),
            durability: Durability::Sync,
            private: Vec::new(),
        }
    }
}

/// Leaves this node has verified under the ledger's signature rule (its committers do,
/// before proposing), by leaf hash, so that applying its own blocks does not verify the
/// same bytes twice. The rule is a property of each signature alone
/// (`tx::verify_cofactored`), so a verdict reached before ordering is the verdict at apply.
/// Bounded: when full it is emptied, and those leaves are simply verified again.
#[derive(Debug, Default)]
pub struct VerifiedLeaves(Mutex<HashSet<Hash>>);

/// Entries kept in [`VerifiedLeaves`] (about 12 MiB).
const VERIFIED_CAP: usize = 1 << 18;

impl VerifiedLeaves {
    /// Records verified leaves.
    pub fn extend(&self, hashes: impl IntoIterator<Item = Hash>) {
        let mut set = self.0.lock();
        for h in hashes {
            if set.len() >= VERIFIED_CAP {
                set.clear();
            }
            set.insert(h);
        }
    }

    /// Whether this leaf was verified here (and forgets it).
    pub fn take(&self, hash: &Hash) -> bool {
        self.0.lock().remove(hash)
    }
}

/// Which signatures [`Ledger::apply_block`] checks.
#[derive(Debug, Clone, Copy)]
pub enum SignatureCheck<'a> {
    /// None: the caller verified every one (the local path, [`Ledger::apply`]).
    Trusted,
    /// Every one (rule `4.1/signature`).
    All,
    /// Every one this node has not verified itself under the same rule.
    Unless(&'a VerifiedLeaves),
}

/// A found leaf.
#[derive(Debug, Clone)]
pub struct EntryRecord {
    /// Leaf index.
    pub index: u64,
    /// Exact SignedTx bytes.
    pub leaf: Vec<u8>,
    /// Block holding it.
    pub block_height: u64,
}

/// Report of a full audit.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    /// Leaves rehashed.
    pub leaves: u64,
    /// Blocks checked.
    pub blocks: u64,
    /// The first mismatch found, if any.
    pub first_mismatch: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredSigner {
    org_id: String,
    roles: Vec<String>,
    active: bool,
}

mod keys {
    pub fn u64k(v: u64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    pub fn node(level: u32, index: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(9);
        k.push(level as u8);
        k.extend_from_slice(&index.to_be_bytes());
        k
    }
    pub fn nonce(key: &[u8; 32], nonce: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(40);
        k.extend_from_slice(key);
        k.extend_from_slice(&nonce.to_be_bytes());
        k
    }
    pub fn signer(key: &[u8; 32]) -> Vec<u8> {
        [b"signer/".as_slice(), key].concat()
    }
    pub fn org(id: &str) -> Vec<u8> {
        [b"org/".as_slice(), id.as_bytes()].concat()
    }
    pub fn instrument(asset: &str) -> Vec<u8> {
        [b"instrument/".as_slice(), asset.as_bytes()].concat()
    }
    pub fn instrument_at(asset: &str) -> Vec<u8> {
        [b"instrument_at/".as_slice(), asset.as_bytes()].concat()
    }
    pub fn proposal(id: &str) -> Vec<u8> {
        [b"proposal/".as_slice(), id.as_bytes()].concat()
    }
    pub fn node_record(raft_id: u64) -> Vec<u8> {
        [b"node/".as_slice(), &raft_id.to_be_bytes()].concat()
    }
    pub fn channel(name: &str) -> Vec<u8> {
        [b"channel/".as_slice(), name.as_bytes()].concat()
    }
    pub fn collection(name: &str) -> Vec<u8> {
        [b"collection/".as_slice(), name.as_bytes()].concat()
    }
    pub const POLICY: &[u8] = b"policy/approval";
    pub fn certificate(asset: &str) -> Vec<u8> {
        [b"cert/".as_slice(), asset.as_bytes()].concat()
    }
    pub fn reading(asset: &str, day: &str) -> Vec<u8> {
        [
            b"reading/".as_slice(),
            asset.as_bytes(),
            b"\0",
            day.as_bytes(),
        ]
        .concat()
    }
    pub const TIP: &[u8] = b"tip";
    pub const CHECKPOINT: &[u8] = b"checkpoint";
    pub const COUNT_PREFIX: &[u8] = b"count/";
    pub const COUNT_END: &[u8] = b"count0";
}

fn be_u64(cf: Cf, v: &[u8]) -> Result<u64> {
    let a: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        cf: cf.name(),
        detail: format!("expected 8 bytes, found {}", v.len()),
    })?;
    Ok(u64::from_be_bytes(a))
}

/// Reads perfect subtree hashes from the `nodes` column family.
pub struct StoreHashes<'a, S: Store>(pub &'a S);

impl<S: Store> HashSource for StoreHashes<'_, S> {
    fn perfect(&self, level: u32, index: u64) -> std::result::Result<Hash, String> {
        match self.0.get(Cf::Nodes, &keys::node(level, index)) {
            Ok(Some(v)) => v
                .try_into()
                .map_err(|_| format!("node {level}/{index} is not 32 bytes")),
            Ok(None) => Err(format!("node {level}/{index} missing")),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn proof_err(e: ProofError) -> LedgerError {
    match e {
        ProofError::Source(s) => LedgerError::Corrupt(s),
        other => LedgerError::InvalidArgument(other.to_string()),
    }
}

/// The ledger over a [`Store`].
pub struct Ledger<S: Store> {
    store: Arc<S>,
    origin: String,
    node_id: String,
    signer: NoteSigner,
    tip: RwLock<Tip>,
    // Committed height, for block streams; updated after every block, whoever applied it
    // (the local committer or the Raft state machine).
    heights: tokio::sync::watch::Sender<u64>,
    // Only the apply path mutates the frontier; the mutex also makes apply single-writer.
    frontier: Mutex<Frontier>,
    // Signers and orgs are few and read by every transaction: cached in memory, loaded
    // at open and updated after each committed block.
    signers: RwLock<HashMap<[u8; 32], SignerInfo>>,
    orgs: RwLock<HashMap<String, OrgKind>>,
    // A data channel's ledger reads consortium state (orgs, keys, proposals) from the
    // system channel's; `None` on the system channel itself.
    link: Option<ChannelLink<S>>,
}

/// What ties a data channel's ledger to the consortium.
struct ChannelLink<S: Store> {
    system: Arc<Ledger<S>>,
    def: contract::ChannelDef,
}

impl<S: Store> std::fmt::Debug for Ledger<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("origin", &self.origin)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// How many of the most recent blocks the start-up check re-derives from stored data.
pub const STARTUP_CHECK_BLOCKS: u64 = 32;

impl<S: Store> Ledger<S> {
    /// Opens the ledger, loading and checking the stored tip.
    ///
    /// The check recomputes the root of each of the last [`STARTUP_CHECK_BLOCKS`] blocks
    /// from the stored tree nodes, follows their hash chain, re-hashes those blocks'
    /// leaves against every stored subtree they complete, and checks the stored
    /// checkpoint; a node whose storage was altered refuses to start (and so to sign).
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] on any mismatch, [`LedgerError::Store`] on I/O.
    pub fn open(store: Arc<S>, origin: &str, node_id: &str, signer: NoteSigner) -> Result<Self> {
        let ledger = Self::load(store, origin, node_id, signer, true)?;
        ledger.check_tip()?;
        Ok(ledger)
    }

    /// Opens a data channel's ledger over its scoped store (see `store::Scope`), with the
    /// same start-up check. Its origin is the channel's; consortium state (orgs, keys,
    /// proposals) is read from `system`, so a key revoked there stops signing here from
    /// the next block on.
    ///
    /// # Errors
    /// As [`Ledger::open`].
    pub fn open_channel(
        store: Arc<S>,
        def: contract::ChannelDef,
        node_id: &str,
        signer: NoteSigner,
        system: Arc<Ledger<S>>,
    ) -> Result<Self> {
        let mut ledger = Self::load(store, &def.origin, node_id, signer, true)?;
        ledger.link = Some(ChannelLink { system, def });
        ledger.check_tip()?;
        Ok(ledger)
    }

    /// The ledger holding consortium state: the system channel's (itself, there).
    pub fn consortium(&self) -> &Ledger<S> {
        match &self.link {
            Some(l) => &l.system,
            None => self,
        }
    }

    /// The channel this ledger belongs to (`None`: the system channel).
    pub fn channel_def(&self) -> Option<&contract::ChannelDef> {
        self.link.as_ref().map(|l| &l.def)
    }

    /// The channel's name (`""` for the system channel).
    pub fn channel_name(&self) -> &str {
        self.link.as_ref().map_or("", |l| l.def.name.as_str())
    }

    /// Opens the ledger for [`Ledger::audit`] without the start-up check, so that a
    /// damaged ledger can still be examined. Never serve or sign from it.
    ///
    /// # Errors
    /// Storage errors, or a tip that cannot be decoded at all.
    pub fn open_for_audit(
        store: Arc<S>,
        origin: &str,
        node_id: &str,
        signer: NoteSigner,
    ) -> Result<Self> {
        Self::load(store, origin, node_id, signer, false)
    }

    fn load(
        store: Arc<S>,
        origin: &str,
        node_id: &str,
        signer: NoteSigner,
        strict: bool,
    ) -> Result<Self> {
        let (tip, frontier) = match store.get(Cf::Meta, keys::TIP)? {
            None => {
                let root = merkle::empty_root();
                let cp = Checkpoint {
                    origin: origin.to_string(),
                    size: 0,
                    root,
                };
                let note = sign_note(&signer, &cp);
                (
                    Tip {
                        size: 0,
                        height: 0,
                        root,
                        block_hash: [0; 32],
                        checkpoint: note.into(),
                        counts: BTreeMap::new(),
                    },
                    Frontier::new(),
                )
            }
            Some(raw) => {
                if raw.len() != 80 {
                    return Err(LedgerError::Corrupt("meta/tip is not 80 bytes".into()));
                }
                let size = u64::from_be_bytes(raw[0..8].try_into().expect("8"));
                let height = u64::from_be_bytes(raw[8..16].try_into().expect("8"));
                let root: Hash = raw[16..48].try_into().expect("32");
                let block_hash: Hash = raw[48..80].try_into().expect("32");
                let note = store
                    .get(Cf::Meta, keys::CHECKPOINT)?
                    .ok_or_else(|| LedgerError::Corrupt("tip without checkpoint".into()))?;
                let note = String::from_utf8(note)
                    .map_err(|_| LedgerError::Corrupt("checkpoint is not UTF-8".into()))?;
                let mut counts = BTreeMap::new();
                for (k, v) in
                    store.scan(Cf::Meta, keys::COUNT_PREFIX, keys::COUNT_END, usize::MAX)?
                {
                    counts.insert(
                        String::from_utf8_lossy(&k[keys::COUNT_PREFIX.len()..]).into_owned(),
                        be_u64(Cf::Meta, &v)?,
                    );
                }
                let frontier = match Frontier::load(&StoreHashes(store.as_ref()), size) {
                    Ok(f) => f,
                    Err(e) if strict => return Err(proof_err(e)),
                    Err(_) => Frontier::new(),
                };
                (
                    Tip {
                        size,
                        height,
                        root,
                        block_hash,
                        checkpoint: note.into(),
                        counts,
                    },
                    frontier,
                )
            }
        };
        let ledger = Self {
            store,
            origin: origin.to_string(),
            node_id: node_id.to_string(),
            signer,
            heights: tokio::sync::watch::Sender::new(tip.height),
            tip: RwLock::new(tip),
            frontier: Mutex::new(frontier),
            signers: RwLock::new(HashMap::new()),
            orgs: RwLock::new(HashMap::new()),
            link: None,
        };
        ledger.load_caches()?;
        Ok(ledger)
    }

    fn load_caches(&self) -> Result<()> {
        let mut signers = self.signers.write();
        for (k, v) in self
            .store
            .scan(Cf::State, b"signer/", b"signer0", usize::MAX)?
        {
            let key: [u8; 32] = k[7..]
                .try_into()
                .map_err(|_| LedgerError::Corrupt("signer key length".into()))?;
            let s: StoredSigner = serde_json::from_slice(&v)
                .map_err(|e| LedgerError::Corrupt(format!("signer record: {e}")))?;
            signers.insert(
                key,
                SignerInfo {
                    org_id: s.org_id,
                    roles: s.roles,
                    active: s.active,
                },
            );
        }
        let mut orgs = self.orgs.write();
        for (k, v) in self.store.scan(Cf::State, b"org/", b"org0", usize::MAX)? {
            let kind = std::str::from_utf8(&v)
                .ok()
                .and_then(OrgKind::from_str_name)
                .ok_or_else(|| LedgerError::Corrupt(format!("org record {:?}", k)))?;
            orgs.insert(String::from_utf8_lossy(&k[4..]).into_owned(), kind);
        }
        Ok(())
    }

    /// The start-up check (see [`Ledger::open`]).
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] naming the first mismatch.
    pub fn check_tip(&self) -> Result<()> {
        let tip = self.tip.read().clone();
        let src = StoreHashes(self.store.as_ref());
        let frontier_root = self.frontier.lock().root();
        if frontier_root != tip.root {
            return Err(LedgerError::Corrupt(format!(
                "stored tree nodes give root {} at size {}, the tip says {}",
                hex::encode(frontier_root),
                tip.size,
                hex::encode(tip.root)
            )));
        }
        let expected_note = sign_note(
            &self.signer,
            &Checkpoint {
                origin: self.origin.clone(),
                size: tip.size,
                root: tip.root,
            },
        );
        if tip.height > 0 && *tip.checkpoint != *expected_note {
            return Err(LedgerError::Corrupt(
                "stored checkpoint does not match the tip (or was signed by another key)".into(),
            ));
        }
        let mut expect_hash = tip.block_hash;
        let lowest = tip.height.saturating_sub(STARTUP_CHECK_BLOCKS - 1).max(1);
        for h in (lowest..=tip.height).rev() {
            let header = self
                .block_header(h)?
                .ok_or_else(|| LedgerError::Corrupt(format!("block {h} missing")))?;
            if header.hash() != expect_hash {
                return Err(LedgerError::Corrupt(format!(
                    "block {h} hash does not match its successor's prev_hash (or the tip)"
                )));
            }
            let root = merkle::root(&src, header.tree_size).map_err(proof_err)?;
            if root != header.root {
                return Err(LedgerError::Corrupt(format!(
                    "block {h}: stored nodes give root {} at size {}, header says {}",
                    hex::encode(root),
                    header.tree_size,
                    hex::encode(header.root)
                )));
            }
            expect_hash = header.prev_hash;
        }
        // Re-hash the leaves of those blocks and compare every subtree they complete:
        // the root checks above only read right-edge nodes, so a damaged interior node
        // (say the last leaf's hash when the size is even) would otherwise go unnoticed
        // until a proof through it failed.
        if tip.height > 0 {
            let first = self
                .block_header(lowest)?
                .map(|h| h.first_index)
                .unwrap_or(0);
            let mut f = Frontier::load(&src, first).map_err(proof_err)?;
            let mut index = first;
            while index < tip.size {
                let end = tip.size.min(index + 8192);
                let chunk = self.store.scan(
                    Cf::Leaves,
                    &keys::u64k(index),
                    &keys::u64k(end),
                    (end - index) as usize,
                )?;
                if chunk.len() as u64 != end - index {
                    return Err(LedgerError::Corrupt(format!(
                        "leaves missing between {index} and {end}"
                    )));
                }
                for (_, leaf) in chunk {
                    let mut bad = None;
                    f.push(merkle::leaf_hash(&leaf), |level, idx, h| {
                        if bad.is_none() && src.perfect(level, idx).ok().as_ref() != Some(h) {
                            bad = Some(format!("tree node level {level} index {idx} does not match the stored leaves (first bad leaf at or below index {index})"));
                        }
                    });
                    if let Some(b) = bad {
                        return Err(LedgerError::Corrupt(b));
                    }
                    index += 1;
                }
            }
            if f.root() != tip.root {
                return Err(LedgerError::Corrupt(
                    "the leaves of the last blocks do not lead to the tip's root".into(),
                ));
            }
        }
        Ok(())
    }

    /// The origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// A snapshot of the tip.
    pub fn tip(&self) -> Tip {
        self.tip.read().clone()
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Applies an ordered batch of signature-verified leaves as one block.
    ///
    /// Callers verify signatures before ordering (batch verification spread over cores);
    /// everything else is decided here, deterministically.
    ///
    /// # Errors
    /// [`LedgerError::Store`] if the write fails: then nothing was applied and the
    /// in-memory tip is unchanged.
    pub fn apply(&self, leaves: &[Bytes], timestamp_ms: u64) -> Result<ApplyOutcome> {
        let proposer = self.node_id.clone();
        self.apply_block(
            leaves,
            timestamp_ms,
            &proposer,
            BlockWrite::default(),
            SignatureCheck::Trusted,
        )
    }

    /// [`Ledger::apply`] for a block ordered by consensus: the proposer is the leader that
    /// made the block (so every replica writes the same header), and `write` says what
    /// rides in the same atomic batch and how it is persisted (see [`BlockWrite`]). With
    /// `check` other than `Trusted`, signatures are verified again here (rule `4.1/signature`)
    /// rather than trusted from the proposer.
    ///
    /// # Errors
    /// See [`Ledger::apply`].
    pub fn apply_block(
        &self,
        leaves: &[Bytes],
        timestamp_ms: u64,
        proposer: &str,
        write: BlockWrite,
        check: SignatureCheck<'_>,
    ) -> Result<ApplyOutcome> {
        let BlockWrite {
            extra,
            with_block,
            durability,
            private,
        } = write;
        // By position, once: a block of readings carries one sidecar per leaf, and a scan
        // per leaf would make the apply quadratic in the block size.
        let private: HashMap<usize, Vec<u8>> = private
            .into_iter()
            .map(|s| (s.position as usize, s.sealed))
            .collect();
        let mut frontier = self.frontier.lock();
        let tip = self.tip.read().clone();
        let mut decoded: Vec<_> = leaves.iter().map(|l| tx::decode(l)).collect();
        let hashes: Vec<Hash> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
        let check_signatures = !matches!(check, SignatureCheck::Trusted);
        if check_signatures {
            let done: Vec<bool> = match check {
                SignatureCheck::Unless(v) => hashes.iter().map(|h| v.take(h)).collect(),
                _ => vec![false; leaves.len()],
            };
            // Replicas do not take the proposer's word for signatures. The rule
            // (tx::verify_cofactored) is a property of each signature alone, so every
            // replica rejects exactly the same transactions however it batches them;
            // batches of a fixed size run in parallel.
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2);
            let todo: Vec<(usize, &SignedTx)> = decoded
                .iter()
                .enumerate()
                .filter(|(i, _)| !done[*i])
                .filter_map(|(i, d)| d.as_ref().ok().map(|(t, _)| (i, t)))
                .collect();
            let batches: Vec<&[(usize, &SignedTx)]> = todo.chunks(tx::APPLY_BATCH).collect();
            let per_thread = batches.len().div_ceil(threads).max(1);
            let verdicts: Vec<(usize, tx::TxError)> = std::thread::scope(|s| {
                let handles: Vec<_> = batches
                    .chunks(per_thread)
                    .map(|group| {
                        s.spawn(move || {
                            let mut v = Vec::new();
                            for b in group {
                                let txs: Vec<&SignedTx> = b.iter().map(|(_, t)| *t).collect();
                                for ((i, _), r) in b.iter().zip(tx::verify_many(&txs)) {
                                    if let Err(e) = r {
                                        v.push((*i, e));
                                    }
                                }
                            }
                            v
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("verify thread"))
                    .collect()
            });
            for (i, e) in verdicts {
                decoded[i] = Err(e);
            }
        }
        // Prefetch every nonce the batch uses in one multi_get.
        let nonce_keys: Vec<Vec<u8>> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .filter_map(|(t, b)| {
                <[u8; 32]>::try_from(t.signer_key_id.as_slice())
                    .ok()
                    .map(|k| keys::nonce(&k, b.nonce))
            })
            .collect();
        let used: HashSet<Vec<u8>> = self
            .store
            .multi_get(Cf::Nonces, &nonce_keys)?
            .into_iter()
            .zip(nonce_keys)
            .filter_map(|(v, k)| v.map(|_| k))
            .collect();

        let mut view = Overlay::new(self, used);
        // Block time never goes backwards, whichever leader's clock proposed it (a new
        // leader's clock may be behind the old one's); the rule uses only the chain, so
        // every replica stamps the same time, and the contracts see the same day.
        let prev_ts = match tip.height {
            0 => 0,
            h => self.block_header(h)?.map(|b| b.timestamp_ms).unwrap_or(0),
        };
        let block_ts = timestamp_ms.max(prev_ts);
        let day = block_day(block_ts);
        let ctx = BlockContext {
            origin: &self.origin,
            channel: self.channel_def(),
            day: &day,
        };
        let mut batch = WriteBatch::new();
        let mut results = Vec::with_capacity(leaves.len());
        let mut next = frontier.clone();
        let mut counts = tip.counts.clone();
        for (position, ((leaf, d), leaf_hash)) in
            leaves.iter().zip(decoded).zip(&hashes).enumerate()
        {
            let checked = d
                .map_err(|e| match e {
                    tx::TxError::BadSignature(_) => Rejection {
                        rule: "4.1/signature",
                        detail: e.to_string(),
                        kind: contract::RejectKind::Unauthenticated,
                    },
                    e => Rejection {
                        rule: "shape",
                        detail: e.to_string(),
                        kind: contract::RejectKind::Invalid,
                    },
                })
                .and_then(|(t, body)| {
                    let key: [u8; 32] =
                        t.signer_key_id
                            .as_slice()
                            .try_into()
                            .map_err(|_| Rejection {
                                rule: "shape",
                                detail: "signer_key_id must be 32 bytes".into(),
                                kind: contract::RejectKind::Invalid,
                            })?;
                    let effects = contract::check(&view, &ctx, &key, &body)?;
                    let class_ii = gridledger_core::private::class_ii(&body).is_some();
                    Ok((effects, tx::payload_kind(&body), class_ii))
                });
            match checked {
                Err(r) => results.push(Err(r)),
                Ok((effects, kind, class_ii)) => {
                    let index = next.size();
                    next.push(*leaf_hash, |level, idx, h| {
                        batch.put(Cf::Nodes, keys::node(level, idx), h.to_vec())
                    });
                    batch.put(Cf::Leaves, keys::u64k(index), leaf.clone());
                    // Before the effects, so a purge later in the block finds it.
                    if class_ii && let Some(sealed) = private.get(&position) {
                        batch.put(Cf::Private, keys::u64k(index), sealed.clone());
                    }
                    for e in effects {
                        view.apply_effect(e, index, &mut batch);
                    }
                    *counts.entry(kind.to_string()).or_default() += 1;
                    results.push(Ok(index));
                }
            }
        }
        view.failed()?;
        if next.size() == tip.size {
            if !extra.is_empty() {
                self.store.write(extra, durability)?;
            }
            return Ok(ApplyOutcome {
                results,
                height: tip.height,
                tree_size: tip.size,
                channels_changed: false,
            });
        }
        let root = next.root();
        let header = BlockHeader {
            height: tip.height + 1,
            prev_hash: tip.block_hash,
            first_index: tip.size,
            leaf_count: next.size() - tip.size,
            tree_size: next.size(),
            root,
            timestamp_ms: block_ts,
            proposer: proposer.to_string(),
        };
        let block_hash = header.hash();
        let note = sign_note(
            &self.signer,
            &Checkpoint {
                origin: self.origin.clone(),
                size: next.size(),
                root,
            },
        );
        batch.put(Cf::Blocks, keys::u64k(header.height), header.encode());
        batch.put(
            Cf::BlockStarts,
            keys::u64k(header.first_index),
            keys::u64k(header.height),
        );
        let mut tip_raw = Vec::with_capacity(80);
        tip_raw.extend_from_slice(&next.size().to_be_bytes());
        tip_raw.extend_from_slice(&header.height.to_be_bytes());
        tip_raw.extend_from_slice(&root);
        tip_raw.extend_from_slice(&block_hash);
        batch.put(Cf::Meta, keys::TIP.to_vec(), tip_raw);
        batch.put(
            Cf::Meta,
            keys::CHECKPOINT.to_vec(),
            note.clone().into_bytes(),
        );
        for (k, v) in &counts {
            if tip.counts.get(k) != Some(v) {
                batch.put(
                    Cf::Meta,
                    [keys::COUNT_PREFIX, k.as_bytes()].concat(),
                    v.to_be_bytes().to_vec(),
                );
            }
        }
        batch.ops.extend(extra.ops);
        batch.ops.extend(with_block.ops);
        let channels_changed = !view.channels.is_empty();
        self.store.write(batch, durability)?;

        // Committed: publish the new state.
        self.signers.write().extend(view.new_signers);
        self.orgs.write().extend(view.new_orgs);
        *frontier = next;
        *self.tip.write() = Tip {
            size: header.tree_size,
            height: header.height,
            root,
            block_hash,
            checkpoint: note.into(),
            counts,
        };
        self.heights.send_replace(header.height);
        Ok(ApplyOutcome {
            results,
            height: header.height,
            tree_size: header.tree_size,
            channels_changed,
        })
    }

    /// Re-derives the state the leaves `[first_index, first_index + count)` of one block
    /// wrote: runs each (already accepted) leaf's contract check against the state
    /// rebuilt so far and writes its effects, without touching the log, the tree or the
    /// blocks. `gridledger-node reindex` calls it for every block in log order after
    /// [`wipe_derived_state`], with the block's stored timestamp. Returns whether the
    /// block created channels.
    ///
    /// # Errors
    /// [`LedgerError::Corrupt`] when a leaf of the log is missing or refused on replay
    /// (the log and the rules disagree); storage failures.
    pub fn replay_block(&self, first_index: u64, count: u64, timestamp_ms: u64) -> Result<bool> {
        let leaves = self.store.scan(
            Cf::Leaves,
            &keys::u64k(first_index),
            &keys::u64k(first_index + count),
            count as usize,
        )?;
        if leaves.len() as u64 != count {
            return Err(LedgerError::Corrupt(format!(
                "block at leaf {first_index} has {count} leaves, {} are stored",
                leaves.len()
            )));
        }
        let mut view = Overlay::new(self, HashSet::new());
        let day = block_day(timestamp_ms);
        let ctx = BlockContext {
            origin: &self.origin,
            channel: self.channel_def(),
            day: &day,
        };
        let mut batch = WriteBatch::new();
        for (i, (_, leaf)) in leaves.iter().enumerate() {
            let index = first_index + i as u64;
            let refused = |why: String| {
                LedgerError::Corrupt(format!("leaf {index} is refused on replay: {why}"))
            };
            let (t, body) = tx::decode(leaf).map_err(|e| refused(e.to_string()))?;
            let key: [u8; 32] = t
                .signer_key_id
                .as_slice()
                .try_into()
                .map_err(|_| refused("signer_key_id is not 32 bytes".into()))?;
            // Nonces of earlier blocks are in the store; of this block, in the view.
            let nonce = keys::nonce(&key, body.nonce);
            if self.store.get(Cf::Nonces, &nonce)?.is_some() {
                view.used_nonces.insert(nonce);
            }
            let effects =
                contract::check(&view, &ctx, &key, &body).map_err(|r| refused(r.to_string()))?;
            for e in effects {
                view.apply_effect(e, index, &mut batch);
            }
        }
        view.failed()?;
        let channels_changed = !view.channels.is_empty();
        // Buffered: the caller syncs once at the end (a crash midway means running the
        // reindex again, which starts by wiping).
        self.store.write(batch, Durability::Buffered)?;
        self.signers.write().extend(view.new_signers);
        self.orgs.write().extend(view.new_orgs);
        Ok(channels_changed)
    }

    /// The committed height, changing after every block.
    pub fn heights(&self) -> tokio::sync::watch::Receiver<u64> {
        self.heights.subscribe()
    }

    // A JSON state record. `Err` when it cannot be read or decoded: callers fail closed
    // (treat it as present and decided), and the block's own write or the audit surfaces
    // the storage problem.
    fn stored<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> std::result::Result<Option<T>, ()> {
        match self.store.get(Cf::State, key) {
            Ok(None) => Ok(None),
            Ok(Some(v)) => serde_json::from_slice(&v).map(Some).map_err(|_| ()),
            Err(_) => Err(()),
        }
    }

    /// Nodes registered by approved proposals, by Raft id.
    ///
    /// # Errors
    /// Storage failures or undecodable records.
    pub fn nodes(&self) -> Result<Vec<contract::NodeRecord>> {
        self.consortium()
            .store
            .scan(Cf::State, b"node/", b"node0", usize::MAX)?
            .into_iter()
            .map(|(_, v)| {
                serde_json::from_slice(&v)
                    .map_err(|e| LedgerError::Corrupt(format!("node record: {e}")))
            })
            .collect()
    }

    /// Proposals, by id.
    ///
    /// # Errors
    /// Storage failures or undecodable records.
    pub fn proposals(&self) -> Result<Vec<(String, contract::Proposal)>> {
        self.consortium()
            .store
            .scan(Cf::State, b"proposal/", b"proposal0", usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    String::from_utf8_lossy(&k[9..]).into_owned(),
                    serde_json::from_slice(&v)
                        .map_err(|e| LedgerError::Corrupt(format!("proposal record: {e}")))?,
                ))
            })
            .collect()
    }

    /// Channels created by approved proposals, by name.
    ///
    /// # Errors
    /// Storage failures or undecodable records.
    pub fn channels(&self) -> Result<Vec<contract::ChannelDef>> {
        self.consortium().records(b"channel/", b"channel0")
    }

    /// Collections, by name (current versions).
    ///
    /// # Errors
    /// Storage failures or undecodable records.
    pub fn collections(&self) -> Result<Vec<contract::CollectionDef>> {
        self.consortium().records(b"collection/", b"collection0")
    }

    /// The approval policy in force.
    ///
    /// # Errors
    /// Storage failures or an undecodable record.
    pub fn approval_policy(&self) -> Result<contract::ApprovalPolicy> {
        match self.consortium().store.get(Cf::State, keys::POLICY)? {
            None => Ok(contract::ApprovalPolicy::default()),
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| LedgerError::Corrupt(format!("approval policy: {e}"))),
        }
    }

    fn records<T: serde::de::DeserializeOwned>(&self, from: &[u8], to: &[u8]) -> Result<Vec<T>> {
        self.store
            .scan(Cf::State, from, to, usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    LedgerError::Corrupt(format!("{}: {e}", String::from_utf8_lossy(&k)))
                })
            })
            .collect()
    }

    /// Every registered org with its kind, sorted by id.
    pub fn orgs(&self) -> Vec<(String, OrgKind)> {
        let mut v: Vec<_> = self
            .consortium()
            .orgs
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort();
        v
    }

    /// The kind of a registered org.
    pub fn org_kind(&self, org_id: &str) -> Option<OrgKind> {
        self.consortium().orgs.read().get(org_id).copied()
    }

    /// The registered signer (or token key) under a public key, revoked or not.
    pub fn signer(&self, key: &[u8; 32]) -> Option<SignerInfo> {
        self.consortium().signers.read().get(key).cloned()
    }

    /// A metrology record (see `gridledger_core::metrology::keys`): the leaf that wrote
    /// it and its JSON.
    ///
    /// # Errors
    /// Storage failures or a malformed record.
    pub fn metrology_record(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>> {
        match self.store.get(Cf::State, key)? {
            None => Ok(None),
            Some(v) => split_record(&v).map(Some).ok_or_else(|| {
                LedgerError::Corrupt("metrology record shorter than its leaf index".into())
            }),
        }
    }

    /// Metrology records under `prefix`, in key order, at most `limit`.
    ///
    /// # Errors
    /// Storage failures or a malformed record.
    pub fn metrology_records(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<gridledger_core::contract::RecordEntry>> {
        self.store
            .scan(Cf::State, prefix, &prefix_end(prefix), limit)?
            .into_iter()
            .map(|(k, v)| {
                let (leaf, v) = split_record(&v).ok_or_else(|| {
                    LedgerError::Corrupt("metrology record shorter than its leaf index".into())
                })?;
                Ok((k, leaf, v))
            })
            .collect()
    }

    /// An instrument's owner org and the leaf index of its registration.
    ///
    /// # Errors
    /// Storage failures.
    pub fn instrument(&self, asset_no: &str) -> Result<Option<(String, u64)>> {
        let Some(owner) = self.store.get(Cf::State, &keys::instrument(asset_no))? else {
            return Ok(None);
        };
        let Some(at) = self.store.get(Cf::State, &keys::instrument_at(asset_no))? else {
            return Err(LedgerError::Corrupt(format!(
                "instrument {asset_no:?} has no leaf index"
            )));
        };
        Ok(Some((
            String::from_utf8_lossy(&owner).into_owned(),
            be_u64(Cf::State, &at)?,
        )))
    }

    /// Leaf indexes of an instrument's readings for days in `[from, to]` (YYYY-MM-DD,
    /// compared as text, which orders ISO dates correctly), at most `limit`.
    ///
    /// # Errors
    /// Storage failures.
    pub fn reading_days(
        &self,
        asset_no: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<(String, u64)>> {
        let lo = keys::reading(asset_no, from);
        // The day strings are fixed-width, so "to" plus a byte above any digit is an
        // exclusive upper bound that includes `to` itself.
        let hi = [keys::reading(asset_no, to), vec![0xff]].concat();
        let prefix_len = keys::reading(asset_no, "").len();
        self.store
            .scan(Cf::State, &lo, &hi, limit)?
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    String::from_utf8_lossy(&k[prefix_len..]).into_owned(),
                    be_u64(Cf::State, &v)?,
                ))
            })
            .collect()
    }

    /// A block header by height.
    ///
    /// # Errors
    /// Storage or corruption errors.
    pub fn block_header(&self, height: u64) -> Result<Option<BlockHeader>> {
        match self.store.get(Cf::Blocks, &keys::u64k(height))? {
            None => Ok(None),
            Some(b) => BlockHeader::decode(&b)
                .map(Some)
                .map_err(|e| LedgerError::Corrupt(format!("block {height}: {e}"))),
        }
    }

    /// Leaves `[first, first + count)`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn leaves(&self, first: u64, count: u64) -> Result<Vec<Vec<u8>>> {
        let end = first.saturating_add(count);
        Ok(self
            .store
            .scan(
                Cf::Leaves,
                &keys::u64k(first),
                &keys::u64k(end),
                count as usize,
            )?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// The sealed class II payloads held for leaves `[first, first + count)`: (leaf index,
    /// sealed bytes).
    ///
    /// # Errors
    /// Storage failures.
    pub fn sealed_payloads(&self, first: u64, count: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let end = first.saturating_add(count);
        self.store
            .scan(
                Cf::Private,
                &keys::u64k(first),
                &keys::u64k(end),
                count as usize,
            )?
            .into_iter()
            .map(|(k, v)| {
                let i = <[u8; 8]>::try_from(k.as_slice())
                    .map(u64::from_be_bytes)
                    .map_err(|_| LedgerError::Corrupt("private store key is not 8 bytes".into()))?;
                Ok((i, v))
            })
            .collect()
    }

    /// The sealed class II payload of one leaf, if this node holds it.
    ///
    /// # Errors
    /// Storage failures.
    pub fn sealed_payload(&self, index: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.store.get(Cf::Private, &keys::u64k(index))?)
    }

    /// One leaf and its block.
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] beyond the tree.
    pub fn entry(&self, index: u64) -> Result<EntryRecord> {
        let size = self.tip.read().size;
        if index >= size {
            return Err(LedgerError::NotFound(format!(
                "leaf {index} does not exist: tree size is {size}"
            )));
        }
        let leaf = self
            .store
            .get(Cf::Leaves, &keys::u64k(index))?
            .ok_or_else(|| LedgerError::Corrupt(format!("leaf {index} missing below tree size")))?;
        let (_, h) = self
            .store
            .seek_prev(Cf::BlockStarts, &keys::u64k(index))?
            .ok_or_else(|| LedgerError::Corrupt(format!("no block holds leaf {index}")))?;
        Ok(EntryRecord {
            index,
            leaf,
            block_height: be_u64(Cf::BlockStarts, &h)?,
        })
    }

    fn size_or_tip(&self, size: u64) -> Result<u64> {
        let tip = self.tip.read().size;
        if size == 0 {
            return Ok(tip);
        }
        if size > tip {
            return Err(LedgerError::NotFound(format!(
                "tree size {size} is beyond the current size {tip}"
            )));
        }
        Ok(size)
    }

    /// Inclusion proof of `index` in the tree of `size` leaves (0 = current).
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] for a size beyond the tree or an index beyond the size.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<(u64, Vec<Hash>)> {
        let size = self.size_or_tip(size)?;
        if index >= size {
            return Err(LedgerError::NotFound(format!(
                "leaf {index} is not in a tree of size {size}"
            )));
        }
        let path = merkle::inclusion_proof(&StoreHashes(self.store.as_ref()), index, size)
            .map_err(proof_err)?;
        Ok((size, path))
    }

    /// Consistency proof from `old` to `new` (0 = current).
    ///
    /// # Errors
    /// [`LedgerError::InvalidArgument`] for old > new or old = 0, [`LedgerError::NotFound`]
    /// beyond the tree.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<(u64, Vec<Hash>)> {
        let new = self.size_or_tip(new)?;
        if old == 0 {
            return Err(LedgerError::InvalidArgument(
                "old size must be at least 1: nothing is proven from the empty tree".into(),
            ));
        }
        if old > new {
            return Err(LedgerError::InvalidArgument(format!(
                "old size {old} is larger than new size {new}"
            )));
        }
        let path = merkle::consistency_proof(&StoreHashes(self.store.as_ref()), old, new)
            .map_err(proof_err)?;
        Ok((new, path))
    }

    /// Root at a past size.
    ///
    /// # Errors
    /// As [`Ledger::inclusion_proof`].
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        let size = self.size_or_tip(size)?;
        merkle::root(&StoreHashes(self.store.as_ref()), size).map_err(proof_err)
    }

    /// This node's signed checkpoint of its own tree at `size` (≤ the tip). Signing a
    /// prefix of its own append-only log is always consistent with every checkpoint it
    /// signed before.
    ///
    /// # Errors
    /// Sizes beyond the tree; storage failures.
    pub fn sign_checkpoint_at(&self, size: u64) -> Result<SignedNote> {
        let root = self.root_at(size)?;
        let text = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        }
        .body();
        let sigs = vec![self.signer.sign(&text)];
        Ok(SignedNote { text, sigs })
    }

    /// The name of this node's checkpoint key (`<origin>/<node id>`).
    pub fn key_name(&self) -> &str {
        self.signer.name()
    }

    /// A receipt for `index` against a given signed checkpoint of this ledger (for
    /// example one that carries a quorum of members' signatures).
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] when the leaf is not in that checkpoint's tree.
    pub fn receipt_against(&self, index: u64, checkpoint: &SignedNote) -> Result<String> {
        let cp = Checkpoint::parse(&checkpoint.text)
            .map_err(|e| LedgerError::InvalidArgument(format!("checkpoint: {e}")))?;
        if index >= cp.size {
            return Err(LedgerError::NotFound(format!(
                "leaf {index} is not in the checkpoint of size {}",
                cp.size
            )));
        }
        self.receipt_at(index, cp.size, checkpoint.to_string())
    }

    /// The receipt of `index` (< `size`) with `note`, the signed checkpoint of `size`.
    fn receipt_at(&self, index: u64, size: u64, note: String) -> Result<String> {
        let path = merkle::inclusion_proof(&StoreHashes(self.store.as_ref()), index, size)
            .map_err(proof_err)?;
        let leaf = self
            .store
            .get(Cf::Leaves, &keys::u64k(index))?
            .ok_or_else(|| LedgerError::Corrupt(format!("leaf {index} missing")))?;
        Ok(Receipt {
            leaf,
            index,
            path,
            checkpoint: note,
        }
        .to_string())
    }

    /// A tlog-proof receipt for `index` against the current checkpoint.
    ///
    /// # Errors
    /// [`LedgerError::NotFound`] beyond the tree.
    pub fn receipt(&self, index: u64) -> Result<String> {
        let tip = self.tip();
        if index >= tip.size {
            return Err(LedgerError::NotFound(format!(
                "leaf {index} does not exist: tree size is {}",
                tip.size
            )));
        }
        self.receipt_at(index, tip.size, tip.checkpoint.to_string())
    }

    /// Recomputes everything from the leaves: every tree node, every block root and
    /// hash link, and the tip. Stops at the first mismatch.
    ///
    /// # Errors
    /// Storage errors only; mismatches are reported in the [`AuditReport`].
    pub fn audit(&self, mut progress: impl FnMut(u64, u64)) -> Result<AuditReport> {
        let tip = self.tip();
        let mut report = AuditReport::default();
        let mut f = Frontier::new();
        let mut prev_hash = [0u8; 32];
        let mut next_block = 1u64;
        let mut next_boundary = match self.block_header(1)? {
            Some(h) => h,
            None if tip.size == 0 => return Ok(report),
            None => {
                report.first_mismatch = Some("block 1 is missing".into());
                return Ok(report);
            }
        };
        const CHUNK: u64 = 8192;
        let mut index = 0u64;
        while index < tip.size {
            let chunk = self.store.scan(
                Cf::Leaves,
                &keys::u64k(index),
                &keys::u64k(tip.size.min(index + CHUNK)),
                CHUNK as usize,
            )?;
            if chunk.is_empty() {
                report.first_mismatch = Some(format!("leaf {index} is missing"));
                return Ok(report);
            }
            for (k, leaf) in chunk {
                let i = be_u64(Cf::Leaves, &k)?;
                if i != index {
                    report.first_mismatch = Some(format!("leaf {index} is missing"));
                    return Ok(report);
                }
                let mut bad = None;
                f.push(merkle::leaf_hash(&leaf), |level, idx, h| {
                    if bad.is_none() {
                        match self.store.get(Cf::Nodes, &keys::node(level, idx)) {
                            Ok(Some(v)) if v.as_slice() == h => {}
                            Ok(_) => bad = Some(format!("tree node level {level} index {idx} does not match leaf {index} (first bad leaf at or below it)")),
                            Err(e) => bad = Some(format!("reading node {level}/{idx}: {e}")),
                        }
                    }
                });
                if let Some(b) = bad {
                    report.first_mismatch = Some(b);
                    return Ok(report);
                }
                index += 1;
                report.leaves = index;
                while index == next_boundary.tree_size {
                    let h = &next_boundary;
                    if h.height != next_block
                        || h.prev_hash != prev_hash
                        || h.root != f.root()
                        || h.first_index + h.leaf_count != index
                    {
                        report.first_mismatch = Some(format!(
                            "block {} does not match the leaves (root, size or prev_hash)",
                            h.height
                        ));
                        return Ok(report);
                    }
                    prev_hash = h.hash();
                    report.blocks = next_block;
                    next_block += 1;
                    match self.block_header(next_block)? {
                        Some(h) => next_boundary = h,
                        None => break,
                    }
                }
            }
            progress(index, tip.size);
        }
        if report.blocks != tip.height || prev_hash != tip.block_hash || f.root() != tip.root {
            report.first_mismatch = Some(format!(
                "tip (height {}, size {}) does not match the recomputed chain (height {})",
                tip.height, tip.size, report.blocks
            ));
        }
        Ok(report)
    }
}

fn sign_note(signer: &NoteSigner, cp: &Checkpoint) -> String {
    let text = cp.body();
    let sigs = vec![signer.sign(&text)];
    SignedNote { text, sigs }.to_string()
}

/// The contracts' view of state during apply: committed state plus the effects of the
/// block's earlier transactions.
struct Overlay<'a, S: Store> {
    ledger: &'a Ledger<S>,
    used_nonces: HashSet<Vec<u8>>,
    new_signers: Vec<([u8; 32], SignerInfo)>,
    new_orgs: Vec<(String, OrgKind)>,
    instruments: HashMap<String, String>,
    readings: HashMap<(String, String), u64>,
    proposals: HashMap<String, contract::Proposal>,
    nodes: HashMap<u64, contract::NodeRecord>,
    channels: HashMap<String, contract::ChannelDef>,
    collections: HashMap<String, contract::CollectionDef>,
    policy: Option<contract::ApprovalPolicy>,
    // Metrology records written earlier in this block (ordered: prefix scans merge them).
    records: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    // The first storage error a contract's read met. A verdict taken on a failed read
    // could differ from the other replicas', so the block is not written: the apply
    // fails and the node stops rather than diverge.
    read_error: std::cell::RefCell<Option<StoreError>>,
}

impl<'a, S: Store> Overlay<'a, S> {
    fn new(ledger: &'a Ledger<S>, used_nonces: HashSet<Vec<u8>>) -> Self {
        Self {
            ledger,
            used_nonces,
            new_signers: Vec::new(),
            new_orgs: Vec::new(),
            instruments: HashMap::new(),
            readings: HashMap::new(),
            proposals: HashMap::new(),
            nodes: HashMap::new(),
            channels: HashMap::new(),
            collections: HashMap::new(),
            policy: None,
            records: BTreeMap::new(),
            read_error: std::cell::RefCell::new(None),
        }
    }

    // A read's value, keeping the first error (see `read_error`).
    fn kept<T: Default>(&self, r: std::result::Result<T, StoreError>) -> T {
        r.unwrap_or_else(|e| {
            self.read_error.borrow_mut().get_or_insert(e);
            T::default()
        })
    }

    fn failed(&self) -> Result<()> {
        match self.read_error.borrow_mut().take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn apply_effect(&mut self, e: Effect, index: u64, batch: &mut WriteBatch) {
        match e {
            Effect::Nonce(k, n) => {
                let key = keys::nonce(&k, n);
                batch.put(Cf::Nonces, key.clone(), Vec::new());
                self.used_nonces.insert(key);
            }
            Effect::Org(id, kind) => {
                batch.put(
                    Cf::State,
                    keys::org(&id),
                    kind.as_str_name().as_bytes().to_vec(),
                );
                self.new_orgs.push((id, kind));
            }
            Effect::Signer(k, info) => {
                let stored = StoredSigner {
                    org_id: info.org_id.clone(),
                    roles: info.roles.clone(),
                    active: info.active,
                };
                batch.put(
                    Cf::State,
                    keys::signer(&k),
                    serde_json::to_vec(&stored).expect("plain struct serialises"),
                );
                self.new_signers.push((k, info));
            }
            Effect::Instrument(asset, owner) => {
                batch.put(Cf::State, keys::instrument_at(&asset), keys::u64k(index));
                batch.put(
                    Cf::State,
                    keys::instrument(&asset),
                    owner.clone().into_bytes(),
                );
                self.instruments.insert(asset, owner);
            }
            Effect::Certificate(asset) => {
                batch.put(Cf::State, keys::certificate(&asset), keys::u64k(index))
            }
            Effect::Proposal(id, p) => {
                batch.put(
                    Cf::State,
                    keys::proposal(&id),
                    serde_json::to_vec(&p).expect("plain struct serialises"),
                );
                self.proposals.insert(id, p);
            }
            Effect::Node(n) => {
                batch.put(
                    Cf::State,
                    keys::node_record(n.raft_id),
                    serde_json::to_vec(&n).expect("plain struct serialises"),
                );
                self.nodes.insert(n.raft_id, n);
            }
            Effect::Reading(asset, day) => {
                batch.put(Cf::State, keys::reading(&asset, &day), keys::u64k(index));
                self.readings.insert((asset, day), index);
            }
            Effect::Channel(c) => {
                batch.put(
                    Cf::State,
                    keys::channel(&c.name),
                    serde_json::to_vec(&c).expect("plain struct serialises"),
                );
                self.channels.insert(c.name.clone(), c);
            }
            Effect::Collection(c) => {
                batch.put(
                    Cf::State,
                    keys::collection(&c.name),
                    serde_json::to_vec(&c).expect("plain struct serialises"),
                );
                self.collections.insert(c.name.clone(), c);
            }
            Effect::Policy(p) => {
                batch.put(
                    Cf::State,
                    keys::POLICY.to_vec(),
                    serde_json::to_vec(&p).expect("plain enum serialises"),
                );
                self.policy = Some(p);
            }
            Effect::Record(key, value) => {
                batch.put(
                    Cf::State,
                    key.clone(),
                    [&index.to_be_bytes()[..], &value].concat(),
                );
                self.records.insert(key, (index, value));
            }
            Effect::Purge(leaf) => batch.delete(Cf::Private, keys::u64k(leaf)),
        }
    }
}

/// Deletes everything the leaves' effects derive (the `state` and `nonces` column
/// families, of every channel), in bounded batches, before a reindex rebuilds it. Returns
/// how many entries were deleted.
///
/// # Errors
/// Storage failures.
pub fn wipe_derived_state<S: Store>(store: &S) -> Result<u64> {
    const CHUNK: usize = 10_000;
    // Above every key: the longest system keys are 40-byte nonce keys (a signer key, which
    // may begin with any bytes, and a nonce), and channel scopes are 0xFF and a printable
    // name.
    let end = [0xFFu8; 64];
    let mut deleted = 0u64;
    for cf in [Cf::State, Cf::Nonces] {
        loop {
            let keys = store.scan(cf, b"", &end, CHUNK)?;
            if keys.is_empty() {
                break;
            }
            let mut batch = WriteBatch::new();
            for (k, _) in &keys {
                batch.delete(cf, k.clone());
            }
            deleted += keys.len() as u64;
            store.write(batch, Durability::Buffered)?;
        }
    }
    Ok(deleted)
}

/// The UTC day of a block timestamp (milliseconds since 1970).
fn block_day(timestamp_ms: u64) -> String {
    gridledger_core::metrology::day_string((timestamp_ms / 86_400_000) as i64)
}

/// Splits a stored metrology record into (leaf index, value).
pub fn split_record(v: &[u8]) -> Option<(u64, Vec<u8>)> {
    let leaf = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    Some((leaf, v[8..].to_vec()))
}

/// The first key after every key that starts with `prefix` (for range scans).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

// Reads through to the store never decide on a failed read. Record, instrument and
// reading reads keep the error (`Overlay::kept`) and the block is not written; consortium
// reads fail closed (a proposal looks decided, a node id taken, the policy strictest),
// and nonces were read before the checks, so a storage error never lets a replay in.
impl<S: Store> StateView for Overlay<'_, S> {
    fn signer(&self, key: &[u8; 32]) -> Option<SignerInfo> {
        self.new_signers
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, i)| i.clone())
            .or_else(|| self.ledger.consortium().signers.read().get(key).cloned())
    }
    fn has_signers(&self) -> bool {
        !self.new_signers.is_empty() || !self.ledger.consortium().signers.read().is_empty()
    }
    fn nonce_used(&self, key: &[u8; 32], nonce: u64) -> bool {
        self.used_nonces.contains(&keys::nonce(key, nonce))
    }
    fn org_kind(&self, org_id: &str) -> Option<OrgKind> {
        self.new_orgs
            .iter()
            .find(|(o, _)| o == org_id)
            .map(|(_, k)| *k)
            .or_else(|| self.ledger.consortium().orgs.read().get(org_id).copied())
    }
    fn instrument_owner(&self, asset_no: &str) -> Option<String> {
        if let Some(o) = self.instruments.get(asset_no) {
            return Some(o.clone());
        }
        self.kept(
            self.ledger
                .store
                .get(Cf::State, &keys::instrument(asset_no)),
        )
        .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
    fn proposal(&self, id: &str) -> Option<contract::Proposal> {
        if let Some(p) = self.proposals.get(id) {
            return Some(p.clone());
        }
        // Unreadable: a decided placeholder, so nothing is re-proposed or voted on.
        self.ledger
            .consortium()
            .stored(&keys::proposal(id))
            .unwrap_or_else(|()| {
                Some(contract::Proposal {
                    change: contract::Change::RemoveNode(0),
                    proposer_org: String::new(),
                    approvals: Default::default(),
                    denials: Default::default(),
                    status: contract::ProposalStatus::Rejected,
                })
            })
    }
    fn org_count(&self) -> usize {
        let committed = self.ledger.consortium().orgs.read();
        committed.len()
            + self
                .new_orgs
                .iter()
                .filter(|(o, _)| !committed.contains_key(o))
                .count()
    }
    fn node(&self, raft_id: u64) -> Option<contract::NodeRecord> {
        if let Some(n) = self.nodes.get(&raft_id) {
            return Some(n.clone());
        }
        // Unreadable: a live registration, so the id is not handed out again.
        self.ledger
            .consortium()
            .stored(&keys::node_record(raft_id))
            .unwrap_or_else(|()| {
                Some(contract::NodeRecord {
                    raft_id,
                    node_id: String::new(),
                    org_id: String::new(),
                    peer: String::new(),
                    api: String::new(),
                    checkpoint_key: String::new(),
                    removed: false,
                    valid_from: String::new(),
                    valid_until: String::new(),
                })
            })
    }
    fn channel(&self, name: &str) -> Option<contract::ChannelDef> {
        if let Some(c) = self.channels.get(name) {
            return Some(c.clone());
        }
        // Unreadable: present, so the name is not created twice.
        self.ledger
            .consortium()
            .stored(&keys::channel(name))
            .unwrap_or_else(|()| {
                Some(contract::ChannelDef {
                    name: name.to_string(),
                    origin: String::new(),
                    members: Vec::new(),
                })
            })
    }
    fn collection(&self, name: &str) -> Option<contract::CollectionDef> {
        if let Some(c) = self.collections.get(name) {
            return Some(c.clone());
        }
        self.ledger
            .consortium()
            .stored(&keys::collection(name))
            .ok()
            .flatten()
    }
    fn approval_policy(&self) -> contract::ApprovalPolicy {
        if let Some(p) = self.policy {
            return p;
        }
        // Unreadable: the strictest policy, so a storage fault never loosens approval.
        self.ledger
            .consortium()
            .stored(keys::POLICY)
            .map(Option::unwrap_or_default)
            .unwrap_or(contract::ApprovalPolicy::Regulator)
    }
    fn reading(&self, asset_no: &str, day: &str) -> Option<u64> {
        if let Some(i) = self.readings.get(&(asset_no.to_string(), day.to_string())) {
            return Some(*i);
        }
        self.kept(
            self.ledger
                .store
                .get(Cf::State, &keys::reading(asset_no, day)),
        )
        .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
    }
}

impl<S: Store> gridledger_core::contract::RecordSource for Overlay<'_, S> {
    fn record(&self, key: &[u8]) -> Option<(u64, Vec<u8>)> {
        if let Some(r) = self.records.get(key) {
            return Some(r.clone());
        }
        self.kept(self.ledger.store.get(Cf::State, key))
            .and_then(|v| split_record(&v))
    }
    fn records(&self, prefix: &[u8], limit: usize) -> Vec<gridledger_core::contract::RecordEntry> {
        let end = prefix_end(prefix);
        let mut merged: BTreeMap<Vec<u8>, (u64, Vec<u8>)> = self
            .kept(self.ledger.store.scan(Cf::State, prefix, &end, limit))
            .into_iter()
            .filter_map(|(k, v)| split_record(&v).map(|r| (k, r)))
            .collect();
        for (k, r) in self.records.range(prefix.to_vec()..end) {
            merged.insert(k.clone(), r.clone());
        }
        merged
            .into_iter()
            .take(limit)
            .map(|(k, (leaf, v))| (k, leaf, v))
            .collect()
    }
}
