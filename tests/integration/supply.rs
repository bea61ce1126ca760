//! Supplier collaboration and sync streams (issue 7, DOMAIN.md §2.7, §5) on a real node:
//! the paper's scenario (demand plan → the supplier sees it → acknowledgement → factory
//! test batch → the grid company sees it), each step read back verified by receipt; bad
//! input refused with nothing written; and the example ERP connector killed at random
//! points, with the node restarted under it, ending with every event exactly once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use gridledger_proto::v1 as gpb;
use gridledger_tests::{DevNode, Port, bin};
use serde_json::Value;
use tonic::Code;

fn profile_of(n: &DevNode, org: &str) -> PathBuf {
    n.dir.join("profiles").join(format!("{org}.toml"))
}

/// Runs the CLI as `org`'s system.
fn cli_as(n: &DevNode, org: &str, args: &[&str]) -> Output {
    Command::new(bin("gridledger"))
        .args(args)
        .env("GRIDLEDGER_PROFILE", profile_of(n, org))
        .stdin(Stdio::null())
        .output()
        .expect("run gridledger")
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        gridledger_tests::stderr(o),
        gridledger_tests::stdout(o)
    );
    gridledger_tests::stdout(o)
}

fn refused(o: &Output, what: &str, text: &str) {
    assert!(!o.status.success(), "{what} was accepted");
    let e = gridledger_tests::stderr(o);
    assert!(e.contains(text), "{what}: {e}");
}

fn leaf_of(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("committed: leaf "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no leaf in {out}"))
}

async fn tree_size(n: &DevNode) -> u64 {
    let (s, b) = n.http(Port::Public, "GET", "/v1/status", None, None).await;
    assert_eq!(s, 200, "{b}");
    serde_json::from_str::<Value>(&b).unwrap()["tree_size"]
        .as_u64()
        .unwrap()
}

fn verified_rows(out: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["verified"], true, "{v}");
    v["rows"].as_array().unwrap().clone()
}

/// Every event of `org`'s stream from `cursor` until none arrives for 3 s (the log is
/// not written meanwhile).
async fn collect(n: &DevNode, org: &str, cursor: &str) -> Vec<gpb::SyncEvent> {
    let channel = n.channel(Port::ApiWithCert).await;
    // The API port's certificate is grid-north's; a dynamic token for another org comes
    // from that org's own system certificate, through its CLI profile.
    let token = if org == "grid-north" {
        gpb::auth_service_client::AuthServiceClient::new(channel.clone())
            .issue_dynamic_token(gpb::DynamicTokenRequest {
                scope: vec![format!("supply:{org}")],
                ttl_seconds: 60,
                single_use: false,
            })
            .await
            .unwrap()
            .into_inner()
            .token
    } else {
        let p = gridledger_client::profile::Profile::load(&profile_of(n, org)).unwrap();
        gridledger_client::grpc::dynamic_token(&p, vec![format!("supply:{org}")])
            .await
            .unwrap()
    };
    let mut sup = gpb::supplier_service_client::SupplierServiceClient::new(channel);
    let mut stream = sup
        .sync(
            gridledger_client::grpc::with_bearer(
                gpb::SyncRequest {
                    cursor: cursor.into(),
                    receipts: false,
                    max_events: 0,
                },
                &token,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .map(|m| m.unwrap())
    {
        out.push(ev);
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn demand_ack_batch_scenario_each_verified_by_receipt() {
    let n = DevNode::start(12);
    let files = tempfile::tempdir().unwrap();

    // 1. The grid company publishes a demand plan to sup-beta.
    let out = ok(
        &cli_as(
            &n,
            "grid-north",
            &[
                "supplier",
                "demand",
                "--to",
                "sup-beta",
                "--type",
                "meter",
                "--class",
                "1",
                "--month",
                "2027-05",
                "--quantity",
                "300",
                "--id",
                "DP-T1",
            ],
        ),
        "demand",
    );
    let plan_leaf = leaf_of(&out);

    // 2. The supplier sees it, verified (receipt, commitment, contents).
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "sup-beta",
            &["supplier", "plans", "--id", "DP-T1", "--json"],
        ),
        "plans as sup-beta",
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["leaf_index"], plan_leaf);
    assert_eq!(rows[0]["record"]["contents"]["lines"][0]["quantity"], 300);
    // A supplier it is not addressed to does not see it.
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "sup-gamma",
            &["supplier", "plans", "--id", "DP-T1", "--json"],
        ),
        "plans as sup-gamma",
    ));
    assert!(rows.is_empty(), "{rows:?}");

    // 3. The supplier acknowledges it with a production plan.
    let plan = write(
        files.path(),
        "ack.json",
        r#"{"production_plan": "line 1 from March", "deliveries": [{"type": "meter", "accuracy_class": "1", "quantity": 300, "date": "2027-05-20"}]}"#,
    );
    let ack_leaf = leaf_of(&ok(
        &cli_as(
            &n,
            "sup-beta",
            &[
                "supplier",
                "ack",
                "--demand",
                "DP-T1",
                "--plan",
                plan.to_str().unwrap(),
            ],
        ),
        "ack",
    ));
    // The grid company sees the plan and the answer, verified.
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "grid-north",
            &["supplier", "plans", "--id", "DP-T1", "--json"],
        ),
        "plans as grid-north",
    ));
    let leaves: Vec<u64> = rows
        .iter()
        .map(|r| r["leaf_index"].as_u64().unwrap())
        .collect();
    assert_eq!(leaves, vec![plan_leaf, ack_leaf]);
    assert_eq!(
        rows[1]["record"]["contents"]["deliveries"][0]["date"],
        "2027-05-20"
    );

    // 4. The supplier publishes the factory test batch of meters it made for the grid
    // company (sup-beta made the meters i % 3 == 1; grid-north owns the even ones).
    let csv = write(
        files.path(),
        "batch.csv",
        "asset_no,test_date,passed,errors\n\
         GN-M000004,2026-10-01,true,Imax PF1.0=0.12;Ib PF1.0=-0.05\n\
         GN-M000010,2026-10-02,true,Ib PF1.0=0.03\n",
    );
    let out = ok(
        &cli_as(
            &n,
            "sup-beta",
            &["supplier", "batch", "--file", csv.to_str().unwrap()],
        ),
        "batch",
    );
    let batch_leaf = leaf_of(&out);
    let batch_id = out
        .lines()
        .find_map(|l| l.strip_prefix("batch_id: "))
        .unwrap()
        .to_string();
    // 5. The grid company sees it, verified.
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "grid-north",
            &["supplier", "batches", "--id", &batch_id, "--json"],
        ),
        "batches as grid-north",
    ));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["leaf_index"], batch_leaf);
    assert_eq!(rows[0]["record"]["buyer_org"], "grid-north");
    let results = &rows[0]["record"]["contents"]["results"];
    assert_eq!(results[0]["asset_no"], "GN-M000004");
    assert_eq!(results[0]["errors"][0]["error_centi_percent"], 12);
    // The same events reach the sync streams, in log order: sup-beta's ends with the
    // plan, its acknowledgement and the batch.
    let events = collect(&n, "sup-beta", "").await;
    let tail: Vec<(String, u64)> = events[events.len() - 3..]
        .iter()
        .map(|e| (e.r#type.clone(), e.leaf_index))
        .collect();
    assert_eq!(
        tail,
        vec![
            ("demand_plan".to_string(), plan_leaf),
            ("demand_ack".to_string(), ack_leaf),
            ("test_batch".to_string(), batch_leaf)
        ]
    );
    // The CLI prints them as JSON lines with a cursor, and resumes from its cursor file.
    let cursor_file = files.path().join("cursor");
    let first = ok(
        &cli_as(
            &n,
            "sup-beta",
            &[
                "sync",
                "--max",
                "2",
                "--cursor-file",
                cursor_file.to_str().unwrap(),
            ],
        ),
        "sync",
    );
    let second = ok(
        &cli_as(
            &n,
            "sup-beta",
            &[
                "sync",
                "--max",
                "1",
                "--cursor-file",
                cursor_file.to_str().unwrap(),
            ],
        ),
        "sync resumed",
    );
    let lines: Vec<Value> = first
        .lines()
        .chain(second.lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<u64> = lines
        .iter()
        .map(|l| l["leaf_index"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = events[..3].iter().map(|e| e.leaf_index).collect();
    assert_eq!(got, want);
    assert_eq!(
        std::fs::read_to_string(&cursor_file).unwrap().trim(),
        lines[2]["cursor"].as_str().unwrap()
    );

    // Server-Sent Events for systems that cannot speak gRPC: `id` is the cursor, and
    // `Last-Event-ID` resumes after it.
    let operator = n.login("gn-operator").await;
    let token = n.grant(&operator, &["supply:grid-north".to_string()]).await;
    let (s, body) = n
        .http(Port::Public, "GET", "/v1/sync?max=2", Some(&token), None)
        .await;
    assert_eq!(s, 200, "{body}");
    let ids: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids.len(), 2, "{body}");
    let data: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(data[1]["cursor"], ids[1]);
    let (s, again) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/sync?max=1&cursor={}", ids[0]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{again}");
    assert!(again.contains(&format!("id: {}", ids[1])), "{again}");
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            "/v1/sync?max=1&cursor=nope",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("not a gridledger sync cursor"), "{b}");
    let (s, b) = n
        .http(Port::Public, "GET", "/v1/sync?max=1", Some(&operator), None)
        .await;
    assert_eq!(s, 403, "an access token is not enough: {b}");
    assert!(
        b.contains("supply:<its org>"),
        "the refusal says what to present: {b}"
    );

    // Models are class I: anyone reads them, verified by the CLI.
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "grid-south",
            &["supplier", "models", "--supplier", "sup-beta", "--json"],
        ),
        "models",
    ));
    let models: Vec<&str> = rows
        .iter()
        .map(|r| r["record"]["model"].as_str().unwrap())
        .collect();
    assert_eq!(models, vec!["DDZY-101", "DDZY-104"]);
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            "/v1/supplier/models?supplier=sup-alpha",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("DDZY-100") && !b.contains("DDZY-101"), "{b}");
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            "/v1/supplier/models?supplier=a%20b",
            None,
            None,
        )
        .await;
    assert_eq!(s, 400, "{b}");

    // Retention: sup-beta's admin key purges the batch's payload. The grid company's
    // stream then carries a `purge` event naming the batch, and the batch shows only
    // `purged_by`, still verified.
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "sup-beta",
            &["supplier", "batches", "--id", &batch_id, "--json"],
        ),
        "batches as sup-beta",
    ));
    let commitment = rows[0]["record"]["commitment"]
        .as_str()
        .unwrap()
        .to_string();
    let purge_leaf = leaf_of(&ok(
        &cli_as(
            &n,
            "sup-beta",
            &[
                "purge",
                "--commitment",
                &commitment,
                "--reason",
                "warranty period over",
            ],
        ),
        "purge",
    ));
    let events = collect(&n, "grid-north", "").await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.r#type.as_str(), last.leaf_index),
        ("purge", purge_leaf)
    );
    let record: Value = serde_json::from_str(&last.json).unwrap();
    assert_eq!(record["purged_leaf"], batch_leaf);
    let rows = verified_rows(&ok(
        &cli_as(
            &n,
            "grid-north",
            &["supplier", "batches", "--id", &batch_id, "--json"],
        ),
        "purged batch",
    ));
    assert_eq!(rows[0]["record"]["purged_by"], purge_leaf);
    assert!(rows[0]["record"]["contents"].is_null());
    // sup-gamma, no party to it, does not see the purge.
    let events = collect(&n, "sup-gamma", "").await;
    assert!(events.iter().all(|e| e.r#type != "purge"));

    // A supplier's user is granted its own org's records only.
    let supplier = n.login("alpha-supplier").await;
    let token = n.grant(&supplier, &["supply:sup-alpha".to_string()]).await;
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            "/v1/supplier/demand-plans?receipt=true",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains("DP-GN-2027-Q1"),
        "the demo plan addressed to sup-alpha: {b}"
    );
    assert!(
        !b.contains("DP-T1"),
        "a plan addressed to sup-beta only: {b}"
    );
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/dynamic-tokens",
            Some(&supplier),
            Some(r#"{"scope":["supply:sup-beta"]}"#),
        )
        .await;
    assert_eq!(s, 403, "another org's records: {b}");

    // Bad input: each refused, naming the problem; nothing written.
    let before = tree_size(&n).await;
    refused(
        &cli_as(
            &n,
            "sup-alpha",
            &[
                "supplier",
                "ack",
                "--demand",
                "DP-T1",
                "--plan",
                plan.to_str().unwrap(),
            ],
        ),
        "ack of a plan not addressed to the supplier",
        "not addressed to sup-alpha",
    );
    refused(
        &cli_as(
            &n,
            "sup-alpha",
            &[
                "supplier",
                "demand",
                "--to",
                "sup-beta",
                "--type",
                "meter",
                "--class",
                "1",
                "--month",
                "2027-05",
                "--quantity",
                "3",
            ],
        ),
        "demand plan from a supplier",
        "4.4/demand",
    );
    let foreign = write(
        files.path(),
        "foreign.csv",
        "asset_no,test_date,passed,errors\nGN-M000000,2026-10-01,true,\n",
    );
    refused(
        &cli_as(
            &n,
            "sup-beta",
            &["supplier", "batch", "--file", foreign.to_str().unwrap()],
        ),
        "batch for instruments the supplier did not make",
        "was made by sup-alpha, not sup-beta",
    );
    let malformed = write(
        files.path(),
        "bad.csv",
        "asset_no,test_date,passed,errors\nGN-M000004,2026-10-01,true,\nGN-M000010,2026-10-02,maybe,\n",
    );
    refused(
        &cli_as(
            &n,
            "sup-beta",
            &["supplier", "batch", "--file", malformed.to_str().unwrap()],
        ),
        "malformed CSV row",
        "row 3, field passed",
    );
    refused(
        &cli_as(
            &n,
            "sup-beta",
            &[
                "supplier",
                "demand",
                "--to",
                "sup-beta",
                "--type",
                "meter",
                "--class",
                "7",
                "--month",
                "2027-05",
                "--quantity",
                "3",
            ],
        ),
        "demand with a class meters do not have",
        "accuracy class",
    );
    assert_eq!(tree_size(&n).await, before, "refused input wrote nothing");

    // Cursors: garbage, another ledger's, one past the log, and a tampered one.
    let channel = n.channel(Port::ApiWithCert).await;
    let mut auth = gpb::auth_service_client::AuthServiceClient::new(channel.clone());
    let token = auth
        .issue_dynamic_token(gpb::DynamicTokenRequest {
            scope: vec!["supply:grid-north".into()],
            ttl_seconds: 60,
            single_use: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut sup = gpb::supplier_service_client::SupplierServiceClient::new(channel);
    let origin = crate::util::DEV_ORIGIN;
    let size = tree_size(&n).await;
    let other = gridledger_core::supply::SyncCursor::new("other.example/ledger", 5, &[1; 32]);
    let ahead = gridledger_core::supply::SyncCursor::new(origin, size + 10, &[1; 32]);
    let tampered = gridledger_core::supply::SyncCursor::new(origin, 3, &[9; 32]);
    for (why, cursor, code, text) in [
        (
            "garbage",
            "not-a-cursor".to_string(),
            Code::InvalidArgument,
            "not a gridledger sync cursor",
        ),
        (
            "foreign",
            other.encode(),
            Code::InvalidArgument,
            "another ledger",
        ),
        (
            "ahead",
            ahead.encode(),
            Code::OutOfRange,
            "this node's log has",
        ),
        (
            "tampered",
            tampered.encode(),
            Code::FailedPrecondition,
            "not the one the cursor was made on",
        ),
    ] {
        let e = sup
            .sync(
                gridledger_client::grpc::with_bearer(
                    gpb::SyncRequest {
                        cursor,
                        receipts: false,
                        max_events: 1,
                    },
                    &token,
                )
                .unwrap(),
            )
            .await
            .expect_err(why);
        assert_eq!(e.code(), code, "{why}: {}", e.message());
        assert!(e.message().contains(text), "{why}: {}", e.message());
    }
    // Without the dynamic token, the stream is refused.
    let e = sup
        .sync(gpb::SyncRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(e.code(), Code::PermissionDenied, "{}", e.message());
    // A SupplierService write method refuses another transaction type.
    let e = sup
        .publish_demand_plan(gpb::SubmitRequest {
            signed_tx: vec![1, 2, 3].into(),
            private_payload: None,
        })
        .await
        .expect_err("garbage");
    assert_eq!(e.code(), Code::InvalidArgument);
}

/// The leaf indexes stored in the connector's CSV (complete lines only).
fn stored(csv: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(csv).unwrap_or_default();
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    text[..complete]
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

fn connector(n: &DevNode, csv: &Path, log: &Path, max: Option<usize>) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut c = Command::new(bin("erp-connector"));
    c.arg("--profile")
        .arg(profile_of(n, "sup-alpha"))
        .arg("--out")
        .arg(csv);
    if let Some(m) = max {
        c.args(["--max", &m.to_string()]);
    }
    c.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn erp-connector")
}

/// DOMAIN.md §5, supplier sync: the example connector, SIGKILLed at random points (and
/// once while the node itself is killed and restarted under it, and while new events are
/// written), ends with every event of its org exactly once, in log order.
#[tokio::test(flavor = "multi_thread")]
async fn a_connector_killed_at_random_points_stores_every_event_exactly_once() {
    let mut n = DevNode::start(30);
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("erp.csv");
    let log = files.path().join("connector.log");
    let mut expected: Vec<u64> = collect(&n, "sup-alpha", "")
        .await
        .iter()
        .map(|e| e.leaf_index)
        .collect();
    assert!(expected.len() > 20, "{expected:?}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("kill schedule seed {seed}");
    let mut x = seed;
    let mut next = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    for round in 0..10 {
        let mut c = connector(&n, &csv, &log, None);
        tokio::time::sleep(Duration::from_millis(30 + next(400))).await;
        if round == 4 {
            // The node dies and comes back (on new ports) under the running connector,
            // which keeps retrying until it reaches it again.
            n.kill9();
            tokio::time::sleep(Duration::from_millis(200)).await;
            n.spawn();
            tokio::time::sleep(Duration::from_millis(300 + next(700))).await;
        }
        let _ = c.kill();
        let _ = c.wait();
        if round == 2 || round == 6 {
            // New events while the connector is down.
            let out = ok(
                &cli_as(
                    &n,
                    "grid-north",
                    &[
                        "supplier",
                        "demand",
                        "--to",
                        "sup-alpha",
                        "--type",
                        "meter",
                        "--class",
                        "2",
                        "--month",
                        "2027-06",
                        "--quantity",
                        "50",
                    ],
                ),
                "demand while the connector is down",
            );
            expected.push(leaf_of(&out));
        }
    }
    let have = stored(&csv).len();
    assert!(
        have <= expected.len(),
        "more stored than exist: {:?}",
        stored(&csv)
    );
    // Let it finish what is left (`--max 0` exits at once).
    let mut c = connector(&n, &csv, &log, Some(expected.len() - have));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the connector did not finish (seed {seed}); stored {:?}, expected {expected:?}; log:\n{}",
            stored(&csv),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        status.success(),
        "connector: {status}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(
        stored(&csv),
        expected,
        "every event exactly once, in log order (seed {seed})"
    );
    // Started again with nothing new, it stores nothing more: no event comes twice.
    let mut c = connector(&n, &csv, &log, None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = c.kill();
    let _ = c.wait();
    assert_eq!(stored(&csv), expected, "nothing repeated (seed {seed})");
}
