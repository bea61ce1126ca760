//! The node's implementation of the services' [`ChainBackend`], and the one mapping of
//! ledger errors to service errors.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use gridledger_core::merkle::Hash;
use gridledger_core::pb::tx_body::Payload;
use gridledger_proto::v1 as pb;
use gridledger_services::ServiceError;
use gridledger_services::backend::{
    BlockInfo, ChainBackend, Committed, DataBackend, EntryInfo, StatusInfo,
};
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
    /// The Raft handle, in a cluster (for the leader's id in status).
    pub raft: Option<crate::raft::Raft>,
    /// Quorum-signed checkpoints, in a cluster.
    pub quorum: Option<Arc<crate::quorum::Quorum<S>>>,
    /// Witness cosignatures.
    pub witnesses: Arc<crate::witness::Witnesses>,
}

impl<S: Store> NodeChain<S> {
    /// The checkpoint this node serves: the largest witnessed one when witnesses have
    /// cosigned (with the members' signatures in a cluster), else the largest with a
    /// quorum of members, else this node's own latest.
    fn served(&self) -> Result<gridledger_core::note::SignedNote, ServiceError> {
        if let Some(size) = self.witnesses.latest() {
            let base = match &self.quorum {
                Some(q) => q.note_at(size),
                None => Some(self.ledger.sign_checkpoint_at(size)?),
            };
            if let Some(n) = base {
                return Ok(self.witnesses.attach(n, size));
            }
        }
        match &self.quorum {
            Some(q) => q.best().map_err(ServiceError::Internal),
            None => gridledger_core::note::SignedNote::parse(&self.ledger.tip().checkpoint)
                .map_err(|e| ServiceError::Internal(format!("own checkpoint: {e}"))),
        }
    }
}

impl<S: Store> ChainBackend for NodeChain<S> {
    fn status(&self) -> Result<StatusInfo, ServiceError> {
        let t = self.ledger.tip();
        let leader = self.raft.as_ref().and_then(|r| {
            let m = r.metrics().borrow().clone();
            let l = m.current_leader?;
            m.membership_config.membership().get_node(&l).cloned()
        });
        Ok(StatusInfo {
            origin: self.ledger.origin().to_string(),
            tree_size: t.size,
            height: t.height,
            root: t.root,
            node_id: self.ledger.node_id().to_string(),
            counts: t.counts.into_iter().collect(),
            leader_id: leader.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
            leader_api: leader.map(|n| n.api).unwrap_or_default(),
        })
    }

    fn checkpoint(&self) -> Result<(String, u64, Hash), ServiceError> {
        let note = self.served()?;
        let cp = gridledger_core::checkpoint::Checkpoint::parse(&note.text)
            .map_err(|e| ServiceError::Internal(format!("own checkpoint: {e}")))?;
        Ok((note.to_string(), cp.size, cp.root))
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
        // Against the served checkpoint when it covers the leaf; a leaf newer than that
        // gets the newest checkpoint there is (clients whose policy asks for more
        // signatures retry a moment later).
        if let Ok(r) = self.ledger.receipt_against(index, &self.served()?) {
            return Ok(r);
        }
        if let Some(q) = &self.quorum
            && let Ok(best) = q.best()
            && let Ok(r) = self.ledger.receipt_against(index, &best)
        {
            return Ok(r);
        }
        Ok(self.ledger.receipt(index)?)
    }

    fn root_at(&self, size: u64) -> Result<Hash, ServiceError> {
        Ok(self.ledger.root_at(size)?)
    }

    fn add_cosignature(&self, note: &str) -> Result<u32, ServiceError> {
        if !self.witnesses.configured() {
            return Err(ServiceError::FailedPrecondition(
                "this node accepts no witness cosignatures (witness_keys is empty)".into(),
            ));
        }
        self.witnesses.add(&self.ledger, note)
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

fn payload_at<S: Store>(ledger: &Ledger<S>, index: u64) -> Result<Payload, ServiceError> {
    let e = ledger.entry(index)?;
    let (_, body) = gridledger_core::tx::decode(&e.leaf)
        .map_err(|err| ServiceError::Internal(format!("leaf {index} does not decode: {err}")))?;
    body.payload
        .ok_or_else(|| ServiceError::Internal(format!("leaf {index} has no payload")))
}

impl<S: Store> DataBackend for NodeChain<S> {
    fn meter(&self, asset_no: &str) -> Result<Option<pb::Meter>, ServiceError> {
        let Some((owner, index)) = self.ledger.instrument(asset_no)? else {
            return Ok(None);
        };
        let Payload::RegisterInstrument(i) = payload_at(&self.ledger, index)? else {
            return Err(ServiceError::Internal(format!(
                "instrument {asset_no:?} points at leaf {index}, which is not a registration"
            )));
        };
        Ok(Some(pb::Meter {
            asset_no: i.asset_no,
            serial_no: i.serial_no,
            manufacturer_org: i.manufacturer_org,
            model: i.model,
            kind: pb::InstrumentKind::try_from(i.kind)
                .map(|k| {
                    k.as_str_name()
                        .trim_start_matches("INSTRUMENT_KIND_")
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            accuracy_class: i.accuracy_class,
            ratings: i.ratings,
            owner_org: owner,
            leaf_index: index,
        }))
    }

    fn readings(
        &self,
        asset_no: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<pb::DailyReading>, ServiceError> {
        let days = self.ledger.reading_days(asset_no, from, to, limit)?;
        let mut out = Vec::with_capacity(days.len());
        for (day, index) in days {
            let Payload::RecordReading(r) = payload_at(&self.ledger, index)? else {
                return Err(ServiceError::Internal(format!(
                    "reading {asset_no:?}/{day} points at leaf {index}, which is not a reading"
                )));
            };
            out.push(pb::DailyReading {
                day,
                leaf_index: index,
                import_wh: r.import_wh.iter().sum(),
                export_wh: r.export_wh.iter().sum(),
                register_import_wh: r.register_import_wh,
                register_export_wh: r.register_export_wh,
                import_intervals_wh: r.import_wh,
                export_intervals_wh: r.export_wh,
            });
        }
        Ok(out)
    }
}
