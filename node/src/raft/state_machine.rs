//! The ledger as Raft's state machine.
//!
//! Applying an entry is `Channels::apply` (the entry's channel's `Ledger::apply_block`),
//! with the applied log id written in the same atomic batch, so after a crash the ledger
//! and Raft agree on what was applied.
//!
//! Snapshots are built from the ledgers themselves, not kept as a second copy: a
//! snapshot is every channel's blocks (channel, height, header hash, timestamp, proposer,
//! accepted leaves) in the order the log made them (the node's journal), up to the
//! applied position. A node installing it keeps the blocks it already has (after checking
//! their hashes against the snapshot's) and replays the rest, in that order, through the
//! same apply path, which re-checks every contract and must reproduce every block hash.

use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError, StoredMembership,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{BlockResult, NodeInfo, TxRejection, TypeConfig, read_sm, write_sm};
use crate::channels::{Channels, OrderedBlock};
use crate::store::{Cf, Store, WriteBatch};

// The applied position lives in the node-wide Raft column family (next to the vote), not
// in a channel's ledger, and is written in the same batch as each entry's block.
const APPLIED: &[u8] = b"raft_applied";
const MEMBERSHIP: &[u8] = b"raft_membership";
/// The highest Raft index whose block a snapshot install has replayed, written in the
/// same batch as each replayed block. A crash during an install leaves the applied
/// position behind the replayed blocks; on restart the entries up to this index must
/// not be applied a second time (their blocks are already in the ledger, and their
/// verdicts were taken at their place in the order, which a late re-apply would not be).
const REPLAYED: &[u8] = b"raft_replayed_upto";

/// One block in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapBlock {
    /// The Raft index that made it (the journal key).
    index: u64,
    /// Its channel ("" = system).
    channel: String,
    height: u64,
    hash: String,
    timestamp_ms: u64,
    proposer: String,
    #[serde(with = "super::b64_vec")]
    leaves: Vec<Vec<u8>>,
    /// Sealed class II payloads this node holds for the block's leaves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    private: Vec<super::Sidecar>,
}

/// The last snapshot built or installed: its meta only. The ledger is append-only, so
/// the data of a snapshot at log index i (every block journalled up to i) can be made
/// from the ledger at any later time: it is made only when a lagging member needs it,
/// never on the periodic compaction (which would otherwise re-serialise the whole chain
/// every `snapshot_every` entries).
type Current = Arc<Mutex<Option<SnapshotMeta<u64, NodeInfo>>>>;

/// The state machine over a ledger.
pub struct StateMachine<S: Store> {
    channels: Arc<Channels<S>>,
    current: Current,
}

impl<S: Store> StateMachine<S> {
    /// The state machine over a node's channels.
    pub fn new(channels: Arc<Channels<S>>) -> Self {
        Self {
            channels,
            current: Arc::new(Mutex::new(None)),
        }
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError<u64>> {
        match self
            .channels
            .system()
            .store()
            .get(Cf::RaftMeta, key)
            .map_err(read_sm)?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(read_sm),
        }
    }

    fn membership(&self) -> Result<StoredMembership<u64, NodeInfo>, StorageError<u64>> {
        Ok(self.read(MEMBERSHIP)?.unwrap_or_default())
    }

    /// The highest index an interrupted or finished snapshot install replayed (0: none).
    fn replayed_upto(&self) -> Result<u64, StorageError<u64>> {
        Ok(self.read(REPLAYED)?.unwrap_or(0))
    }
}

fn position(
    applied: &LogId<u64>,
    membership: Option<&StoredMembership<u64, NodeInfo>>,
) -> Result<WriteBatch, StorageError<u64>> {
    let mut b = WriteBatch::new();
    b.put(
        Cf::RaftMeta,
        APPLIED.to_vec(),
        serde_json::to_vec(applied).map_err(write_sm)?,
    );
    if let Some(m) = membership {
        b.put(
            Cf::RaftMeta,
            MEMBERSHIP.to_vec(),
            serde_json::to_vec(m).map_err(write_sm)?,
        );
    }
    Ok(b)
}

/// Applies one block through its channel, off the async workers (it fsyncs).
async fn apply_proposal<S: Store>(
    channels: Arc<Channels<S>>,
    a: OrderedBlock,
    extra: WriteBatch,
) -> Result<BlockResult, StorageError<u64>> {
    let out = tokio::task::spawn_blocking(move || {
        // Every replica, the proposer included, checks every signature with the
        // deterministic rules: the verdict must not depend on who proposed the block.
        // Buffered: the entry is already synced in the Raft log, which keeps it until a
        // synced write (the purge marker) has made everything before it durable, and a
        // crash replays it from there; one fsync per block instead of two.
        channels.apply(&a, extra, crate::store::Durability::Buffered, true)
    })
    .await
    .map_err(write_sm)?
    .map_err(write_sm)?;
    Ok(BlockResult {
        results: out
            .results
            .into_iter()
            .map(|r| {
                r.map_err(|e| TxRejection {
                    rule: e.rule.to_string(),
                    kind: format!("{:?}", e.kind),
                    detail: e.detail,
                })
            })
            .collect(),
        height: out.height,
        tree_size: out.tree_size,
    })
}

impl<S: Store> RaftStateMachine<TypeConfig> for StateMachine<S> {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, NodeInfo>), StorageError<u64>> {
        Ok((self.read(APPLIED)?, self.membership()?))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<BlockResult>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        let replayed = self.replayed_upto()?;
        for e in entries {
            match e.payload {
                EntryPayload::Normal(_) if e.log_id.index <= replayed => {
                    // Already in the ledger through a snapshot install that crashed
                    // before recording its position: record the position only. Nobody
                    // waits for this result (the proposer's reply did not survive the
                    // restart).
                    let extra = position(&e.log_id, None)?;
                    out.push(
                        apply_proposal(self.channels.clone(), OrderedBlock::default(), extra)
                            .await?,
                    );
                    tracing::info!(
                        index = e.log_id.index,
                        "entry already replayed by an interrupted snapshot install; skipped"
                    );
                }
                EntryPayload::Normal(p) => {
                    let extra = position(&e.log_id, None)?;
                    let a = OrderedBlock {
                        channel: p.channel,
                        leaves: p.leaves.into_iter().map(Bytes::from).collect(),
                        timestamp_ms: p.timestamp_ms,
                        proposer: p.proposer,
                        index: Some(e.log_id.index),
                        private: p.private,
                    };
                    out.push(apply_proposal(self.channels.clone(), a, extra).await?);
                }
                EntryPayload::Blank => {
                    let extra = position(&e.log_id, None)?;
                    out.push(
                        apply_proposal(self.channels.clone(), OrderedBlock::default(), extra)
                            .await?,
                    );
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(e.log_id), m);
                    let extra = position(&e.log_id, Some(&stored))?;
                    out.push(
                        apply_proposal(self.channels.clone(), OrderedBlock::default(), extra)
                            .await?,
                    );
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Captured here, between applies, so the position and the chain agree.
        SnapshotBuilder {
            applied: self.read(APPLIED).ok().flatten(),
            membership: self.membership().unwrap_or_default(),
            current: self.current.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, NodeInfo>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let blocks: Vec<SnapBlock> = serde_json::from_slice(&data).map_err(write_sm)?;
        // Never roll a channel back: the snapshot must hold at least what we have.
        let mut top: std::collections::BTreeMap<&str, u64> = Default::default();
        for b in &blocks {
            let h = top.entry(b.channel.as_str()).or_default();
            *h = (*h).max(b.height);
        }
        for name in std::iter::once(String::new()).chain(self.channels.names()) {
            let have = self
                .channels
                .get(&name)
                .map(|l| l.tip().height)
                .unwrap_or(0);
            let theirs = top.get(name.as_str()).copied().unwrap_or(0);
            if have > theirs {
                return Err(write_sm(format!(
                    "snapshot holds {theirs} blocks of channel {name:?} but this replica already has {have}: refusing to roll back"
                )));
            }
        }
        let last = meta
            .last_log_id
            .ok_or_else(|| write_sm("snapshot without a log position"))?;
        let n = blocks.len();
        let mut positioned = false;
        for (i, b) in blocks.into_iter().enumerate() {
            let ledger = self.channels.get(&b.channel).ok_or_else(|| {
                write_sm(format!(
                    "snapshot block {} is for channel {:?}, which no earlier block created",
                    i + 1,
                    b.channel
                ))
            })?;
            let have = ledger.tip().height;
            if b.height <= have {
                let mine = ledger
                    .block_header(b.height)
                    .map_err(read_sm)?
                    .map(|h| hex::encode(h.hash()));
                if mine.as_deref() != Some(b.hash.as_str()) {
                    return Err(write_sm(format!(
                        "this replica's block {} of channel {:?} differs from the snapshot's: the replica diverged; restore it from a backup or resync from empty",
                        b.height, b.channel
                    )));
                }
                continue;
            }
            if b.height != have + 1 {
                return Err(write_sm(format!(
                    "snapshot skips from block {have} to {} of channel {:?}",
                    b.height, b.channel
                )));
            }
            let mut extra = if i + 1 == n {
                positioned = true;
                position(&last, Some(&meta.last_membership))?
            } else {
                WriteBatch::new()
            };
            extra.put(
                Cf::RaftMeta,
                REPLAYED.to_vec(),
                serde_json::to_vec(&b.index).map_err(write_sm)?,
            );
            let a = OrderedBlock {
                channel: b.channel.clone(),
                leaves: b.leaves.into_iter().map(Bytes::from).collect(),
                timestamp_ms: b.timestamp_ms,
                proposer: b.proposer,
                index: Some(b.index),
                private: b.private,
            };
            apply_proposal(self.channels.clone(), a, extra).await?;
            if hex::encode(ledger.tip().block_hash) != b.hash {
                return Err(write_sm(format!(
                    "replaying snapshot block {} of channel {:?} gave a different block hash: the snapshot is not this ledger's",
                    b.height, b.channel
                )));
            }
        }
        if !positioned {
            // Nothing left to replay: just record the position.
            let b = position(&last, Some(&meta.last_membership))?;
            self.channels
                .system()
                .store()
                .write(b, crate::store::Durability::Sync)
                .map_err(write_sm)?;
        }
        *self.current.lock() = Some(meta.clone());
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let Some(meta) = self.current.lock().clone() else {
            return Ok(None);
        };
        let upto = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let channels = self.channels.clone();
        let data = tokio::task::spawn_blocking(move || snapshot_data(&channels, upto))
            .await
            .map_err(read_sm)??;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Every channel's blocks journalled at Raft index `<= upto`, in log order, as JSON.
fn snapshot_data<S: Store>(
    channels: &Channels<S>,
    upto: u64,
) -> Result<Vec<u8>, StorageError<u64>> {
    let journal = channels.journal(upto).map_err(read_sm)?;
    let mut blocks = Vec::with_capacity(journal.len());
    for j in journal {
        let ledger = channels
            .get(&j.channel)
            .ok_or_else(|| read_sm(format!("journal names unknown channel {:?}", j.channel)))?;
        let header = ledger
            .block_header(j.height)
            .map_err(read_sm)?
            .ok_or_else(|| read_sm(format!("block {} of {:?} missing", j.height, j.channel)))?;
        let leaves = ledger
            .leaves(header.first_index, header.leaf_count)
            .map_err(read_sm)?;
        let private = ledger
            .sealed_payloads(header.first_index, header.leaf_count)
            .map_err(read_sm)?
            .into_iter()
            .map(|(i, sealed)| super::Sidecar {
                position: (i - header.first_index) as u32,
                sealed,
            })
            .collect();
        blocks.push(SnapBlock {
            index: j.index,
            channel: j.channel,
            height: j.height,
            hash: hex::encode(header.hash()),
            timestamp_ms: header.timestamp_ms,
            proposer: header.proposer,
            leaves,
            private,
        });
    }
    serde_json::to_vec(&blocks).map_err(read_sm)
}

/// Records a snapshot position (the data is made on demand, see `Current`).
pub struct SnapshotBuilder {
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, NodeInfo>,
    current: Current,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        // Compaction only records the position (see `Current`); the data is made from the
        // ledger when a member needs it (openraft keeps only the meta of what this
        // returns and asks `get_current_snapshot` for the data to send).
        let upto = self.applied.map(|l| l.index).unwrap_or(0);
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!("{upto}"),
        };
        *self.current.lock() = Some(meta.clone());
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}
