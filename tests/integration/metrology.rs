//! The metrology views on the demo consortium, over HTTPS as a client would use them:
//! the settlement check with receipts the client library verifies, the traceability
//! chain, the institution's credit view, plans, a resident's dispute ending in a
//! returned-meter certificate, and the bad inputs each route must refuse clearly.

use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::receipt::Receipt;
use gridledger_node::demo::org_key;
use gridledger_proto::v1 as gpb;
use gridledger_tests::{DevNode, Port, table_rows};
use prost::Message as _;
use serde_json::Value;

use crate::util::DEV_ORIGIN;

fn json(b: &str) -> Value {
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"))
}

/// GET as `token` on the public listener; (status, JSON body).
async fn get(n: &DevNode, path: &str, token: Option<&str>) -> (u16, Value) {
    let (s, b) = n.http(Port::Public, "GET", path, token, None).await;
    (s, json(&b))
}

/// Verifies a row's receipt under the node's trust policy and returns the payload of
/// the leaf it proves.
fn verified_payload(n: &DevNode, row: &serde_json::Map<String, Value>) -> Payload {
    let text = row["receipt"].as_str().expect("receipt requested");
    let policy = gridledger_client::profile::load_policy(&n.trust()).unwrap();
    let v = Receipt::parse(text).unwrap().verify(&policy).unwrap();
    assert_eq!(
        Some(v.index),
        row["leaf_index"].as_u64(),
        "receipt for the row's leaf"
    );
    let tx = pb::SignedTx::decode(v.leaf.as_slice()).unwrap();
    pb::TxBody::decode(tx.body.as_slice())
        .unwrap()
        .payload
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn settlement_check_answers_with_receipts_the_client_verifies() {
    let n = DevNode::start(20);
    let market_access = n.login("px-market").await;
    let meter = "GN-M000002";
    // Readings are class II: the market operator's access token is not enough; the
    // policy grants it dynamic tokens for the meters it settles.
    let (s, v) = get(
        &n,
        &format!("/v1/settlement/check?meter={meter}&from=2026-11-01&to=2026-11-01"),
        Some(&market_access),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(v.to_string().contains("dynamic token"), "{v}");
    let market = n
        .grant(&market_access, &[format!("readings:{meter}")])
        .await;
    let market_old = n
        .grant(&market_access, &["readings:GN-M000000".to_string()])
        .await;
    // The demo meter was verified on 2026-03-10, valid until 2034; one reading day.
    let (s, v) = get(
        &n,
        &format!("/v1/settlement/check?meter={meter}&from=2026-11-01&to=2026-11-01&receipt=true"),
        Some(&market),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["summary"]["certified_throughout"], true, "{v}");
    assert_eq!(v["summary"]["uncovered"], serde_json::json!([]));
    let readings = table_rows(&v, "readings");
    assert_eq!(readings.len(), 1, "{v}");
    match verified_payload(&n, &readings[0]) {
        Payload::RecordReading(r) => {
            assert_eq!((r.asset_no.as_str(), r.day.as_str()), (meter, "2026-11-01"));
            // Class II: the leaf holds only the commitment; the row's salt and payload
            // must hash to it, and the total shown must be the committed payload's.
            let salt: [u8; 32] = hex::decode(readings[0]["salt"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let payload = hex::decode(readings[0]["payload"].as_str().unwrap()).unwrap();
            assert_eq!(
                gridledger_core::private::commitment(&salt, &payload).to_vec(),
                r.commitment,
                "the row's payload is the committed one"
            );
            let values = gridledger_core::private::decode_reading(&payload).unwrap();
            assert_eq!(
                Some(values.import_wh.iter().sum::<u64>()),
                readings[0]["import_wh"].as_u64(),
                "the table's total is the committed payload's"
            );
        }
        other => panic!("the reading row proves {other:?}"),
    }
    let certs = table_rows(&v, "certificates");
    assert_eq!(certs.len(), 1, "{v}");
    match verified_payload(&n, &certs[0]) {
        Payload::IssueCertificate(c) => {
            assert_eq!(c.asset_no, meter);
            assert!(c.passed);
            assert!(c.test_date.as_str() <= "2026-11-01" && c.valid_until.as_str() >= "2026-11-01");
        }
        other => panic!("the certificate row proves {other:?}"),
    }
    // A period that starts before the certificate: the uncovered days are named.
    let (s, v) = get(
        &n,
        &format!("/v1/settlement/check?meter={meter}&from=2026-03-01&to=2026-03-12"),
        Some(&market),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["summary"]["certified_throughout"], false);
    assert_eq!(
        v["summary"]["uncovered"],
        serde_json::json!([{"from": "2026-03-01", "to": "2026-03-09"}])
    );
    // An old meter whose 2018 certificate expired on 2026-01-09 and was not renewed.
    let (s, v) = get(
        &n,
        "/v1/settlement/check?meter=GN-M000000&from=2026-01-01&to=2026-01-31",
        Some(&market_old),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["summary"]["uncovered"],
        serde_json::json!([{"from": "2026-01-10", "to": "2026-01-31"}])
    );

    // Residents may check their own meter, not someone else's; anonymous callers not at all.
    let resident = n.login("resident-1").await;
    let own = &n.account("resident-1").meters[1];
    let own_grant = n.grant(&resident, &[format!("readings:{own}")]).await;
    let (s, v) = get(
        &n,
        &format!("/v1/settlement/check?meter={own}&from=2026-11-01&to=2026-11-01"),
        Some(&own_grant),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Someone else's meter: no grant, and the own meter's grant does not open it.
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/dynamic-tokens",
            Some(&resident),
            Some(r#"{"scope": ["readings:GS-M000001"]}"#),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    let (s, v) = get(
        &n,
        "/v1/settlement/check?meter=GS-M000001&from=2026-11-01&to=2026-11-01",
        Some(&own_grant),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = get(
        &n,
        &format!("/v1/settlement/check?meter={meter}&from=2026-11-01&to=2026-11-01"),
        None,
    )
    .await;
    assert_eq!(s, 401);

    // Bad input: each a 400 that names the problem.
    for (q, needle) in [
        ("meter=GN-M000000&from=2026-11-02&to=2026-11-01", "after"),
        ("meter=GN-M000000&from=2026-02-30&to=2026-03-01", "from"),
        ("from=2026-11-01&to=2026-11-01", "meter is required"),
        (
            "meter=GN-M000000&from=2026-11-01&to=2026-11-01&colour=red",
            "unknown parameter",
        ),
        (
            "meter=GN-M000000&meter=x&from=2026-11-01&to=2026-11-01",
            "twice",
        ),
        (
            "meter=GN-M000000&from=2026-11-01&to=2026-11-01&receipt=maybe",
            "receipt",
        ),
        ("meter=GN-M000000&from=2020-01-01&to=2026-11-01", "366"),
    ] {
        let (s, v) = get(&n, &format!("/v1/settlement/check?{q}"), Some(&market_old)).await;
        assert_eq!(s, 400, "{q}: {v}");
        assert!(v.to_string().contains(needle), "{q}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn traceability_institution_and_plans_views() {
    let n = DevNode::start(20);
    let anyone = n.login("resident-2").await;
    let meter = "GN-M000000";

    // The instrument and its certificates, with the registration's receipt.
    let (s, v) = get(
        &n,
        &format!("/v1/meters/{meter}?receipt=true"),
        Some(&anyone),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let inst = table_rows(&v, "instrument");
    match verified_payload(&n, &inst[0]) {
        Payload::RegisterInstrument(r) => assert_eq!(r.asset_no, meter),
        other => panic!("{other:?}"),
    }
    assert_eq!(v["tables"][0]["property"]["origin"], DEV_ORIGIN);
    assert_eq!(v["tables"][0]["property"]["data_class"], "I");
    let current = &v["summary"]["current_certificate"];
    assert_eq!(current["passed"], true, "{v}");

    // The chain behind the current certificate, up to the national standard.
    let (s, v) = get(
        &n,
        &format!("/v1/meters/{meter}/traceability"),
        Some(&anyone),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["summary"]["complete"], true, "{v}");
    let chain = table_rows(&v, "chain");
    let names: Vec<&str> = chain
        .iter()
        .map(|r| r["equipment_no"].as_str().unwrap())
        .collect();
    assert_eq!(names.last(), Some(&"NATIONAL-EM-01"), "{names:?}");
    assert!(names.contains(&"INST-NMC-REF-01"), "{names:?}");
    // On a day after the working standard's calibration expired, the chain is broken
    // and the view says where.
    let (s, v) = get(
        &n,
        &format!("/v1/meters/{meter}/traceability?date=2027-01-01"),
        Some(&anyone),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["summary"]["complete"], false, "{v}");
    assert!(
        v["summary"]["problems"]
            .to_string()
            .contains("expired on 2026-12-31"),
        "{v}"
    );

    // The institution's credit view.
    // Class I: anonymous callers may read it too.
    let (s, v) = get(&n, "/v1/institutions/inst-nmc", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = get(&n, "/v1/institutions/inst-nmc", Some(&anyone)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(table_rows(&v, "authorisations").len(), 1);
    assert_eq!(table_rows(&v, "personnel").len(), 5);
    let today = gridledger_services::data::today();
    let day = |d: &str| gridledger_core::metrology::day_number(d).unwrap();
    for e in table_rows(&v, "equipment") {
        let left = day(e["calibrated_until"].as_str().unwrap()) - day(&today);
        let want = match left {
            l if l < 0 => "expired",
            l if l <= 30 => "due",
            _ => "valid",
        };
        assert_eq!(e["status"], want, "{e:?}");
    }
    let issued = v["summary"]["certificates_issued"].as_u64().unwrap();
    assert!(issued > 0 && issued <= 20, "{v}");
    let (s, v) = get(&n, "/v1/institutions/nobody", Some(&anyone)).await;
    assert_eq!(s, 404, "{v}");

    // Plans: the filter returns only its status, and the counts add up.
    let (s, all) = get(&n, "/v1/plans", Some(&anyone)).await;
    assert_eq!(s, 200, "{all}");
    let total = table_rows(&all, "plans").len() as u64;
    assert!(total >= 2 + 2, "{all}");
    let counts = all["summary"]["counts"].as_object().unwrap();
    assert_eq!(
        counts.values().map(|c| c.as_u64().unwrap()).sum::<u64>(),
        total
    );
    let (s, v) = get(&n, "/v1/plans?status=overdue", Some(&anyone)).await;
    assert_eq!(s, 200, "{v}");
    let overdue = table_rows(&v, "plans");
    assert!(
        overdue.iter().any(|p| p["subject_id"] == "GN-M000000"),
        "the old meter's re-verification is overdue: {v}"
    );
    for p in overdue {
        assert_eq!(p["status"], "overdue");
        assert!(p["due_date"].as_str().unwrap() < today.as_str(), "{p:?}");
    }
    let (s, v) = get(&n, "/v1/plans?status=late", Some(&anyone)).await;
    assert_eq!(s, 400, "{v}");
    // The node's daily scheduler judged the plans at start and warned about the overdue
    // ones (the dev node logs warnings).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !n.log().contains("supervision: verification plans overdue") {
        assert!(std::time::Instant::now() < deadline, "{}", n.log());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(n.log().contains("PLAN-GN-M000000"), "{}", n.log());

    // Unknown instruments and malformed ids.
    let (s, v) = get(&n, "/v1/meters/NOPE-1", Some(&anyone)).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = get(&n, "/v1/meters/NOPE-1/traceability", Some(&anyone)).await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = get(&n, "/v1/meters/a%3Ab/traceability", Some(&anyone)).await;
    assert!(s == 400 || s == 404, "{s} {v}");
}

/// A resident doubts a meter and opens a dispute through the gateway (the node records
/// it with the org's token key, naming the account), the institution tests the returned meter and issues a returned-meter certificate
/// answering it, and the resident then sees that certificate on their meter.
#[tokio::test(flavor = "multi_thread")]
async fn a_dispute_ends_in_a_returned_meter_certificate_the_resident_sees() {
    let n = DevNode::start(20);
    let resident = n.login("resident-1").await;
    let meter = n.account("resident-1").meters[0].clone();
    let mut c = n.client().await;
    let submit = |key: &ed25519_dalek::SigningKey, nonce: u64, payload: Payload| {
        let tx = gridledger_core::tx::sign(
            key,
            &pb::TxBody {
                origin: DEV_ORIGIN.into(),
                nonce,
                client_time_ms: 0,
                payload: Some(payload),
            },
        );
        gpb::SubmitRequest {
            private_payload: None,
            signed_tx: tx.encode_to_vec().into(),
        }
    };
    let nmc = org_key("inst-nmc");
    // The resident opens the dispute through the gateway; the node records it on the
    // ledger with grid-north's token key, naming the account.
    let open = |token: &str, body: serde_json::Value| {
        let (n, token) = (&n, token.to_string());
        async move {
            let (s, b) = n
                .http(
                    Port::Public,
                    "POST",
                    "/v1/me/disputes",
                    Some(&token),
                    Some(&body.to_string()),
                )
                .await;
            (s, json(&b))
        }
    };
    // Someone else's meter, a meter that does not exist, no reason, another role: refused.
    for (body, want) in [
        (
            serde_json::json!({"asset_no": "GN-M000004", "reason": "x"}),
            403,
        ),
        (
            serde_json::json!({"asset_no": "NO-SUCH", "reason": "x"}),
            403,
        ),
        (serde_json::json!({"asset_no": meter, "reason": " "}), 400),
        (serde_json::json!({"asset_no": meter}), 400),
    ] {
        let (s, v) = open(&resident, body.clone()).await;
        assert_eq!(s, want, "{body}: {v}");
    }
    let operator = n.login("gn-operator").await;
    let (s, _) = open(
        &operator,
        serde_json::json!({"asset_no": meter, "reason": "x"}),
    )
    .await;
    assert_eq!(s, 403, "only residents open disputes here");
    let (s, v) = open(
        &resident,
        serde_json::json!({"asset_no": meter, "reason": "consumption doubled in November"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["account"], "resident-1");
    let dispute = v["dispute_id"].as_str().unwrap().to_string();
    // The dispute is on the ledger, proven by its receipt, signed by the token key.
    let (s, r) = n
        .http(
            Port::ApiWithCert,
            "GET",
            &format!("/v1/records/{}/receipt", v["leaf_index"]),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let policy = gridledger_client::profile::load_policy(&n.trust()).unwrap();
    let proven = Receipt::parse(&r).unwrap().verify(&policy).unwrap();
    let tx = pb::SignedTx::decode(proven.leaf.as_slice()).unwrap();
    match pb::TxBody::decode(tx.body.as_slice()).unwrap().payload {
        Some(Payload::OpenDispute(d)) => {
            assert_eq!(
                (d.dispute_id.as_str(), d.account.as_str()),
                (dispute.as_str(), "resident-1")
            );
        }
        other => panic!("{other:?}"),
    }
    let returned = |cert_no: &str, dispute: &str| pb::IssueCertificate {
        cert_no: cert_no.into(),
        asset_no: meter.clone(),
        institution_org: "inst-nmc".into(),
        kind: pb::CertificateKind::ReturnedMeter as i32,
        verifier: "verifier-1".into(),
        checker: "checker-2".into(),
        equipment: vec!["INST-NMC-STD-01".into()],
        test_date: "2026-11-20".into(),
        valid_until: "2032-11-19".into(),
        passed: true,
        errors: vec![
            pb::LoadPointError {
                load_point: "Ib PF1.0".into(),
                error_centi_percent: 5,
            },
            pb::LoadPointError {
                load_point: "0.1Ib PF1.0".into(),
                error_centi_percent: -8,
            },
        ],
        temperature_deci_c: 231,
        humidity_deci_pct: 480,
        dispute_id: dispute.into(),
    };
    // A certificate dated after the block's day is refused by rule.
    let mut future = returned("RM-F", &dispute);
    future.test_date = "2099-01-01".into();
    future.valid_until = "2105-01-01".into();
    let e = c
        .submit(submit(&nmc, 9_000_005, Payload::IssueCertificate(future)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("4.2/date"), "{e:?}");
    // A certificate naming no open dispute of this meter is refused by rule.
    let e = c
        .submit(submit(
            &nmc,
            9_000_002,
            Payload::IssueCertificate(returned("RM-0", "D-NONE")),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("4.2/dispute"), "{e:?}");
    c.submit(submit(
        &nmc,
        9_000_003,
        Payload::IssueCertificate(returned("RM-2026-0001", &dispute)),
    ))
    .await
    .expect("the returned-meter certificate answers the dispute");
    // The dispute is answered once.
    let e = c
        .submit(submit(
            &nmc,
            9_000_004,
            Payload::IssueCertificate(returned("RM-2026-0002", &dispute)),
        ))
        .await
        .unwrap_err();
    assert!(e.message().contains("already answered"), "{e:?}");

    let (s, v) = get(
        &n,
        &format!("/v1/meters/{meter}?receipt=true"),
        Some(&resident),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["summary"]["current_certificate"]["cert_no"], "RM-2026-0001",
        "{v}"
    );
    let rm = table_rows(&v, "certificates")
        .into_iter()
        .find(|r| r["cert_no"] == "RM-2026-0001")
        .expect("listed");
    assert_eq!(rm["kind"], "CERTIFICATE_KIND_RETURNED_METER");
    match verified_payload(&n, &rm) {
        Payload::IssueCertificate(c) => assert_eq!(c.dispute_id, dispute),
        other => panic!("{other:?}"),
    }
}

/// The CLI prints the same views after verifying every row's receipt, as tables or JSON,
/// and refuses unknown records and foreign meters clearly.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_prints_verified_records() {
    let n = DevNode::start(20);
    let ok = |args: &[&str]| {
        let o = n.cli(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            gridledger_tests::stderr(&o)
        );
        (gridledger_tests::stdout(&o), gridledger_tests::stderr(&o))
    };
    let (out, err) = ok(&["meter", "show", "GN-M000002"]);
    assert!(
        out.contains("GN-M000002") && out.contains("VC-2026-000002"),
        "{out}"
    );
    assert!(err.contains("2 rows verified"), "{err}");
    let (out, _) = ok(&["meter", "trace", "GN-M000002"]);
    assert!(out.contains("NATIONAL-EM-01"), "{out}");
    let (out, _) = ok(&[
        "meter",
        "readings",
        "GN-M000002",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-01",
    ]);
    assert!(out.contains("2026-11-01"), "{out}");
    let (out, _) = ok(&[
        "settlement",
        "check",
        "--meter",
        "GN-M000002",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-01",
        "--json",
    ]);
    let v = json(&out);
    assert_eq!(v["verified"], true);
    assert_eq!(v["summary"]["certified_throughout"], true, "{v}");
    let tables: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["table"].as_str().unwrap())
        .collect();
    assert_eq!(tables, ["certificates", "readings"], "{v}");
    let (out, _) = ok(&["institution", "inst-lab2", "--json"]);
    assert_eq!(json(&out)["summary"]["institution"], "inst-lab2");
    let (out, _) = ok(&["plans", "--status", "overdue"]);
    assert!(out.contains("GN-M000000"), "{out}");

    // The dev CLI is a grid-north system: grid-south's readings are not its to read, so
    // the policy grants it no dynamic token for them.
    let o = n.cli(&[
        "settlement",
        "check",
        "--meter",
        "GS-M000001",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-01",
    ]);
    assert!(!o.status.success());
    assert!(
        gridledger_tests::stderr(&o).contains("may not grant \"readings:GS-M000001"),
        "{o:?}"
    );
    let o = n.cli(&["meter", "show", "NOPE-1"]);
    assert!(!o.status.success());
    assert!(
        gridledger_tests::stderr(&o).contains("no instrument"),
        "{o:?}"
    );
}

/// The gateway publishes its OpenAPI document without credentials, it passes an
/// independent validator (openapi-spec-validator, installed by scripts/setup.sh), and it
/// documents the metering routes.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_validates() {
    let n = DevNode::start(2);
    let (s, body) = n
        .http(Port::Public, "GET", "/openapi.json", None, None)
        .await;
    assert_eq!(s, 200, "{body}");
    let doc = json(&body);
    for p in [
        "/v1/meters/{asset_no}",
        "/v1/meters/{asset_no}/readings",
        "/v1/meters/{asset_no}/traceability",
        "/v1/me/meters",
        "/v1/settlement/check",
        "/v1/institutions/{id}",
        "/v1/records/{index}/receipt",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} is documented");
    }
    let file = n.dir.join("openapi.json");
    std::fs::write(&file, &body).unwrap();
    let venv = std::env::var_os("GRIDLEDGER_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap())
                .join(".cache/gridledger/venv")
        });
    let o = std::process::Command::new(venv.join("bin/openapi-spec-validator"))
        .arg(&file)
        .output()
        .expect("openapi-spec-validator (scripts/setup.sh installs it)");
    assert!(
        o.status.success(),
        "{}{}",
        gridledger_tests::stdout(&o),
        gridledger_tests::stderr(&o)
    );
    // A broken document is refused by the same validator (the check can fail).
    let mut broken = doc.clone();
    broken["paths"]["/v1/plans"]["get"]["responses"] = serde_json::json!("none");
    std::fs::write(&file, broken.to_string()).unwrap();
    let o = std::process::Command::new(venv.join("bin/openapi-spec-validator"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "the validator refuses a broken document"
    );
}

/// `gridledger-node reindex` rebuilds the derived state (records, indexes, consortium
/// state, nonces) from the log: after lost and damaged index entries, the rebuilt state
/// is byte-for-byte the state the node had, and the node serves from it again.
#[tokio::test(flavor = "multi_thread")]
async fn reindex_rebuilds_the_state_from_the_log() {
    use gridledger_node::store::rocks::RocksStore;
    use gridledger_node::store::{Cf, Durability, Store as _, WriteBatch};
    let mut n = DevNode::start(20);
    n.stop();
    let db = n.dir.join("data/ledger");
    let derived = || {
        let store = RocksStore::open(&db).unwrap();
        let mut all = Vec::new();
        for cf in [Cf::State, Cf::Nonces] {
            all.extend(
                store
                    .scan(cf, b"", &[0xFF; 64], usize::MAX)
                    .unwrap()
                    .into_iter()
                    .map(|(k, v)| (cf.name(), k, v)),
            );
        }
        all
    };
    let before = derived();
    assert!(before.len() > 100, "{}", before.len());
    // Lose the metrology records of one certificate and damage an instrument's details.
    {
        let store = RocksStore::open(&db).unwrap();
        let mut b = WriteBatch::new();
        let lost: Vec<Vec<u8>> = store
            .scan(Cf::State, b"m/cert", b"m/cert\xff", usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .take(3)
            .collect();
        assert_eq!(lost.len(), 3);
        for k in lost {
            b.delete(Cf::State, k);
        }
        b.put(
            Cf::State,
            gridledger_core::metrology::keys::instrument("GN-M000002"),
            b"\0\0\0\0\0\0\0\0{}".to_vec(),
        );
        store.write(b, Durability::Sync).unwrap();
    }
    assert_ne!(derived(), before);
    let o = std::process::Command::new(gridledger_tests::bin("gridledger-node"))
        .args(["reindex", "--config"])
        .arg(n.dir.join("node.toml"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        gridledger_tests::stdout(&o),
        gridledger_tests::stderr(&o)
    );
    assert!(
        gridledger_tests::stdout(&o).starts_with("reindex ok:"),
        "{o:?}"
    );
    assert!(derived() == before, "the rebuilt state is the state before");

    // A reindex that did not finish (its marker left behind) keeps the node from
    // starting on half-rebuilt state, and says what to do.
    let mark = |key: &[u8], value: Option<Vec<u8>>| {
        let store = RocksStore::open(&db).unwrap();
        let mut b = WriteBatch::new();
        match value {
            Some(v) => b.put(Cf::RaftMeta, key.to_vec(), v),
            None => b.delete(Cf::RaftMeta, key.to_vec()),
        }
        store.write(b, Durability::Sync).unwrap();
    };
    mark(b"reindex_in_progress", Some(Vec::new()));
    let status = n
        .spawn_expect_exit(std::time::Duration::from_secs(20))
        .expect("a node on an unfinished reindex must refuse to start");
    assert!(!status.success());
    assert!(
        n.log().contains("run `gridledger-node reindex` again"),
        "{}",
        n.log()
    );
    mark(b"reindex_in_progress", None);
    // A log judged under other contract rules is refused too.
    mark(b"rules_version", Some(1u64.to_be_bytes().to_vec()));
    let status = n
        .spawn_expect_exit(std::time::Duration::from_secs(20))
        .expect("a node on a log of other rules must refuse to start");
    assert!(!status.success());
    assert!(n.log().contains("contract rules v1"), "{}", n.log());
    mark(
        b"rules_version",
        Some(
            gridledger_node::channels::RULES_VERSION
                .to_be_bytes()
                .to_vec(),
        ),
    );
    n.spawn();
    let (s, v) = get(&n, "/v1/meters/GN-M000002", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(table_rows(&v, "instrument")[0]["asset_no"], "GN-M000002");
}

/// The client library refuses what a lying server could show with genuine receipts:
/// another meter's rows, a row whose fields differ from its leaf, a row of the wrong
/// transaction type, and a coverage summary its own certificates contradict.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_refuses_rows_that_do_not_answer_the_question() {
    use gridledger_client::records::{Query, verify_view};
    let n = DevNode::start(20);
    let policy = gridledger_client::profile::load_policy(&n.trust()).unwrap();
    let channel = n.channel(Port::ApiWithCert).await;
    let mut c = gpb::data_service_client::DataServiceClient::new(channel.clone());
    let auth = gpb::auth_service_client::AuthServiceClient::new(channel);
    // Readings are class II: each request carries a dynamic token for its meter,
    // granted to the grid company's system certificate.
    let settle = |asset: &str, from: &str, to: &str| {
        let mut auth = auth.clone();
        let r = gpb::SettlementRequest {
            asset_no: asset.into(),
            from: from.into(),
            to: to.into(),
            receipts: true,
        };
        let scope = format!("readings:{asset}");
        async move {
            let t = auth
                .issue_dynamic_token(gpb::DynamicTokenRequest {
                    scope: vec![scope],
                    ttl_seconds: 60,
                    single_use: false,
                })
                .await
                .unwrap()
                .into_inner()
                .token;
            gridledger_client::grpc::with_bearer(r, &t).unwrap()
        }
    };
    let q = |asset: &str, from: &str, to: &str| Query {
        asset: Some(asset.into()),
        period: Some((from.into(), to.into())),
    };
    let a = c
        .settlement_check(settle("GN-M000002", "2026-11-01", "2026-11-01").await)
        .await
        .unwrap()
        .into_inner();
    let b = c
        .settlement_check(settle("GN-M000004", "2026-11-01", "2026-11-01").await)
        .await
        .unwrap()
        .into_inner();
    let ok = verify_view(&a, &policy, &q("GN-M000002", "2026-11-01", "2026-11-01")).unwrap();
    assert_eq!(ok.rows.len(), 2);

    let refused = |v: &gpb::DataView, why: &str| {
        verify_view(v, &policy, &q("GN-M000002", "2026-11-01", "2026-11-01"))
            .expect_err(why)
            .to_string()
    };
    // Meter B's certificate shown as meter A's.
    let mut swapped = a.clone();
    swapped.tables[0].rows = b.tables[0].rows.clone();
    assert!(refused(&swapped, "another meter").contains("is about GN-M000004"));
    // A row whose fields differ from the proven leaf.
    let mut edited = a.clone();
    let mut row: Value = json(&edited.tables[0].rows[0].json);
    row["valid_until"] = "2099-12-31".into();
    edited.tables[0].rows[0].json = row.to_string();
    assert!(refused(&edited, "edited row").contains("proven transaction says"));
    // A reading row shown in the certificates table.
    let mut wrong_table = a.clone();
    wrong_table.tables[0].rows = a.tables[1].rows.clone();
    assert!(refused(&wrong_table, "wrong type").contains("proves a record_reading"));
    // Class II: a reading whose value was edited, or whose salt does not open the
    // commitment, or a reading claimed purged while showing values.
    let mut edited = a.clone();
    let mut row: Value = json(&edited.tables[1].rows[0].json);
    row["import_wh"] = (row["import_wh"].as_u64().unwrap() + 1).into();
    edited.tables[1].rows[0].json = row.to_string();
    assert!(refused(&edited, "edited reading").contains("committed payload says"));
    let mut salted = a.clone();
    let mut row: Value = json(&salted.tables[1].rows[0].json);
    row["salt"] = hex::encode([0u8; 32]).into();
    salted.tables[1].rows[0].json = row.to_string();
    assert!(refused(&salted, "wrong salt").contains("do not match the proven leaf's commitment"));
    let mut half = a.clone();
    let mut row: Value = json(&half.tables[1].rows[0].json);
    row["purged_by"] = 1.into();
    half.tables[1].rows[0].json = row.to_string();
    assert!(refused(&half, "purged with values").contains("purged row carries values"));
    // A coverage summary the certificates do not support.
    let old = c
        .settlement_check(settle("GN-M000000", "2026-01-01", "2026-01-31").await)
        .await
        .unwrap()
        .into_inner();
    let mut lie = old.clone();
    for f in &mut lie.summary {
        match f.name.as_str() {
            "certified_throughout" => f.json = "true".into(),
            "uncovered" => f.json = "[]".into(),
            _ => {}
        }
    }
    verify_view(&old, &policy, &q("GN-M000000", "2026-01-01", "2026-01-31")).unwrap();
    let e = verify_view(&lie, &policy, &q("GN-M000000", "2026-01-01", "2026-01-31"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not follow from the certificates"), "{e}");
}
