//! The fetcher: how the light client reaches a log. Transport-agnostic so the verifier
//! logic is tested in memory and runs unchanged over gRPC.

use gridledger_core::merkle::{self, Hash};
use gridledger_core::note::NoteSigner;
use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use tonic::transport::Channel;

use crate::error::ClientError;

/// A consistency proof and the roots the server claims (authenticated by the caller).
#[derive(Debug, Clone)]
pub struct ConsistencyReply {
    /// Proof hashes.
    pub path: Vec<Hash>,
    /// Claimed root at the old size.
    pub old_root: Hash,
    /// Claimed root at the new size.
    pub new_root: Hash,
    /// New size actually used.
    pub new_size: u64,
}

/// Reads a log. Nothing it returns is trusted until verified.
#[allow(async_fn_in_trait)]
pub trait Fetcher {
    /// The latest signed checkpoint note.
    ///
    /// # Errors
    /// Transport errors.
    async fn checkpoint(&mut self) -> Result<String, ClientError>;
    /// Consistency proof from `old` to `new` (0 = latest).
    ///
    /// # Errors
    /// Transport errors.
    async fn consistency(&mut self, old: u64, new: u64) -> Result<ConsistencyReply, ClientError>;
    /// A receipt for a leaf.
    ///
    /// # Errors
    /// Transport errors.
    async fn receipt(&mut self, index: u64) -> Result<String, ClientError>;
}

fn hash(v: &[u8]) -> Result<Hash, ClientError> {
    v.try_into()
        .map_err(|_| ClientError::Malformed(format!("hash of {} bytes", v.len())))
}

/// Over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcFetcher {
    /// The gRPC client.
    pub client: ChainServiceClient<Channel>,
    /// The channel read ("" = the system channel).
    pub channel: String,
}

impl Fetcher for GrpcFetcher {
    async fn checkpoint(&mut self) -> Result<String, ClientError> {
        Ok(self
            .client
            .get_checkpoint(pb::GetCheckpointRequest {
                channel: self.channel.clone(),
            })
            .await?
            .into_inner()
            .note)
    }

    async fn consistency(&mut self, old: u64, new: u64) -> Result<ConsistencyReply, ClientError> {
        let r = self
            .client
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_size: old,
                new_size: new,
                channel: self.channel.clone(),
            })
            .await?
            .into_inner();
        Ok(ConsistencyReply {
            path: r.path.iter().map(|h| hash(h)).collect::<Result<_, _>>()?,
            old_root: hash(&r.old_root)?,
            new_root: hash(&r.new_root)?,
            new_size: r.new_size,
        })
    }

    async fn receipt(&mut self, index: u64) -> Result<String, ClientError> {
        Ok(self
            .client
            .get_receipt(pb::GetReceiptRequest {
                index,
                channel: self.channel.clone(),
            })
            .await?
            .into_inner()
            .receipt)
    }
}

/// An in-memory log: for tests of the light client, including lying servers.
#[derive(Debug, Clone)]
pub struct MemFetcher {
    /// Leaf hashes.
    pub leaves: Vec<Hash>,
    /// Leaf bytes.
    pub data: Vec<Vec<u8>>,
    /// Origin.
    pub origin: String,
    /// Checkpoint signers.
    pub signers: Vec<NoteSigner>,
}

impl MemFetcher {
    /// An empty log signed by `signers`.
    pub fn new(origin: &str, signers: Vec<NoteSigner>) -> Self {
        Self {
            leaves: Vec::new(),
            data: Vec::new(),
            origin: origin.into(),
            signers,
        }
    }

    /// Appends a leaf.
    pub fn append(&mut self, leaf: Vec<u8>) {
        self.leaves.push(merkle::leaf_hash(&leaf));
        self.data.push(leaf);
    }

    /// The signed note at the current size.
    pub fn note(&self) -> String {
        let cp = gridledger_core::checkpoint::Checkpoint {
            origin: self.origin.clone(),
            size: self.leaves.len() as u64,
            root: merkle::root(self.leaves.as_slice(), self.leaves.len() as u64)
                .expect("in memory"),
        };
        let text = cp.body();
        let sigs = self.signers.iter().map(|s| s.sign(&text)).collect();
        gridledger_core::note::SignedNote { text, sigs }.to_string()
    }
}

impl Fetcher for MemFetcher {
    async fn checkpoint(&mut self) -> Result<String, ClientError> {
        Ok(self.note())
    }

    async fn consistency(&mut self, old: u64, new: u64) -> Result<ConsistencyReply, ClientError> {
        let n = if new == 0 {
            self.leaves.len() as u64
        } else {
            new
        };
        let src = self.leaves.as_slice();
        let path = merkle::consistency_proof(src, old, n)
            .map_err(|e| ClientError::Rpc(tonic::Status::invalid_argument(e.to_string())))?;
        Ok(ConsistencyReply {
            path,
            old_root: merkle::root(src, old)?,
            new_root: merkle::root(src, n)?,
            new_size: n,
        })
    }

    async fn receipt(&mut self, index: u64) -> Result<String, ClientError> {
        let n = self.leaves.len() as u64;
        let path = merkle::inclusion_proof(self.leaves.as_slice(), index, n)?;
        Ok(gridledger_core::receipt::Receipt {
            leaf: self.data[index as usize].clone(),
            index,
            path,
            checkpoint: self.note(),
        }
        .to_string())
    }
}
