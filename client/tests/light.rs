//! The light client against in-memory logs, honest and lying.

use ed25519_dalek::SigningKey;
use gridledger_client::ClientError;
use gridledger_client::fetch::{ConsistencyReply, Fetcher, MemFetcher};
use gridledger_client::light::{LightClient, StateStore};
use gridledger_core::note::NoteSigner;
use gridledger_core::trust::TrustPolicy;

const ORIGIN: &str = "test.example/light";

fn signer(i: u8) -> NoteSigner {
    NoteSigner::new(
        &format!("{ORIGIN}/node-{i}"),
        SigningKey::from_bytes(&[i; 32]),
    )
    .unwrap()
}

fn policy(quorum: usize) -> gridledger_core::trust::Policy {
    TrustPolicy {
        origin: ORIGIN.into(),
        quorum,
        keys: (1..=3)
            .map(|i| signer(i).verifier_key().to_string())
            .collect(),
        witnesses: vec![],
        witness_quorum: 0,
    }
    .compile()
    .unwrap()
}

fn log(n: usize, signers: &[u8]) -> MemFetcher {
    let mut f = MemFetcher::new(ORIGIN, signers.iter().map(|&i| signer(i)).collect());
    for i in 0..n {
        f.append(format!("leaf {i}").into_bytes());
    }
    f
}

#[tokio::test]
async fn follows_an_honest_log_and_persists_the_largest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LightClient::new(policy(2), log(10, &[1, 2]), StateStore::new(dir.path()));
    assert_eq!(c.update().await.unwrap().trusted.checkpoint.size, 10);
    for i in 10..25 {
        c.fetcher().append(format!("leaf {i}").into_bytes());
    }
    assert_eq!(c.update().await.unwrap().trusted.checkpoint.size, 25);
    let (_, v) = c.receipt(17).await.unwrap();
    assert_eq!(v.leaf, b"leaf 17");
    let (_, _, proof) = c.consistency(3, 20).await.unwrap();
    assert!(!proof.is_empty());
    // A new client on the same state directory starts from size 25.
    let stored = StateStore::new(dir.path()).load(ORIGIN).unwrap().unwrap();
    assert!(stored.contains("\n25\n"));
}

#[tokio::test]
async fn a_single_node_serving_a_forged_root_is_rejected_under_quorum_two() {
    let dir = tempfile::tempdir().unwrap();
    let mut forged = log(10, &[3]);
    forged.leaves[4][0] ^= 1;
    let mut c = LightClient::new(policy(2), forged, StateStore::new(dir.path()));
    match c.update().await {
        Err(ClientError::Trust(e)) => assert!(e.to_string().contains("1 of the required 2"), "{e}"),
        other => panic!("accepted a checkpoint signed by one node: {other:?}"),
    }
}

#[tokio::test]
async fn a_rewritten_history_is_reported_as_a_fork_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LightClient::new(policy(2), log(10, &[1, 2]), StateStore::new(dir.path()));
    c.update().await.unwrap();
    // Quorum-signed but rewritten: leaf 3 changed, then the log grew.
    let mut evil = log(12, &[1, 2]);
    evil.data[3] = b"rewritten".to_vec();
    evil.leaves[3] = gridledger_core::merkle::leaf_hash(b"rewritten");
    let mut c = LightClient::new(policy(2), evil, StateStore::new(dir.path()));
    match c.update().await {
        Err(ClientError::Fork(ev)) => {
            assert!(ev.trusted_note.contains("\n10\n") && ev.conflicting_note.contains("\n12\n"));
            assert!(ev.reason.contains("evidence saved"), "{}", ev.reason);
        }
        other => panic!("fork not detected: {other:?}"),
    }
    let saved = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("fork-")
        })
        .count();
    assert_eq!(saved, 1);
    // And the trusted state did not move.
    assert!(
        StateStore::new(dir.path())
            .load(ORIGIN)
            .unwrap()
            .unwrap()
            .contains("\n10\n")
    );
}

#[tokio::test]
async fn same_size_different_root_is_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = LightClient::new(policy(1), log(10, &[1]), StateStore::new(dir.path()));
    c.update().await.unwrap();
    let mut other = log(9, &[1]);
    other.append(b"different".to_vec());
    let mut c = LightClient::new(policy(1), other, StateStore::new(dir.path()));
    assert!(matches!(c.update().await, Err(ClientError::Fork(_))));
}

/// Serves an honest checkpoint but a bogus consistency proof.
struct BadProof(MemFetcher);
impl Fetcher for BadProof {
    async fn checkpoint(&mut self) -> Result<String, ClientError> {
        self.0.checkpoint().await
    }
    async fn consistency(&mut self, old: u64, new: u64) -> Result<ConsistencyReply, ClientError> {
        let mut r = self.0.consistency(old, new).await?;
        if let Some(h) = r.path.first_mut() {
            h[0] ^= 1;
        }
        Ok(r)
    }
    async fn receipt(&mut self, index: u64) -> Result<String, ClientError> {
        self.0.receipt(index).await
    }
}

#[tokio::test]
async fn a_bad_consistency_proof_is_never_accepted() {
    let dir = tempfile::tempdir().unwrap();
    LightClient::new(policy(1), log(7, &[1]), StateStore::new(dir.path()))
        .update()
        .await
        .unwrap();
    let mut c = LightClient::new(
        policy(1),
        BadProof(log(30, &[1])),
        StateStore::new(dir.path()),
    );
    assert!(matches!(c.update().await, Err(ClientError::Fork(_))));
    assert!(c.consistency(3, 30).await.is_err());
}

#[tokio::test]
async fn a_lagging_server_is_stale_not_a_fork_and_state_does_not_regress() {
    let dir = tempfile::tempdir().unwrap();
    let mut ahead = log(20, &[1]);
    LightClient::new(policy(1), ahead.clone(), StateStore::new(dir.path()))
        .update()
        .await
        .unwrap();
    ahead.leaves.truncate(12);
    ahead.data.truncate(12);
    let u = LightClient::new(policy(1), ahead, StateStore::new(dir.path()))
        .update()
        .await
        .unwrap();
    assert!(u.stale);
    assert_eq!(u.trusted.checkpoint.size, 20);
}
