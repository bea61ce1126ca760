//! The ledger as Raft's state machine.
//!
//! Applying an entry is `Ledger::apply_block`, with the applied log id written in the
//! same atomic batch, so after a crash the ledger and Raft agree on what was applied.
//!
//! Snapshots are built from the ledger itself, not kept as a second copy: a snapshot is
//! the chain of blocks (header hash, timestamp, proposer, accepted leaves) up to the
//! applied position. A node installing it keeps the blocks it already has (after checking
//! that its last block hash matches the snapshot's) and replays the rest through the same
//! apply path, which re-checks every contract and must reproduce every block hash.

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
use crate::ledger::Ledger;
use crate::store::{Cf, Store, WriteBatch};

const APPLIED: &[u8] = b"raft_applied";
const MEMBERSHIP: &[u8] = b"raft_membership";

/// One block in a snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapBlock {
    hash: String,
    timestamp_ms: u64,
    proposer: String,
    #[serde(with = "super::b64_vec")]
    leaves: Vec<Vec<u8>>,
}

/// The last snapshot built or installed: its meta and data.
type Current = Arc<Mutex<Option<(SnapshotMeta<u64, NodeInfo>, Vec<u8>)>>>;

/// The state machine over a ledger.
pub struct StateMachine<S: Store> {
    ledger: Arc<Ledger<S>>,
    current: Current,
}

impl<S: Store> StateMachine<S> {
    /// The state machine of `ledger`.
    pub fn new(ledger: Arc<Ledger<S>>) -> Self {
        Self {
            ledger,
            current: Arc::new(Mutex::new(None)),
        }
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError<u64>> {
        match self.ledger.store().get(Cf::Meta, key).map_err(read_sm)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(read_sm),
        }
    }

    fn membership(&self) -> Result<StoredMembership<u64, NodeInfo>, StorageError<u64>> {
        Ok(self.read(MEMBERSHIP)?.unwrap_or_default())
    }
}

fn position(
    applied: &LogId<u64>,
    membership: Option<&StoredMembership<u64, NodeInfo>>,
) -> Result<WriteBatch, StorageError<u64>> {
    let mut b = WriteBatch::new();
    b.put(
        Cf::Meta,
        APPLIED.to_vec(),
        serde_json::to_vec(applied).map_err(write_sm)?,
    );
    if let Some(m) = membership {
        b.put(
            Cf::Meta,
            MEMBERSHIP.to_vec(),
            serde_json::to_vec(m).map_err(write_sm)?,
        );
    }
    Ok(b)
}

/// Applies one proposal through the ledger, off the async workers (it fsyncs).
async fn apply_proposal<S: Store>(
    ledger: Arc<Ledger<S>>,
    leaves: Vec<Bytes>,
    timestamp_ms: u64,
    proposer: String,
    extra: WriteBatch,
) -> Result<BlockResult, StorageError<u64>> {
    let out = tokio::task::spawn_blocking(move || {
        // Every replica, the proposer included, checks every signature with the strict
        // rules: the verdict must not depend on who proposed or how a batch was formed.
        ledger.apply_block(&leaves, timestamp_ms, &proposer, extra, true)
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
    type SnapshotBuilder = SnapshotBuilder<S>;

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
        for e in entries {
            match e.payload {
                EntryPayload::Normal(p) => {
                    let extra = position(&e.log_id, None)?;
                    let leaves = p.leaves.into_iter().map(Bytes::from).collect();
                    out.push(
                        apply_proposal(
                            self.ledger.clone(),
                            leaves,
                            p.timestamp_ms,
                            p.proposer,
                            extra,
                        )
                        .await?,
                    );
                }
                EntryPayload::Blank => {
                    let extra = position(&e.log_id, None)?;
                    out.push(
                        apply_proposal(self.ledger.clone(), Vec::new(), 0, String::new(), extra)
                            .await?,
                    );
                }
                EntryPayload::Membership(m) => {
                    let stored = StoredMembership::new(Some(e.log_id), m);
                    let extra = position(&e.log_id, Some(&stored))?;
                    out.push(
                        apply_proposal(self.ledger.clone(), Vec::new(), 0, String::new(), extra)
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
            ledger: self.ledger.clone(),
            applied: self.read(APPLIED).ok().flatten(),
            membership: self.membership().unwrap_or_default(),
            height: self.ledger.tip().height,
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
        let have = self.ledger.tip().height;
        if have > blocks.len() as u64 {
            return Err(write_sm(format!(
                "snapshot holds {} blocks but this replica already has {have}: refusing to roll back",
                blocks.len()
            )));
        }
        if have > 0 {
            let mine = self.ledger.tip().block_hash;
            if hex::encode(mine) != blocks[have as usize - 1].hash {
                return Err(write_sm(format!(
                    "this replica's block {have} differs from the snapshot's: the replica diverged; restore it from a backup or resync from empty"
                )));
            }
        }
        let last = meta
            .last_log_id
            .ok_or_else(|| write_sm("snapshot without a log position"))?;
        let n = blocks.len();
        for (i, b) in blocks.into_iter().enumerate().skip(have as usize) {
            let extra = if i + 1 == n {
                position(&last, Some(&meta.last_membership))?
            } else {
                WriteBatch::new()
            };
            let leaves = b.leaves.into_iter().map(Bytes::from).collect();
            apply_proposal(
                self.ledger.clone(),
                leaves,
                b.timestamp_ms,
                b.proposer,
                extra,
            )
            .await?;
            if hex::encode(self.ledger.tip().block_hash) != b.hash {
                return Err(write_sm(format!(
                    "replaying snapshot block {} gave a different block hash: the snapshot is not this ledger's",
                    i + 1
                )));
            }
        }
        if n as u64 == have {
            // Nothing to replay: just record the position.
            let b = position(&last, Some(&meta.last_membership))?;
            self.ledger
                .store()
                .write(b, crate::store::Durability::Sync)
                .map_err(write_sm)?;
        }
        *self.current.lock() = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        Ok(self.current.lock().clone().map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// Builds a snapshot of the chain up to a captured position.
pub struct SnapshotBuilder<S: Store> {
    ledger: Arc<Ledger<S>>,
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, NodeInfo>,
    height: u64,
    current: Current,
}

impl<S: Store> RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let mut blocks = Vec::with_capacity(self.height as usize);
        for h in 1..=self.height {
            let header = self
                .ledger
                .block_header(h)
                .map_err(read_sm)?
                .ok_or_else(|| read_sm(format!("block {h} missing")))?;
            let leaves = self
                .ledger
                .leaves(header.first_index, header.leaf_count)
                .map_err(read_sm)?;
            blocks.push(SnapBlock {
                hash: hex::encode(header.hash()),
                timestamp_ms: header.timestamp_ms,
                proposer: header.proposer,
                leaves,
            });
        }
        let data = serde_json::to_vec(&blocks).map_err(read_sm)?;
        let meta = SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: format!(
                "{}-{}",
                self.applied.map(|l| l.index).unwrap_or(0),
                self.height
            ),
        };
        *self.current.lock() = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
