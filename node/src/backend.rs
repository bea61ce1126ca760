//! The node's implementation of the services' [`ChainBackend`], and the one mapping of
//! ledger errors to service errors.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use gridledger_core::merkle::Hash;
use gridledger_services::ServiceError;
use gridledger_services::backend::{BlockInfo, ChainBackend, Committed, EntryInfo, StatusInfo};
use tokio::sync::watch;

use crate::commit::Committer;
use crate::ledger::{Ledger, LedgerError};
use crate::store::Store;

impl From<LedgerError> for ServiceError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotFound(m) => ServiceError::NotFound(m),
            LedgerError::InvalidArgument(m) => ServiceError::InvalidArgument(m),
            e @ (LedgerError::Store(_) | LedgerError::Corrupt(_)) => {
                ServiceError::Internal(e.to_string())
            }
        }
    }
}

/// Ledger + committer.
pub struct NodeChain<S: Store> {
    /// The ledger.
    pub ledger: Arc<Ledger<S>>,
    /// The group committer.
    pub committer: Committer,
    /// Largest SignedTx accepted.
    pub max_tx_bytes: usize,
}

impl<S: Store> ChainBackend for NodeChain<S> {
    fn status(&self) -> Result<StatusInfo, ServiceError> {
        let t = self.ledger.tip();
        Ok(StatusInfo {
            origin: self.ledger.origin().to_string(),
            tree_size: t.size,
            height: t.height,
            root: t.root,
            node_id: self.ledger.node_id().to_string(),
            counts: t.counts.into_iter().collect(),
        })
    }

    fn checkpoint(&self) -> Result<(String, u64, Hash), ServiceError> {
        let t = self.ledger.tip();
        Ok((t.checkpoint.to_string(), t.size, t.root))
    }

    fn block(&self, height: u64, include_leaves: bool) -> Result<BlockInfo, ServiceError> {
        let header = self.ledger.block_header(height)?.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "block {height} does not exist: height is {}",
                self.ledger.tip().height
            ))
        })?;
        let leaves = if include_leaves {
            self.ledger.leaves(header.first_index, header.leaf_count)?
        } else {
            Vec::new()
        };
        Ok(BlockInfo { header, leaves })
    }

    fn entry(&self, index: u64) -> Result<EntryInfo, ServiceError> {
        let e = self.ledger.entry(index)?;
        Ok(EntryInfo {
            index: e.index,
            leaf: e.leaf,
            block_height: e.block_height,
        })
    }

    fn inclusion(&self, index: u64, size: u64) -> Result<(u64, Vec<Hash>), ServiceError> {
        Ok(self.ledger.inclusion_proof(index, size)?)
    }

    fn consistency(&self, old: u64, new: u64) -> Result<(u64, Vec<Hash>), ServiceError> {
        Ok(self.ledger.consistency_proof(old, new)?)
    }

    fn receipt(&self, index: u64) -> Result<String, ServiceError> {
        Ok(self.ledger.receipt(index)?)
    }

    fn root_at(&self, size: u64) -> Result<Hash, ServiceError> {
        Ok(self.ledger.root_at(size)?)
    }

    fn submit(&self, signed_tx: Bytes) -> BoxFuture<'static, Result<Committed, ServiceError>> {
        let c = self.committer.clone();
        Box::pin(async move { c.submit(signed_tx).await })
    }

    fn heights(&self) -> watch::Receiver<u64> {
        self.committer.heights()
    }

    fn max_tx_bytes(&self) -> usize {
        self.max_tx_bytes
    }
}
