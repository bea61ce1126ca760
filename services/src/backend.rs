//! What the services need from the node, as a trait: the node implements it over its
//! ledger and committer; tests can implement it in memory.

use bytes::Bytes;
use futures::future::BoxFuture;
use gridledger_core::block::BlockHeader;
use gridledger_core::merkle::Hash;
use tokio::sync::watch;

use crate::error::Result;

/// Chain status as the backend knows it.
#[derive(Debug, Clone)]
pub struct StatusInfo {
    /// Ledger origin.
    pub origin: String,
    /// Tree size.
    pub tree_size: u64,
    /// Block height.
    pub height: u64,
    /// Root.
    pub root: Hash,
    /// Node id.
    pub node_id: String,
    /// Accepted transactions by kind.
    pub counts: Vec<(String, u64)>,
}

/// A committed submission.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// Leaf index.
    pub leaf_index: u64,
    /// Block height.
    pub block_height: u64,
    /// Tree size after the block.
    pub tree_size: u64,
    /// Leaf hash.
    pub leaf_hash: Hash,
}

/// A leaf with its position.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Index.
    pub index: u64,
    /// SignedTx bytes.
    pub leaf: Vec<u8>,
    /// Block height.
    pub block_height: u64,
}

/// A block and, if asked, its leaves.
#[derive(Debug, Clone)]
pub struct BlockInfo {
    /// Header.
    pub header: BlockHeader,
    /// Leaves (empty unless asked for).
    pub leaves: Vec<Vec<u8>>,
}

/// The chain backend. Methods are synchronous reads of committed state (cheap: a few
/// storage reads) except `submit`, which resolves after commit.
pub trait ChainBackend: Send + Sync + 'static {
    /// Status.
    ///
    /// # Errors
    /// Internal errors only.
    fn status(&self) -> Result<StatusInfo>;
    /// Latest signed checkpoint note, size and root.
    ///
    /// # Errors
    /// Internal errors only.
    fn checkpoint(&self) -> Result<(String, u64, Hash)>;
    /// A block.
    ///
    /// # Errors
    /// NotFound above the height.
    fn block(&self, height: u64, include_leaves: bool) -> Result<BlockInfo>;
    /// A leaf.
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn entry(&self, index: u64) -> Result<EntryInfo>;
    /// Inclusion proof; size 0 = current. Returns the size used.
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn inclusion(&self, index: u64, size: u64) -> Result<(u64, Vec<Hash>)>;
    /// Consistency proof; new 0 = current. Returns the new size used.
    ///
    /// # Errors
    /// InvalidArgument for old > new or old = 0; NotFound beyond the tree.
    fn consistency(&self, old: u64, new: u64) -> Result<(u64, Vec<Hash>)>;
    /// tlog-proof receipt text.
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn receipt(&self, index: u64) -> Result<String>;
    /// Root at a size (0 = current).
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn root_at(&self, size: u64) -> Result<Hash>;
    /// Submits encoded SignedTx bytes; resolves once committed (or rejected).
    fn submit(&self, signed_tx: Bytes) -> BoxFuture<'static, Result<Committed>>;
    /// Watch the committed height.
    fn heights(&self) -> watch::Receiver<u64>;
    /// Largest SignedTx accepted, in bytes.
    fn max_tx_bytes(&self) -> usize;
}
