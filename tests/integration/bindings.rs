//! Customer bindings and installation points (DOMAIN.md §2.3) as class II ledger records
//! on a real node: written by the owning grid company, read only with a dynamic token
//! (all of a meter's bindings for the grid company, only their own for a resident),
//! verified by the client library, replaced on a move and purged on retention. Resident
//! accounts follow the ledger: a meter is bound to an account only if the ledger's
//! current binding names it, and a customer who moved out loses the meter at the next
//! login.

use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_node::demo::org_key;
use gridledger_proto::v1 as gpb;
use gridledger_tests::{DevNode, Port, table_rows};
use prost::Message as _;
use serde_json::{Value, json};
use tonic::Code;

use crate::util::DEV_ORIGIN;

fn signed(key: &ed25519_dalek::SigningKey, nonce: u64, payload: Payload) -> Vec<u8> {
    // Nonces far above the demo seed's, as in classes.rs.
    gridledger_core::tx::sign(
        key,
        &pb::TxBody {
            origin: DEV_ORIGIN.into(),
            nonce: 9_200_000 + nonce,
            client_time_ms: 0,
            payload: Some(payload),
        },
    )
    .encode_to_vec()
}

/// A binding transaction and its private payload.
fn binding(
    asset: &str,
    value: &pb::CustomerBinding,
    collection: &str,
    replaces: Option<u64>,
    salt: [u8; 32],
) -> (Payload, gpb::PrivatePayload) {
    let payload = value.encode_to_vec();
    let commitment = gridledger_core::private::commitment(&salt, &payload).to_vec();
    (
        Payload::BindCustomer(pb::BindCustomer {
            asset_no: asset.into(),
            commitment,
            collection: collection.into(),
            replaces,
        }),
        gpb::PrivatePayload {
            salt: salt.to_vec(),
            payload,
        },
    )
}

fn parse(b: &str) -> Value {
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"))
}

async fn tree_size(n: &DevNode) -> u64 {
    let (s, b) = n.http(Port::Public, "GET", "/v1/status", None, None).await;
    assert_eq!(s, 200, "{b}");
    parse(&b)["tree_size"].as_u64().unwrap()
}

/// The binding view of `asset` read with `token`: (status, body).
async fn view(n: &DevNode, token: &str, asset: &str) -> (u16, String) {
    n.http(
        Port::Public,
        "GET",
        &format!("/v1/meters/{asset}/binding"),
        Some(token),
        None,
    )
    .await
}

/// Grants a dynamic token; returns (status, token or error body).
async fn try_grant(n: &DevNode, access: &str, item: &str) -> (u16, String) {
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/dynamic-tokens",
            Some(access),
            Some(&json!({ "scope": [item] }).to_string()),
        )
        .await;
    if s == 200 {
        (s, parse(&b)["token"].as_str().unwrap().to_string())
    } else {
        (s, b)
    }
}

/// The rows of a binding view read with a fresh dynamic token for `item`.
async fn rows(
    n: &DevNode,
    access: &str,
    item: &str,
    asset: &str,
) -> Vec<serde_json::Map<String, Value>> {
    let t = n.grant(access, &[item.to_string()]).await;
    let (s, b) = view(n, &t, asset).await;
    assert_eq!(s, 200, "{item}: {b}");
    table_rows(&parse(&b), "bindings")
}

async fn login_new_tenant(n: &DevNode) -> String {
    let body = json!({"username": "new-tenant", "password": "a long enough password"});
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/auth/login",
            None,
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    parse(&b)["access_token"].as_str().unwrap().to_string()
}

async fn my_meters(n: &DevNode, access: &str) -> Vec<String> {
    let (s, b) = n
        .http(Port::Public, "GET", "/v1/me/meters", Some(access), None)
        .await;
    assert_eq!(s, 200, "{b}");
    table_rows(&parse(&b), "meters")
        .iter()
        .map(|r| r["asset_no"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_bindings_are_class_ii_and_resident_accounts_follow_them() {
    let n = DevNode::start(8);
    let meter = "GN-M000000";
    let operator = n.login("gn-operator").await;
    let resident = n.login("resident-1").await;

    // The demo binds every meter; resident-1's meters to resident-1.
    let all = rows(&n, &operator, &format!("binding:{meter}"), meter).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let first = all[0]["leaf_index"].as_u64().unwrap();
    assert_eq!(all[0]["account"], "resident-1");
    assert_eq!(all[0]["current"], true);
    assert!(
        all[0]["installation_point"]
            .as_str()
            .unwrap()
            .starts_with("MP-GN-M000000")
    );
    assert_eq!(all[0]["salt"].as_str().unwrap().len(), 64);
    let own = rows(&n, &resident, &format!("binding:{meter}:resident-1"), meter).await;
    assert_eq!(own, all);

    // The CLI reads it with its own single-use token and verifies every row.
    let o = n.cli(&["meter", "binding", meter, "--json"]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let v = parse(&gridledger_tests::stdout(&o));
    assert_eq!(v["verified"], true);
    assert_eq!(v["rows"][0]["record"]["account"], "resident-1");

    // Refusals, each with its status: the access token itself, a resident asking for
    // every binding, for another account, or for a meter not theirs; other orgs.
    let (s, b) = view(&n, &operator, meter).await;
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("customer bindings are class II"), "{b}");
    let gs_operator = n.login("gs-operator").await;
    let market = n.login("px-market").await;
    for (who, access, item) in [
        (
            "resident, all bindings",
            &resident,
            format!("binding:{meter}"),
        ),
        (
            "resident, another account",
            &resident,
            format!("binding:{meter}:resident-2"),
        ),
        (
            "resident, a meter not theirs",
            &resident,
            "binding:GN-M000004:resident-1".to_string(),
        ),
        (
            "another grid company",
            &gs_operator,
            format!("binding:{meter}"),
        ),
        ("market operator", &market, format!("binding:{meter}")),
        ("malformed item", &operator, format!("binding:{meter}:a:b")),
    ] {
        let (s, b) = try_grant(&n, access, &item).await;
        assert!(s == 403 || s == 400, "{who}: {s} {b}");
    }
    // A readings token does not open bindings, nor a bindings token readings.
    let t = n.grant(&operator, &[format!("readings:{meter}")]).await;
    let (s, b) = view(&n, &t, meter).await;
    assert_eq!(s, 403, "{b}");
    let t = n.grant(&operator, &[format!("binding:{meter}")]).await;
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/meters/{meter}/readings?from=2026-11-01&to=2026-11-02"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 403, "{b}");
    // An unknown meter is refused like a foreign one (no probing).
    let (s, b) = try_grant(&n, &operator, "binding:NO-SUCH-METER").await;
    assert_eq!(s, 403, "{b}");

    // Bad bindings: each refused with a message naming the problem; nothing is written.
    let grid = n.client().await;
    let key = org_key("grid-north");
    let good = pb::CustomerBinding {
        account: "new-tenant".into(),
        installation_point: "MP-GN-M000000, 12 Elm Street, Northtown".into(),
        from: "2026-11-15".into(),
    };
    let with = |f: &dyn Fn(&mut pb::CustomerBinding)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let before = tree_size(&n).await;
    let cases: Vec<(&str, Payload, Option<gpb::PrivatePayload>, Code, &str)> = {
        let mut v = Vec::new();
        let (tx, p) = binding(meter, &good, "bindings", None, [1; 32]);
        v.push((
            "no replaces",
            tx,
            Some(p),
            Code::AlreadyExists,
            "names it in replaces",
        ));
        let (tx, p) = binding(meter, &good, "bindings", Some(first + 1), [2; 32]);
        v.push((
            "wrong replaces",
            tx,
            Some(p),
            Code::FailedPrecondition,
            "current binding is leaf",
        ));
        let (tx, p) = binding("GS-M000001", &good, "bindings", None, [3; 32]);
        v.push((
            "foreign meter",
            tx,
            Some(p),
            Code::PermissionDenied,
            "2.3/owner",
        ));
        let (tx, p) = binding("NO-SUCH-METER", &good, "bindings", None, [4; 32]);
        v.push((
            "unknown meter",
            tx,
            Some(p),
            Code::FailedPrecondition,
            "not registered",
        ));
        let (tx, p) = binding(meter, &good, "readings", Some(first), [5; 32]);
        v.push((
            "collection not covering bindings",
            tx,
            Some(p),
            Code::FailedPrecondition,
            "does not cover binding",
        ));
        let (tx, p) = binding(
            meter,
            &with(&|b| b.account = "two words".into()),
            "bindings",
            Some(first),
            [6; 32],
        );
        v.push(("bad account", tx, Some(p), Code::InvalidArgument, "account"));
        let (tx, p) = binding(
            meter,
            &with(&|b| b.installation_point = " ".into()),
            "bindings",
            Some(first),
            [7; 32],
        );
        v.push((
            "blank installation point",
            tx,
            Some(p),
            Code::InvalidArgument,
            "installation_point",
        ));
        let (tx, p) = binding(
            meter,
            &with(&|b| b.from = "2026-02-30".into()),
            "bindings",
            Some(first),
            [8; 32],
        );
        v.push((
            "bad day",
            tx,
            Some(p),
            Code::InvalidArgument,
            "from must be a day",
        ));
        let (tx, _) = binding(meter, &good, "bindings", Some(first), [9; 32]);
        v.push(("no payload", tx, None, Code::InvalidArgument, "class II"));
        v
    };
    for (i, (why, tx, private, code, text)) in cases.into_iter().enumerate() {
        let e = grid
            .clone()
            .submit(gpb::SubmitRequest {
                signed_tx: signed(&key, i as u64, tx).into(),
                private_payload: private,
            })
            .await
            .expect_err(why);
        assert_eq!(e.code(), code, "{why}: {}", e.message());
        assert!(e.message().contains(text), "{why}: {}", e.message());
    }
    assert_eq!(
        tree_size(&n).await,
        before,
        "a refused binding wrote nothing"
    );
    // The CLI names a bad day before it signs anything.
    let o = n.cli(&[
        "bind",
        meter,
        "--account",
        "x",
        "--point",
        "P",
        "--from",
        "2026-13-01",
    ]);
    assert!(!o.status.success());
    assert!(
        gridledger_tests::stderr(&o).contains("from must be a day"),
        "{}",
        gridledger_tests::stderr(&o)
    );

    // A resident account can be bound only to a meter the ledger binds to it.
    let admin = n.login("gn-admin").await;
    let create = |user: &str| {
        json!({"username": user, "password": "a long enough password",
               "roles": ["resident"], "meters": [meter]})
        .to_string()
    };
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/accounts",
            Some(&admin),
            Some(&create("new-tenant")),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("bound to another customer"), "{b}");

    // The move: the CLI looks up the current binding and replaces it.
    let o = n.cli(&[
        "bind",
        meter,
        "--account",
        "new-tenant",
        "--point",
        "MP-GN-M000000, 12 Elm Street, Northtown",
        "--from",
        "2026-11-15",
    ]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let out = gridledger_tests::stdout(&o);
    let commitment = out
        .lines()
        .find_map(|l| l.strip_prefix("commitment: "))
        .unwrap()
        .to_string();
    let all = rows(&n, &operator, &format!("binding:{meter}"), meter).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["current"], false);
    assert_eq!(all[1]["current"], true);
    assert_eq!(all[1]["replaces"], first);
    assert_eq!(all[1]["account"], "new-tenant");
    // The old customer still sees their own (past) binding and nothing of the new one,
    // and loses the meter at the next login.
    let old = rows(&n, &resident, &format!("binding:{meter}:resident-1"), meter).await;
    assert_eq!(old.len(), 1);
    assert_eq!(old[0]["account"], "resident-1");
    assert_eq!(old[0]["current"], false);
    let again = n.login("resident-1").await;
    assert_eq!(my_meters(&n, &again).await, vec!["GN-M000002".to_string()]);
    let (s, b) = try_grant(&n, &again, &format!("readings:{meter}")).await;
    assert_eq!(s, 403, "the moved-out customer's readings grant: {b}");
    // Now the account can be made, and sees only its own binding.
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/accounts",
            Some(&admin),
            Some(&create("new-tenant")),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = n
        .http(
            Port::Public,
            "POST",
            "/v1/accounts",
            Some(&admin),
            Some(&create("someone-else")),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let tenant = login_new_tenant(&n).await;
    assert_eq!(my_meters(&n, &tenant).await, vec![meter.to_string()]);
    let mine = rows(&n, &tenant, &format!("binding:{meter}:new-tenant"), meter).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["account"], "new-tenant");

    // Retention: the grid company's admin purges the binding's payload. The leaf and
    // commitment stay; the grid company sees `purged_by` and no values; an
    // account-scoped grant sees nothing; the meter then has no customer.
    let purge = Payload::PurgePrivate(pb::PurgePrivate {
        commitment: hex::decode(&commitment).unwrap(),
        reason: "contract ended, retention period over".into(),
    });
    let r = grid
        .clone()
        .submit(gpb::SubmitRequest {
            signed_tx: signed(&key, 100, purge).into(),
            private_payload: None,
        })
        .await
        .unwrap()
        .into_inner();
    let all = rows(&n, &operator, &format!("binding:{meter}"), meter).await;
    assert_eq!(all[1]["purged_by"], r.leaf_index);
    assert!(all[1]["account"].is_null() && all[1]["payload"].is_null());
    assert!(
        rows(&n, &tenant, &format!("binding:{meter}:new-tenant"), meter)
            .await
            .is_empty()
    );
    let again = login_new_tenant(&n).await;
    assert!(my_meters(&n, &again).await.is_empty());
    let o = n.cli(&["meter", "binding", meter, "--json"]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
}

/// The client library refuses a binding row whose shown values differ from the
/// committed payload, whose salt does not open the commitment, or that claims another
/// replaced binding.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_refuses_edited_binding_rows() {
    use gridledger_client::records::{Query, verify_view};
    let n = DevNode::start(4);
    let policy = gridledger_client::profile::load_policy(&n.trust()).unwrap();
    let channel = n.channel(Port::ApiWithCert).await;
    let mut data = gpb::data_service_client::DataServiceClient::new(channel.clone());
    let mut auth = gpb::auth_service_client::AuthServiceClient::new(channel);
    let token = auth
        .issue_dynamic_token(gpb::DynamicTokenRequest {
            scope: vec!["binding:GN-M000002".into()],
            ttl_seconds: 60,
            single_use: false,
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let v = data
        .get_bindings(
            gridledger_client::grpc::with_bearer(
                gpb::RecordQuery {
                    id: "GN-M000002".into(),
                    receipts: true,
                    date: String::new(),
                },
                &token,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    let q = Query {
        asset: Some("GN-M000002".into()),
        period: None,
    };
    let ok = verify_view(&v, &policy, &q).unwrap();
    assert_eq!(ok.rows.len(), 1);
    let edit = |k: &str, val: Value| {
        let mut e = v.clone();
        let mut row = parse(&e.tables[0].rows[0].json);
        row[k] = val;
        e.tables[0].rows[0].json = row.to_string();
        verify_view(&e, &policy, &q).expect_err(k).to_string()
    };
    assert!(edit("account", "someone-else".into()).contains("committed payload says"));
    assert!(edit("installation_point", "elsewhere".into()).contains("committed payload says"));
    assert!(edit("from", "2001-01-01".into()).contains("committed payload says"));
    assert!(edit("salt", hex::encode([0u8; 32]).into()).contains("commitment"));
    assert!(edit("replaces", 3.into()).contains("replaces"));
    assert!(edit("purged_by", 9.into()).contains("purged row carries values"));
    // Asked about another meter: its binding is refused.
    let other = Query {
        asset: Some("GN-M000000".into()),
        period: None,
    };
    assert!(
        verify_view(&v, &policy, &other)
            .unwrap_err()
            .to_string()
            .contains("is about GN-M000002")
    );
}
