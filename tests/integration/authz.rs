//! Access control on a real node: the role × operation matrix of docs/SECURITY.md, cell
//! by cell, over real TLS on both listeners; resident isolation on every route; and the
//! token attacks of issue 5.

use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use gridledger_proto::v1::data_service_client::DataServiceClient;
use gridledger_tests::{DevNode, Port, with_bearer};
use serde_json::{Value, json};
use tonic::Code;

const OWN: &str = "GN-M000000"; // bound to resident-1, owned by grid-north
const FOREIGN: &str = "GS-M000001"; // bound to resident-3, owned by grid-south

/// Who calls.
#[derive(Clone)]
struct Caller {
    name: &'static str,
    port: Port,
    token: Option<String>,
}

async fn callers(n: &DevNode) -> Vec<Caller> {
    let mut v = vec![Caller {
        name: "anonymous",
        port: Port::Public,
        token: None,
    }];
    for (name, user) in [
        ("resident", "resident-1"),
        ("admin", "gn-admin"),
        ("regulator", "regulator"),
        ("auditor", "auditor"),
        ("verifier", "nmc-verifier"),
        ("operator", "gn-operator"),
        ("supplier", "alpha-supplier"),
        ("market", "px-market"),
    ] {
        v.push(Caller {
            name,
            port: Port::Public,
            token: Some(n.login(user).await),
        });
    }
    v.push(Caller {
        name: "system",
        port: Port::ApiWithCert,
        token: None,
    });
    let resident = n.login("resident-1").await;
    let (s, body) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/dynamic-tokens",
            Some(&resident),
            Some(&json!({"scope": [format!("readings:{OWN}")]}).to_string()),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    v.push(Caller {
        name: "dynamic",
        port: Port::Public,
        token: Some(t["token"].as_str().unwrap().into()),
    });
    v
}

/// Allowed (true) or refused with 401/403 (false); anything else fails the test.
fn verdict(op: &str, who: &str, status: u16, body: &str) -> bool {
    match status {
        200..=299 => true,
        401 | 403 => false,
        _ => panic!("{op} as {who}: unexpected HTTP {status}: {body}"),
    }
}

async fn try_op(n: &DevNode, c: &Caller, op: &str) -> bool {
    let t = c.token.as_deref();
    let http = |m: &'static str, path: String, body: Option<String>| async move {
        let (s, b) = n.http(c.port, m, &path, t, body.as_deref()).await;
        verdict(op, c.name, s, &b)
    };
    match op {
        "ChainPublic" => http("GET", "/v1/status".into(), None).await,
        "ChainReadLeaves" => http("GET", "/v1/records/0/receipt".into(), None).await,
        "ChainSubmit" => {
            let mut client = ChainServiceClient::new(n.channel(c.port).await);
            let req = pb::SubmitRequest {
                private_payload: None,
                signed_tx: vec![1, 2, 3].into(),
            };
            let req = match t {
                Some(t) => with_bearer(req, t),
                None => tonic::Request::new(req),
            };
            match client.submit(req).await {
                // Past the layer, the garbage transaction itself is refused.
                Err(s) if s.code() == Code::InvalidArgument => true,
                Err(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
                    false
                }
                other => panic!("Submit as {}: {other:?}", c.name),
            }
        }
        "AuthPublic" => http("GET", "/v1/auth/jwks".into(), None).await,
        "AuthLogout" => {
            // Log out a fresh session of the same user, so the caller's token survives.
            let fresh = match c.name {
                "anonymous" | "system" | "dynamic" => t.map(str::to_string),
                _ => Some(n.login(user_of(c.name)).await),
            };
            let (s, b) = n
                .http(
                    c.port,
                    "POST",
                    "/v1/auth/logout",
                    fresh.as_deref(),
                    Some("{}"),
                )
                .await;
            verdict(op, c.name, s, &b)
        }
        "AuthDynamicToken" => {
            http(
                "POST",
                "/v1/auth/dynamic-tokens".into(),
                Some(json!({"scope": [format!("readings:{OWN}")]}).to_string()),
            )
            .await
        }
        "AccountsManage" => http("GET", "/v1/accounts".into(), None).await,
        "MeterRead" => http("GET", format!("/v1/meters/{OWN}"), None).await,
        "MyMeters" => http("GET", "/v1/me/meters".into(), None).await,
        "PrivateRead(own)" => {
            http(
                "GET",
                format!("/v1/meters/{OWN}/readings?from=2026-01-01&to=2026-12-31"),
                None,
            )
            .await
        }
        "PrivateRead(foreign)" => {
            http(
                "GET",
                format!("/v1/meters/{FOREIGN}/readings?from=2026-01-01&to=2026-12-31"),
                None,
            )
            .await
        }
        // Past the layer, an empty body is a bad request: allowed (and nothing recorded).
        "DisputeOpen" => {
            let (s, b) = n
                .http(c.port, "POST", "/v1/me/disputes", t, Some("{}"))
                .await;
            if s == 400 {
                true
            } else {
                verdict(op, c.name, s, &b)
            }
        }
        // Past the layer, an anchor nobody made is NOT_FOUND and an upload without its
        // anchor is a bad request: both count as allowed.
        "DocumentRead" => {
            let (s, b) = n
                .http(
                    c.port,
                    "GET",
                    &format!("/v1/documents/{}", "0".repeat(64)),
                    t,
                    None,
                )
                .await;
            if s == 404 {
                true
            } else {
                verdict(op, c.name, s, &b)
            }
        }
        "DocumentUpload" => {
            let (s, b) = n.http(c.port, "POST", "/v1/documents", t, Some("x")).await;
            if s == 400 {
                true
            } else {
                verdict(op, c.name, s, &b)
            }
        }
        // Past the layer, a dynamic token without `supply:<org>` is refused by the handler
        // with its own message: that counts as allowed by the layer.
        "SupplyRead" => {
            let (s, b) = n
                .http(c.port, "GET", "/v1/supplier/demand-plans", t, None)
                .await;
            if s == 403 && b.contains("supplier records are class II") {
                true
            } else {
                verdict(op, c.name, s, &b)
            }
        }
        // Past the layer, a transaction that does not decode is a bad request.
        "SupplySubmit" => {
            let (s, b) = n
                .http(
                    c.port,
                    "POST",
                    "/v1/supplier/transactions",
                    t,
                    Some(r#"{"signed_tx":"AAAA"}"#),
                )
                .await;
            if s == 400 {
                true
            } else {
                verdict(op, c.name, s, &b)
            }
        }
        other => panic!("unknown op {other}"),
    }
}

fn user_of(role: &str) -> &'static str {
    match role {
        "resident" => "resident-1",
        "admin" => "gn-admin",
        "regulator" => "regulator",
        "auditor" => "auditor",
        "verifier" => "nmc-verifier",
        "operator" => "gn-operator",
        "supplier" => "alpha-supplier",
        "market" => "px-market",
        other => panic!("no user for {other}"),
    }
}

/// The matrix of docs/SECURITY.md, written out independently of the code's table.
/// Columns: anonymous resident admin regulator auditor verifier operator supplier market
/// system dynamic. The admin is grid-north's, the operator grid-north's, the system the
/// grid-north client certificate; "own" is a grid-north meter bound to the resident.
const MATRIX: &[(&str, [u8; 11])] = &[
    ("ChainPublic", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ("ChainReadLeaves", [0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]),
    ("ChainSubmit", [0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0]),
    ("AuthPublic", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ("AuthLogout", [0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]),
    ("AuthDynamicToken", [0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0]),
    ("AccountsManage", [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
    ("MeterRead", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ("MyMeters", [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    // Class II: only a dynamic token reads (the policy decides who is granted one, see
    // AuthDynamicToken), and only the meter its scope names.
    ("PrivateRead(own)", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ("PrivateRead(foreign)", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ("DisputeOpen", [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ("DocumentRead", [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ("DocumentUpload", [0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0]),
    // Supplier records are class II: only a dynamic token (its scope is then checked by
    // the handler); writes need what a submission needs.
    ("SupplyRead", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ("SupplySubmit", [0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 0]),
];

#[tokio::test]
async fn role_operation_matrix_every_cell() {
    let n = DevNode::start(8);
    let callers = callers(&n).await;
    let mut wrong = Vec::new();
    for (op, row) in MATRIX {
        for (c, expected) in callers.iter().zip(row) {
            let got = try_op(&n, c, op).await;
            if got != (*expected == 1) {
                wrong.push(format!(
                    "{op} as {}: expected {}, got {}",
                    c.name,
                    expected == &1,
                    got
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "matrix cells differ from docs/SECURITY.md:\n{}",
        wrong.join("\n")
    );
}

/// A resident reaches another resident's meter through no route, gRPC or HTTP, on
/// either listener.
#[tokio::test]
async fn resident_never_reads_another_residents_meter() {
    let n = DevNode::start(8);
    let me = n.login("resident-1").await;
    let other_gn = n.account("resident-2").meters[0].clone();
    let other_gs = n.account("resident-3").meters[0].clone();
    for port in [Port::Public, Port::ApiWithCert] {
        for m in [&other_gn, &other_gs] {
            let (s, b) = n
                .http(
                    port,
                    "GET",
                    &format!("/v1/meters/{m}/readings?from=2026-01-01&to=2026-12-31"),
                    Some(&me),
                    None,
                )
                .await;
            assert_eq!(s, 403, "{b}");
            assert!(!b.contains("import_wh"), "{b}");
            let mut data = DataServiceClient::new(n.channel(port).await);
            let e = data
                .get_readings(with_bearer(
                    pb::GetReadingsRequest {
                        asset_no: m.clone(),
                        from: "2026-01-01".into(),
                        to: "2026-12-31".into(),
                    },
                    &me,
                ))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
            // A grant of someone else's meter is refused too.
            let (s, b) = n
                .http(
                    port,
                    "POST",
                    "/v1/auth/dynamic-tokens",
                    Some(&me),
                    Some(&json!({"scope": [format!("readings:{m}")]}).to_string()),
                )
                .await;
            assert_eq!(s, 403, "{b}");
        }
        // Raw leaves carry every reading: residents get none of them.
        for path in ["/v1/records/0/receipt", "/v1/records/20/receipt"] {
            for method in ["GET", "HEAD"] {
                let (s, _) = n.http(port, method, path, Some(&me), None).await;
                assert_eq!(s, 403, "{method} {path}");
            }
        }
        let mut chain = ChainServiceClient::new(n.channel(port).await);
        let e = chain
            .get_entry(with_bearer(
                pb::GetEntryRequest {
                    index: 20,
                    ..Default::default()
                },
                &me,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = chain
            .get_blocks(with_bearer(
                pb::GetBlocksRequest {
                    from_height: 1,
                    limit: 10,
                    include_leaves: true,
                    ..Default::default()
                },
                &me,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = chain
            .get_block(with_bearer(
                pb::GetBlockRequest {
                    height: 1,
                    include_leaves: true,
                    ..Default::default()
                },
                &me,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = chain
            .get_receipt(with_bearer(
                pb::GetReceiptRequest {
                    index: 20,
                    ..Default::default()
                },
                &me,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = chain
            .watch_blocks(with_bearer(
                pb::WatchBlocksRequest {
                    from_height: 1,
                    include_leaves: true,
                    ..Default::default()
                },
                &me,
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    // Their own meters: listed, and readable.
    let (s, b) = n
        .http(Port::Public, "GET", "/v1/me/meters", Some(&me), None)
        .await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let rows = gridledger_tests::table_rows(&v, "meters");
    let mine: Vec<&str> = rows
        .iter()
        .map(|m| m["asset_no"].as_str().unwrap())
        .collect();
    assert_eq!(
        mine,
        n.account("resident-1")
            .meters
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    // Readings are class II: the resident's access token is refused, a dynamic token
    // the policy grants for the own meter reads.
    let path = format!("/v1/meters/{OWN}/readings?from=2026-01-01&to=2026-12-31");
    let (s, b) = n.http(Port::Public, "GET", &path, Some(&me), None).await;
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("dynamic token"), "{b}");
    let grant = n.grant(&me, &[format!("readings:{OWN}")]).await;
    let (s, b) = n.http(Port::Public, "GET", &path, Some(&grant), None).await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(gridledger_tests::table_rows(&v, "readings").len(), 1, "{b}");
}
