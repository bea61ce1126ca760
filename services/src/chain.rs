//! ChainService handlers: argument checks, a backend call, a conversion.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt, stream::FuturesOrdered};
use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_server::ChainService;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Principal;
use crate::backend::ChainBackend;
use crate::convert;
use crate::error::ServiceError;

/// Most blocks one GetBlocks call returns.
pub const MAX_BLOCKS_PER_CALL: u32 = 1000;
/// Most leaf bytes one GetBlocks response carries (at least one block is always
/// returned; a block holds at most the committer's 8 MiB batch cap).
pub const MAX_BLOCKS_RESPONSE_BYTES: usize = 8 << 20;
/// Most transactions one SubmitStream call accepts; a bulk loader opens another stream.
pub const MAX_TX_PER_STREAM: u64 = 1_000_000;
/// Submissions one stream keeps in flight; more waits, which pushes back on the client
/// through HTTP/2 flow control instead of buffering in the node.
pub const STREAM_IN_FLIGHT: usize = 8192;

/// The ChainService over a backend.
#[derive(Clone)]
pub struct Chain<B: ChainBackend> {
    backend: Arc<B>,
    stream_rate: u64,
}

impl<B: ChainBackend> Chain<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self {
            backend,
            stream_rate: 0,
        }
    }

    /// Caps each SubmitStream call at `tx_per_sec` transactions per second (0: no cap).
    /// A transaction over the rate is not submitted; its position gets
    /// RESOURCE_EXHAUSTED, so the client knows exactly which ones to resend.
    pub fn with_stream_rate(mut self, tx_per_sec: u64) -> Self {
        self.stream_rate = tx_per_sec;
        self
    }
}

/// A token bucket holding one second's worth of transactions.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    fn new(rate: u64) -> Option<Self> {
        (rate > 0).then(|| Self {
            rate: rate as f64,
            tokens: rate as f64,
            at: std::time::Instant::now(),
        })
    }

    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

type BlockStream = Pin<Box<dyn Stream<Item = Result<pb::Block, Status>> + Send + 'static>>;

impl<B: ChainBackend> Chain<B> {
    /// The backend of the channel a request names, as its caller may read it (the auth
    /// layer put the caller in the request's extensions).
    fn at<T>(&self, r: &Request<T>, channel: &str) -> Result<Arc<B>, Status> {
        let anonymous = Principal::anonymous(None);
        let caller = r.extensions().get::<Principal>().unwrap_or(&anonymous);
        Ok(self.backend.channel(channel, caller)?)
    }
}

#[tonic::async_trait]
impl<B: ChainBackend> ChainService for Chain<B> {
    async fn get_status(
        &self,
        r: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::ChainStatus>, Status> {
        let b = self.at(&r, &r.get_ref().channel)?;
        Ok(Response::new(convert::status(b.status()?)))
    }

    async fn get_checkpoint(
        &self,
        r: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::SignedCheckpoint>, Status> {
        let (note, tree_size, root) = self.at(&r, &r.get_ref().channel)?.checkpoint()?;
        Ok(Response::new(pb::SignedCheckpoint {
            note,
            tree_size,
            root: root.to_vec(),
        }))
    }

    async fn get_block(
        &self,
        r: Request<pb::GetBlockRequest>,
    ) -> Result<Response<pb::Block>, Status> {
        let b = self.at(&r, &r.get_ref().channel)?;
        let r = r.into_inner();
        if r.height == 0 {
            return Err(ServiceError::InvalidArgument("block heights start at 1".into()).into());
        }
        Ok(Response::new(convert::block(
            b.block(r.height, r.include_leaves)?,
        )))
    }

    async fn get_blocks(
        &self,
        r: Request<pb::GetBlocksRequest>,
    ) -> Result<Response<pb::GetBlocksResponse>, Status> {
        let backend = self.at(&r, &r.get_ref().channel)?;
        let r = r.into_inner();
        let from = r.from_height.max(1);
        let limit = r.limit.clamp(1, MAX_BLOCKS_PER_CALL) as u64;
        let height = backend.status()?.height;
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        for h in from..from.saturating_add(limit).min(height + 1) {
            let b = backend.block(h, r.include_leaves)?;
            bytes += b.leaves.iter().map(Vec::len).sum::<usize>();
            if !blocks.is_empty() && bytes > MAX_BLOCKS_RESPONSE_BYTES {
                // The client continues from the next height.
                break;
            }
            blocks.push(convert::block(b));
        }
        Ok(Response::new(pb::GetBlocksResponse { blocks }))
    }

    async fn get_entry(
        &self,
        r: Request<pb::GetEntryRequest>,
    ) -> Result<Response<pb::Entry>, Status> {
        let b = self.at(&r, &r.get_ref().channel)?;
        Ok(Response::new(convert::entry(
            b.entry(r.into_inner().index)?,
        )))
    }

    async fn get_inclusion_proof(
        &self,
        r: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        let b = self.at(&r, &r.get_ref().channel)?;
        let r = r.into_inner();
        let (tree_size, path) = b.inclusion(r.index, r.tree_size)?;
        let entry = b.entry(r.index)?;
        Ok(Response::new(pb::InclusionProof {
            index: r.index,
            tree_size,
            path: path.iter().map(|h| h.to_vec()).collect(),
            leaf_hash: gridledger_core::merkle::leaf_hash(&entry.leaf).to_vec(),
        }))
    }

    async fn get_consistency_proof(
        &self,
        r: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        let b = self.at(&r, &r.get_ref().channel)?;
        let r = r.into_inner();
        let (new_size, path) = b.consistency(r.old_size, r.new_size)?;
        let old_root = b.root_at(r.old_size)?.to_vec();
        let new_root = b.root_at(new_size)?.to_vec();
        Ok(Response::new(pb::ConsistencyProof {
            old_size: r.old_size,
            new_size,
            path: path.iter().map(|h| h.to_vec()).collect(),
            old_root,
            new_root,
        }))
    }

    async fn get_receipt(
        &self,
        r: Request<pb::GetReceiptRequest>,
    ) -> Result<Response<pb::ReceiptResponse>, Status> {
        let b = self.at(&r, &r.get_ref().channel)?;
        Ok(Response::new(pb::ReceiptResponse {
            receipt: b.receipt(r.into_inner().index)?,
        }))
    }

    async fn submit(
        &self,
        r: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let r = r.into_inner();
        let tx = r.signed_tx;
        check_size(tx.len(), self.backend.max_tx_bytes())?;
        let c = self.backend.submit(tx, r.private_payload).await?;
        Ok(Response::new(convert::committed(c)))
    }

    async fn submit_stream(
        &self,
        r: Request<Streaming<pb::SubmitRequest>>,
    ) -> Result<Response<pb::SubmitStreamResponse>, Status> {
        let mut incoming = r.into_inner();
        let max = self.backend.max_tx_bytes();
        let mut pending = FuturesOrdered::new();
        let mut out = pb::SubmitStreamResponse::default();
        let mut bucket = Bucket::new(self.stream_rate);
        let rate = self.stream_rate;
        let record =
            |out: &mut pb::SubmitStreamResponse,
             pos: u64,
             res: Result<crate::backend::Committed, ServiceError>| match res {
                Ok(c) => {
                    out.committed += 1;
                    out.leaf_indexes.push(c.leaf_index);
                }
                Err(e) => out.errors.push(pb::SubmitError {
                    position: pos,
                    code: e.code_name().into(),
                    message: e.to_string(),
                }),
            };
        loop {
            tokio::select! {
                biased;
                Some((pos, res)) = pending.next(), if !pending.is_empty() => record(&mut out, pos, res),
                msg = incoming.message(), if pending.len() < STREAM_IN_FLIGHT => {
                    let Some(msg) = msg? else { break };
                    let pos = out.received;
                    out.received += 1;
                    if out.received > MAX_TX_PER_STREAM {
                        return Err(ServiceError::ResourceExhausted(format!("a stream carries at most {MAX_TX_PER_STREAM} transactions; {} were committed before the limit", out.committed)).into());
                    }
                    let (tx, private) = (msg.signed_tx, msg.private_payload);
                    let within_rate = bucket.as_mut().is_none_or(Bucket::take);
                    let fut: futures::future::BoxFuture<'static, (u64, Result<_, ServiceError>)> = match check_size(tx.len(), max) {
                        Ok(()) if !within_rate => Box::pin(async move {
                            (pos, Err(ServiceError::ResourceExhausted(format!(
                                "stream rate limit of {rate} tx/s exceeded; this transaction was not submitted, resend it later"
                            ))))
                        }),
                        Err(e) => Box::pin(async move { (pos, Err(e)) }),
                        Ok(()) => {
                            let f = self.backend.submit(tx, private);
                            Box::pin(async move { (pos, f.await) })
                        }
                    };
                    pending.push_back(fut);
                }
            }
        }
        while let Some((pos, res)) = pending.next().await {
            record(&mut out, pos, res);
        }
        Ok(Response::new(out))
    }

    async fn add_cosignature(
        &self,
        r: Request<pb::AddCosignatureRequest>,
    ) -> Result<Response<pb::AddCosignatureResponse>, Status> {
        let note = r.into_inner().note;
        if note.len() > 64 << 10 {
            return Err(ServiceError::InvalidArgument("note larger than 64 KiB".into()).into());
        }
        Ok(Response::new(pb::AddCosignatureResponse {
            accepted: self.backend.add_cosignature(&note)?,
        }))
    }

    type WatchBlocksStream = BlockStream;

    async fn watch_blocks(
        &self,
        r: Request<pb::WatchBlocksRequest>,
    ) -> Result<Response<Self::WatchBlocksStream>, Status> {
        let backend = self.at(&r, &r.get_ref().channel)?;
        let r = r.into_inner();
        let mut heights = backend.heights();
        let mut next = r.from_height.max(1);
        let stream = async_stream::try_stream! {
            loop {
                let top = *heights.borrow_and_update();
                while next <= top {
                    let b = backend.block(next, r.include_leaves).map_err(Status::from)?;
                    yield convert::block(b);
                    next += 1;
                }
                if heights.changed().await.is_err() {
                    // The node is shutting down.
                    Err(Status::from(ServiceError::Unavailable { message: "node is shutting down".into(), leader: None }))?;
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}

fn check_size(len: usize, max: usize) -> Result<(), ServiceError> {
    if len == 0 {
        return Err(ServiceError::InvalidArgument("signed_tx is empty".into()));
    }
    if len > max {
        return Err(ServiceError::ResourceExhausted(format!(
            "transaction is {len} bytes; the limit is {max}"
        )));
    }
    Ok(())
}
