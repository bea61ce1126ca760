//! Channels: the system channel's ledger and every data channel's, in one Raft group.
//!
//! A channel is a separate log with its own origin (`<system origin>/<name>`), tree,
//! blocks, checkpoints and receipts (DESIGN.md §7). Its ledger lives in the same RocksDB
//! under the channel's key scope (`store::Scope`). Consortium state (orgs, keys,
//! proposals, the channel definitions themselves) stays on the system channel, and data
//! channels read it from there.
//!
//! All channels share one Raft log: each entry names its channel, and entries apply in
//! log order, so a key revoked on the system channel is refused on every channel from
//! the next entry on, identically on every replica. Because a data channel's verdicts
//! depend on the system channel's state at that point in the order, the node keeps a
//! journal of which entry made which block (Raft index → channel, height); snapshots
//! replay blocks in that order.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use gridledger_core::contract::{ChannelDef, RejectKind, Rejection};
use gridledger_core::note::NoteSigner;
use parking_lot::RwLock;

use crate::ledger::{
    ApplyOutcome, BlockWrite, Ledger, LedgerError, Result, SignatureCheck, VerifiedLeaves,
};
use crate::store::{Cf, Durability, Scope, Store, WriteBatch};

const JOURNAL: &[u8] = b"journal/";
const JOURNAL_END: &[u8] = b"journal0";
/// How many blocks the last completed reindex replayed (written last, synced).
const REINDEXED: &[u8] = b"reindexed_blocks";
/// Present while a reindex runs (written, synced, before the state is wiped): a node
/// refuses to start on half-rebuilt state.
const REINDEXING: &[u8] = b"reindex_in_progress";
/// The version of the contract rules this data directory's log was judged under.
const RULES_KEY: &[u8] = b"rules_version";
/// The contract rules of this build. Raise it whenever a change to `contract` or
/// `metrology` can judge an existing log differently: such a log is then refused at
/// start instead of being replayed (snapshots, reindex) under other rules.
pub const RULES_VERSION: u64 = 7;

/// One journal record: the block `height` of channel `channel` ("" = system) was made by
/// the Raft entry at `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Raft log index.
    pub index: u64,
    /// Channel name, "" for the system channel.
    pub channel: String,
    /// The channel's block height.
    pub height: u64,
}

/// One block as consensus ordered it.
#[derive(Debug, Clone, Default)]
pub struct OrderedBlock {
    /// Its channel ("" = system).
    pub channel: String,
    /// SignedTx bytes, in order.
    pub leaves: Vec<Bytes>,
    /// The proposer's clock.
    pub timestamp_ms: u64,
    /// The proposer's node id.
    pub proposer: String,
    /// The Raft index of the entry (journalled when a block is written).
    pub index: Option<u64>,
    /// Sealed class II payloads, by position in `leaves`.
    pub private: Vec<crate::raft::Sidecar>,
}

/// Every channel's ledger on this node.
pub struct Channels<S: Store> {
    system: Arc<Ledger<S>>,
    key: SigningKey,
    data: RwLock<BTreeMap<String, Arc<Ledger<S>>>>,
    opened: tokio::sync::watch::Sender<usize>,
    verified: Arc<VerifiedLeaves>,
}

impl<S: Store> std::fmt::Debug for Channels<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("system", &self.system.origin())
            .field("data", &self.data.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<S: Store> Channels<S> {
    /// Opens every data channel the system ledger records (each with the start-up
    /// check). `key` is this node's checkpoint key; a channel's checkpoints are signed
    /// with it under the key name `<channel origin>/<node id>`.
    ///
    /// # Errors
    /// Storage, corruption or key-name failures.
    pub fn open(system: Arc<Ledger<S>>, key: SigningKey) -> Result<Arc<Self>> {
        if system.store().get(Cf::RaftMeta, REINDEXING)?.is_some() {
            return Err(LedgerError::Corrupt(
                "a reindex was started and did not finish, so the derived state is incomplete: run `gridledger-node reindex` again before starting the node".into(),
            ));
        }
        Self::open_any(system, key)
    }

    /// Marks a reindex as started (synced) and opens the channels for it: until
    /// [`Channels::reindex`] completes, [`Channels::open`] refuses this store.
    ///
    /// # Errors
    /// As [`Channels::open`].
    pub fn open_for_reindex(system: Arc<Ledger<S>>, key: SigningKey) -> Result<Arc<Self>> {
        let mut b = WriteBatch::new();
        b.put(Cf::RaftMeta, REINDEXING.to_vec(), Vec::new());
        system.store().write(b, Durability::Sync)?;
        Self::open_any(system, key)
    }

    fn open_any(system: Arc<Ledger<S>>, key: SigningKey) -> Result<Arc<Self>> {
        // Builds before the Raft journal existed wrote blocks without it; such a data
        // directory cannot be snapshotted or replayed in the right order, so it is
        // refused rather than half-served.
        if system.tip().height > 0
            && system
                .store()
                .scan(Cf::RaftMeta, JOURNAL, JOURNAL_END, 1)?
                .is_empty()
        {
            return Err(LedgerError::Corrupt(format!(
                "the system ledger has {} blocks but no Raft journal: this data directory was \
                 written by an earlier build of gridledger; move it aside and let the node \
                 catch up from its peers (or start a new dev consortium)",
                system.tip().height
            )));
        }
        let rules = system
            .store()
            .get(Cf::RaftMeta, RULES_KEY)?
            .and_then(|v| v.try_into().ok().map(u64::from_be_bytes));
        match rules {
            Some(v) if v == RULES_VERSION => {}
            None if system.tip().height == 0 => {
                let mut b = WriteBatch::new();
                b.put(
                    Cf::RaftMeta,
                    RULES_KEY.to_vec(),
                    RULES_VERSION.to_be_bytes().to_vec(),
                );
                system.store().write(b, Durability::Sync)?;
            }
            other => {
                return Err(LedgerError::Corrupt(format!(
                    "this data directory's log was judged under contract rules {}; this build applies rules v{RULES_VERSION}, which may judge it differently: move it aside and let the node catch up from peers running this build (or start a new dev consortium)",
                    other.map_or("of an earlier build".to_string(), |v| format!("v{v}"))
                )));
            }
        }
        let c = Arc::new(Self {
            system,
            key,
            data: RwLock::new(BTreeMap::new()),
            opened: tokio::sync::watch::Sender::new(0),
            verified: Arc::new(VerifiedLeaves::default()),
        });
        c.sync()?;
        Ok(c)
    }

    /// Leaves this node's committers verified, which apply need not verify again.
    pub fn verified(&self) -> &Arc<VerifiedLeaves> {
        &self.verified
    }

    /// The system channel's ledger.
    pub fn system(&self) -> &Arc<Ledger<S>> {
        &self.system
    }

    /// A channel's ledger by name ("" or the system origin's last segment is not special:
    /// only "" names the system channel).
    pub fn get(&self, name: &str) -> Option<Arc<Ledger<S>>> {
        if name.is_empty() {
            return Some(self.system.clone());
        }
        self.data.read().get(name).cloned()
    }

    /// A channel's ledger by origin.
    pub fn by_origin(&self, origin: &str) -> Option<Arc<Ledger<S>>> {
        if origin == self.system.origin() {
            return Some(self.system.clone());
        }
        let name = origin
            .strip_prefix(self.system.origin())?
            .strip_prefix('/')?;
        self.data
            .read()
            .get(name)
            .filter(|l| l.origin() == origin)
            .cloned()
    }

    /// Data channel names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.data.read().keys().cloned().collect()
    }

    /// Changes whenever a channel is opened (its value is the number of data channels).
    pub fn opened(&self) -> tokio::sync::watch::Receiver<usize> {
        self.opened.subscribe()
    }

    /// Opens the ledgers of channels created since the last call.
    fn sync(&self) -> Result<()> {
        for def in self.system.channels()? {
            if self.data.read().contains_key(&def.name) {
                continue;
            }
            let ledger = self.open_one(def.clone())?;
            tracing::info!(channel = %def.name, origin = %def.origin, "channel opened");
            self.data.write().insert(def.name, Arc::new(ledger));
        }
        let n = self.data.read().len();
        self.opened
            .send_if_modified(|v| std::mem::replace(v, n) != n);
        Ok(())
    }

    fn open_one(&self, def: ChannelDef) -> Result<Ledger<S>> {
        let signer = NoteSigner::new(
            &format!("{}/{}", def.origin, self.system.node_id()),
            self.key.clone(),
        )
        .map_err(|e| LedgerError::InvalidArgument(format!("channel {}: {e}", def.name)))?;
        let store = Arc::new(self.system.store().scoped(Scope::channel(&def.name)));
        Ledger::open_channel(
            store,
            def,
            self.system.node_id(),
            signer,
            self.system.clone(),
        )
    }

    /// Applies one ordered block to its channel, writing `extra` (the consensus
    /// position) in the same batch and, when a block is written and `index` is given,
    /// the journal record. With `durability` Buffered the caller's log must hold the
    /// block durably and replay it after a crash. A block for a channel that does not exist (yet) rejects every
    /// transaction under rule `4.5/channel`, identically on every replica. A system block
    /// that creates channels opens their ledgers before returning, so the next entry
    /// can use them.
    ///
    /// # Errors
    /// Storage failures: nothing was applied then.
    pub fn apply(
        &self,
        block: &OrderedBlock,
        extra: WriteBatch,
        durability: Durability,
        check_signatures: bool,
    ) -> Result<ApplyOutcome> {
        let channel = block.channel.as_str();
        let leaves = &block.leaves;
        let Some(ledger) = self.get(channel) else {
            if !extra.is_empty() {
                self.system.store().write(extra, durability)?;
            }
            let r = Rejection {
                rule: "4.5/channel",
                detail: format!("no channel named {channel:?}"),
                kind: RejectKind::FailedPrecondition,
            };
            return Ok(ApplyOutcome {
                results: leaves.iter().map(|_| Err(r.clone())).collect(),
                height: 0,
                tree_size: 0,
                channels_changed: false,
            });
        };
        let mut journal = WriteBatch::new();
        if let Some(i) = block.index {
            let height = ledger.tip().height + 1;
            journal.put(
                Cf::RaftMeta,
                [JOURNAL, &i.to_be_bytes()].concat(),
                [&height.to_be_bytes()[..], channel.as_bytes()].concat(),
            );
        }
        let out = ledger.apply_block(
            leaves,
            block.timestamp_ms,
            &block.proposer,
            BlockWrite {
                extra,
                with_block: journal,
                durability,
                private: block.private.clone(),
            },
            if check_signatures {
                SignatureCheck::Unless(&self.verified)
            } else {
                SignatureCheck::Trusted
            },
        )?;
        if out.channels_changed {
            self.sync()?;
        }
        Ok(out)
    }

    /// Rebuilds every channel's derived state from the log, after
    /// [`crate::ledger::wipe_derived_state`]: replays each block's leaves in the order the
    /// journal records (so data channels see the system state of their point in the
    /// log), opening channels as their creation is replayed. Returns (blocks, leaves).
    ///
    /// # Errors
    /// A leaf the rules refuse on replay, a block the journal names that is missing, or
    /// storage failures.
    pub fn reindex(&self, mut progress: impl FnMut(u64, u64)) -> Result<(u64, u64)> {
        let journal = self.journal(u64::MAX)?;
        let total = journal.len() as u64;
        let (mut blocks, mut leaves) = (0u64, 0u64);
        for j in journal {
            let ledger = self.get(&j.channel).ok_or_else(|| {
                LedgerError::Corrupt(format!(
                    "journal entry {} names channel {:?}, which no earlier block created",
                    j.index, j.channel
                ))
            })?;
            let h = ledger.block_header(j.height)?.ok_or_else(|| {
                LedgerError::Corrupt(format!(
                    "journal entry {} names block {} of channel {:?}, which is missing",
                    j.index, j.height, j.channel
                ))
            })?;
            if ledger.replay_block(h.first_index, h.leaf_count, h.timestamp_ms)? {
                self.sync()?;
            }
            blocks += 1;
            leaves += h.leaf_count;
            progress(blocks, total);
        }
        // One synced write makes every buffered replay write before it durable, and ends
        // the reindex.
        let mut done = WriteBatch::new();
        done.put(
            Cf::RaftMeta,
            REINDEXED.to_vec(),
            blocks.to_be_bytes().to_vec(),
        );
        done.delete(Cf::RaftMeta, REINDEXING.to_vec());
        self.system.store().write(done, Durability::Sync)?;
        Ok((blocks, leaves))
    }

    /// Journal records with Raft index `<= upto`, in log order.
    ///
    /// # Errors
    /// Storage failures or a malformed record.
    pub fn journal(&self, upto: u64) -> Result<Vec<JournalEntry>> {
        let end = [JOURNAL, &upto.saturating_add(1).to_be_bytes()].concat();
        let to = if upto == u64::MAX {
            JOURNAL_END.to_vec()
        } else {
            end
        };
        self.system
            .store()
            .scan(Cf::RaftMeta, JOURNAL, &to, usize::MAX)?
            .into_iter()
            .map(|(k, v)| {
                let bad = || LedgerError::Corrupt("malformed journal record".into());
                let index = u64::from_be_bytes(
                    k.get(JOURNAL.len()..)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(bad)?,
                );
                let height =
                    u64::from_be_bytes(v.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(bad)?);
                Ok(JournalEntry {
                    index,
                    channel: String::from_utf8(v[8..].to_vec()).map_err(|_| bad())?,
                    height,
                })
            })
            .collect()
    }
}
