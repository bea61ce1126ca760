//! kill -9 during load loses no acknowledged transaction: every submission the node
//! answered OK is, after a restart, at the index it was given, byte for byte, and the
//! storage audits clean.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gridledger_proto::v1::{GetEntryRequest, SubmitRequest};
use gridledger_tests::{DevNode, stderr, stdout};

use crate::util::{DEV_ORIGIN, audit, grpc_tree_size};

/// Acknowledged (leaf index, leaf bytes), collected by the submitters.
#[derive(Default)]
struct Acks(Mutex<Vec<(u64, Bytes)>>);

impl Acks {
    fn push(&self, index: u64, leaf: Bytes) {
        self.0.lock().unwrap().push((index, leaf));
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn take(&self) -> Vec<(u64, Bytes)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

const TXS_PER_CYCLE: usize = 6000;
const SUBMITTERS: usize = 48;
const KILL_AFTER_ACKS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_load_loses_no_acknowledged_transaction() {
    let mut node = DevNode::start(20);
    let key = node.signing_key();
    let mut all_acked: Vec<(u64, Bytes)> = Vec::new();

    for cycle in 0..3 {
        let t0 = Instant::now();
        let txs = Arc::new(gridledger_client::load::build(
            &key,
            DEV_ORIGIN,
            "grid-north",
            TXS_PER_CYCLE,
        ));
        let client = node.client().await;
        let size_before = grpc_tree_size(&mut client.clone()).await;
        let acks = Arc::new(Acks::default());
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..SUBMITTERS {
            let (mut c, txs, acks, next) =
                (client.clone(), txs.clone(), acks.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut refused = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(tx) = txs.get(i) else { break };
                    match c
                        .submit(SubmitRequest {
                            private_payload: None,
                            signed_tx: tx.clone(),
                        })
                        .await
                    {
                        Ok(r) => acks.push(r.into_inner().leaf_index, tx.clone()),
                        // After the kill every call fails; stop this submitter.
                        Err(s) => {
                            refused.push(format!("{:?}: {}", s.code(), s.message()));
                            break;
                        }
                    }
                }
                refused
            }));
        }

        // Kill once enough transactions are acknowledged, while the rest are in flight.
        let deadline = Instant::now() + Duration::from_secs(120);
        while acks.len() < KILL_AFTER_ACKS {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: only {} acknowledgements in 120 s",
                acks.len()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let sent_at_kill = next.load(Ordering::Relaxed).min(TXS_PER_CYCLE);
        node.kill9();
        let mut refusals = Vec::new();
        for t in tasks {
            refusals.extend(t.await.expect("submitter task"));
        }
        drop(client);
        let acked = acks.take();
        assert!(acked.len() >= KILL_AFTER_ACKS);
        assert!(
            sent_at_kill < TXS_PER_CYCLE,
            "cycle {cycle}: all {TXS_PER_CYCLE} transactions were sent before the kill; the kill did not happen under load"
        );
        assert!(
            !refusals.is_empty(),
            "cycle {cycle}: submissions in flight at the kill must fail"
        );
        eprintln!(
            "cycle {cycle}: {} acknowledged before/at kill -9, {} submitters saw the connection die ({:?})",
            acked.len(),
            refusals.len(),
            t0.elapsed()
        );

        // Indexes handed out are unique and above the tree size before the cycle.
        let mut idx: Vec<u64> = acked.iter().map(|(i, _)| *i).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(
            idx.len(),
            acked.len(),
            "cycle {cycle}: two acknowledgements share a leaf index"
        );
        assert!(
            idx[0] >= size_before,
            "cycle {cycle}: acknowledged index {} below the size before the cycle {size_before}",
            idx[0]
        );
        all_acked.extend(acked);

        // The crashed storage audits clean before anything else touches it.
        let a = audit(&node);
        assert_eq!(
            a.status.code(),
            Some(0),
            "cycle {cycle}: audit after kill -9: stdout {} stderr {}",
            stdout(&a),
            stderr(&a)
        );
        assert!(
            stdout(&a).contains("audit ok"),
            "cycle {cycle}: {}",
            stdout(&a)
        );

        eprintln!("cycle {cycle}: audit done ({:?})", t0.elapsed());
        node.spawn();
        let mut c = node.client().await;
        eprintln!("cycle {cycle}: restarted ({:?})", t0.elapsed());
        let size_after = grpc_tree_size(&mut c).await;
        let max_acked = all_acked.iter().map(|(i, _)| *i).max().unwrap();
        assert!(
            size_after > max_acked,
            "cycle {cycle}: tree size {size_after} after restart does not cover acknowledged leaf {max_acked}"
        );
        let mut lost = Vec::new();
        for (i, leaf) in &all_acked {
            match c
                .get_entry(GetEntryRequest {
                    index: *i,
                    ..Default::default()
                })
                .await
            {
                Ok(e) if e.get_ref().leaf == leaf.as_ref() => {}
                Ok(e) => lost.push(format!(
                    "leaf {i}: stored bytes differ ({} bytes stored, {} acknowledged)",
                    e.get_ref().leaf.len(),
                    leaf.len()
                )),
                Err(s) => lost.push(format!("leaf {i}: {:?} {}", s.code(), s.message())),
            }
        }
        if !lost.is_empty() {
            let log = node.log();
            let tail = &log[log.len().saturating_sub(4000)..];
            lost.truncate(20);
            panic!(
                "cycle {cycle}: acknowledged transactions lost or changed (first 20):\n{}\nnode log tail:\n{tail}",
                lost.join("\n")
            );
        }
    }

    // Finally a graceful stop and a full audit.
    node.stop();
    let a = audit(&node);
    assert_eq!(
        a.status.code(),
        Some(0),
        "final audit: stdout {} stderr {}",
        stdout(&a),
        stderr(&a)
    );
    assert!(stdout(&a).starts_with("audit ok"), "{}", stdout(&a));
}
