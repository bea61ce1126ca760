//! The ledger replicated by openraft, in process: three replicas with real RocksDB stores
//! and an in-memory network. Checks that every replica applies the same blocks and
//! reaches the same root and block hashes, that rejections come back through Raft, and
//! that a replica added after the log was purged catches up from a snapshot built from
//! the ledger.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use gridledger_core::note::NoteSigner;
use gridledger_node::ledger::Ledger;
use gridledger_node::raft::log_store::LogStore;
use gridledger_node::raft::state_machine::StateMachine;
use gridledger_node::raft::{BlockProposal, NodeInfo, Raft, TypeConfig};
use gridledger_node::store::rocks::RocksStore;
use openraft::Config;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::RwLock;

const ORIGIN: &str = "gridledger.test/raft";

#[derive(Clone, Default)]
struct Router(Arc<RwLock<HashMap<u64, Raft>>>);

struct Conn {
    router: Router,
    target: u64,
}

#[derive(Debug)]
struct Down;
impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("node not running")
    }
}
impl std::error::Error for Down {}

impl Conn {
    fn raft(&self) -> Result<Raft, Unreachable> {
        self.router
            .0
            .read()
            .get(&self.target)
            .cloned()
            .ok_or_else(|| Unreachable::new(&Down))
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Conn;
    async fn new_client(&mut self, target: u64, _node: &NodeInfo) -> Conn {
        Conn {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _o: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let r = self.raft().map_err(RPCError::Unreachable)?;
        r.append_entries(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _o: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        let r = self.raft().map_err(RPCError::Unreachable)?;
        r.install_snapshot(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        _o: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        let r = self.raft().map_err(RPCError::Unreachable)?;
        r.vote(rpc)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

struct Replica {
    _dir: tempfile::TempDir,
    ledger: Arc<Ledger<RocksStore>>,
    raft: Raft,
}

async fn replica(id: u64, router: &Router, cfg: Arc<Config>) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RocksStore::open(dir.path()).unwrap());
    let signer = NoteSigner::new(
        &format!("{ORIGIN}/node-{id}"),
        SigningKey::from_bytes(&[id as u8; 32]),
    )
    .unwrap();
    let ledger =
        Arc::new(Ledger::open(store.clone(), ORIGIN, &format!("node-{id}"), signer).unwrap());
    let raft = Raft::new(
        id,
        cfg,
        router.clone(),
        LogStore::new(store),
        StateMachine::new(ledger.clone()),
    )
    .await
    .unwrap();
    router.0.write().insert(id, raft.clone());
    Replica {
        _dir: dir,
        ledger,
        raft,
    }
}

fn phases() -> Vec<Vec<Vec<u8>>> {
    gridledger_node::demo::seed(
        ORIGIN,
        SigningKey::from_bytes(&[9; 32]).verifying_key().as_bytes(),
        &[],
        20,
        2,
    )
}

async fn leader(rs: &[&Replica]) -> Raft {
    for _ in 0..100 {
        for r in rs {
            if let Some(l) = r.raft.current_leader().await
                && let Some(x) = rs.iter().find(|x| x.raft.metrics().borrow().id == l)
            {
                return x.raft.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader elected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_apply_the_same_blocks_and_a_late_replica_catches_up_by_snapshot() {
    let cfg = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            // Snapshot often and keep no log behind it, so a late joiner needs a snapshot.
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(3),
            max_in_snapshot_log_to_keep: 0,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let router = Router::default();
    let a = replica(1, &router, cfg.clone()).await;
    let b = replica(2, &router, cfg.clone()).await;
    let c = replica(3, &router, cfg.clone()).await;
    let members: BTreeMap<u64, NodeInfo> = (1..=3)
        .map(|i| {
            (
                i,
                NodeInfo {
                    name: String::new(),
                    peer: format!("node-{i}"),
                    api: String::new(),
                },
            )
        })
        .collect();
    a.raft.initialize(members).await.unwrap();
    let l = leader(&[&a, &b, &c]).await;
    let leader_id = l.metrics().borrow().id;

    let mut accepted = 0;
    for (i, phase) in phases().into_iter().enumerate() {
        let r = l
            .client_write(BlockProposal {
                timestamp_ms: 1_700_000_000_000 + i as u64,
                proposer: format!("node-{leader_id}"),
                leaves: phase,
            })
            .await
            .unwrap();
        assert!(
            r.data.results.iter().all(Result::is_ok),
            "{:?}",
            r.data.results.iter().find(|x| x.is_err())
        );
        accepted += r.data.results.len() as u64;
    }
    // A replayed phase: every transaction rejected by the nonce rule, decided on every
    // replica, reported back through Raft, and no block written.
    let replay = phases().swap_remove(1);
    let n = replay.len();
    let r = l
        .client_write(BlockProposal {
            timestamp_ms: 1_700_000_001_000,
            proposer: format!("node-{leader_id}"),
            leaves: replay,
        })
        .await
        .unwrap();
    assert_eq!(r.data.results.len(), n);
    assert!(
        r.data
            .results
            .iter()
            .all(|x| x.as_ref().is_err_and(|e| e.rule == "4.1/nonce"))
    );
    // A proposer cannot slip in a transaction with a bad signature: every replica other
    // than the proposer checks signatures again at apply and rejects it by rule.
    let mut forged = phases().pop().unwrap().pop().unwrap();
    let n = forged.len();
    forged[n - 1] ^= 1; // the signature is the last field
    let r = l
        .client_write(BlockProposal {
            timestamp_ms: 1_700_000_002_000,
            // Proposed outside the leader's committer (which verifies before proposing),
            // as a compromised or buggy proposer would: no replica trusts it.
            proposer: "node-elsewhere".into(),
            leaves: vec![forged],
        })
        .await
        .unwrap();
    assert_eq!(
        r.data.results[0].as_ref().unwrap_err().rule,
        "4.1/signature"
    );
    let last = r.log_id.index;

    for x in [&a, &b, &c] {
        x.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(last), "applied")
            .await
            .unwrap();
    }
    let tip = a.ledger.tip();
    assert_eq!(tip.size, accepted);
    for x in [&b, &c] {
        let t = x.ledger.tip();
        assert_eq!(
            (t.size, t.height, t.root, t.block_hash),
            (tip.size, tip.height, tip.root, tip.block_hash)
        );
    }
    // Every replica signed its own checkpoint of the same tree.
    assert_ne!(a.ledger.tip().checkpoint, b.ledger.tip().checkpoint);

    // A fourth replica joins after the leader's log was compacted into a snapshot.
    l.trigger().snapshot().await.unwrap();
    l.wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= last), "snapshot")
        .await
        .unwrap();
    l.trigger().purge_log(last).await.unwrap();
    let d = replica(4, &router, cfg.clone()).await;
    l.add_learner(
        4,
        NodeInfo {
            name: String::new(),
            peer: "node-4".into(),
            api: String::new(),
        },
        true,
    )
    .await
    .unwrap();
    d.raft
        .wait(Some(Duration::from_secs(20)))
        .applied_index_at_least(Some(last), "caught up")
        .await
        .unwrap();
    let t = d.ledger.tip();
    assert_eq!(
        (t.size, t.height, t.root, t.block_hash),
        (tip.size, tip.height, tip.root, tip.block_hash)
    );
    assert!(
        d.raft.metrics().borrow().snapshot.is_some(),
        "the late replica installed a snapshot"
    );
}
