//! Group commit: submissions that arrive within a short window, or up to a size cap,
//! become one block and one synced write batch.
//!
//! Pipeline, so signature checks of the next batch overlap the commit of the current one,
//! with up to four blocks of a channel proposed to Raft at once:
//!
//! ```text
//! submit() ──mpsc──▶ collector (async): gathers a batch (window / caps)
//!                    └─▶ verify (blocking pool): Ed25519 batch verification, split
//!                        across `verify_threads` threads
//!                        └─▶ proposer: one Raft entry per block (its log append is
//!                            the synced write); answers every submitter once this
//!                            node has applied the block (contracts, ledger write)
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gridledger_core::merkle;
use gridledger_core::pb::SignedTx;
use gridledger_core::tx;
use gridledger_proto::v1::PrivatePayload;
use gridledger_services::ServiceError;
use gridledger_services::backend::Committed;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot, watch};

use crate::ledger::Ledger;
use crate::store::Store;

/// Group-commit tuning.
#[derive(Debug, Clone)]
pub struct CommitConfig {
    /// How long the collector waits for more transactions after the first one of a
    /// batch. Short: it bounds the latency a lone transaction pays.
    pub window: Duration,
    /// Most transactions per block.
    pub max_batch: usize,
    /// Most leaf bytes per block.
    pub max_batch_bytes: usize,
    /// Submissions queued before `submit` answers ResourceExhausted; bounds memory.
    pub queue: usize,
    /// Threads that verify signatures.
    pub verify_threads: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(2),
            max_batch: 8192,
            max_batch_bytes: 8 << 20,
            queue: 65536,
            verify_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// A block slower than this, plus [`SLOW_BLOCK_MS_PER_TX`] per transaction, is logged as a
/// warning: 20 ms is the commit-latency budget; big blocks are allowed their apply cost
/// (about 5 µs per transaction measured), so the warning points at stalls (disk, flushes),
/// not at load.
const SLOW_BLOCK_MS: f64 = 20.0;
/// Per-transaction allowance of the slow-block warning.
const SLOW_BLOCK_MS_PER_TX: f64 = 0.01;

type Reply = oneshot::Sender<Result<Committed, ServiceError>>;

struct Pending {
    leaf: Bytes,
    tx: SignedTx,
    reply: Reply,
    /// A class II transaction's payload, sealed (see [`crate::private`]).
    private: Option<Vec<u8>>,
}

/// Handle to the committer; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Pending>,
    heights: watch::Receiver<u64>,
    keys: Arc<crate::private::CollectionKeys>,
}

impl Committer {
    /// Starts the pipeline of one channel's ledger with blocks going to `sink`. It stops
    /// when every handle is dropped.
    pub fn spawn_with<S: Store>(
        ledger: Arc<Ledger<S>>,
        cfg: CommitConfig,
        sink: Sink,
        verified: Arc<crate::ledger::VerifiedLeaves>,
        keys: Arc<crate::private::CollectionKeys>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(cfg.queue);
        let heights = ledger.heights();
        let (apply_tx, apply_rx) =
            std::sync::mpsc::sync_channel::<(Vec<Pending>, watch::Sender<usize>)>(2);
        std::thread::Builder::new()
            .name("gl-apply".into())
            .spawn(move || apply_loop(apply_rx, sink))
            .expect("spawn apply thread");
        tokio::spawn(collect_loop(rx, apply_tx, cfg, verified));
        Self { tx, heights, keys }
    }

    /// Submits encoded SignedTx bytes, with the payload of a class II transaction;
    /// resolves after commit or rejection.
    ///
    /// A class II payload is checked against the leaf's commitment and sealed here,
    /// before ordering, so neither the Raft log nor any replica's store ever holds it in
    /// plain form.
    pub async fn submit(
        &self,
        leaf: Bytes,
        private: Option<PrivatePayload>,
    ) -> Result<Committed, ServiceError> {
        let tx = SignedTx::decode(leaf.clone()).map_err(|e| {
            ServiceError::InvalidArgument(format!(
                "signed_tx is not a valid SignedTx protobuf: {e}"
            ))
        })?;
        let private = self.seal(&leaf, &tx, private)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Pending {
                leaf,
                tx,
                reply,
                private,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ServiceError::ResourceExhausted(
                    "the node's submission queue is full; retry with back-off".into(),
                ),
                mpsc::error::TrySendError::Closed(_) => ServiceError::Unavailable {
                    message: "node is shutting down".into(),
                    leader: None,
                },
            })?;
        rx.await.map_err(|_| {
            ServiceError::Internal("commit pipeline stopped before answering".into())
        })?
    }

    /// The committed height, updated after every block.
    pub fn heights(&self) -> watch::Receiver<u64> {
        self.heights.clone()
    }

    /// Checks and seals a class II payload; refuses a class II transaction without one
    /// and a payload beside a class I transaction.
    fn seal(
        &self,
        leaf: &Bytes,
        tx: &SignedTx,
        private: Option<PrivatePayload>,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        use gridledger_core::private::{self as p, PrivateError};
        // Undecodable bodies are the contracts' to refuse, with their rule.
        let Ok(body) = gridledger_core::pb::TxBody::decode(tx.body.as_slice()) else {
            return Ok(None);
        };
        let invalid = |e: PrivateError| ServiceError::InvalidArgument(e.to_string());
        match (p::class_ii(&body), private) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(invalid(PrivateError::Unexpected)),
            (Some(c), None) => Err(invalid(PrivateError::Missing(c.record_type))),
            (Some(_), Some(pp)) => {
                let c = p::check_payload(&body, &pp.salt, &pp.payload).map_err(invalid)?;
                let salt: [u8; p::SALT_LEN] = pp.salt.as_slice().try_into().expect("checked");
                self.keys
                    .seal(c.collection, &merkle::leaf_hash(leaf), &salt, &pp.payload)
                    .map(Some)
                    .map_err(|e| ServiceError::FailedPrecondition(e.to_string()))
            }
        }
    }
}

async fn collect_loop(
    mut rx: mpsc::Receiver<Pending>,
    apply: std::sync::mpsc::SyncSender<(Vec<Pending>, watch::Sender<usize>)>,
    cfg: CommitConfig,
    verified: Arc<crate::ledger::VerifiedLeaves>,
) {
    // Batches between verification and the end of apply. A batch closes as soon as the
    // pipeline is idle (waiting then would only add latency), and otherwise keeps
    // gathering while the previous block is being written (waiting then is free), up to
    // the window and the caps. Light load gets low latency, heavy load big blocks.
    let (busy_tx, mut busy) = watch::channel(0usize);
    while let Some(first) = rx.recv().await {
        let mut bytes = first.leaf.len();
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + cfg.window;
        'gather: while batch.len() < cfg.max_batch && bytes < cfg.max_batch_bytes {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.leaf.len();
                    batch.push(p);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            if *busy.borrow_and_update() == 0 {
                break;
            }
            tokio::select! {
                p = rx.recv() => match p {
                    Some(p) => {
                        bytes += p.leaf.len();
                        batch.push(p);
                    }
                    None => break 'gather,
                },
                _ = busy.changed() => {}
                _ = tokio::time::sleep_until(deadline) => break 'gather,
            }
        }
        busy_tx.send_modify(|n| *n += 1);
        let threads = cfg.verify_threads.max(1);
        let known = verified.clone();
        let verified = match tokio::task::spawn_blocking(move || {
            let ok = verify(batch, threads);
            // Verified under the ledger's rule: applying this node's own block skips them.
            known.extend(ok.iter().map(|p| merkle::leaf_hash(&p.leaf)));
            ok
        })
        .await
        {
            Ok(v) => v,
            Err(_) => {
                busy_tx.send_modify(|n| *n -= 1);
                continue;
            }
        };
        let apply = apply.clone();
        let done = busy_tx.clone();
        // The apply thread takes at most two batches ahead; waiting here is back-pressure.
        if tokio::task::spawn_blocking(move || apply.send((verified, done)))
            .await
            .map(|r| r.is_err())
            .unwrap_or(true)
        {
            return;
        }
    }
}

fn verify(batch: Vec<Pending>, threads: usize) -> Vec<Pending> {
    let chunk = batch.len().div_ceil(threads).max(64);
    let results: Vec<Result<(), tx::TxError>> = std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    let refs: Vec<&SignedTx> = c.iter().map(|p| &p.tx).collect();
                    tx::verify_many(&refs)
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("verify thread"))
            .collect()
    });
    let mut ok = Vec::with_capacity(batch.len());
    for (p, r) in batch.into_iter().zip(results) {
        match r {
            Ok(()) => ok.push(p),
            Err(tx::TxError::BadSignerKey(n)) => {
                let _ = p.reply.send(Err(ServiceError::InvalidArgument(format!(
                    "signer_key_id must be a 32-byte Ed25519 public key (got {n} bytes)"
                ))));
            }
            Err(tx::TxError::BadSignature(k)) => {
                let _ = p.reply.send(Err(ServiceError::Unauthenticated(format!(
                    "signature does not verify for signer {k}"
                ))));
            }
            Err(e @ tx::TxError::Malformed(_)) => {
                let _ = p
                    .reply
                    .send(Err(ServiceError::InvalidArgument(e.to_string())));
            }
        }
    }
    ok
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where closed blocks go: proposed to the Raft cluster as one entry each (a single node
/// is a one-member cluster); the reply comes back once a quorum has stored the entry and
/// this node has applied it.
#[derive(Clone)]
pub struct Sink {
    /// The Raft handle.
    pub raft: crate::raft::Raft,
    /// This node's id, written as the block's proposer.
    pub proposer: String,
    /// The channel the blocks belong to ("" = system).
    pub channel: String,
    /// The runtime the apply thread drives Raft calls on.
    pub runtime: tokio::runtime::Handle,
}

/// Routes each submission to its channel's committer, by the origin its body names.
/// Each channel has its own pipeline (a block belongs to one channel); committers of
/// channels created later start on first use.
pub struct Router<S: Store> {
    channels: Arc<crate::channels::Channels<S>>,
    cfg: CommitConfig,
    sink: Sink,
    committers: parking_lot::Mutex<std::collections::HashMap<String, Committer>>,
    keys: Arc<crate::private::CollectionKeys>,
}

impl<S: Store> Router<S> {
    /// A router over `channels`, with blocks going to `sink` (its channel is set per
    /// committer).
    pub fn new(
        channels: Arc<crate::channels::Channels<S>>,
        cfg: CommitConfig,
        sink: Sink,
        keys: Arc<crate::private::CollectionKeys>,
    ) -> Self {
        Self {
            channels,
            cfg,
            sink,
            committers: Default::default(),
            keys,
        }
    }

    /// The committer of channel `name` ("" = system), started on first use.
    pub fn committer(&self, name: &str) -> Option<Committer> {
        let mut map = self.committers.lock();
        if let Some(c) = map.get(name) {
            return Some(c.clone());
        }
        let ledger = self.channels.get(name)?;
        let sink = Sink {
            channel: name.to_string(),
            ..self.sink.clone()
        };
        let c = Committer::spawn_with(
            ledger,
            self.cfg.clone(),
            sink,
            self.channels.verified().clone(),
            self.keys.clone(),
        );
        map.insert(name.to_string(), c.clone());
        Some(c)
    }

    /// Submits encoded SignedTx bytes to the committer of the channel its origin names.
    ///
    /// # Errors
    /// As [`Committer::submit`]; a transaction whose origin names no channel of this
    /// ledger is refused under rule `4.1/origin` before it is ordered.
    pub async fn submit(
        &self,
        leaf: Bytes,
        private: Option<PrivatePayload>,
    ) -> Result<Committed, ServiceError> {
        // With no data channel, everything goes to the system channel, whose contracts
        // check the origin (so the common case pays no extra decode).
        let name = if self.channels.names().is_empty() {
            String::new()
        } else {
            let origin = SignedTx::decode(leaf.clone())
                .ok()
                .and_then(|t| gridledger_core::pb::TxBody::decode(t.body.as_slice()).ok())
                .map(|b| b.origin);
            match origin {
                None => String::new(),
                Some(o) if o == self.channels.system().origin() => String::new(),
                Some(o) => match self.channels.by_origin(&o) {
                    Some(l) => l.channel_name().to_string(),
                    None => {
                        return Err(ServiceError::from(gridledger_core::contract::Rejection {
                            rule: "4.1/origin",
                            detail: format!(
                                "transaction is for origin {o:?}, which is neither this ledger ({:?}) nor one of its channels",
                                self.channels.system().origin()
                            ),
                            kind: gridledger_core::contract::RejectKind::Invalid,
                        }));
                    }
                },
            }
        };
        let c = self
            .committer(&name)
            .ok_or_else(|| ServiceError::Internal(format!("channel {name:?} has no ledger")))?;
        c.submit(leaf, private).await
    }
}

/// Blocks of one channel proposed and not yet applied, at most. Several in flight let the
/// Raft log's fsync of one block overlap the apply of the previous one and the
/// verification of the next. They are handed to Raft one after the other from this one
/// thread, so blocks keep the order in which their transactions arrived (a stream may
/// register an instrument and record its reading without waiting in between).
const MAX_BLOCKS_IN_FLIGHT: usize = 4;

/// A block handed to Raft, and where its outcome will arrive.
type Proposed = Result<
    <<crate::raft::TypeConfig as openraft::RaftTypeConfig>::Responder as openraft::raft::responder::Responder<crate::raft::TypeConfig>>::Receiver,
    ServiceError,
>;

fn apply_loop(rx: std::sync::mpsc::Receiver<(Vec<Pending>, watch::Sender<usize>)>, sink: Sink) {
    let mut last_ts = 0u64;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_BLOCKS_IN_FLIGHT));
    while let Ok((batch, busy)) = rx.recv() {
        let Ok(slot) = sink.runtime.block_on(slots.clone().acquire_owned()) else {
            return;
        };
        if batch.is_empty() {
            busy.send_modify(|n| *n -= 1);
            continue;
        }
        // The proposer's clock stamps the block (contracts read this, never a clock);
        // it never goes backwards, even if the wall clock does.
        last_ts = last_ts.max(now_ms());
        let mut private = Vec::new();
        let mut leaves = Vec::with_capacity(batch.len());
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        for (i, p) in batch.into_iter().enumerate() {
            if let Some(sealed) = p.private {
                private.push(crate::raft::Sidecar {
                    position: i as u32,
                    sealed,
                });
            }
            leaves.push(p.leaf);
            replies.push(p.reply);
        }
        let proposal = crate::raft::BlockProposal {
            timestamp_ms: last_ts,
            proposer: sink.proposer.clone(),
            channel: sink.channel.clone(),
            leaves: leaves.iter().map(|l| l.to_vec()).collect(),
            private,
        };
        let started = Instant::now();
        // Enqueued in order here; the outcome is awaited off this thread.
        let proposed: Proposed = sink
            .runtime
            .block_on(sink.raft.client_write_ff(proposal))
            .map_err(|e| crate::raft::write_error(openraft::error::RaftError::Fatal(e)));
        sink.runtime.spawn(async move {
            let outcome = match proposed {
                Err(e) => Err(e),
                Ok(rx) => match rx.await {
                    Err(_) => Err(ServiceError::Unavailable {
                        message: "consensus stopped before the block was applied".into(),
                        leader: None,
                    }),
                    Ok(r) => r
                        .map_err(|e| {
                            crate::raft::write_error(openraft::error::RaftError::APIError(e))
                        })
                        .map(|r| outcome_of(r.data)),
                },
            };
            answer(outcome, &leaves, replies, started);
            busy.send_modify(|n| *n -= 1);
            drop(slot);
        });
    }
}

fn outcome_of(r: crate::raft::BlockResult) -> crate::ledger::ApplyOutcome {
    crate::ledger::ApplyOutcome {
        results: r
            .results
            .into_iter()
            .map(|x| x.map_err(crate::raft::TxRejection::into_rejection))
            .collect(),
        height: r.height,
        tree_size: r.tree_size,
        channels_changed: false,
    }
}

/// Answers every submitter of a block.
fn answer(
    outcome: Result<crate::ledger::ApplyOutcome, ServiceError>,
    leaves: &[Bytes],
    replies: Vec<Reply>,
    started: Instant,
) {
    match outcome {
        Ok(outcome) => {
            let ms = started.elapsed().as_secs_f64() * 1e3;
            if ms > SLOW_BLOCK_MS + SLOW_BLOCK_MS_PER_TX * leaves.len() as f64 {
                tracing::warn!(
                    txs = leaves.len(),
                    height = outcome.height,
                    ms,
                    "slow block: commit and apply exceeded the commit-latency budget"
                );
            } else {
                tracing::debug!(
                    txs = leaves.len(),
                    height = outcome.height,
                    ms,
                    "block applied"
                );
            }
            for ((reply, res), leaf) in replies.into_iter().zip(outcome.results).zip(leaves) {
                let _ = reply.send(
                    res.map(|leaf_index| Committed {
                        leaf_index,
                        block_height: outcome.height,
                        tree_size: outcome.tree_size,
                        leaf_hash: merkle::leaf_hash(leaf),
                    })
                    .map_err(ServiceError::from),
                );
            }
        }
        Err(e) => {
            if !matches!(e, ServiceError::Unavailable { .. }) {
                tracing::error!(error = %e, "commit failed; rejecting the batch");
            }
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
