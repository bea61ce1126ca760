//! The demo consortium (DOMAIN.md §6), generated from a fixed seed so every new user
//! sees the same living system, and the benchmarks can grow it.

use ed25519_dalek::SigningKey;
use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::tx;
use prost::Message as _;
use sha2::{Digest, Sha256};

/// Fixed seed of the demo data.
pub const DEMO_SEED: &str = "gridledger-demo-v1";

/// A demo organisation.
#[derive(Debug, Clone)]
pub struct DemoOrg {
    /// Org id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Kind.
    pub kind: pb::OrgKind,
    /// Roles of its system key.
    pub roles: &'static [&'static str],
}

/// The consortium: a regulator, two grid companies, two institutions, three suppliers
/// and a market operator.
pub const ORGS: &[DemoOrg] = &[
    DemoOrg {
        id: "reg-metrology",
        name: "State Metrology Authority",
        kind: pb::OrgKind::Regulator,
        roles: &["admin", "regulator", "auditor"],
    },
    DemoOrg {
        id: "grid-north",
        name: "North Provincial Grid Co.",
        kind: pb::OrgKind::GridCompany,
        roles: &["admin", "operator"],
    },
    DemoOrg {
        id: "grid-south",
        name: "South Provincial Grid Co.",
        kind: pb::OrgKind::GridCompany,
        roles: &["admin", "operator"],
    },
    DemoOrg {
        id: "inst-nmc",
        name: "North Metrology Centre",
        kind: pb::OrgKind::Institution,
        roles: &["admin", "verifier"],
    },
    DemoOrg {
        id: "inst-lab2",
        name: "Accredited Meter Lab 2",
        kind: pb::OrgKind::Institution,
        roles: &["admin", "verifier"],
    },
    DemoOrg {
        id: "sup-alpha",
        name: "Alpha Meters Ltd.",
        kind: pb::OrgKind::Supplier,
        roles: &["admin", "supplier"],
    },
    DemoOrg {
        id: "sup-beta",
        name: "Beta Instruments",
        kind: pb::OrgKind::Supplier,
        roles: &["admin", "supplier"],
    },
    DemoOrg {
        id: "sup-gamma",
        name: "Gamma Transformers",
        kind: pb::OrgKind::Supplier,
        roles: &["admin", "supplier"],
    },
    DemoOrg {
        id: "mkt-px",
        name: "Regional Power Exchange",
        kind: pb::OrgKind::MarketOperator,
        roles: &["admin", "market"],
    },
];

/// The deterministic system key of a demo org.
pub fn org_key(org: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(format!("{DEMO_SEED}/{org}/system").as_bytes()).into();
    SigningKey::from_bytes(&seed)
}

/// A small deterministic PRNG (SplitMix64): demo data must not depend on a crate's
/// generator algorithm staying the same across versions.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn body(origin: &str, nonce: u64, payload: Payload) -> pb::TxBody {
    // Demo transactions carry a fixed client time so the demo ledger is identical on
    // every machine (the block timestamps still come from the node).
    pb::TxBody {
        origin: origin.to_string(),
        nonce,
        client_time_ms: 1_767_225_600_000,
        payload: Some(payload),
    }
}

/// The collection of the demo's readings.
pub const READINGS_COLLECTION: &str = "readings";
/// The collection of the demo's customer bindings.
pub const BINDINGS_COLLECTION: &str = "bindings";
/// The collection of the demo's supplier collaboration records.
pub const SUPPLY_COLLECTION: &str = "supply";

/// One transaction of the seed: its leaf and, for class II, its private payload.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Encoded SignedTx.
    pub leaf: Vec<u8>,
    /// Salt and payload of a class II transaction (sent beside the leaf).
    pub private: Option<gridledger_proto::v1::PrivatePayload>,
}

impl From<Vec<u8>> for Submission {
    fn from(leaf: Vec<u8>) -> Self {
        Self {
            leaf,
            private: None,
        }
    }
}

/// Phases of the seed; each phase depends on the ones before it being committed.
///
/// `client_key` is the dev CLI's signing key; it is registered as an operator of
/// grid-north so `gridledger load` can register instruments.
///
/// `token_keys` are the node's token keys per hosted org; each org's admin registers its
/// key with role `token-issuer` so the node can issue JWTs for that org's users.
pub fn seed(
    origin: &str,
    client_key: &[u8; 32],
    token_keys: &[(String, [u8; 32])],
    meters: usize,
    days: usize,
) -> Vec<Vec<Submission>> {
    let reg = org_key(ORGS[0].id);
    let mut nonce = 0u64;
    let mut next = || {
        nonce += 1;
        nonce
    };
    let enc = |t: pb::SignedTx| t.encode_to_vec();

    // Phase 1 (genesis, in order): the regulator registers itself, then everyone else.
    let mut genesis = vec![
        enc(tx::sign(
            &reg,
            &body(
                origin,
                next(),
                Payload::RegisterOrg(pb::RegisterOrg {
                    org_id: ORGS[0].id.into(),
                    name: ORGS[0].name.into(),
                    kind: ORGS[0].kind as i32,
                }),
            ),
        )),
        enc(tx::sign(
            &reg,
            &body(
                origin,
                next(),
                Payload::RegisterSigner(pb::RegisterSigner {
                    public_key: reg.verifying_key().to_bytes().to_vec(),
                    org_id: ORGS[0].id.into(),
                    roles: ORGS[0].roles.iter().map(|r| r.to_string()).collect(),
                    label: "regulator system".into(),
                }),
            ),
        )),
    ];
    for o in &ORGS[1..] {
        genesis.push(enc(tx::sign(
            &reg,
            &body(
                origin,
                next(),
                Payload::RegisterOrg(pb::RegisterOrg {
                    org_id: o.id.into(),
                    name: o.name.into(),
                    kind: o.kind as i32,
                }),
            ),
        )));
        genesis.push(enc(tx::sign(
            &reg,
            &body(
                origin,
                next(),
                Payload::RegisterSigner(pb::RegisterSigner {
                    public_key: org_key(o.id).verifying_key().to_bytes().to_vec(),
                    org_id: o.id.into(),
                    roles: o.roles.iter().map(|r| r.to_string()).collect(),
                    label: format!("{} system", o.name),
                }),
            ),
        )));
    }

    genesis.push(enc(tx::sign(
        &reg,
        &body(
            origin,
            next(),
            Payload::RegisterSigner(pb::RegisterSigner {
                public_key: client_key.to_vec(),
                org_id: "grid-north".into(),
                roles: vec!["operator".into()],
                label: "dev CLI".into(),
            }),
        ),
    )));
    // Each org's own admin appoints its token key (rule 4.1/token-key).
    for (org, key) in token_keys {
        genesis.push(enc(tx::sign(
            &org_key(org),
            &body(
                origin,
                next(),
                Payload::RegisterSigner(pb::RegisterSigner {
                    public_key: key.to_vec(),
                    org_id: org.clone(),
                    roles: vec![gridledger_core::contract::TOKEN_ISSUER.into()],
                    label: "dev node token key".into(),
                }),
            ),
        )));
    }

    // The class II collections (DOMAIN.md §2.8), each proposed and approved by the
    // regulator (rule 4.5):
    // - readings: the meters' owners and the market operator (settlement);
    // - bindings: only the grid companies hold who lives where; the market operator
    //   settles without it;
    // - supply: the grid companies and the suppliers (commercially confidential).
    let collections: [(&str, &str, &[&str], &[&str]); 3] = [
        (
            READINGS_COLLECTION,
            "readings are class II personal data",
            &["grid-north", "grid-south", "mkt-px"],
            &["reading"],
        ),
        (
            BINDINGS_COLLECTION,
            "customer bindings are class II personal data",
            &["grid-north", "grid-south"],
            &["binding"],
        ),
        (
            SUPPLY_COLLECTION,
            "supplier collaboration records are commercially confidential",
            &[
                "grid-north",
                "grid-south",
                "sup-alpha",
                "sup-beta",
                "sup-gamma",
            ],
            &["demand_plan", "demand_ack", "test_batch"],
        ),
    ];
    for (name, reason, members, types) in collections {
        let proposal_id = format!("collection-{name}");
        genesis.push(enc(tx::sign(
            &reg,
            &body(
                origin,
                next(),
                Payload::ProposeChange(pb::ProposeChange {
                    proposal_id: proposal_id.clone(),
                    reason: reason.into(),
                    change: Some(pb::propose_change::Change::DefineCollection(
                        pb::DefineCollection {
                            name: name.into(),
                            member_orgs: members.iter().map(|m| m.to_string()).collect(),
                            record_types: types.iter().map(|t| t.to_string()).collect(),
                        },
                    )),
                }),
            ),
        )));
        genesis.push(enc(tx::sign(
            &reg,
            &body(
                origin,
                next(),
                Payload::CastVote(pb::CastVote {
                    proposal_id,
                    approve: true,
                }),
            ),
        )));
    }

    // Phases 2-4: qualifications and the traceability chain (DOMAIN.md §2.1-2.2).
    let [quals, cal_ref, accept_ref, cal_std, accept_std] = metrology_setup(origin, &mut next);

    let mut rng = Rng(0x5EED);
    let grids = ["grid-north", "grid-south"];
    let suppliers = ["sup-alpha", "sup-beta", "sup-gamma"];
    let classes = ["0.2S", "0.5S", "1", "2"];
    let mut instruments = Vec::with_capacity(meters);
    let mut certificates = Vec::with_capacity(meters);
    let mut readings = Vec::with_capacity(meters * days);
    let mut private = Vec::with_capacity(meters * days);
    for i in 0..meters {
        let owner = grids[i % 2];
        let okey = org_key(owner);
        let asset = format!("{}-M{:06}", if i % 2 == 0 { "GN" } else { "GS" }, i);
        let class = classes[(rng.next() % 4) as usize];
        instruments.push(enc(tx::sign(
            &okey,
            &body(
                origin,
                rng.next(),
                Payload::RegisterInstrument(pb::RegisterInstrument {
                    asset_no: asset.clone(),
                    serial_no: format!("SN{:010}", rng.next() % 10_000_000_000),
                    manufacturer_org: suppliers[i % 3].into(),
                    model: format!("DDZY-{}", 100 + i % 7),
                    kind: pb::InstrumentKind::Meter as i32,
                    accuracy_class: class.into(),
                    ratings: "3x220/380V 1.5(6)A 1200imp/kWh".into(),
                    owner_org: owner.into(),
                }),
            ),
        )));
        // Every tenth meter is an old one, verified in 2018 for eight years: its
        // periodic re-verification falls due during 2026 (some overdue by now, some
        // due soon), so the supervision view has work in it.
        let old = i % 10 == 0;
        // Lab 2 is authorised for classes 1 and 2 only, from 2024 (see
        // `metrology_setup`).
        let inst = if !old && i % 3 == 0 && matches!(class, "1" | "2") {
            "inst-lab2"
        } else {
            "inst-nmc"
        };
        // New meters were verified January to November 2026 (none after the demo's
        // "now").
        let month = if old { 1 + (i / 10) % 12 } else { 1 + (i % 11) };
        let (year, until_year) = if old { (2018, 2026) } else { (2026, 2034) };
        certificates.push(enc(tx::sign(
            &org_key(inst),
            &body(
                origin,
                rng.next(),
                Payload::IssueCertificate(pb::IssueCertificate {
                    cert_no: format!("VC-{year}-{i:06}"),
                    asset_no: asset.clone(),
                    institution_org: inst.into(),
                    kind: pb::CertificateKind::InitialVerification as i32,
                    verifier: format!("verifier-{}", i % 5),
                    checker: format!("checker-{}", i % 4),
                    equipment: vec![format!("{}-STD-01", inst.to_uppercase())],
                    test_date: format!("{year}-{month:02}-10"),
                    valid_until: format!("{until_year}-{month:02}-09"),
                    passed: true,
                    errors: ["Imax PF1.0", "Ib PF1.0", "0.1Ib PF1.0", "Ib PF0.5L"]
                        .iter()
                        .map(|lp| pb::LoadPointError {
                            load_point: lp.to_string(),
                            error_centi_percent: (rng.next() % 41) as i32 - 20,
                        })
                        .collect(),
                    temperature_deci_c: 200 + (rng.next() % 30) as i32,
                    humidity_deci_pct: 450 + (rng.next() % 100) as i32,
                    dispute_id: String::new(),
                }),
            ),
        )));
        let mut register = rng.next() % 5_000_000;
        let mut register_export = 0u64;
        for d in 0..days {
            let import: Vec<u64> = (0..96).map(|_| rng.next() % 400).collect();
            let export: Vec<u64> = (0..96)
                .map(|_| {
                    if rng.next().is_multiple_of(5) {
                        rng.next() % 50
                    } else {
                        0
                    }
                })
                .collect();
            register += import.iter().sum::<u64>();
            register_export += export.iter().sum::<u64>();
            let values = pb::ReadingValues {
                import_wh: import,
                export_wh: export,
                register_import_wh: register,
                register_export_wh: register_export,
            }
            .encode_to_vec();
            let mut salt = [0u8; 32];
            for c in salt.chunks_mut(8) {
                c.copy_from_slice(&rng.next().to_le_bytes());
            }
            let commitment = gridledger_core::private::commitment(&salt, &values);
            private.push((
                readings.len(),
                gridledger_proto::v1::PrivatePayload {
                    salt: salt.to_vec(),
                    payload: values,
                },
            ));
            readings.push(enc(tx::sign(
                &okey,
                &body(
                    origin,
                    rng.next(),
                    Payload::RecordReading(pb::RecordReading {
                        asset_no: asset.clone(),
                        day: format!("2026-11-{:02}", 1 + d),
                        corrects: None,
                        commitment: commitment.to_vec(),
                        collection: READINGS_COLLECTION.into(),
                    }),
                ),
            )));
        }
    }
    // Periodic re-verification plans (DOMAIN.md §2.5) for the old meters, due when
    // their 2018 certificates expire; and the working standards' recalibration.
    let mut plans = Vec::new();
    for i in (0..meters).step_by(10) {
        let owner = grids[i % 2];
        let asset = format!("{}-M{:06}", if i % 2 == 0 { "GN" } else { "GS" }, i);
        let due = format!("2026-{:02}-09", 1 + (i / 10) % 12);
        plans.push(enc(tx::sign(
            &org_key(owner),
            &body(
                origin,
                next(),
                Payload::SchedulePlan(pb::SchedulePlan {
                    plan_id: format!("PLAN-{asset}"),
                    subject_kind: pb::PlanSubject::Instrument as i32,
                    subject_id: asset,
                    task: "periodic verification".into(),
                    due_date: due,
                }),
            ),
        )));
    }
    for inst in ["inst-nmc", "inst-lab2"] {
        plans.push(enc(tx::sign(
            &org_key(inst),
            &body(
                origin,
                next(),
                Payload::SchedulePlan(pb::SchedulePlan {
                    plan_id: format!("PLAN-{}-STD-01", inst.to_uppercase()),
                    subject_kind: pb::PlanSubject::Equipment as i32,
                    subject_id: format!("{}-STD-01", inst.to_uppercase()),
                    task: "calibration".into(),
                    due_date: "2026-12-31".into(),
                }),
            ),
        )));
    }
    let mut readings: Vec<Submission> = readings.into_iter().map(Submission::from).collect();
    for (i, p) in private {
        readings[i].private = Some(p);
    }
    // Customer bindings ride in the readings phase (both need only the instruments), and
    // so do the models, a demand plan and a test batch.
    readings.extend(bindings(origin, meters));
    readings.extend(supply(origin, meters));
    let plain = |phase: Phase| phase.into_iter().map(Submission::from).collect::<Vec<_>>();
    vec![
        plain(genesis),
        plain(quals),
        plain(cal_ref),
        plain(accept_ref),
        plain(cal_std),
        plain(accept_std),
        plain(instruments),
        plain(certificates),
        plain(plans),
        readings,
        // Answers need the plan committed: sup-alpha acknowledges it.
        vec![acknowledgement(origin)],
    ]
}

/// sup-alpha's acknowledgement of `DP-GN-2027-Q1`: a production plan and deliveries.
fn acknowledgement(origin: &str) -> Submission {
    let mut rng = Rng(0xAC4);
    let ack = pb::AckBody {
        production_plan: "line 2 from December; 400 units a week".into(),
        deliveries: [
            ("2027-01-10", 1200),
            ("2027-02-07", 800),
            ("2027-03-07", 800),
        ]
        .iter()
        .map(|(date, q)| pb::Delivery {
            kind: pb::InstrumentKind::Meter as i32,
            accuracy_class: "1".into(),
            quantity: *q,
            date: date.to_string(),
        })
        .collect(),
    };
    private_tx(origin, "sup-alpha", &mut rng, ack.encode_to_vec(), |c| {
        Payload::AcknowledgeDemand(pb::AcknowledgeDemand {
            plan_id: "DP-GN-2027-Q1".into(),
            commitment: c,
            collection: SUPPLY_COLLECTION.into(),
            revises: None,
        })
    })
}

/// The demo's customer bindings (class II): every meter bound to a customer account at
/// an installation point, the demo residents' meters to their accounts. A separate random
/// stream, so adding bindings left every other seeded value as it was.
fn bindings(origin: &str, meters: usize) -> Vec<Submission> {
    let residents = accounts(meters, String::new);
    let mut rng = Rng(0xB1D5);
    let streets = [
        "Elm Street",
        "Mill Lane",
        "Station Road",
        "Harbour Way",
        "Church Row",
    ];
    (0..meters)
        .map(|i| {
            let owner = if i % 2 == 0 {
                "grid-north"
            } else {
                "grid-south"
            };
            let asset = format!("{}-M{:06}", if i % 2 == 0 { "GN" } else { "GS" }, i);
            let account = residents
                .iter()
                .find(|a| a.meters.contains(&asset))
                .map(|a| a.username.clone())
                .unwrap_or_else(|| format!("cust-{i:06}"));
            let town = if i % 2 == 0 { "Northtown" } else { "Southport" };
            let value = pb::CustomerBinding {
                account,
                installation_point: format!(
                    "MP-{asset}, {} {}, {town}",
                    1 + rng.next() % 200,
                    streets[(rng.next() % 5) as usize]
                ),
                from: format!(
                    "20{:02}-{:02}-01",
                    15 + rng.next() % 11,
                    1 + rng.next() % 12
                ),
            }
            .encode_to_vec();
            let mut salt = [0u8; 32];
            for c in salt.chunks_mut(8) {
                c.copy_from_slice(&rng.next().to_le_bytes());
            }
            let commitment = gridledger_core::private::commitment(&salt, &value);
            Submission {
                leaf: tx::sign(
                    &org_key(owner),
                    &body(
                        origin,
                        rng.next(),
                        Payload::BindCustomer(pb::BindCustomer {
                            asset_no: asset,
                            commitment: commitment.to_vec(),
                            collection: BINDINGS_COLLECTION.into(),
                            replaces: None,
                        }),
                    ),
                )
                .encode_to_vec(),
                private: Some(gridledger_proto::v1::PrivatePayload {
                    salt: salt.to_vec(),
                    payload: value,
                }),
            }
        })
        .collect()
}

/// A class II submission of the demo: the transaction with a fresh salt from `rng`.
fn private_tx(
    origin: &str,
    org: &str,
    rng: &mut Rng,
    value: Vec<u8>,
    make: impl FnOnce(Vec<u8>) -> Payload,
) -> Submission {
    let mut salt = [0u8; 32];
    for c in salt.chunks_mut(8) {
        c.copy_from_slice(&rng.next().to_le_bytes());
    }
    let commitment = gridledger_core::private::commitment(&salt, &value).to_vec();
    Submission {
        leaf: tx::sign(&org_key(org), &body(origin, rng.next(), make(commitment))).encode_to_vec(),
        private: Some(gridledger_proto::v1::PrivatePayload {
            salt: salt.to_vec(),
            payload: value,
        }),
    }
}

/// The demo's supplier collaboration: every supplier's models, grid-north's demand plan
/// `DP-GN-2027-Q1` to sup-alpha and sup-beta, and sup-alpha's factory test batch
/// `FTB-ALPHA-0001` for the grid-north meters it made (those that exist for `meters`).
/// Its own random stream, like the bindings.
fn supply(origin: &str, meters: usize) -> Vec<Submission> {
    let mut rng = Rng(0x5u64 << 40 | 0x5E11);
    let mut out = Vec::new();
    for (i, s) in ["sup-alpha", "sup-beta", "sup-gamma"].iter().enumerate() {
        for (m, class) in [(100 + i, "1"), (103 + i, "2")] {
            out.push(Submission::from(
                tx::sign(
                    &org_key(s),
                    &body(
                        origin,
                        rng.next(),
                        Payload::RegisterModel(pb::RegisterModel {
                            model: format!("DDZY-{m}"),
                            kind: pb::InstrumentKind::Meter as i32,
                            accuracy_class: class.into(),
                            description: format!("single-phase smart meter, class {class}"),
                        }),
                    ),
                )
                .encode_to_vec(),
            ));
        }
    }
    let plan = pb::DemandPlanBody {
        lines: [("2027-01", 1200), ("2027-02", 800), ("2027-03", 800)]
            .iter()
            .map(|(month, q)| pb::DemandLine {
                kind: pb::InstrumentKind::Meter as i32,
                accuracy_class: "1".into(),
                month: month.to_string(),
                quantity: *q,
            })
            .collect(),
        notes: "first-quarter rollout, northern districts".into(),
    };
    out.push(private_tx(
        origin,
        "grid-north",
        &mut rng,
        plan.encode_to_vec(),
        |c| {
            Payload::PublishDemandPlan(pb::PublishDemandPlan {
                plan_id: "DP-GN-2027-Q1".into(),
                suppliers: vec!["sup-alpha".into(), "sup-beta".into()],
                commitment: c,
                collection: SUPPLY_COLLECTION.into(),
            })
        },
    ));
    // sup-alpha made the meters i with i % 3 == 0; grid-north owns the even ones.
    let assets: Vec<String> = (0..meters)
        .filter(|i| i % 6 == 0)
        .take(20)
        .map(|i| format!("GN-M{i:06}"))
        .collect();
    if !assets.is_empty() {
        let results = pb::TestBatchResults {
            results: assets
                .iter()
                .map(|a| pb::InstrumentTest {
                    asset_no: a.clone(),
                    test_date: "2025-12-01".into(),
                    passed: true,
                    errors: ["Imax PF1.0", "Ib PF1.0", "0.1Ib PF1.0"]
                        .iter()
                        .map(|lp| pb::LoadPointError {
                            load_point: lp.to_string(),
                            error_centi_percent: (rng.next() % 31) as i32 - 15,
                        })
                        .collect(),
                })
                .collect(),
        };
        out.push(private_tx(
            origin,
            "sup-alpha",
            &mut rng,
            results.encode_to_vec(),
            |c| {
                Payload::PublishTestBatch(pb::PublishTestBatch {
                    batch_id: "FTB-ALPHA-0001".into(),
                    buyer_org: "grid-north".into(),
                    asset_nos: assets.clone(),
                    commitment: c,
                    collection: SUPPLY_COLLECTION.into(),
                })
            },
        ));
    }
    out
}

/// The demo's qualifications and traceability chain, as five phases (each depends on
/// the one before): the regulator's national standard and the institutions'
/// authorisations, accreditations, personnel certificates and equipment; the North
/// Metrology Centre's reference standard calibrated against the national standard; and
/// both institutions' working standards calibrated against that reference.
///
/// Chain: `<INST>-STD-01` (0.05 %) ← `INST-NMC-REF-01` (0.01 %) ← `NATIONAL-EM-01`
/// (0.002 %), with the reference's and the centre's standard's 2017 calibrations for the
/// old meters verified in 2018. Lab 2 is authorised for meter classes 1 and 2 from 2024;
/// the centre for every meter and transformer class from 2017.
fn metrology_setup(origin: &str, next: &mut impl FnMut() -> u64) -> [Phase; 5] {
    let reg = org_key(ORGS[0].id);
    let mut sign = |key: &SigningKey, payload: Payload| {
        tx::sign(key, &body(origin, next(), payload)).encode_to_vec()
    };
    let all_meters = gridledger_core::metrology::METER_CLASSES;
    let mut quals = vec![sign(
        &reg,
        Payload::RegisterEquipment(pb::RegisterEquipment {
            equipment_no: "NATIONAL-EM-01".into(),
            kind: pb::EquipmentKind::NationalStandard as i32,
            accuracy: "0.002".into(),
            range: "3x57.7-380V 0.01-100A".into(),
            owner_org: ORGS[0].id.into(),
            valid_until: "2035-12-31".into(),
        }),
    )];
    let scope = |kind: pb::InstrumentKind, classes: &[&str]| pb::AuthorisationScope {
        kind: kind as i32,
        accuracy_classes: classes.iter().map(|c| c.to_string()).collect(),
    };
    for (inst, n, meter_classes, transformers, since) in [
        ("inst-nmc", 1, all_meters, true, "2017-01-01"),
        ("inst-lab2", 2, &["1", "2"][..], false, "2024-01-01"),
    ] {
        let mut sc = vec![scope(pb::InstrumentKind::Meter, meter_classes)];
        if transformers {
            sc.push(scope(
                pb::InstrumentKind::CurrentTransformer,
                gridledger_core::metrology::CT_CLASSES,
            ));
            sc.push(scope(
                pb::InstrumentKind::VoltageTransformer,
                gridledger_core::metrology::VT_CLASSES,
            ));
        }
        quals.push(sign(
            &reg,
            Payload::GrantAuthorisation(pb::GrantAuthorisation {
                number: format!("AUTH-{}-{n:03}", &since[..4]),
                institution_org: inst.into(),
                scope: sc,
                valid_from: since.into(),
                valid_until: "2028-12-31".into(),
            }),
        ));
        quals.push(sign(
            &reg,
            Payload::RecordAccreditation(pb::RecordAccreditation {
                number: format!("L{:04}", 1000 + n),
                institution_org: inst.into(),
                accreditation_body: "National Accreditation Service".into(),
                standard: "ISO/IEC 17025".into(),
                valid_until: "2027-06-30".into(),
            }),
        ));
        for v in 0..5 {
            quals.push(sign(
                &reg,
                Payload::RegisterPersonnelCertificate(pb::RegisterPersonnelCertificate {
                    number: format!("PC-{n}-{v:03}"),
                    institution_org: inst.into(),
                    holder: format!("verifier-{v}"),
                    scope: vec![
                        pb::InstrumentKind::Meter as i32,
                        pb::InstrumentKind::CurrentTransformer as i32,
                        pb::InstrumentKind::VoltageTransformer as i32,
                    ],
                    valid_from: since.into(),
                    valid_until: "2029-12-31".into(),
                }),
            ));
        }
        quals.push(sign(
            &org_key(inst),
            Payload::RegisterEquipment(pb::RegisterEquipment {
                equipment_no: format!("{}-STD-01", inst.to_uppercase()),
                kind: pb::EquipmentKind::TestBench as i32,
                accuracy: "0.05".into(),
                range: "3x57.7-380V 0.05-100A".into(),
                owner_org: inst.into(),
                valid_until: String::new(),
            }),
        ));
    }
    quals.push(sign(
        &org_key("inst-nmc"),
        Payload::RegisterEquipment(pb::RegisterEquipment {
            equipment_no: "INST-NMC-REF-01".into(),
            kind: pb::EquipmentKind::StandardMeter as i32,
            accuracy: "0.01".into(),
            range: "3x57.7-380V 0.01-100A".into(),
            owner_org: "inst-nmc".into(),
            valid_until: String::new(),
        }),
    ));
    // The reference's calibrations against the national standard: the current one, and
    // the one in force when the old meters were verified in 2018.
    let cal_ref = [
        ("CAL-NAT-2025-0001", "2025-06-02", "2027-06-01"),
        ("CAL-NAT-2017-0001", "2017-06-01", "2019-05-31"),
    ]
    .iter()
    .map(|(no, date, until)| {
        sign(
            &reg,
            Payload::IssueCalibration(pb::IssueCalibration {
                cert_no: (*no).into(),
                equipment_no: "INST-NMC-REF-01".into(),
                calibrating_equipment: "NATIONAL-EM-01".into(),
                institution_org: ORGS[0].id.into(),
                date: (*date).into(),
                uncertainty: "0.003".into(),
                valid_until: (*until).into(),
            }),
        )
    })
    .collect();
    let cal_std = [
        ("CAL-NMC-2025-0001", "inst-nmc", "2025-12-15", "2026-12-31"),
        ("CAL-NMC-2025-0002", "inst-lab2", "2025-12-15", "2026-12-31"),
        ("CAL-NMC-2017-0001", "inst-nmc", "2017-12-01", "2018-12-31"),
    ]
    .iter()
    .map(|(no, inst, date, until)| {
        sign(
            &org_key("inst-nmc"),
            Payload::IssueCalibration(pb::IssueCalibration {
                cert_no: (*no).into(),
                equipment_no: format!("{}-STD-01", inst.to_uppercase()),
                calibrating_equipment: "INST-NMC-REF-01".into(),
                institution_org: "inst-nmc".into(),
                date: (*date).into(),
                uncertainty: "0.012".into(),
                valid_until: (*until).into(),
            }),
        )
    })
    .collect();
    // Each owner accepts the calibrations another org issued for its equipment (rule
    // 4.3/acceptance): the centre its reference's, lab 2 its bench's.
    let mut accept = |key: &SigningKey, cert: &str| {
        sign(
            key,
            Payload::AcceptCalibration(pb::AcceptCalibration {
                cert_no: cert.into(),
            }),
        )
    };
    let accept_ref = vec![
        accept(&org_key("inst-nmc"), "CAL-NAT-2025-0001"),
        accept(&org_key("inst-nmc"), "CAL-NAT-2017-0001"),
    ];
    let accept_std = vec![accept(&org_key("inst-lab2"), "CAL-NMC-2025-0002")];
    [quals, cal_ref, accept_ref, cal_std, accept_std]
}

/// One phase of the seed: encoded `SignedTx` leaves that may be committed in any order.
type Phase = Vec<Vec<u8>>;

/// A demo login account.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoAccount {
    /// Login name.
    pub username: String,
    /// Password (random per dev directory).
    pub password: String,
    /// Org.
    pub org: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Bound meters (residents).
    pub meters: Vec<String>,
}

/// The demo accounts: every role, and residents bound to meters of both grid companies
/// (only meters that exist for `meters` seeded instruments).
pub fn accounts(meters: usize, mut password: impl FnMut() -> String) -> Vec<DemoAccount> {
    let m = |i: usize| {
        (i < meters).then(|| {
            format!(
                "{}-M{:06}",
                if i.is_multiple_of(2) { "GN" } else { "GS" },
                i
            )
        })
    };
    let spec: &[(&str, &str, &[&str], &[usize])] = &[
        ("reg-admin", "reg-metrology", &["admin"], &[]),
        ("regulator", "reg-metrology", &["regulator"], &[]),
        ("auditor", "reg-metrology", &["auditor"], &[]),
        ("gn-admin", "grid-north", &["admin"], &[]),
        ("gn-operator", "grid-north", &["operator"], &[]),
        ("gs-operator", "grid-south", &["operator"], &[]),
        ("nmc-verifier", "inst-nmc", &["verifier"], &[]),
        ("alpha-supplier", "sup-alpha", &["supplier"], &[]),
        ("px-market", "mkt-px", &["market"], &[]),
        ("resident-1", "grid-north", &["resident"], &[0, 2]),
        ("resident-2", "grid-north", &["resident"], &[4]),
        ("resident-3", "grid-south", &["resident"], &[1]),
    ];
    spec.iter()
        .map(|(u, org, roles, ms)| DemoAccount {
            username: u.to_string(),
            password: password(),
            org: org.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            meters: ms.iter().filter_map(|&i| m(i)).collect(),
        })
        .collect()
}
