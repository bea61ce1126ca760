//! Replication with openraft: the Raft log and vote in RocksDB ([`log_store`]), the
//! ledger's `apply_block` as the state machine ([`state_machine`]).
//!
//! One Raft entry is one block: the leader groups submissions into a [`BlockProposal`]
//! (leaves, its clock, its id), every replica applies it with the same contracts and so
//! reaches the same root, and each replica signs the checkpoint its own replica computed.
//! Rejected transactions are decided at apply, identically everywhere, and reported back
//! to the leader's submitter through the entry's [`BlockResult`].

// openraft's trait methods return its `StorageError`, which is large; our helpers return
// the same type so `?` works inside the trait methods. Boxing it would only move the cost.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod network;
pub mod state_machine;

use std::io::Cursor;

use gridledger_core::contract::{RULES, Rejection};
use gridledger_services::ServiceError;
use openraft::{AnyError, StorageError, StorageIOError};
use serde::{Deserialize, Serialize};

/// A block the leader proposes: one Raft entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockProposal {
    /// The leader's clock when it closed the block, ms since the epoch. Replicas take it
    /// from here, never from their own clocks.
    pub timestamp_ms: u64,
    /// The leader's node id (the block header's proposer).
    pub proposer: String,
    /// The channel the block belongs to ("" = the system channel).
    #[serde(default)]
    pub channel: String,
    /// SignedTx bytes, in order.
    #[serde(with = "b64_vec")]
    pub leaves: Vec<Vec<u8>>,
    /// Sealed class II payloads of some of the leaves (DESIGN.md §4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private: Vec<Sidecar>,
}

/// A class II payload riding beside its leaf, sealed under the collection key (see
/// [`crate::private`]): never part of the leaf, so never hashed into the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sidecar {
    /// Position of its leaf in the block's (or the proposal's) leaves.
    pub position: u32,
    /// Nonce and ciphertext.
    #[serde(with = "b64")]
    pub sealed: Vec<u8>,
}

/// What applying a block did, per transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResult {
    /// Leaf index of each accepted transaction, or the rejection (rule, kind, detail).
    pub results: Vec<Result<u64, TxRejection>>,
    /// Block height after the entry.
    pub height: u64,
    /// Tree size after the entry.
    pub tree_size: u64,
}

/// A contract rejection, as carried back through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRejection {
    /// Rule id.
    pub rule: String,
    /// RejectKind, by name.
    pub kind: String,
    /// What failed.
    pub detail: String,
}

impl TxRejection {
    /// Back to the contract's rejection (unknown rule ids read as `unknown`, which only a
    /// replica of another software version could send).
    pub fn into_rejection(self) -> Rejection {
        use gridledger_core::contract::RejectKind as K;
        let rule = RULES
            .iter()
            .find(|r| **r == self.rule)
            .copied()
            .unwrap_or("unknown");
        let kind = match self.kind.as_str() {
            "Unauthenticated" => K::Unauthenticated,
            "PermissionDenied" => K::PermissionDenied,
            "AlreadyExists" => K::AlreadyExists,
            "FailedPrecondition" => K::FailedPrecondition,
            _ => K::Invalid,
        };
        Rejection {
            rule,
            detail: self.detail,
            kind,
        }
    }
}

/// What a failed proposal means to the submitter.
pub fn write_error(
    e: openraft::error::RaftError<u64, openraft::error::ClientWriteError<u64, NodeInfo>>,
) -> ServiceError {
    use openraft::error::{ClientWriteError, RaftError};
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ServiceError::Unavailable {
            message: match &f.leader_id {
                Some(id) => format!("this node is not the leader; node {id} is"),
                None => {
                    "this node is not the leader and no leader is known yet; retry shortly".into()
                }
            },
            leader: f.leader_node.map(|n| n.api),
        },
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ServiceError::FailedPrecondition(e.to_string())
        }
        RaftError::Fatal(e) => ServiceError::Unavailable {
            message: format!("consensus stopped: {e}"),
            leader: None,
        },
    }
}

/// A member as Raft knows it: where its peers and its clients reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's id (its checkpoint key name suffix), e.g. `node-1`.
    pub name: String,
    /// Peer port address (host:port), mutual TLS with node certificates.
    pub peer: String,
    /// API address (host:port), where a follower redirects clients to the leader.
    pub api: String,
}

impl std::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (peer {}, api {})", self.name, self.peer, self.api)
    }
}

openraft::declare_raft_types!(
    /// gridledger's Raft types: node ids are u64, nodes carry their peer address.
    pub TypeConfig:
        D = BlockProposal,
        R = BlockResult,
        NodeId = u64,
        Node = NodeInfo,
        SnapshotData = Cursor<Vec<u8>>,
);

/// The Raft handle of a node.
pub type Raft = openraft::Raft<TypeConfig>;

fn store_err(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

pub(crate) fn write_logs(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_logs(store_err(e)).into()
}

pub(crate) fn read_logs(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_logs(store_err(e)).into()
}

pub(crate) fn write_sm(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_state_machine(store_err(e)).into()
}

pub(crate) fn read_sm(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read_state_machine(store_err(e)).into()
}

mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        B64.decode(String::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

mod b64_vec {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| B64.encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(|s| B64.decode(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
