//! Transport security on a real node: expired client certificates, certificate reload
//! without a restart, the public listener from curl, and per-identity limits.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use gridledger_tests::{DevNode, Port, bin, http_request, stderr, stdout};
use serde_json::Value;
use tonic::Code;

fn pki(args: &[&str]) {
    let o = Command::new(bin("gridledger-node"))
        .arg("pki")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "pki {args:?}: {}", stderr(&o));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn api(n: &DevNode) -> String {
    n.endpoints()["http"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_string()
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    let n = DevNode::start(4);
    let out = tempfile::tempdir().unwrap();
    pki(&[
        "org",
        "--ca",
        s(&n.dir),
        "--out",
        s(out.path()),
        "--org",
        "grid-north",
        "--name",
        "stale",
        "--days",
        "0",
    ]);
    pki(&[
        "org",
        "--ca",
        s(&n.dir),
        "--out",
        s(out.path()),
        "--org",
        "grid-north",
        "--name",
        "fresh",
    ]);
    // --days 0 expires at issue time; let the clock pass it.
    std::thread::sleep(Duration::from_millis(1500));
    let ca = n.dir.join("ca.pem");
    let pair = |name: &str| {
        (
            out.path().join(format!("{name}.pem")),
            out.path().join(format!("{name}-key.pem")),
        )
    };
    let (c, k) = pair("fresh");
    let (st, b) = http_request(
        &api(&n),
        &ca,
        Some((&c, &k)),
        "GET",
        "/v1/records/0/receipt",
        None,
        None,
    )
    .await;
    assert_eq!(
        st, 200,
        "control: a valid certificate of the same CA gets in: {b}"
    );
    let (c, k) = pair("stale");
    let (st, b) = http_request(
        &api(&n),
        &ca,
        Some((&c, &k)),
        "GET",
        "/v1/records/0/receipt",
        None,
        None,
    )
    .await;
    assert_eq!(
        st, 0,
        "expired certificate must be refused, got HTTP {st}: {b}"
    );
}

#[tokio::test]
async fn certificates_reload_without_a_restart() {
    let n = DevNode::start(4);
    let pid = n.pid();
    let t = tempfile::tempdir().unwrap();
    let ca2 = t.path().join("ca2");
    pki(&["ca", "--out", s(&ca2), "--org", "Rotated Consortium"]);
    pki(&[
        "node",
        "--ca",
        s(&ca2),
        "--out",
        s(&ca2),
        "--node-id",
        "node-1",
        "--org",
        "grid-north",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
    ]);
    pki(&[
        "org",
        "--ca",
        s(&ca2),
        "--out",
        s(&ca2),
        "--org",
        "grid-north",
        "--name",
        "erp2",
    ]);
    let old_ca = t.path().join("ca1.pem");
    std::fs::copy(n.dir.join("ca.pem"), &old_ca).unwrap();
    let old = (n.dir.join("client.pem"), n.dir.join("client-key.pem"));
    let new = (ca2.join("erp2.pem"), ca2.join("erp2-key.pem"));
    let get = |ca: &Path, pair: &(std::path::PathBuf, std::path::PathBuf)| {
        let (ca, pair, addr) = (ca.to_path_buf(), pair.clone(), api(&n));
        async move {
            http_request(
                &addr,
                &ca,
                Some((&pair.0, &pair.1)),
                "GET",
                "/v1/records/0/receipt",
                None,
                None,
            )
            .await
            .0
        }
    };
    assert_eq!(get(&old_ca, &old).await, 200);
    assert_eq!(
        get(&ca2.join("ca.pem"), &new).await,
        0,
        "not trusted before the rotation"
    );

    // Rotate the server certificate and the client CA in place, then SIGHUP.
    std::fs::copy(ca2.join("node-1.pem"), n.dir.join("node.pem")).unwrap();
    std::fs::copy(ca2.join("node-1-key.pem"), n.dir.join("node-key.pem")).unwrap();
    std::fs::copy(ca2.join("ca.pem"), n.dir.join("ca.pem")).unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&ca2.join("ca.pem"), &new).await != 200 {
        assert!(
            Instant::now() < deadline,
            "new certificates not served after SIGHUP; log:\n{}",
            n.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        get(&old_ca, &old).await,
        0,
        "the old CA's certificates are refused after the reload"
    );
    assert_eq!(n.pid(), pid, "same process");

    // A broken file is not loaded: the node keeps serving with what it has.
    std::fs::write(n.dir.join("node.pem"), "not a certificate").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(&ca2.join("ca.pem"), &new).await, 200);
    assert!(n.log().contains("TLS reload failed"), "{}", n.log());
}

#[tokio::test]
async fn public_listener_works_from_curl_with_a_login_token() {
    let n = DevNode::start(8);
    let public = n.endpoints()["public"].as_str().unwrap().to_string();
    let port = public.rsplit(':').next().unwrap();
    let base = format!("https://localhost:{port}");
    let ca = n.dir.join("ca.pem");
    let a = n.account("resident-1");
    let curl = |args: &[&str]| {
        let o = Command::new("curl")
            .args([
                "-sS",
                "--cacert",
                s(&ca),
                "--resolve",
                &format!("localhost:{port}:127.0.0.1"),
            ])
            .args(args)
            .output()
            .expect("curl (scripts/setup.sh installs it)");
        assert!(o.status.success(), "curl {args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let body = serde_json::json!({"username": a.username, "password": a.password}).to_string();
    let login: Value = serde_json::from_str(&curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("{base}/v1/auth/login"),
    ]))
    .unwrap();
    assert_eq!(login["token_type"], "Bearer");
    let token = login["access_token"].as_str().unwrap();
    let mine: Value = serde_json::from_str(&curl(&[
        "-H",
        &format!("authorization: Bearer {token}"),
        &format!("{base}/v1/me/meters"),
    ]))
    .unwrap();
    let rows = gridledger_tests::table_rows(&mine, "meters");
    let got: Vec<&str> = rows
        .iter()
        .map(|m| m["asset_no"].as_str().unwrap())
        .collect();
    assert_eq!(got, a.meters.iter().map(String::as_str).collect::<Vec<_>>());
    // Without a token: 401 with a JSON reason.
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{base}/v1/me/meters"),
    ]);
    assert_eq!(code, "401");
    // The public listener asks for no client certificate; the JWKS is public.
    let jwks: Value =
        serde_json::from_str(&curl(&[&format!("{base}/.well-known/jwks.json")])).unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["crv"] == "Ed25519" && k["alg"] == "EdDSA")
    );
}

#[tokio::test]
async fn per_identity_concurrency_limit_answers_resource_exhausted() {
    let mut n = DevNode::start(4);
    n.stop();
    let cfg_path = n.dir.join("node.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("per_identity_concurrent = 256"), "{cfg}");
    std::fs::write(
        &cfg_path,
        cfg.replace(
            "per_identity_concurrent = 256",
            "per_identity_concurrent = 2",
        ),
    )
    .unwrap();
    n.spawn();

    // Two block streams of the grid-north system hold its two slots.
    let mut chain = ChainServiceClient::new(n.channel(Port::ApiWithCert).await);
    let s1 = chain
        .watch_blocks(pb::WatchBlocksRequest {
            from_height: 1,
            include_leaves: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let s2 = chain
        .watch_blocks(pb::WatchBlocksRequest {
            from_height: 1,
            include_leaves: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let e = chain
        .get_status(pb::GetStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(
        e.message().contains("too many concurrent requests"),
        "{e:?}"
    );
    let (st, b) = n
        .http(Port::ApiWithCert, "GET", "/v1/status", None, None)
        .await;
    assert_eq!(st, 429, "{b}");
    // Other identities are unaffected.
    assert_eq!(
        n.http(Port::Public, "GET", "/v1/status", None, None)
            .await
            .0,
        200
    );
    // Ending the streams frees the slots.
    drop((s1, s2));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match chain.get_status(pb::GetStatusRequest::default()).await {
            Ok(_) => break,
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("slots not freed: {e:?}"),
        }
    }
}

#[tokio::test]
async fn oversized_messages_are_resource_exhausted_and_bodies_413() {
    let n = DevNode::start(4);
    let before = n
        .http(Port::Public, "GET", "/v1/status", None, None)
        .await
        .1;
    let mut chain = ChainServiceClient::new(n.channel(Port::ApiWithCert).await)
        .max_encoding_message_size(64 << 20);
    // Over limits.max_message_bytes (4 MiB): refused before decoding.
    let e = chain
        .submit(pb::SubmitRequest {
            private_payload: None,
            signed_tx: vec![0u8; 5 << 20].into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("too large"), "{e:?}");
    // Same limit on a stream item.
    let items = futures::stream::iter(vec![pb::SubmitRequest {
        private_payload: None,
        signed_tx: vec![0u8; 5 << 20].into(),
    }]);
    let r = chain.submit_stream(items).await;
    let code = match r {
        Err(e) => e.code(),
        Ok(resp) => panic!("an oversized stream item was accepted: {resp:?}"),
    };
    assert_eq!(code, Code::ResourceExhausted);
    // HTTP bodies over limits.max_http_body_bytes (1 MiB).
    let big = format!(r#"{{"username":"x","password":"{}"}}"#, "p".repeat(2 << 20));
    let (s, _) = n
        .http(Port::Public, "POST", "/v1/auth/login", None, Some(&big))
        .await;
    assert_eq!(s, 413);
    assert_eq!(
        n.http(Port::Public, "GET", "/v1/status", None, None)
            .await
            .1,
        before,
        "nothing changed"
    );
}

#[tokio::test]
async fn submit_stream_rate_limit_answers_resource_exhausted_per_transaction() {
    let mut n = DevNode::start(4);
    n.stop();
    let cfg_path = n.dir.join("node.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("stream_tx_per_sec = 200000"), "{cfg}");
    std::fs::write(
        &cfg_path,
        cfg.replace("stream_tx_per_sec = 200000", "stream_tx_per_sec = 200"),
    )
    .unwrap();
    n.spawn();
    let before: Value = serde_json::from_str(&stdout(&n.cli(&["status", "--json"]))).unwrap();
    let o = n.cli(&[
        "load",
        "--count",
        "2000",
        "--stream",
        "--concurrency",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let committed = r["committed"].as_u64().unwrap();
    // One second's burst (200) plus what the rate refills while the stream runs.
    assert!((200..2000).contains(&committed), "{r}");
    assert_eq!(r["rejected"].as_u64().unwrap() + committed, 2000, "{r}");
    let e = r["first_error"].as_str().unwrap();
    assert!(
        e.contains("RESOURCE_EXHAUSTED") && e.contains("stream rate limit"),
        "{e}"
    );
    // Exactly the committed ones reached the ledger.
    let after: Value = serde_json::from_str(&stdout(&n.cli(&["status", "--json"]))).unwrap();
    assert_eq!(
        after["tree_size"].as_u64().unwrap() - before["tree_size"].as_u64().unwrap(),
        committed
    );
}
