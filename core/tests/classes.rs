//! Readings (DOMAIN.md §4.6) and data classes II and III (DESIGN.md §4) as tables: each
//! case changes one thing in a world where everything is valid and names the rule it
//! must break (or none). Also the commitment's known-answer vectors (testdata, computed
//! with Python's hashlib) and the payload and document checks.

use std::collections::BTreeMap;

use gridledger_core::contract::{
    self, ApprovalPolicy, BlockContext, ChannelDef, CollectionDef, Effect, NodeRecord, Proposal,
    RULES, RecordSource, RejectKind, SignerInfo, StateView,
};
use gridledger_core::metrology::{self, keys};
use gridledger_core::pb::{self, OrgKind, tx_body::Payload};
use gridledger_core::private::{self, DocumentHasher, PrivateError};
use prost::Message as _;

const ORIGIN: &str = "test.example/ledger";
const GRID: [u8; 32] = [1; 32];
const GRID_ADMIN: [u8; 32] = [2; 32];
const OTHER_GRID: [u8; 32] = [3; 32];
const REG: [u8; 32] = [4; 32];
const LAB: [u8; 32] = [5; 32];
const SUPPLIER: [u8; 32] = [6; 32];

/// Signers, instruments, readings, collections and records in maps.
#[derive(Clone)]
struct World {
    signers: BTreeMap<[u8; 32], SignerInfo>,
    orgs: BTreeMap<String, OrgKind>,
    instruments: BTreeMap<String, String>,
    readings: BTreeMap<(String, String), u64>,
    collections: BTreeMap<String, CollectionDef>,
    records: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    leaf: u64,
}

fn signer(org: &str, roles: &[&str]) -> SignerInfo {
    SignerInfo {
        org_id: org.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        active: true,
    }
}

impl World {
    fn new() -> Self {
        let mut w = World {
            signers: BTreeMap::new(),
            orgs: BTreeMap::new(),
            instruments: BTreeMap::new(),
            readings: BTreeMap::new(),
            collections: BTreeMap::new(),
            records: BTreeMap::new(),
            leaf: 100,
        };
        for (k, org, kind, roles) in [
            (GRID, "grid-north", OrgKind::GridCompany, &["operator"][..]),
            (
                GRID_ADMIN,
                "grid-north",
                OrgKind::GridCompany,
                &["admin"][..],
            ),
            (
                OTHER_GRID,
                "grid-south",
                OrgKind::GridCompany,
                &["admin", "operator"][..],
            ),
            (REG, "reg", OrgKind::Regulator, &["regulator", "admin"][..]),
            (LAB, "lab", OrgKind::Institution, &["verifier"][..]),
            (SUPPLIER, "sup", OrgKind::Supplier, &["supplier"][..]),
        ] {
            w.signers.insert(k, signer(org, roles));
            w.orgs.insert(org.into(), kind);
        }
        w.instruments.insert("M1".into(), "grid-north".into());
        w.instruments.insert("S1".into(), "grid-south".into());
        w.collections.insert(
            "readings".into(),
            CollectionDef {
                name: "readings".into(),
                members: vec!["grid-north".into(), "mkt".into()],
                record_types: vec!["reading".into()],
                version: 1,
            },
        );
        w.collections.insert(
            "bindings".into(),
            CollectionDef {
                name: "bindings".into(),
                members: vec!["grid-north".into(), "grid-south".into()],
                record_types: vec!["binding".into()],
                version: 1,
            },
        );
        w.collections.insert(
            "batches".into(),
            CollectionDef {
                name: "batches".into(),
                members: vec!["grid-north".into()],
                record_types: vec!["factory_test_batch".into()],
                version: 1,
            },
        );
        w
    }

    /// Checks `payload` signed by `key` on block day `day`.
    fn check(
        &self,
        key: [u8; 32],
        payload: Payload,
        day: &str,
    ) -> Result<Vec<Effect>, contract::Rejection> {
        let ctx = BlockContext {
            origin: ORIGIN,
            channel: None,
            day,
        };
        let body = pb::TxBody {
            origin: ORIGIN.into(),
            nonce: self.leaf,
            client_time_ms: 0,
            payload: Some(payload),
        };
        contract::check(self, &ctx, &key, &body)
    }

    /// Applies accepted effects the way the ledger does.
    fn apply(&mut self, effects: Vec<Effect>) -> u64 {
        let index = self.leaf;
        for e in effects {
            match e {
                Effect::Record(k, v) => {
                    self.records.insert(k, (index, v));
                }
                Effect::Reading(a, d) => {
                    self.readings.insert((a, d), index);
                }
                _ => {}
            }
        }
        self.leaf += 1;
        index
    }
}

impl StateView for World {
    fn signer(&self, key: &[u8; 32]) -> Option<SignerInfo> {
        self.signers.get(key).cloned()
    }
    fn has_signers(&self) -> bool {
        true
    }
    fn nonce_used(&self, _: &[u8; 32], _: u64) -> bool {
        false
    }
    fn org_kind(&self, org_id: &str) -> Option<OrgKind> {
        self.orgs.get(org_id).copied()
    }
    fn instrument_owner(&self, asset_no: &str) -> Option<String> {
        self.instruments.get(asset_no).cloned()
    }
    fn reading(&self, asset_no: &str, day: &str) -> Option<u64> {
        self.readings.get(&(asset_no.into(), day.into())).copied()
    }
    fn proposal(&self, _: &str) -> Option<Proposal> {
        None
    }
    fn org_count(&self) -> usize {
        self.orgs.len()
    }
    fn node(&self, _: u64) -> Option<NodeRecord> {
        None
    }
    fn channel(&self, _: &str) -> Option<ChannelDef> {
        None
    }
    fn collection(&self, name: &str) -> Option<CollectionDef> {
        self.collections.get(name).cloned()
    }
    fn approval_policy(&self) -> ApprovalPolicy {
        ApprovalPolicy::default()
    }
}

impl RecordSource for World {
    fn record(&self, key: &[u8]) -> Option<(u64, Vec<u8>)> {
        self.records.get(key).cloned()
    }
    fn records(&self, prefix: &[u8], limit: usize) -> Vec<contract::RecordEntry> {
        self.records
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, (l, v))| (k.clone(), *l, v.clone()))
            .collect()
    }
}

fn reading(asset: &str, day: &str, commitment: u8, corrects: Option<u64>) -> Payload {
    Payload::RecordReading(pb::RecordReading {
        asset_no: asset.into(),
        day: day.into(),
        corrects,
        commitment: vec![commitment; 32],
        collection: "readings".into(),
    })
}

/// The rule a verdict names, or `None` for acceptance.
fn verdict(r: &Result<Vec<Effect>, contract::Rejection>) -> Option<&'static str> {
    r.as_ref().err().map(|e| e.rule)
}

#[test]
fn reading_rules() {
    let today = "2026-11-24";
    let mut w = World::new();
    let first = w.check(GRID, reading("M1", "2026-11-20", 1, None), today);
    assert_eq!(verdict(&first), None, "{first:?}");
    let first = w.apply(first.unwrap());

    let mut wrong_collection = reading("M1", "2026-11-21", 9, None);
    if let Payload::RecordReading(r) = &mut wrong_collection {
        r.collection = "batches".into();
    }
    let mut missing_collection = reading("M1", "2026-11-21", 9, None);
    if let Payload::RecordReading(r) = &mut missing_collection {
        r.collection = "nope".into();
    }
    let mut short = reading("M1", "2026-11-21", 9, None);
    if let Payload::RecordReading(r) = &mut short {
        r.commitment.truncate(31);
    }
    let cases: Vec<(&str, [u8; 32], Payload, Option<&str>)> = vec![
        (
            "a new day",
            GRID,
            reading("M1", "2026-11-21", 2, None),
            None,
        ),
        (
            "the admin may write too",
            GRID_ADMIN,
            reading("M1", "2026-11-22", 3, None),
            None,
        ),
        // Dates at the edge: one day past the block's day is allowed, two are not.
        (
            "tomorrow (slack)",
            GRID,
            reading("M1", "2026-11-25", 4, None),
            None,
        ),
        (
            "the day after",
            GRID,
            reading("M1", "2026-11-26", 4, None),
            Some("4.6/date"),
        ),
        (
            "a bad date",
            GRID,
            reading("M1", "2026-02-30", 4, None),
            Some("shape"),
        ),
        (
            "unknown meter",
            GRID,
            reading("X9", "2026-11-21", 5, None),
            Some("4.6/instrument"),
        ),
        (
            "another grid's meter",
            GRID,
            reading("S1", "2026-11-21", 5, None),
            Some("4.6/owner"),
        ),
        (
            "a lab's key",
            LAB,
            reading("M1", "2026-11-21", 5, None),
            Some("4.6/owner"),
        ),
        (
            "the day exists",
            GRID,
            reading("M1", "2026-11-20", 6, None),
            Some("4.6/correction"),
        ),
        (
            "a correction of the current reading",
            GRID,
            reading("M1", "2026-11-20", 6, Some(first)),
            None,
        ),
        (
            "a correction naming another leaf",
            GRID,
            reading("M1", "2026-11-20", 6, Some(first + 7)),
            Some("4.6/correction"),
        ),
        (
            "a correction of nothing",
            GRID,
            reading("M1", "2026-11-23", 6, Some(first)),
            Some("4.6/correction"),
        ),
        (
            "a reused commitment",
            GRID,
            reading("M1", "2026-11-21", 1, None),
            Some("shape"),
        ),
        ("a short commitment", GRID, short, Some("shape")),
        (
            "a collection of other types",
            GRID,
            wrong_collection,
            Some("4.6/collection"),
        ),
        (
            "no such collection",
            GRID,
            missing_collection,
            Some("4.6/collection"),
        ),
    ];
    for (what, key, payload, want) in cases {
        let r = w.check(key, payload, today);
        assert_eq!(verdict(&r), want, "{what}: {r:?}");
        if let Some(rule) = want {
            assert!(RULES.contains(&rule), "{rule} is listed");
        }
    }
    // A collection that does not include the meter's owner.
    let mut w2 = w.clone();
    w2.collections.get_mut("readings").unwrap().members = vec!["mkt".into()];
    let r = w2.check(GRID, reading("M1", "2026-11-21", 8, None), today);
    assert_eq!(verdict(&r), Some("4.6/collection"), "{r:?}");
    assert!(r.unwrap_err().detail.contains("does not include"));
}

fn purge(commitment: u8, reason: &str) -> Payload {
    Payload::PurgePrivate(pb::PurgePrivate {
        commitment: vec![commitment; 32],
        reason: reason.into(),
    })
}

#[test]
fn purge_rules() {
    let today = "2026-11-24";
    let mut w = World::new();
    let r = w
        .check(GRID, reading("M1", "2026-11-20", 1, None), today)
        .unwrap();
    let leaf = w.apply(r);
    let cases: Vec<(&str, [u8; 32], Payload, Option<&str>)> = vec![
        (
            "the operator may not",
            GRID,
            purge(1, "retention"),
            Some("3/purge"),
        ),
        (
            "another grid company may not",
            OTHER_GRID,
            purge(1, "retention"),
            Some("3/purge"),
        ),
        ("a lab may not", LAB, purge(1, "retention"), Some("3/purge")),
        ("no reason", GRID_ADMIN, purge(1, "  "), Some("3/purge")),
        (
            "unknown commitment",
            GRID_ADMIN,
            purge(2, "retention"),
            Some("3/purge"),
        ),
        ("the owner's admin", GRID_ADMIN, purge(1, "retention"), None),
        ("the regulator", REG, purge(1, "court order"), None),
    ];
    for (what, key, payload, want) in cases {
        let r = w.check(key, payload, today);
        assert_eq!(verdict(&r), want, "{what}: {r:?}");
    }
    // Accepted: the ledger deletes the payload of the reading's leaf, and only once.
    let effects = w.check(GRID_ADMIN, purge(1, "retention"), today).unwrap();
    assert!(effects.contains(&Effect::Purge(leaf)), "{effects:?}");
    w.apply(effects);
    let again = w.check(REG, purge(1, "again"), today);
    assert_eq!(verdict(&again), Some("3/purge"));
    assert_eq!(again.unwrap_err().kind, RejectKind::AlreadyExists);
    let rec: private::PurgeRec = metrology::get(&w, &keys::purged(&hex::encode([1u8; 32])))
        .unwrap()
        .1;
    assert_eq!(
        (rec.leaf_index, rec.purged_by_org.as_str()),
        (leaf, "grid-north")
    );
}

fn bind(asset: &str, commitment: u8, replaces: Option<u64>) -> Payload {
    Payload::BindCustomer(pb::BindCustomer {
        asset_no: asset.into(),
        commitment: vec![commitment; 32],
        collection: "bindings".into(),
        replaces,
    })
}

#[test]
fn binding_rules() {
    let today = "2026-11-24";
    let mut w = World::new();
    let first = w.check(GRID, bind("M1", 1, None), today);
    assert_eq!(verdict(&first), None, "{first:?}");
    let first = w.apply(first.unwrap());
    let in_collection = |c: &str| {
        let mut p = bind("M1", 9, Some(first));
        if let Payload::BindCustomer(b) = &mut p {
            b.collection = c.into();
        }
        p
    };
    let mut short = bind("M1", 9, Some(first));
    if let Payload::BindCustomer(b) = &mut short {
        b.commitment.truncate(31);
    }
    let cases: Vec<(&str, [u8; 32], Payload, Option<&str>)> = vec![
        (
            "unknown meter",
            GRID,
            bind("X9", 2, None),
            Some("2.3/instrument"),
        ),
        (
            "another grid's meter",
            GRID,
            bind("S1", 2, None),
            Some("2.3/owner"),
        ),
        (
            "a lab's key",
            LAB,
            bind("M1", 2, Some(first)),
            Some("2.3/owner"),
        ),
        (
            "the regulator's key",
            REG,
            bind("M1", 2, Some(first)),
            Some("2.3/owner"),
        ),
        (
            "a second binding without replaces",
            GRID,
            bind("M1", 2, None),
            Some("2.3/binding"),
        ),
        (
            "replaces names another leaf",
            GRID,
            bind("M1", 2, Some(first + 1)),
            Some("2.3/binding"),
        ),
        (
            "replaces on an unbound meter",
            OTHER_GRID,
            bind("S1", 2, Some(first)),
            Some("2.3/binding"),
        ),
        (
            "a reused commitment",
            GRID,
            bind("M1", 1, Some(first)),
            Some("shape"),
        ),
        ("a short commitment", GRID, short, Some("shape")),
        (
            "a collection of readings",
            GRID,
            in_collection("readings"),
            Some("4.6/collection"),
        ),
        (
            "no such collection",
            GRID,
            in_collection("nope"),
            Some("4.6/collection"),
        ),
        (
            "a bad asset number",
            GRID,
            bind("M 1", 2, None),
            Some("shape"),
        ),
        (
            "the admin replaces it",
            GRID_ADMIN,
            bind("M1", 2, Some(first)),
            None,
        ),
        (
            "another grid binds its own",
            OTHER_GRID,
            bind("S1", 3, None),
            None,
        ),
    ];
    for (what, key, payload, want) in cases {
        let r = w.check(key, payload, today);
        assert_eq!(verdict(&r), want, "{what}: {r:?}");
        if let Some(rule) = want {
            assert!(RULES.contains(&rule), "{rule} is listed");
        }
    }
    // A replacement becomes current and the history keeps both.
    let second = w.apply(w.check(GRID, bind("M1", 4, Some(first)), today).unwrap());
    let (cur, rec): (u64, private::BindingRec) = metrology::get(&w, &keys::binding("M1")).unwrap();
    assert_eq!((cur, rec.replaces), (second, Some(first)));
    let history: Vec<(u64, private::BindingRec)> = metrology::list(&w, &keys::bindings_of("M1"));
    let mut leaves: Vec<u64> = history.iter().map(|(l, _)| *l).collect();
    leaves.sort_unstable();
    assert_eq!(leaves, vec![first, second]);
    // The first binding is no longer current: replacing it again is refused.
    let stale = w.check(GRID, bind("M1", 5, Some(first)), today);
    assert_eq!(verdict(&stale), Some("2.3/binding"));
    // The payload can be purged like any class II record.
    let r = w
        .check(GRID_ADMIN, purge(4, "contract ended"), today)
        .unwrap();
    assert!(r.contains(&Effect::Purge(second)), "{r:?}");
}

fn anchor(edit: impl FnOnce(&mut pb::AnchorDocument)) -> Payload {
    let mut a = pb::AnchorDocument {
        sha256: "ab".repeat(32),
        md5: "cd".repeat(16),
        size: 1000,
        media_type: "application/pdf".into(),
        file_name: "scan.pdf".into(),
        subject: "VC-2026-000001".into(),
    };
    edit(&mut a);
    Payload::AnchorDocument(a)
}

#[test]
fn document_anchor_rules() {
    let today = "2026-11-24";
    let mut w = World::new();
    let cases: Vec<(&str, [u8; 32], Payload, Option<&str>)> = vec![
        ("a lab's verifier", LAB, anchor(|_| {}), None),
        ("a supplier", SUPPLIER, anchor(|_| {}), None),
        (
            "upper-case hex",
            LAB,
            anchor(|a| a.sha256 = "AB".repeat(32)),
            Some("3/document"),
        ),
        (
            "short sha256",
            LAB,
            anchor(|a| a.sha256 = "ab".repeat(31)),
            Some("3/document"),
        ),
        (
            "md5 as sha256 length",
            LAB,
            anchor(|a| a.md5 = "cd".repeat(32)),
            Some("3/document"),
        ),
        ("empty", LAB, anchor(|a| a.size = 0), Some("3/document")),
        (
            "over the contract limit",
            LAB,
            anchor(|a| a.size = private::MAX_DOCUMENT_BYTES + 1),
            Some("3/document"),
        ),
        (
            "at the contract limit",
            LAB,
            anchor(|a| a.size = private::MAX_DOCUMENT_BYTES),
            None,
        ),
        (
            "no media type",
            LAB,
            anchor(|a| a.media_type = "pdf".into()),
            Some("3/document"),
        ),
        (
            "a path",
            LAB,
            anchor(|a| a.file_name = "../etc/passwd".into()),
            Some("3/document"),
        ),
        (
            "no file name",
            LAB,
            anchor(|a| a.file_name = String::new()),
            Some("3/document"),
        ),
        (
            "no subject",
            LAB,
            anchor(|a| a.subject = String::new()),
            Some("shape"),
        ),
    ];
    for (what, key, payload, want) in cases {
        let r = w.check(key, payload, today);
        assert_eq!(verdict(&r), want, "{what}: {r:?}");
    }
    let r = w.check(LAB, anchor(|_| {}), today).unwrap();
    let leaf = w.apply(r);
    let dup = w.check(SUPPLIER, anchor(|_| {}), today);
    assert_eq!(verdict(&dup), Some("3/document"));
    let e = dup.unwrap_err();
    assert_eq!(e.kind, RejectKind::AlreadyExists);
    assert!(e.detail.contains(&format!("leaf {leaf}")), "{}", e.detail);
}

#[test]
fn commitment_known_answers() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/commitment-v1.json")).unwrap();
    let vectors = v["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 3);
    for t in vectors {
        let salt: [u8; 32] = hex::decode(t["salt"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let payload = hex::decode(t["payload"].as_str().unwrap()).unwrap();
        assert_eq!(
            hex::encode(private::commitment(&salt, &payload)),
            t["commitment"].as_str().unwrap(),
            "{}",
            t["note"]
        );
    }
}

#[test]
fn payload_checks() {
    let values = pb::ReadingValues {
        import_wh: vec![1, 2, 3],
        ..Default::default()
    };
    let payload = values.encode_to_vec();
    let salt = [5u8; 32];
    let commitment = private::commitment(&salt, &payload).to_vec();
    let body = |c: Vec<u8>| pb::TxBody {
        origin: ORIGIN.into(),
        nonce: 1,
        client_time_ms: 0,
        payload: Some(Payload::RecordReading(pb::RecordReading {
            asset_no: "M1".into(),
            day: "2026-11-20".into(),
            corrects: None,
            commitment: c,
            collection: "readings".into(),
        })),
    };
    let ok = body(commitment.clone());
    assert_eq!(
        private::check_payload(&ok, &salt, &payload)
            .unwrap()
            .collection,
        "readings"
    );
    assert_eq!(
        private::check_payload(&ok, &[5u8; 31], &payload),
        Err(PrivateError::Salt(31))
    );
    assert_eq!(
        private::check_payload(&ok, &[6u8; 32], &payload),
        Err(PrivateError::Mismatch)
    );
    // Garbage that happens to be committed is still refused: it is not a reading.
    let garbage = vec![0xff; 10];
    let g = body(private::commitment(&salt, &garbage).to_vec());
    assert!(matches!(
        private::check_payload(&g, &salt, &garbage),
        Err(PrivateError::Invalid("reading", _))
    ));
    let big = pb::ReadingValues {
        export_wh: vec![1; 97],
        ..Default::default()
    }
    .encode_to_vec();
    let b = body(private::commitment(&salt, &big).to_vec());
    assert!(matches!(
        private::check_payload(&b, &salt, &big),
        Err(PrivateError::Invalid(..))
    ));
    let overflow = pb::ReadingValues {
        import_wh: vec![u64::MAX, 1],
        ..Default::default()
    }
    .encode_to_vec();
    let o = body(private::commitment(&salt, &overflow).to_vec());
    assert!(private::check_payload(&o, &salt, &overflow).is_err());
    let plain = pb::TxBody {
        payload: Some(Payload::CastVote(pb::CastVote::default())),
        ..ok.clone()
    };
    assert_eq!(
        private::check_payload(&plain, &salt, &payload),
        Err(PrivateError::Unexpected)
    );
}

#[test]
fn document_digests_name_what_differs() {
    let mut h = DocumentHasher::default();
    h.update(b"hello ");
    h.update(b"world");
    let d = h.finish();
    // Independent values: `printf 'hello world' | sha256sum / md5sum`.
    assert_eq!(
        d.sha256,
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(d.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
    let a = pb::AnchorDocument {
        sha256: d.sha256.clone(),
        md5: d.md5.clone(),
        size: 11,
        ..Default::default()
    };
    assert!(d.check(&a).is_ok());
    let wrong_md5 = pb::AnchorDocument {
        md5: "0".repeat(32),
        ..a.clone()
    };
    assert!(d.check(&wrong_md5).unwrap_err().contains("MD5"));
    let wrong_size = pb::AnchorDocument { size: 12, ..a };
    assert!(d.check(&wrong_size).unwrap_err().contains("size"));
}

#[test]
fn binding_payload_checks() {
    let good = pb::CustomerBinding {
        account: "resident-1".into(),
        installation_point: "MP-1, 1 Elm Street".into(),
        from: "2026-11-01".into(),
    };
    let check = |b: &pb::CustomerBinding| {
        let payload = b.encode_to_vec();
        let salt = [3u8; 32];
        let body = pb::TxBody {
            origin: ORIGIN.into(),
            nonce: 1,
            client_time_ms: 0,
            payload: Some(Payload::BindCustomer(pb::BindCustomer {
                asset_no: "M1".into(),
                commitment: private::commitment(&salt, &payload).to_vec(),
                collection: "bindings".into(),
                replaces: None,
            })),
        };
        private::check_payload(&body, &salt, &payload).map(|c| c.record_type)
    };
    assert_eq!(check(&good), Ok("binding"));
    let vacant = pb::CustomerBinding {
        account: String::new(),
        ..good.clone()
    };
    assert_eq!(check(&vacant), Ok("binding"), "a vacancy has no account");
    for (what, edit) in [
        (
            "account with a space",
            pb::CustomerBinding {
                account: "a b".into(),
                ..good.clone()
            },
        ),
        (
            "account with ':'",
            pb::CustomerBinding {
                account: "a:b".into(),
                ..good.clone()
            },
        ),
        (
            "account too long",
            pb::CustomerBinding {
                account: "a".repeat(129),
                ..good.clone()
            },
        ),
        (
            "blank point",
            pb::CustomerBinding {
                installation_point: "  ".into(),
                ..good.clone()
            },
        ),
        (
            "long point",
            pb::CustomerBinding {
                installation_point: "p".repeat(257),
                ..good.clone()
            },
        ),
        (
            "control in point",
            pb::CustomerBinding {
                installation_point: "a\nb".into(),
                ..good.clone()
            },
        ),
        (
            "no from",
            pb::CustomerBinding {
                from: String::new(),
                ..good.clone()
            },
        ),
        (
            "bad from",
            pb::CustomerBinding {
                from: "2026-02-29".into(),
                ..good.clone()
            },
        ),
    ] {
        assert!(
            matches!(check(&edit), Err(PrivateError::Invalid("binding", _))),
            "{what}: {:?}",
            check(&edit)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Supplier collaboration (DOMAIN.md §4.4)

const SUPPLIER2: [u8; 32] = [7; 32];

/// The world with a second supplier, a `supply` collection, and instruments made by
/// `sup`: G1, G2 owned by grid-north, S2 by grid-south; and O1 made by `sup2`.
fn supply_world() -> World {
    let mut w = World::new();
    w.signers.insert(SUPPLIER2, signer("sup2", &["supplier"]));
    w.orgs.insert("sup2".into(), OrgKind::Supplier);
    w.orgs.insert("sup3".into(), OrgKind::Supplier);
    w.collections.insert(
        "supply".into(),
        CollectionDef {
            name: "supply".into(),
            members: vec![
                "grid-north".into(),
                "grid-south".into(),
                "sup".into(),
                "sup2".into(),
            ],
            record_types: vec![
                "demand_plan".into(),
                "demand_ack".into(),
                "test_batch".into(),
            ],
            version: 1,
        },
    );
    for (asset, maker, owner) in [
        ("G1", "sup", "grid-north"),
        ("G2", "sup", "grid-north"),
        ("S2", "sup", "grid-south"),
        ("O1", "sup2", "grid-north"),
    ] {
        w.instruments.insert(asset.into(), owner.into());
        let rec = metrology::InstrumentRec {
            asset_no: asset.into(),
            kind: "INSTRUMENT_KIND_METER".into(),
            accuracy_class: "1".into(),
            manufacturer_org: maker.into(),
            model: "M".into(),
            owner_org: owner.into(),
        };
        w.records.insert(
            keys::instrument(asset),
            (1, serde_json::to_vec(&rec).unwrap()),
        );
    }
    w
}

fn demand(id: &str, suppliers: &[&str], commitment: u8) -> Payload {
    Payload::PublishDemandPlan(pb::PublishDemandPlan {
        plan_id: id.into(),
        suppliers: suppliers.iter().map(|s| s.to_string()).collect(),
        commitment: vec![commitment; 32],
        collection: "supply".into(),
    })
}

fn ack(id: &str, commitment: u8, revises: Option<u64>) -> Payload {
    Payload::AcknowledgeDemand(pb::AcknowledgeDemand {
        plan_id: id.into(),
        commitment: vec![commitment; 32],
        collection: "supply".into(),
        revises,
    })
}

fn batch(id: &str, buyer: &str, assets: &[&str], commitment: u8) -> Payload {
    Payload::PublishTestBatch(pb::PublishTestBatch {
        batch_id: id.into(),
        buyer_org: buyer.into(),
        asset_nos: assets.iter().map(|s| s.to_string()).collect(),
        commitment: vec![commitment; 32],
        collection: "supply".into(),
    })
}

fn model(id: &str, class: &str) -> Payload {
    Payload::RegisterModel(pb::RegisterModel {
        model: id.into(),
        kind: pb::InstrumentKind::Meter as i32,
        accuracy_class: class.into(),
        description: "single-phase smart meter".into(),
    })
}

#[test]
fn supply_rules() {
    let today = "2026-11-24";
    let mut w = supply_world();
    let plan = w.apply(
        w.check(GRID, demand("P1", &["sup", "sup2"], 1), today)
            .unwrap(),
    );
    w.apply(w.check(GRID, demand("P2", &["sup"], 20), today).unwrap());
    let cases: Vec<(&str, [u8; 32], Payload, Option<&str>)> = vec![
        // Models.
        ("a model", SUPPLIER, model("DDZY-1", "1"), None),
        (
            "a model of a class meters do not have",
            SUPPLIER,
            model("DDZY-2", "0.1"),
            Some("shape"),
        ),
        (
            "a model from a grid company",
            GRID,
            model("DDZY-3", "1"),
            Some("4.4/model"),
        ),
        // Demand plans come only from grid companies, to suppliers that can read them.
        ("a demand plan", GRID_ADMIN, demand("P4", &["sup"], 2), None),
        (
            "from a supplier",
            SUPPLIER,
            demand("P3", &["sup2"], 3),
            Some("4.4/demand"),
        ),
        (
            "from a lab",
            LAB,
            demand("P3", &["sup"], 3),
            Some("4.4/demand"),
        ),
        ("to nobody", GRID, demand("P3", &[], 3), Some("4.4/demand")),
        (
            "to a grid company",
            GRID,
            demand("P3", &["grid-south"], 3),
            Some("4.4/demand"),
        ),
        (
            "to an unknown org",
            GRID,
            demand("P3", &["nobody"], 3),
            Some("4.4/demand"),
        ),
        (
            "to a supplier twice",
            GRID,
            demand("P3", &["sup", "sup"], 3),
            Some("4.4/demand"),
        ),
        (
            "a supplier outside the collection",
            GRID,
            demand("P3", &["sup3"], 3),
            Some("4.4/collection"),
        ),
        (
            "an existing plan id",
            GRID,
            demand("P1", &["sup"], 3),
            Some("4.4/demand"),
        ),
        (
            "a reused commitment",
            GRID,
            demand("P3", &["sup"], 1),
            Some("shape"),
        ),
        // Acknowledgements answer a plan addressed to the signer.
        ("an acknowledgement", SUPPLIER, ack("P1", 4, None), None),
        (
            "of an unknown plan",
            SUPPLIER,
            ack("P9", 5, None),
            Some("4.4/ack"),
        ),
        (
            "of a plan addressed to it alone",
            SUPPLIER,
            ack("P2", 5, None),
            None,
        ),
        (
            "by a grid company",
            GRID,
            ack("P1", 5, None),
            Some("4.4/ack"),
        ),
        (
            "a revision of nothing",
            SUPPLIER2,
            ack("P1", 5, Some(plan)),
            Some("4.4/ack"),
        ),
        // Batches come only from the maker, for the owner of every instrument.
        (
            "a batch",
            SUPPLIER,
            batch("B1", "grid-north", &["G1", "G2"], 6),
            None,
        ),
        (
            "another maker's instrument",
            SUPPLIER,
            batch("B2", "grid-north", &["G1", "O1"], 7),
            Some("4.4/batch"),
        ),
        (
            "another buyer's instrument",
            SUPPLIER,
            batch("B2", "grid-north", &["G1", "S2"], 7),
            Some("4.4/batch"),
        ),
        (
            "an unknown instrument",
            SUPPLIER,
            batch("B2", "grid-north", &["X9"], 7),
            Some("4.4/batch"),
        ),
        (
            "an instrument twice",
            SUPPLIER,
            batch("B2", "grid-north", &["G1", "G1"], 7),
            Some("4.4/batch"),
        ),
        (
            "no instruments",
            SUPPLIER,
            batch("B2", "grid-north", &[], 7),
            Some("4.4/batch"),
        ),
        (
            "a buyer that is no grid company",
            SUPPLIER,
            batch("B2", "sup2", &["G1"], 7),
            Some("4.4/batch"),
        ),
        (
            "from a grid company",
            GRID,
            batch("B2", "grid-north", &["G1"], 7),
            Some("4.4/batch"),
        ),
    ];
    for (what, key, payload, want) in cases {
        let r = w.check(key, payload, today);
        assert_eq!(verdict(&r), want, "{what}: {r:?}");
        if let Some(rule) = want {
            assert!(RULES.contains(&rule), "{rule} is listed");
        }
    }
    // P2 is addressed to `sup` alone: `sup2` may not answer it.
    let r = w.check(SUPPLIER2, ack("P2", 8, None), today);
    assert_eq!(verdict(&r), Some("4.4/ack"));
    assert_eq!(r.unwrap_err().kind, RejectKind::PermissionDenied);

    // One current acknowledgement per supplier and plan; revisions name it.
    let first = w.apply(w.check(SUPPLIER, ack("P1", 10, None), today).unwrap());
    let again = w.check(SUPPLIER, ack("P1", 11, None), today);
    assert_eq!(verdict(&again), Some("4.4/ack"));
    assert_eq!(again.unwrap_err().kind, RejectKind::AlreadyExists);
    let stale = w.check(SUPPLIER, ack("P1", 11, Some(first + 5)), today);
    assert_eq!(verdict(&stale), Some("4.4/ack"));
    let revised = w.check(SUPPLIER, ack("P1", 11, Some(first)), today);
    assert_eq!(verdict(&revised), None, "{revised:?}");
    // The batch is indexed under each instrument, and its id is unique.
    w.apply(
        w.check(
            SUPPLIER,
            batch("B1", "grid-north", &["G1", "G2"], 12),
            today,
        )
        .unwrap(),
    );
    assert!(w.record(&keys::batch_of("G2", "B1")).is_some());
    let dup = w.check(SUPPLIER, batch("B1", "grid-north", &["G1"], 13), today);
    assert_eq!(dup.unwrap_err().kind, RejectKind::AlreadyExists);
    // A model once per supplier; another supplier may use the same name.
    w.apply(w.check(SUPPLIER, model("DDZY-1", "1"), today).unwrap());
    assert_eq!(
        w.check(SUPPLIER, model("DDZY-1", "2"), today)
            .unwrap_err()
            .kind,
        RejectKind::AlreadyExists
    );
    assert_eq!(
        verdict(&w.check(SUPPLIER2, model("DDZY-1", "1"), today)),
        None
    );
}

#[test]
fn supply_payload_checks() {
    use gridledger_core::supply::{decode_ack, decode_batch, decode_demand};
    let line = |class: &str, month: &str, q: u32| pb::DemandLine {
        kind: pb::InstrumentKind::Meter as i32,
        accuracy_class: class.into(),
        month: month.into(),
        quantity: q,
    };
    let plan = |lines: Vec<pb::DemandLine>| {
        pb::DemandPlanBody {
            lines,
            notes: String::new(),
        }
        .encode_to_vec()
    };
    assert!(decode_demand(&plan(vec![line("1", "2027-03", 500)])).is_ok());
    for (what, p, want) in [
        ("no lines", plan(vec![]), "1 to 100 lines"),
        (
            "bad class",
            plan(vec![line("0.1", "2027-03", 5)]),
            "line 1: accuracy class",
        ),
        (
            "bad month",
            plan(vec![line("1", "2027-13", 5)]),
            "line 1: month",
        ),
        (
            "day, not month",
            plan(vec![line("1", "2027-03-01", 5)]),
            "line 1: month",
        ),
        (
            "zero",
            plan(vec![line("1", "2027-03", 5), line("1", "2027-04", 0)]),
            "line 2: quantity",
        ),
    ] {
        let e = decode_demand(&p).expect_err(what);
        assert!(e.contains(want), "{what}: {e}");
    }
    let delivery = |date: &str, q: u32| pb::Delivery {
        kind: pb::InstrumentKind::Meter as i32,
        accuracy_class: "1".into(),
        quantity: q,
        date: date.into(),
    };
    let a = |d: Vec<pb::Delivery>| {
        pb::AckBody {
            production_plan: "line 3".into(),
            deliveries: d,
        }
        .encode_to_vec()
    };
    assert!(decode_ack(&a(vec![delivery("2027-03-15", 500)])).is_ok());
    assert!(
        decode_ack(&a(vec![]))
            .unwrap_err()
            .contains("1 to 100 deliveries")
    );
    assert!(
        decode_ack(&a(vec![delivery("2027-02-30", 5)]))
            .unwrap_err()
            .contains("delivery 1: date")
    );
    assert!(
        decode_ack(&a(vec![delivery("2027-03-15", 0)]))
            .unwrap_err()
            .contains("quantity")
    );

    let leaf = pb::PublishTestBatch {
        asset_nos: vec!["G1".into(), "G2".into()],
        ..Default::default()
    };
    let test = |asset: &str, day: &str, lp: &str| pb::InstrumentTest {
        asset_no: asset.into(),
        test_date: day.into(),
        passed: true,
        errors: vec![pb::LoadPointError {
            load_point: lp.into(),
            error_centi_percent: 3,
        }],
    };
    let r = |t: Vec<pb::InstrumentTest>| pb::TestBatchResults { results: t }.encode_to_vec();
    assert!(
        decode_batch(
            &r(vec![
                test("G1", "2026-10-01", "Ib PF1.0"),
                test("G2", "2026-10-01", "Imax PF0.5L")
            ]),
            &leaf
        )
        .is_ok()
    );
    for (what, p, want) in [
        (
            "missing G2",
            r(vec![test("G1", "2026-10-01", "Ib PF1.0")]),
            "no result for \"G2\"",
        ),
        (
            "unlisted",
            r(vec![
                test("G1", "2026-10-01", "Ib PF1.0"),
                test("G3", "2026-10-01", "Ib PF1.0"),
            ]),
            "\"G3\": not listed",
        ),
        (
            "twice",
            r(vec![
                test("G1", "2026-10-01", "Ib PF1.0"),
                test("G1", "2026-10-01", "Ib PF1.0"),
            ]),
            "listed twice",
        ),
        (
            "bad day",
            r(vec![
                test("G1", "2026-10-32", "Ib PF1.0"),
                test("G2", "2026-10-01", "Ib PF1.0"),
            ]),
            "G1: test_date",
        ),
        (
            "bad load point",
            r(vec![
                test("G1", "2026-10-01", "Ib PF1.0"),
                test("G2", "2026-10-01", "lots"),
            ]),
            "G2:",
        ),
    ] {
        let e = decode_batch(&p, &leaf).expect_err(what);
        assert!(e.contains(want), "{what}: {e}");
    }
}

#[test]
fn sync_cursor_known_answers() {
    use gridledger_core::supply::SyncCursor;
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../testdata/sync-cursor-v1.json")).unwrap();
    for t in v["vectors"].as_array().unwrap() {
        let origin = t["origin"].as_str().unwrap();
        let next = t["next"].as_u64().unwrap();
        let prev: [u8; 16] = hex::decode(t["prev"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let text = t["cursor"].as_str().unwrap();
        let c = SyncCursor {
            origin_tag: gridledger_core::supply::origin_tag(origin),
            next,
            prev,
        };
        assert_eq!(c.encode(), text, "{}", t["note"]);
        assert_eq!(SyncCursor::decode(text), Ok(c), "{}", t["note"]);
        // Built from a leaf, the cursor takes the first 16 bytes of its RFC 9162 hash.
        if let Some(leaf) = t["prev_leaf_hex"].as_str() {
            let h = gridledger_core::merkle::leaf_hash(&hex::decode(leaf).unwrap());
            assert_eq!(SyncCursor::new(origin, next, &h).encode(), text);
        }
    }
    // Padding, a wrong prefix, a short body and other base64 alphabets are refused.
    let good = v["vectors"][0]["cursor"].as_str().unwrap();
    for bad in [
        format!("{good}="),
        good.replacen("gls1.", "gls2.", 1),
        good[..good.len() - 4].to_string(),
        format!("{}+", &good[..good.len() - 1]),
        String::new(),
    ] {
        assert!(SyncCursor::decode(&bad).is_err(), "{bad:?}");
    }
}

/// How many instruments a factory test batch can hold within the class II payload limit
/// (docs/FORMATS.md §17 quotes the figure this prints): asset numbers like the demo's and
/// three load points each.
#[test]
fn test_batch_size_within_the_payload_limit() {
    let test = |i: usize| pb::InstrumentTest {
        asset_no: format!("GN-M{i:06}"),
        test_date: "2026-10-01".into(),
        passed: true,
        errors: ["Imax PF1.0", "Ib PF1.0", "0.1Ib PF1.0"]
            .iter()
            .map(|lp| pb::LoadPointError {
                load_point: lp.to_string(),
                error_centi_percent: -15,
            })
            .collect(),
    };
    let size = |n: usize| {
        pb::TestBatchResults {
            results: (0..n).map(test).collect(),
        }
        .encoded_len()
    };
    let fits = (1..=gridledger_core::supply::MAX_BATCH)
        .take_while(|n| size(*n) <= private::MAX_PAYLOAD)
        .last()
        .unwrap();
    eprintln!(
        "a batch of {fits} instruments with three load points each fits in {} bytes ({} bytes)",
        private::MAX_PAYLOAD,
        size(fits)
    );
    assert!(fits >= 500, "{fits}");
    assert!(
        fits < gridledger_core::supply::MAX_BATCH,
        "the payload limit is the binding one"
    );
}
