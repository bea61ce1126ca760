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
use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::tx;
use gridledger_node::channels::Channels;
use gridledger_node::ledger::Ledger;
use gridledger_node::raft::log_store::LogStore;
use gridledger_node::raft::state_machine::StateMachine;
use gridledger_node::raft::{BlockProposal, NodeInfo, Raft, Sidecar, TypeConfig};
use gridledger_node::store::rocks::RocksStore;
use openraft::Config;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::RwLock;
use prost::Message as _;

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
    channels: Arc<Channels<RocksStore>>,
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
    let channels = Channels::open(ledger.clone(), SigningKey::from_bytes(&[id as u8; 32])).unwrap();
    let raft = Raft::new(
        id,
        cfg,
        router.clone(),
        LogStore::new(store),
        StateMachine::new(channels.clone()),
    )
    .await
    .unwrap();
    router.0.write().insert(id, raft.clone());
    Replica {
        _dir: dir,
        ledger,
        channels,
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
    .into_iter()
    .map(|phase| phase.into_iter().map(|s| s.leaf).collect())
    .collect()
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
    let all = phases();
    let readings = all.len() - 1;
    let mut sealed_count = 0;
    for (i, phase) in all.into_iter().enumerate() {
        // The readings (class II) ride with their sealed payloads, which the ledger keeps
        // opaque under each leaf's index; a sidecar beside a class I leaf is not kept.
        let private: Vec<Sidecar> = if i == readings {
            sealed_count = phase.len();
            (0..phase.len())
                .map(|p| Sidecar {
                    position: p as u32,
                    sealed: format!("sealed payload {p}").into_bytes(),
                })
                .collect()
        } else if i == 0 {
            vec![Sidecar {
                position: 0,
                sealed: b"beside a class I leaf".to_vec(),
            }]
        } else {
            Vec::new()
        };
        let r = l
            .client_write(BlockProposal {
                private,
                timestamp_ms: 1_800_000_000_000 + i as u64,
                proposer: format!("node-{leader_id}"),
                channel: String::new(),
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
            private: Vec::new(),
            timestamp_ms: 1_700_000_001_000,
            proposer: format!("node-{leader_id}"),
            channel: String::new(),
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
            private: Vec::new(),
            timestamp_ms: 1_700_000_002_000,
            // Proposed outside the leader's committer (which verifies before proposing),
            // as a compromised or buggy proposer would: no replica trusts it.
            proposer: "node-elsewhere".into(),
            channel: String::new(),
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
    // Every replica holds the same sealed payloads, one per reading.
    let held = a.ledger.sealed_payloads(0, tip.size).unwrap();
    assert_eq!(held.len(), sealed_count);
    assert!(held.iter().all(|(_, s)| s.starts_with(b"sealed payload")));
    for x in [&b, &c] {
        assert_eq!(x.ledger.sealed_payloads(0, tip.size).unwrap(), held);
    }

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
    assert_eq!(
        d.ledger.sealed_payloads(0, tip.size).unwrap(),
        held,
        "the snapshot carried the sealed payloads"
    );
}

fn tx_for(key: &SigningKey, origin: &str, nonce: u64, payload: Payload) -> Vec<u8> {
    tx::sign(
        key,
        &pb::TxBody {
            origin: origin.into(),
            nonce,
            client_time_ms: 0,
            payload: Some(payload),
        },
    )
    .encode_to_vec()
}

fn instrument(asset: &str, owner: &str) -> Payload {
    Payload::RegisterInstrument(pb::RegisterInstrument {
        asset_no: asset.into(),
        serial_no: format!("S-{asset}"),
        owner_org: owner.into(),
        manufacturer_org: "sup-alpha".into(),
        model: "DDZY-T".into(),
        kind: pb::InstrumentKind::Meter as i32,
        accuracy_class: "1".into(),
        ..Default::default()
    })
}

async fn write(
    l: &Raft,
    channel: &str,
    ts: u64,
    leaves: Vec<Vec<u8>>,
) -> (Vec<Option<String>>, u64) {
    let r = l
        .client_write(BlockProposal {
            private: Vec::new(),
            timestamp_ms: ts,
            proposer: "node-x".into(),
            channel: channel.into(),
            leaves,
        })
        .await
        .unwrap();
    let rules = r
        .data
        .results
        .iter()
        .map(|x| x.as_ref().err().map(|e| e.rule.clone()))
        .collect();
    (rules, r.log_id.index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channels_are_separate_logs_ordered_with_the_system_channel_and_survive_snapshots() {
    use gridledger_node::demo::org_key;
    let cfg = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            snapshot_policy: openraft::SnapshotPolicy::Never,
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
    let members: BTreeMap<u64, NodeInfo> = (1..=2)
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
    let l = leader(&[&a, &b]).await;
    for (i, phase) in phases().into_iter().enumerate() {
        let (rules, _) = write(&l, "", 1_800_000_000_000 + i as u64, phase).await;
        assert!(rules.iter().all(Option::is_none), "{rules:?}");
    }
    let reg = org_key("reg-metrology");
    let north = org_key("grid-north");
    let south = org_key("grid-south");
    let supply = format!("{ORIGIN}/supply");

    // Before the channel exists, a block for it rejects everything by rule.
    let (rules, _) = write(
        &l,
        "supply",
        1_700_000_001_000,
        vec![tx_for(
            &north,
            &supply,
            1_000_001,
            instrument("CH-0", "grid-north"),
        )],
    )
    .await;
    assert_eq!(rules, vec![Some("4.5/channel".to_string())]);

    // The regulator proposes the channel and its vote approves it (default policy).
    let propose = Payload::ProposeChange(pb::ProposeChange {
        proposal_id: "ch-supply".into(),
        reason: String::new(),
        change: Some(pb::propose_change::Change::CreateChannel(
            pb::CreateChannel {
                name: "supply".into(),
                member_orgs: vec!["grid-north".into(), "sup-alpha".into()],
            },
        )),
    });
    let vote = Payload::CastVote(pb::CastVote {
        proposal_id: "ch-supply".into(),
        approve: true,
    });
    let (rules, _) = write(
        &l,
        "",
        1_700_000_002_000,
        vec![
            tx_for(&reg, ORIGIN, 1_000_001, propose),
            tx_for(&reg, ORIGIN, 1_000_002, vote),
        ],
    )
    .await;
    assert_eq!(rules, vec![None, None]);

    // On the channel: a member writes; a non-member, consortium administration, a
    // transaction for the system origin and a replayed nonce are refused by rule.
    let (rules, _) = write(
        &l,
        "supply",
        1_700_000_003_000,
        vec![
            tx_for(&north, &supply, 1_000_001, instrument("CH-1", "grid-north")),
            tx_for(&south, &supply, 1_000_001, instrument("CH-2", "grid-south")),
            tx_for(
                &north,
                &supply,
                1_000_002,
                Payload::RevokeSigner(pb::RevokeSigner {
                    public_key: south.verifying_key().to_bytes().to_vec(),
                    reason: String::new(),
                }),
            ),
            tx_for(&north, ORIGIN, 1_000_003, instrument("CH-3", "grid-north")),
            tx_for(&north, &supply, 1_000_001, instrument("CH-4", "grid-north")),
            tx_for(&north, &supply, 1_000_004, instrument("CH-5", "grid-north")),
        ],
    )
    .await;
    assert_eq!(
        rules,
        vec![
            None,
            Some("4.5/channel".to_string()),
            Some("4.5/channel".to_string()),
            Some("4.1/origin".to_string()),
            Some("4.1/nonce".to_string()),
            None,
        ]
    );
    // The same instrument id on the system channel is another log's record.
    let (rules, _) = write(
        &l,
        "",
        1_700_000_004_000,
        vec![tx_for(
            &north,
            ORIGIN,
            1_000_010,
            instrument("CH-1", "grid-north"),
        )],
    )
    .await;
    assert_eq!(rules, vec![None]);

    // A key revoked on the system channel is refused on the data channel from the next
    // entry on: the order is the log's, the same on every replica.
    let revoke = Payload::RevokeSigner(pb::RevokeSigner {
        public_key: north.verifying_key().to_bytes().to_vec(),
        reason: "test".into(),
    });
    let (rules, _) = write(
        &l,
        "",
        1_700_000_005_000,
        vec![tx_for(&reg, ORIGIN, 1_000_003, revoke)],
    )
    .await;
    assert_eq!(rules, vec![None]);
    let (rules, last) = write(
        &l,
        "supply",
        1_700_000_006_000,
        vec![tx_for(
            &north,
            &supply,
            1_000_020,
            instrument("CH-9", "grid-north"),
        )],
    )
    .await;
    assert_eq!(rules, vec![Some("4.1/signer".to_string())]);

    for x in [&a, &b] {
        x.raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(last), "applied")
            .await
            .unwrap();
    }
    let sa = a
        .channels
        .get("supply")
        .expect("channel opened on replica a");
    let sb = b
        .channels
        .get("supply")
        .expect("channel opened on replica b");
    assert_eq!(sa.origin(), supply);
    let (ta, tb) = (sa.tip(), sb.tip());
    assert_eq!(
        (ta.size, ta.height),
        (2, 1),
        "one block of two accepted transactions"
    );
    assert_eq!((ta.root, ta.block_hash), (tb.root, tb.block_hash));
    assert!(ta.checkpoint.starts_with(&format!("{supply}\n2\n")));
    assert!(
        ta.checkpoint
            .contains(&format!("\u{2014} {supply}/node-1 ")),
        "signed under the channel's key name: {}",
        ta.checkpoint
    );
    // The system channel's tree is untouched by the channel's records.
    assert_eq!(a.ledger.tip().root, b.ledger.tip().root);
    // The journal orders the channel's one block between the system channel's blocks.
    let journal = a.channels.journal(u64::MAX).unwrap();
    let at = journal
        .iter()
        .position(|j| j.channel == "supply")
        .expect("the channel block is journalled");
    assert_eq!(journal[at].height, 1);
    assert!(journal[at + 1..].iter().all(|j| j.channel.is_empty()));
    assert!(journal.windows(2).all(|w| w[0].index < w[1].index));

    // A replica that joins later installs a snapshot that replays both channels in log
    // order (the revocation must come before the refused channel write).
    l.trigger().snapshot().await.unwrap();
    l.wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= last), "snapshot")
        .await
        .unwrap();
    l.trigger().purge_log(last).await.unwrap();
    let d = replica(3, &router, cfg.clone()).await;
    l.add_learner(
        3,
        NodeInfo {
            name: String::new(),
            peer: "node-3".into(),
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
    assert!(
        d.raft.metrics().borrow().snapshot.is_some(),
        "installed a snapshot"
    );
    let sd = d
        .channels
        .get("supply")
        .expect("channel opened by the snapshot's replay");
    assert_eq!(
        (sd.tip().root, sd.tip().block_hash),
        (ta.root, ta.block_hash)
    );
    assert_eq!(d.ledger.tip().block_hash, a.ledger.tip().block_hash);
    assert_eq!(
        d.channels.journal(u64::MAX).unwrap(),
        a.channels.journal(u64::MAX).unwrap(),
        "the journal (block order) is reproduced"
    );
}

/// A node that crashes while installing a snapshot has replayed some blocks but not
/// recorded the snapshot's position. When it restarts and Raft hands it those entries
/// again, it must not apply them a second time: a transaction refused at its place in
/// the order (here: signed by a key registered only later) would be accepted late, and
/// the replica would diverge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_snapshot_install_is_not_applied_again() {
    use gridledger_node::demo::org_key;
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
    struct Side {
        _dir: tempfile::TempDir,
        ledger: Arc<Ledger<RocksStore>>,
        sm: StateMachine<RocksStore>,
    }
    let side = |id: u8| {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RocksStore::open(dir.path()).unwrap());
        let signer = NoteSigner::new(
            &format!("{ORIGIN}/node-{id}"),
            SigningKey::from_bytes(&[id; 32]),
        )
        .unwrap();
        let ledger = Arc::new(Ledger::open(store, ORIGIN, &format!("node-{id}"), signer).unwrap());
        let channels = Channels::open(ledger.clone(), SigningKey::from_bytes(&[id; 32])).unwrap();
        Side {
            _dir: dir,
            ledger,
            sm: StateMachine::new(channels),
        }
    };
    let entry = |index: u64, leaves: Vec<Vec<u8>>| Entry::<TypeConfig> {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(BlockProposal {
            private: Vec::new(),
            timestamp_ms: 1_800_000_000_000 + index,
            proposer: "node-1".into(),
            channel: String::new(),
            leaves,
        }),
    };
    let north = org_key("grid-north");
    let erp = SigningKey::from_bytes(&[42; 32]);
    let entries = || {
        vec![
            entry(1, phases()[0].clone()),
            // Refused here: the key is not registered yet.
            entry(
                2,
                vec![tx_for(&erp, ORIGIN, 1, instrument("EARLY-1", "grid-north"))],
            ),
            entry(
                3,
                vec![tx_for(
                    &north,
                    ORIGIN,
                    900,
                    Payload::RegisterSigner(pb::RegisterSigner {
                        public_key: erp.verifying_key().to_bytes().to_vec(),
                        org_id: "grid-north".into(),
                        roles: vec!["operator".into()],
                        label: "erp".into(),
                    }),
                )],
            ),
            entry(
                4,
                vec![tx_for(
                    &north,
                    ORIGIN,
                    901,
                    instrument("LATE-1", "grid-north"),
                )],
            ),
        ]
    };
    let mut a = side(1);
    let out = a.sm.apply(entries()).await.unwrap();
    let refused: Vec<bool> = out
        .iter()
        .map(|b| b.results.iter().any(|r| r.is_err()))
        .collect();
    assert_eq!(refused, [false, true, false, false], "{out:?}");
    // The same transaction is accepted once its key is registered: it is the one a
    // second application of entry 2 would let in.
    let probe = side(9);
    let mut probe_sm = probe.sm;
    let mut late = entries();
    late.swap(1, 2);
    for (i, e) in late.iter_mut().enumerate() {
        e.log_id.index = i as u64 + 1;
    }
    let out = probe_sm.apply(late).await.unwrap();
    assert!(out[2].results.iter().all(|r| r.is_ok()), "{out:?}");

    a.sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let snap = a.sm.get_current_snapshot().await.unwrap().unwrap();
    let mut blocks: Vec<serde_json::Value> =
        serde_json::from_slice(snap.snapshot.get_ref()).unwrap();
    assert_eq!(blocks.len(), 3, "entry 2 made no block");
    // The crash: the install replays the blocks of entries 1 and 3 and stops there. (A
    // second block that does not reproduce its hash stops the install at exactly that
    // point, after the block was written.)
    blocks[1]["hash"] = serde_json::json!("00".repeat(32));
    let mut c = side(3);
    c.sm.begin_receiving_snapshot().await.unwrap();
    let cut = serde_json::to_vec(&blocks).unwrap();
    assert!(
        c.sm.install_snapshot(&snap.meta, Box::new(std::io::Cursor::new(cut)))
            .await
            .is_err()
    );
    let (applied, _) = c.sm.applied_state().await.unwrap();
    assert_eq!(applied, None, "the install did not record its position");
    let height_after_crash = c.ledger.tip().height;
    assert_eq!(height_after_crash, a.ledger.tip().height - 1);
    // Restart: Raft hands over entries 1..4 again. Entries 1 to 3 are already in the
    // ledger; only entry 4 is applied, and the replica matches the leader exactly.
    let out = c.sm.apply(entries()).await.unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(c.ledger.tip().height, a.ledger.tip().height);
    assert_eq!(c.ledger.tip().block_hash, a.ledger.tip().block_hash);
    assert_eq!(c.ledger.tip().size, a.ledger.tip().size);
    let (applied, _) = c.sm.applied_state().await.unwrap();
    assert_eq!(applied.map(|l| l.index), Some(4));
}

/// A data directory whose system ledger was written without the Raft journal (by a
/// build before channels) cannot be snapshotted or replayed in order: the node refuses
/// it with a message that says what to do, instead of serving it half-working.
#[test]
fn a_data_directory_without_the_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let store = Arc::new(RocksStore::open(dir.path()).unwrap());
        let signer = NoteSigner::new(
            &format!("{ORIGIN}/node-1"),
            SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        Arc::new(Ledger::open(store, ORIGIN, "node-1", signer).unwrap())
    };
    {
        let ledger = open();
        // An empty ledger is fine.
        Channels::open(ledger.clone(), SigningKey::from_bytes(&[1; 32])).unwrap();
        let leaves: Vec<bytes::Bytes> = phases()[0].iter().cloned().map(Into::into).collect();
        ledger.apply(&leaves, 1).unwrap();
    }
    let e = Channels::open(open(), SigningKey::from_bytes(&[1; 32])).unwrap_err();
    assert!(e.to_string().contains("earlier build"), "{e}");
}
