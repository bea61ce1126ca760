//! The Raft log and vote in the node's RocksDB (`raft_log`, `raft_meta` column families),
//! written with synced batches: an entry is acknowledged to Raft only once it is durable.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, Vote};

use super::{TypeConfig, read_logs, write_logs};
use crate::store::{Cf, Durability, Store, WriteBatch};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"purged";

/// The Raft log over a [`Store`].
pub struct LogStore<S: Store> {
    store: Arc<S>,
}

impl<S: Store> Clone for LogStore<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<S: Store> LogStore<S> {
    /// The log in `store`.
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }

    fn meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError<u64>> {
        match self.store.get(Cf::RaftMeta, key).map_err(read_logs)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(read_logs),
        }
    }

    fn put_meta(&self, key: &[u8], v: &impl serde::Serialize) -> Result<(), StorageError<u64>> {
        let mut b = WriteBatch::new();
        b.put(
            Cf::RaftMeta,
            key.to_vec(),
            serde_json::to_vec(v).map_err(write_logs)?,
        );
        self.store.write(b, Durability::Sync).map_err(write_logs)
    }

    fn last_entry_id(&self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        match self
            .store
            .seek_prev(Cf::RaftLog, &u64::MAX.to_be_bytes())
            .map_err(read_logs)?
        {
            None => Ok(None),
            Some((_, v)) => {
                let e: Entry<TypeConfig> = serde_json::from_slice(&v).map_err(read_logs)?;
                Ok(Some(e.log_id))
            }
        }
    }
}

impl<S: Store> RaftLogReader<TypeConfig> for LogStore<S> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let from = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(i) => i.saturating_add(1),
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        if from >= to {
            return Ok(Vec::new());
        }
        self.store
            .scan(
                Cf::RaftLog,
                &from.to_be_bytes(),
                &to.to_be_bytes(),
                usize::MAX,
            )
            .map_err(read_logs)?
            .into_iter()
            .map(|(_, v)| serde_json::from_slice(&v).map_err(read_logs))
            .collect()
    }
}

impl<S: Store> RaftLogStorage<TypeConfig> for LogStore<S> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let last_purged: Option<LogId<u64>> = self.meta(PURGED)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.put_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.meta(VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        self.put_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.meta::<Option<LogId<u64>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut b = WriteBatch::new();
        for e in entries {
            b.put(
                Cf::RaftLog,
                e.log_id.index.to_be_bytes().to_vec(),
                serde_json::to_vec(&e).map_err(write_logs)?,
            );
        }
        let r = self.store.write(b, Durability::Sync);
        callback.log_io_completed(
            r.as_ref()
                .map(|_| ())
                .map_err(|e| std::io::Error::other(e.to_string())),
        );
        r.map_err(write_logs)
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // Delete [log_id.index, ∞).
        let keys = self
            .store
            .scan(
                Cf::RaftLog,
                &log_id.index.to_be_bytes(),
                &u64::MAX.to_be_bytes(),
                usize::MAX,
            )
            .map_err(write_logs)?;
        let mut b = WriteBatch::new();
        for (k, _) in keys {
            b.delete(Cf::RaftLog, k);
        }
        self.store.write(b, Durability::Sync).map_err(write_logs)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        // Record the purge point first, then delete [0, log_id.index].
        self.put_meta(PURGED, &log_id)?;
        let keys = self
            .store
            .scan(
                Cf::RaftLog,
                &0u64.to_be_bytes(),
                &(log_id.index + 1).to_be_bytes(),
                usize::MAX,
            )
            .map_err(write_logs)?;
        let mut b = WriteBatch::new();
        for (k, _) in keys {
            b.delete(Cf::RaftLog, k);
        }
        self.store
            .write(b, Durability::Buffered)
            .map_err(write_logs)
    }
}
