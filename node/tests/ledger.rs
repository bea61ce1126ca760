//! The ledger over the in-memory store and RocksDB: apply, contracts, proofs that the
//! independent core verifier accepts, restart, the start-up check and the audit.

use std::sync::Arc;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use gridledger_core::contract::RejectKind;
use gridledger_core::merkle;
use gridledger_core::note::NoteSigner;
use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::receipt::Receipt;
use gridledger_core::trust::TrustPolicy;
use gridledger_core::tx;
use gridledger_node::ledger::Ledger;
use gridledger_node::store::{Cf, Durability, Store, WriteBatch, mem::MemStore, rocks::RocksStore};
use prost::Message as _;

const ORIGIN: &str = "test.example/ledger";

fn signer() -> NoteSigner {
    NoteSigner::new(
        &format!("{ORIGIN}/node-1"),
        SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap()
}

fn policy() -> gridledger_core::trust::Policy {
    TrustPolicy {
        origin: ORIGIN.into(),
        quorum: 1,
        keys: vec![signer().verifier_key().to_string()],
        witnesses: vec![],
        witness_quorum: 0,
    }
    .compile()
    .unwrap()
}

fn seed_leaves(meters: usize) -> Vec<Vec<Vec<u8>>> {
    gridledger_node::demo::seed(
        ORIGIN,
        SigningKey::from_bytes(&[9; 32]).verifying_key().as_bytes(),
        &[],
        meters,
        1,
    )
    .into_iter()
    .map(|phase| phase.into_iter().map(|s| s.leaf).collect())
    .collect()
}

fn apply_all<S: Store>(l: &Ledger<S>, phases: &[Vec<Vec<u8>>]) {
    for phase in phases {
        let leaves: Vec<Bytes> = phase.iter().cloned().map(Bytes::from).collect();
        // 2027-01-15: after every date the demo's records carry.
        let out = l.apply(&leaves, 1_800_000_000_000).unwrap();
        for r in &out.results {
            assert!(r.is_ok(), "{r:?}");
        }
    }
}

fn instrument(key: &SigningKey, nonce: u64, asset: &str) -> Bytes {
    let body = pb::TxBody {
        origin: ORIGIN.into(),
        nonce,
        client_time_ms: 0,
        payload: Some(Payload::RegisterInstrument(pb::RegisterInstrument {
            asset_no: asset.into(),
            serial_no: "S1".into(),
            owner_org: "grid-north".into(),
            manufacturer_org: "sup-alpha".into(),
            model: "DDZY-T".into(),
            kind: pb::InstrumentKind::Meter as i32,
            accuracy_class: "1".into(),
            ..Default::default()
        })),
    };
    tx::sign(key, &body).encode_to_vec().into()
}

#[test]
fn proofs_from_the_ledger_verify_with_core() {
    let l = Ledger::open(Arc::new(MemStore::new()), ORIGIN, "node-1", signer()).unwrap();
    let phases = seed_leaves(30);
    apply_all(&l, &phases);
    let tip = l.tip();
    assert_eq!(tip.height, phases.len() as u64, "one block per phase");
    let p = policy();
    p.verify_checkpoint(&tip.checkpoint).unwrap();
    for i in (0..tip.size).step_by(7) {
        let r = Receipt::parse(&l.receipt(i).unwrap()).unwrap();
        r.verify(&p).unwrap();
        assert_eq!(l.entry(i).unwrap().leaf, r.leaf);
    }
    for old in 1..tip.size {
        let (new, proof) = l.consistency_proof(old, 0).unwrap();
        merkle::verify_consistency(old, new, &l.root_at(old).unwrap(), &tip.root, &proof).unwrap();
    }
    let block = l.block_header(2).unwrap().unwrap();
    assert_eq!(block.prev_hash, l.block_header(1).unwrap().unwrap().hash());
    assert!(l.entry(tip.size).is_err());
    assert!(l.inclusion_proof(0, tip.size + 1).is_err());
    assert!(l.consistency_proof(5, 4).is_err());
    assert!(l.consistency_proof(0, 4).is_err());
}

#[test]
fn contracts_reject_with_the_rule_and_change_nothing() {
    let l = Ledger::open(Arc::new(MemStore::new()), ORIGIN, "node-1", signer()).unwrap();
    apply_all(&l, &seed_leaves(3));
    let before = l.tip();
    let stranger = SigningKey::from_bytes(&[77; 32]);
    let operator = SigningKey::from_bytes(&[9; 32]);
    let good = instrument(&operator, 1, "NEW-1");
    let results = l
        .apply(
            &[
                instrument(&stranger, 1, "X-1"),   // unknown signer
                good.clone(),                      // fine
                good,                              // replay in the same block
                instrument(&operator, 2, "NEW-1"), // duplicate asset
                Bytes::from_static(&[0xff, 0x01]), // not protobuf
            ],
            2000,
        )
        .unwrap()
        .results;
    let kinds: Vec<Option<RejectKind>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            Some(RejectKind::Unauthenticated),
            None,
            Some(RejectKind::AlreadyExists),
            Some(RejectKind::AlreadyExists),
            Some(RejectKind::Invalid)
        ]
    );
    assert_eq!(l.tip().size, before.size + 1);
    // An all-rejected batch writes no block.
    let after = l.tip();
    let out = l.apply(&[instrument(&stranger, 5, "X-2")], 3000).unwrap();
    assert!(out.results[0].is_err());
    assert_eq!(l.tip().height, after.height);
}

#[test]
fn reopen_restores_the_tip_and_keeps_appending() {
    let dir = tempfile::tempdir().unwrap();
    let root;
    {
        let l = Ledger::open(
            Arc::new(RocksStore::open(dir.path()).unwrap()),
            ORIGIN,
            "node-1",
            signer(),
        )
        .unwrap();
        apply_all(&l, &seed_leaves(10));
        root = l.tip().root;
    }
    let l = Ledger::open(
        Arc::new(RocksStore::open(dir.path()).unwrap()),
        ORIGIN,
        "node-1",
        signer(),
    )
    .unwrap();
    assert_eq!(l.tip().root, root);
    let out = l
        .apply(
            &[instrument(
                &SigningKey::from_bytes(&[9; 32]),
                99,
                "AFTER-RESTART",
            )],
            5000,
        )
        .unwrap();
    assert!(out.results[0].is_ok());
    assert_eq!(l.audit(|_, _| {}).unwrap().first_mismatch, None);
}

#[test]
fn startup_check_refuses_a_tampered_tip_and_audit_names_the_first_mismatch() {
    let store = Arc::new(MemStore::new());
    let l = Ledger::open(store.clone(), ORIGIN, "node-1", signer()).unwrap();
    apply_all(&l, &seed_leaves(10));
    let size = l.tip().size;
    drop(l);
    // A node signed with another key must not accept this ledger's stored checkpoint.
    let other = NoteSigner::new(
        &format!("{ORIGIN}/node-1"),
        SigningKey::from_bytes(&[2; 32]),
    )
    .unwrap();
    assert!(Ledger::open(store.clone(), ORIGIN, "node-1", other).is_err());

    // Change the last leaf's tree node: the start-up check sees it.
    let mut b = WriteBatch::new();
    let mut key = vec![0u8];
    key.extend_from_slice(&(size - 1).to_be_bytes());
    b.put(Cf::Nodes, key, vec![0u8; 32]);
    store.write(b, Durability::Sync).unwrap();
    let e = Ledger::open(store.clone(), ORIGIN, "node-1", signer()).unwrap_err();
    assert!(e.to_string().contains("corrupt"), "{e}");

    // Change an early leaf's bytes: audit names it.
    let store = Arc::new(MemStore::new());
    let l = Ledger::open(store.clone(), ORIGIN, "node-1", signer()).unwrap();
    apply_all(&l, &seed_leaves(10));
    let mut b = WriteBatch::new();
    b.put(Cf::Leaves, 3u64.to_be_bytes().to_vec(), b"forged".to_vec());
    store.write(b, Durability::Sync).unwrap();
    let report = l.audit(|_, _| {}).unwrap();
    let m = report.first_mismatch.expect("audit must notice");
    assert!(m.contains("leaf 3"), "{m}");
    assert_eq!(report.leaves, 3, "stops at the first mismatch");
}

fn signed(key: &SigningKey, nonce: u64, payload: Payload) -> Bytes {
    tx::sign(
        key,
        &pb::TxBody {
            origin: ORIGIN.into(),
            nonce,
            client_time_ms: 0,
            payload: Some(payload),
        },
    )
    .encode_to_vec()
    .into()
}

#[test]
fn a_revoked_key_is_refused_from_its_revocation_on_even_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Ledger::open(
            Arc::new(RocksStore::open(dir.path()).unwrap()),
            ORIGIN,
            "node-1",
            signer(),
        )
        .unwrap()
    };
    let grid_admin = gridledger_node::demo::org_key("grid-north");
    let regulator = gridledger_node::demo::org_key("reg-metrology");
    let supplier = gridledger_node::demo::org_key("sup-alpha");
    let erp = SigningKey::from_bytes(&[42; 32]);
    {
        let l = open();
        apply_all(&l, &seed_leaves(2));
        let register = signed(
            &grid_admin,
            1000,
            Payload::RegisterSigner(pb::RegisterSigner {
                public_key: erp.verifying_key().to_bytes().to_vec(),
                org_id: "grid-north".into(),
                roles: vec!["operator".into()],
                label: "erp".into(),
            }),
        );
        let use_it = instrument(&erp, 1, "ERP-1");
        let revoke = |k: &SigningKey, n| {
            signed(
                k,
                n,
                Payload::RevokeSigner(pb::RevokeSigner {
                    public_key: erp.verifying_key().to_bytes().to_vec(),
                    reason: "key leaked".into(),
                }),
            )
        };
        let out = l
            .apply(
                &[
                    register,
                    use_it,
                    revoke(&supplier, 1),
                    revoke(&grid_admin, 1001),
                    instrument(&erp, 2, "ERP-2"),
                    revoke(&regulator, 5000),
                ],
                10,
            )
            .unwrap();
        let kinds: Vec<Option<RejectKind>> = out
            .results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                None,
                None,
                Some(RejectKind::PermissionDenied),
                None,
                Some(RejectKind::Unauthenticated),
                Some(RejectKind::FailedPrecondition)
            ],
            "{:?}",
            out.results
        );
        assert!(
            out.results[4]
                .as_ref()
                .unwrap_err()
                .detail
                .contains("revoked")
        );
    }
    // The registry is rebuilt from storage on open: still revoked.
    let l = open();
    let out = l.apply(&[instrument(&erp, 3, "ERP-3")], 20).unwrap();
    assert_eq!(
        out.results[0].as_ref().unwrap_err().kind,
        RejectKind::Unauthenticated
    );
    let unknown = signed(
        &regulator,
        5001,
        Payload::RevokeSigner(pb::RevokeSigner {
            public_key: vec![7; 32],
            reason: String::new(),
        }),
    );
    assert_eq!(
        l.apply(&[unknown], 30).unwrap().results[0]
            .as_ref()
            .unwrap_err()
            .kind,
        RejectKind::FailedPrecondition
    );
    // The identity point is a small-order key, which would "verify" anything under the
    // cofactored rule: it cannot be registered.
    let mut identity = vec![0u8; 32];
    identity[0] = 1;
    let out = l
        .apply(
            &[signed(
                &grid_admin,
                1002,
                Payload::RegisterSigner(pb::RegisterSigner {
                    public_key: identity,
                    org_id: "grid-north".into(),
                    roles: vec!["operator".into()],
                    label: "bad".into(),
                }),
            )],
            40,
        )
        .unwrap();
    let e = out.results[0].as_ref().unwrap_err();
    assert_eq!((e.rule, e.kind), ("shape", RejectKind::Invalid), "{e:?}");
    assert!(e.detail.contains("small-order"), "{e:?}");
}

#[test]
fn roles_must_fit_the_org_kind_and_token_keys_hold_no_other_role() {
    let l = Ledger::open(Arc::new(MemStore::default()), ORIGIN, "node-1", signer()).unwrap();
    apply_all(&l, &seed_leaves(2));
    let grid_admin = gridledger_node::demo::org_key("grid-north");
    let reg = |nonce, key: u8, roles: &[&str]| {
        signed(
            &grid_admin,
            nonce,
            Payload::RegisterSigner(pb::RegisterSigner {
                public_key: SigningKey::from_bytes(&[key; 32])
                    .verifying_key()
                    .to_bytes()
                    .to_vec(),
                org_id: "grid-north".into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                label: String::new(),
            }),
        )
    };
    let out = l
        .apply(
            &[
                reg(2000, 1, &["regulator"]),
                reg(2001, 2, &["supplier"]),
                reg(2002, 3, &["admin", "token-issuer"]),
                reg(2003, 4, &["operator", "auditor"]),
                reg(2004, 5, &["token-issuer"]),
            ],
            10,
        )
        .unwrap();
    let rules: Vec<Option<&str>> = out
        .results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.rule))
        .collect();
    assert_eq!(
        rules,
        vec![
            Some("4.1/role-kind"),
            Some("4.1/role-kind"),
            Some("shape"),
            None,
            None
        ]
    );
    // A token key signs no transactions.
    let tk = SigningKey::from_bytes(&[5; 32]);
    let out = l.apply(&[instrument(&tk, 1, "TK-1")], 11).unwrap();
    assert_eq!(
        out.results[0].as_ref().unwrap_err().kind,
        RejectKind::PermissionDenied
    );
}

#[test]
fn consortium_changes_need_the_regulator_or_a_majority_of_orgs() {
    use gridledger_core::contract::ProposalStatus;
    let l = Ledger::open(Arc::new(MemStore::default()), ORIGIN, "node-1", signer()).unwrap();
    apply_all(&l, &seed_leaves(2));
    let org = |o: &str| gridledger_node::demo::org_key(o);
    let vk = NoteSigner::new(
        &format!("{ORIGIN}/node-9"),
        SigningKey::from_bytes(&[9; 32]),
    )
    .unwrap()
    .verifier_key()
    .to_string();
    let propose = |k: &SigningKey, nonce, id: &str| {
        signed(
            k,
            nonce,
            Payload::ProposeChange(pb::ProposeChange {
                proposal_id: id.into(),
                reason: String::new(),
                change: Some(pb::propose_change::Change::AddNode(pb::AddNode {
                    raft_id: 9,
                    node_id: "node-9".into(),
                    org_id: "grid-north".into(),
                    peer: "10.0.0.9:7543".into(),
                    api: "10.0.0.9:7443".into(),
                    checkpoint_key: vk.clone(),
                    ..Default::default()
                })),
            }),
        )
    };
    let vote = |k: &SigningKey, nonce, id: &str, approve| {
        signed(
            k,
            nonce,
            Payload::CastVote(pb::CastVote {
                proposal_id: id.into(),
                approve,
            }),
        )
    };
    let status = |id: &str| {
        l.proposals()
            .unwrap()
            .into_iter()
            .find(|(p, _)| p == id)
            .map(|(_, p)| p.status)
    };
    // Nine member orgs: five approvals make a majority, four do not.
    let voters = [
        "grid-north",
        "grid-south",
        "inst-nmc",
        "inst-lab2",
        "sup-alpha",
    ];
    let mut leaves = vec![propose(&org("grid-north"), 3000, "p-majority")];
    for (i, o) in voters.iter().take(4).enumerate() {
        leaves.push(vote(&org(o), 3001 + i as u64, "p-majority", true));
    }
    let out = l.apply(&leaves, 10).unwrap();
    assert!(out.results.iter().all(Result::is_ok), "{:?}", out.results);
    assert_eq!(status("p-majority"), Some(ProposalStatus::Open));
    assert!(l.nodes().unwrap().is_empty());
    // A second vote by the same org is refused; the fifth org's vote approves.
    let out = l
        .apply(
            &[
                vote(&org("grid-south"), 3100, "p-majority", true),
                vote(&org("sup-alpha"), 3101, "p-majority", true),
                vote(&org("sup-beta"), 3102, "p-majority", true),
            ],
            11,
        )
        .unwrap();
    let rules: Vec<Option<&str>> = out
        .results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.rule))
        .collect();
    assert_eq!(
        rules,
        vec![Some("4.5/vote"), None, Some("4.5/vote")],
        "decided proposals take no votes"
    );
    assert_eq!(status("p-majority"), Some(ProposalStatus::Approved));
    assert_eq!(l.nodes().unwrap()[0].node_id, "node-9");

    // The regulator's refusal decides at once; a proposal for a registered node is refused.
    let out = l
        .apply(
            &[
                propose(&org("grid-south"), 3200, "p-again"),
                signed(
                    &org("grid-south"),
                    3201,
                    Payload::ProposeChange(pb::ProposeChange {
                        proposal_id: "p-remove".into(),
                        reason: String::new(),
                        change: Some(pb::propose_change::Change::RemoveNode(pb::RemoveNode {
                            raft_id: 9,
                        })),
                    }),
                ),
                vote(&org("reg-metrology"), 3202, "p-remove", false),
            ],
            12,
        )
        .unwrap();
    // The same raft id and node id again is a renewal proposal, accepted for voting.
    assert!(out.results[0].is_ok(), "{:?}", out.results[0]);
    assert!(out.results[1].is_ok() && out.results[2].is_ok());
    assert_eq!(status("p-remove"), Some(ProposalStatus::Rejected));
    assert!(!l.nodes().unwrap()[0].removed);
}

/// Org admission, collections, the approval policy and node validity, each approved by
/// vote; bad proposals are refused by rule, and the policy changes how votes decide.
#[test]
fn consortium_records_orgs_collections_policy_and_node_validity() {
    use gridledger_core::contract::{ApprovalPolicy, ProposalStatus};
    use pb::propose_change::Change as C;
    let l = Ledger::open(Arc::new(MemStore::default()), ORIGIN, "node-1", signer()).unwrap();
    apply_all(&l, &seed_leaves(2));
    let org = |o: &str| gridledger_node::demo::org_key(o);
    let reg = org("reg-metrology");
    let nonce = std::cell::Cell::new(9_000u64);
    let next = || {
        nonce.set(nonce.get() + 1);
        nonce.get()
    };
    let propose = |k: &SigningKey, id: &str, c: C| {
        signed(
            k,
            next(),
            Payload::ProposeChange(pb::ProposeChange {
                proposal_id: id.into(),
                reason: String::new(),
                change: Some(c),
            }),
        )
    };
    let vote = |k: &SigningKey, id: &str, approve| {
        signed(
            k,
            next(),
            Payload::CastVote(pb::CastVote {
                proposal_id: id.into(),
                approve,
            }),
        )
    };
    let rules = |out: &gridledger_node::ledger::ApplyOutcome| -> Vec<Option<&'static str>> {
        out.results
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.rule))
            .collect()
    };
    let add_org = |id: &str, kind: pb::OrgKind| {
        C::AddOrg(pb::RegisterOrg {
            org_id: id.into(),
            name: format!("{id} Ltd"),
            kind: kind as i32,
        })
    };
    let node = |from: &str, until: &str| {
        C::AddNode(pb::AddNode {
            raft_id: 12,
            node_id: "node-12".into(),
            org_id: "grid-north".into(),
            peer: "10.0.0.12:7543".into(),
            api: "10.0.0.12:7443".into(),
            checkpoint_key: NoteSigner::new(
                &format!("{ORIGIN}/node-12"),
                SigningKey::from_bytes(&[12; 32]),
            )
            .unwrap()
            .verifier_key()
            .to_string(),
            valid_from: from.into(),
            valid_until: until.into(),
        })
    };
    let collection = |name: &str, members: &[&str], types: &[&str]| {
        C::DefineCollection(pb::DefineCollection {
            name: name.into(),
            member_orgs: members.iter().map(|s| s.to_string()).collect(),
            record_types: types.iter().map(|s| s.to_string()).collect(),
        })
    };

    // Proposals that are malformed or refer to nothing are refused, each by its rule.
    let out = l
        .apply(
            &[
                propose(
                    &reg,
                    "o-dup",
                    add_org("grid-north", pb::OrgKind::GridCompany),
                ),
                propose(&reg, "o-kind", add_org("new-co", pb::OrgKind::Unspecified)),
                propose(
                    &reg,
                    "c-unknown",
                    collection("meters", &["nobody"], &["reading"]),
                ),
                propose(&reg, "c-empty", collection("meters", &["grid-north"], &[])),
                propose(
                    &reg,
                    "c-name",
                    collection("Meters!", &["grid-north"], &["reading"]),
                ),
                propose(&reg, "n-dates", node("2027-01-01", "2026-01-01")),
                propose(&reg, "n-baddate", node("2026-13-01", "")),
                propose(
                    &reg,
                    "ch-name",
                    C::CreateChannel(pb::CreateChannel {
                        name: "-x".into(),
                        member_orgs: vec!["grid-north".into()],
                    }),
                ),
                propose(
                    &reg,
                    "pol-none",
                    C::SetApprovalPolicy(pb::SetApprovalPolicy { policy: 0 }),
                ),
                propose(
                    &org("sup-alpha"),
                    "o-staff",
                    add_org("new-co", pb::OrgKind::Supplier),
                ),
            ],
            100,
        )
        .unwrap();
    assert_eq!(
        rules(&out),
        vec![
            Some("4.5/org"),
            Some("shape"),
            Some("4.5/collection"),
            Some("shape"),
            Some("shape"),
            Some("shape"),
            Some("shape"),
            Some("shape"),
            Some("shape"),
            None, // sup-alpha's system key is its admin: it may propose
        ]
    );

    // Approved by the regulator: an org, a collection (twice: version 2), a valid node.
    let out = l
        .apply(
            &[
                propose(&reg, "o-new", add_org("sup-delta", pb::OrgKind::Supplier)),
                vote(&reg, "o-new", true),
                propose(
                    &reg,
                    "c-1",
                    collection("readings", &["grid-north", "mkt-px"], &["reading"]),
                ),
                vote(&reg, "c-1", true),
                propose(
                    &reg,
                    "c-2",
                    collection(
                        "readings",
                        &["grid-north", "grid-south", "mkt-px"],
                        &["reading", "reading"],
                    ),
                ),
                vote(&reg, "c-2", true),
                propose(&reg, "n-12", node("2026-01-01", "2026-12-31")),
                vote(&reg, "n-12", true),
            ],
            101,
        )
        .unwrap();
    assert!(out.results.iter().all(Result::is_ok), "{:?}", rules(&out));
    assert_eq!(l.org_kind("sup-delta"), Some(pb::OrgKind::Supplier));
    let cs = l.collections().unwrap();
    let c = cs.iter().find(|c| c.name == "readings").unwrap();
    // The demo genesis defines `readings` (version 1); the two approvals above make 2 and 3.
    assert_eq!((c.name.as_str(), c.version), ("readings", 3));
    assert_eq!(c.members, vec!["grid-north", "grid-south", "mkt-px"]);
    assert_eq!(c.record_types, vec!["reading"], "deduplicated");
    let n = l
        .nodes()
        .unwrap()
        .into_iter()
        .find(|n| n.raft_id == 12)
        .unwrap();
    assert!(!n.valid_on("2025-12-31") && n.valid_on("2026-01-01"));
    assert!(n.valid_on("2026-12-31") && !n.valid_on("2027-01-01"));
    // Another node under the live raft id is refused; the same node renews its validity.
    let mut other = node("", "");
    if let C::AddNode(a) = &mut other {
        a.node_id = "node-13".into();
        a.checkpoint_key = NoteSigner::new(
            &format!("{ORIGIN}/node-13"),
            SigningKey::from_bytes(&[13; 32]),
        )
        .unwrap()
        .verifier_key()
        .to_string();
    }
    // A renewal cannot move the node to another org.
    let mut moved = node("2026-01-01", "2027-12-31");
    if let C::AddNode(a) = &mut moved {
        a.org_id = "grid-south".into();
    }
    let out = l
        .apply(
            &[
                propose(&reg, "n-other", other),
                propose(&reg, "n-moved", moved),
                propose(&reg, "n-renew", node("2026-01-01", "2027-12-31")),
                vote(&reg, "n-renew", true),
            ],
            101,
        )
        .unwrap();
    assert_eq!(
        rules(&out),
        vec![Some("4.5/proposal"), Some("4.5/proposal"), None, None]
    );
    assert!(
        out.results[1]
            .as_ref()
            .unwrap_err()
            .detail
            .contains("cannot move it"),
        "{:?}",
        out.results[1]
    );
    let n = l
        .nodes()
        .unwrap()
        .into_iter()
        .find(|n| n.raft_id == 12)
        .unwrap();
    assert!(n.valid_on("2027-06-01"), "renewed: {n:?}");

    // Majority policy: the regulator's vote counts as one, and it may no longer register
    // orgs directly.
    let out = l
        .apply(
            &[
                propose(
                    &reg,
                    "pol",
                    C::SetApprovalPolicy(pb::SetApprovalPolicy {
                        policy: pb::ApprovalPolicy::Majority as i32,
                    }),
                ),
                vote(&reg, "pol", true),
            ],
            102,
        )
        .unwrap();
    assert!(out.results.iter().all(Result::is_ok));
    assert_eq!(l.approval_policy().unwrap(), ApprovalPolicy::Majority);
    let status = |id: &str| {
        l.proposals()
            .unwrap()
            .into_iter()
            .find(|(p, _)| p == id)
            .map(|(_, p)| p.status)
    };
    let out = l
        .apply(
            &[
                signed(
                    &reg,
                    next(),
                    Payload::RegisterOrg(pb::RegisterOrg {
                        org_id: "sup-eps".into(),
                        name: "Eps".into(),
                        kind: pb::OrgKind::Supplier as i32,
                    }),
                ),
                propose(&reg, "o-eps", add_org("sup-eps", pb::OrgKind::Supplier)),
                vote(&reg, "o-eps", true),
            ],
            103,
        )
        .unwrap();
    assert_eq!(rules(&out), vec![Some("4.5/approval"), None, None]);
    assert_eq!(
        status("o-eps"),
        Some(ProposalStatus::Open),
        "one vote of ten orgs"
    );
    // Ten member orgs now: six approvals decide.
    let mut leaves = Vec::new();
    for o in [
        "grid-north",
        "grid-south",
        "inst-nmc",
        "inst-lab2",
        "sup-alpha",
    ] {
        leaves.push(vote(&org(o), "o-eps", true));
    }
    let out = l.apply(&leaves, 104).unwrap();
    assert!(out.results.iter().all(Result::is_ok), "{:?}", rules(&out));
    assert_eq!(status("o-eps"), Some(ProposalStatus::Approved));
    assert_eq!(l.org_kind("sup-eps"), Some(pb::OrgKind::Supplier));

    // Regulator-only policy: other orgs' votes are recorded but do not decide.
    let out = l
        .apply(
            &[propose(
                &reg,
                "pol2",
                C::SetApprovalPolicy(pb::SetApprovalPolicy {
                    policy: pb::ApprovalPolicy::Regulator as i32,
                }),
            )],
            105,
        )
        .unwrap();
    assert!(out.results[0].is_ok());
    let mut leaves = Vec::new();
    for o in [
        "reg-metrology",
        "grid-north",
        "grid-south",
        "inst-nmc",
        "inst-lab2",
        "sup-alpha",
    ] {
        leaves.push(vote(&org(o), "pol2", true));
    }
    assert!(
        l.apply(&leaves, 106)
            .unwrap()
            .results
            .iter()
            .all(Result::is_ok)
    );
    assert_eq!(l.approval_policy().unwrap(), ApprovalPolicy::Regulator);
    let out = l
        .apply(
            &[
                propose(
                    &org("grid-north"),
                    "o-zeta",
                    add_org("sup-zeta", pb::OrgKind::Supplier),
                ),
                vote(&org("grid-north"), "o-zeta", true),
                vote(&org("grid-south"), "o-zeta", true),
                vote(&org("inst-nmc"), "o-zeta", true),
                vote(&org("inst-lab2"), "o-zeta", true),
                vote(&org("sup-alpha"), "o-zeta", true),
                vote(&org("sup-beta"), "o-zeta", true),
            ],
            107,
        )
        .unwrap();
    assert!(out.results.iter().all(Result::is_ok), "{:?}", rules(&out));
    assert_eq!(
        status("o-zeta"),
        Some(ProposalStatus::Open),
        "a majority without the regulator"
    );
    l.apply(&[vote(&reg, "o-zeta", false)], 108).unwrap();
    assert_eq!(status("o-zeta"), Some(ProposalStatus::Rejected));
    assert_eq!(l.org_kind("sup-zeta"), None);
}
