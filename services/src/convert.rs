//! Domain ↔ proto conversions, in one place, so handlers stay short.

use gridledger_proto::v1 as pb;

use crate::backend::{BlockInfo, Committed, EntryInfo, StatusInfo};

/// Status → proto.
pub fn status(s: StatusInfo) -> pb::ChainStatus {
    let total_tx = s.counts.iter().map(|(_, c)| c).sum();
    pb::ChainStatus {
        origin: s.origin,
        tree_size: s.tree_size,
        height: s.height,
        root: s.root.to_vec(),
        node_id: s.node_id,
        leader_id: s.leader_id,
        leader_api: s.leader_api,
        tx_counts: s
            .counts
            .into_iter()
            .map(|(kind, count)| pb::TxCount { kind, count })
            .collect(),
        total_tx,
    }
}

/// Block → proto.
pub fn block(b: BlockInfo) -> pb::Block {
    let h = b.header;
    pb::Block {
        height: h.height,
        header: h.encode(),
        hash: h.hash().to_vec(),
        prev_hash: h.prev_hash.to_vec(),
        first_index: h.first_index,
        leaf_count: h.leaf_count,
        tree_size: h.tree_size,
        root: h.root.to_vec(),
        timestamp_ms: h.timestamp_ms,
        proposer: h.proposer,
        leaves: b.leaves,
    }
}

/// Entry → proto.
pub fn entry(e: EntryInfo) -> pb::Entry {
    pb::Entry {
        index: e.index,
        leaf_hash: gridledger_core::merkle::leaf_hash(&e.leaf).to_vec(),
        leaf: e.leaf,
        block_height: e.block_height,
    }
}

/// Commit → proto.
pub fn committed(c: Committed) -> pb::SubmitResponse {
    pb::SubmitResponse {
        leaf_index: c.leaf_index,
        block_height: c.block_height,
        leaf_hash: c.leaf_hash.to_vec(),
        tree_size: c.tree_size,
    }
}
