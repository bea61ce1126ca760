//! `gridledger load`: a load generator that submits valid signed transactions.
//!
//! Transactions are built and signed before the clock starts, so the figures measure
//! the node (and the network path), not the client's signing speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::tx;
use gridledger_proto::v1::SubmitRequest;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use prost::Message as _;
use serde::Serialize;
use tonic::transport::Channel;

use crate::error::ClientError;

/// Load options.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Transactions to submit.
    pub count: usize,
    /// Unary: requests in flight. Stream: streams in parallel.
    pub concurrency: usize,
    /// Use SubmitStream.
    pub stream: bool,
    /// Stream mode: transactions per SubmitStream call.
    pub chunk: usize,
    /// Unary open-loop rate (tx/s); None = closed loop at `concurrency`.
    pub rate: Option<f64>,
    /// Org that owns the registered instruments (the signing key's org).
    pub org: String,
    /// Ledger origin.
    pub origin: String,
}

/// The result, printed as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// "unary", "unary-rate" or "stream".
    pub mode: String,
    /// Concurrency used.
    pub concurrency: usize,
    /// Transactions sent.
    pub submitted: u64,
    /// Transactions acknowledged as committed.
    pub committed: u64,
    /// Transactions refused.
    pub rejected: u64,
    /// Wall time of the submission phase, s.
    pub seconds: f64,
    /// committed / seconds.
    pub tx_per_s: f64,
    /// Median commit latency, ms (stream mode: per SubmitStream call).
    pub p50_ms: f64,
    /// 99th percentile commit latency, ms (stream mode: per SubmitStream call).
    pub p99_ms: f64,
    /// First refusal, to see why.
    pub first_error: Option<String>,
}

/// Builds `count` signed RegisterInstrument transactions with unique asset numbers.
pub fn build(key: &SigningKey, origin: &str, org: &str, count: usize) -> Vec<Bytes> {
    let run: u64 = rand::random();
    (0..count)
        .map(|i| {
            let body = pb::TxBody {
                origin: origin.to_string(),
                nonce: run ^ (i as u64).rotate_left(40),
                client_time_ms: 0,
                payload: Some(Payload::RegisterInstrument(pb::RegisterInstrument {
                    asset_no: format!("LD-{run:016x}-{i:08}"),
                    serial_no: format!("LS{i:010}"),
                    manufacturer_org: "sup-alpha".into(),
                    model: "DDZY-LOAD".into(),
                    kind: pb::InstrumentKind::Meter as i32,
                    accuracy_class: "1".into(),
                    ratings: "220V 5(60)A 1600imp/kWh".into(),
                    owner_org: org.to_string(),
                })),
            };
            Bytes::from(tx::sign(key, &body).encode_to_vec())
        })
        .collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Runs the load.
///
/// # Errors
/// Transport failures that stop the run.
pub async fn run(
    client: ChainServiceClient<Channel>,
    key: &SigningKey,
    opts: &LoadOptions,
) -> Result<LoadReport, ClientError> {
    let txs = Arc::new(build(key, &opts.origin, &opts.org, opts.count));
    let started = Instant::now();
    let mut latencies: Vec<f64> = Vec::with_capacity(opts.count);
    let (mut committed, mut rejected) = (0u64, 0u64);
    let mut first_error = None;
    let mode;
    if opts.stream {
        mode = "stream";
        let chunks: Vec<Vec<Bytes>> = txs.chunks(opts.chunk.max(1)).map(|c| c.to_vec()).collect();
        let next = Arc::new(AtomicUsize::new(0));
        let chunks = Arc::new(chunks);
        let mut tasks = Vec::new();
        for _ in 0..opts.concurrency.max(1) {
            let (mut c, next, chunks) = (client.clone(), next.clone(), chunks.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else { break };
                    let reqs: Vec<SubmitRequest> = chunk
                        .iter()
                        .map(|b| SubmitRequest {
                            private_payload: None,
                            signed_tx: b.clone(),
                        })
                        .collect();
                    let t = Instant::now();
                    let r = c.submit_stream(tokio_stream::iter(reqs)).await;
                    out.push((t.elapsed(), r.map(|r| r.into_inner())));
                }
                out
            }));
        }
        for t in tasks {
            for (lat, r) in t.await.map_err(|e| ClientError::Transport(e.to_string()))? {
                latencies.push(lat.as_secs_f64() * 1e3);
                match r {
                    Ok(resp) => {
                        committed += resp.committed;
                        rejected += resp.errors.len() as u64;
                        if first_error.is_none() {
                            first_error = resp
                                .errors
                                .first()
                                .map(|e| format!("{}: {}", e.code, e.message));
                        }
                    }
                    Err(s) => return Err(s.into()),
                }
            }
        }
    } else {
        mode = if opts.rate.is_some() {
            "unary-rate"
        } else {
            "unary"
        };
        let next = Arc::new(AtomicUsize::new(0));
        let rate_start = Instant::now();
        let interval = opts.rate.map(|r| Duration::from_secs_f64(1.0 / r.max(1.0)));
        // Open loop: many workers, each waits for its slot in the schedule, so a slow
        // response does not delay the next send (no coordinated omission).
        let workers = if interval.is_some() {
            opts.concurrency.max(256)
        } else {
            opts.concurrency.max(1)
        };
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let (mut c, next, txs) = (client.clone(), next.clone(), txs.clone());
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(tx) = txs.get(i) else { break };
                    let sched = interval.map(|iv| rate_start + iv * i as u32);
                    if let Some(s) = sched {
                        tokio::time::sleep_until(s.into()).await;
                    }
                    let t = sched.unwrap_or_else(Instant::now);
                    let r = c
                        .submit(SubmitRequest {
                            private_payload: None,
                            signed_tx: tx.clone(),
                        })
                        .await;
                    out.push((t.elapsed(), r.err()));
                }
                out
            }));
        }
        for t in tasks {
            for (lat, err) in t.await.map_err(|e| ClientError::Transport(e.to_string()))? {
                match err {
                    None => {
                        committed += 1;
                        latencies.push(lat.as_secs_f64() * 1e3);
                    }
                    Some(s) => {
                        rejected += 1;
                        if first_error.is_none() {
                            first_error = Some(format!("{:?}: {}", s.code(), s.message()));
                        }
                    }
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(LoadReport {
        mode: mode.into(),
        concurrency: opts.concurrency,
        submitted: opts.count as u64,
        committed,
        rejected,
        seconds,
        tx_per_s: committed as f64 / seconds,
        p50_ms: pct(&latencies, 0.5),
        p99_ms: pct(&latencies, 0.99),
        first_error,
    })
}
