//! Data classes II and III (DESIGN.md §4) on a real node: readings as salted
//! commitments whose payloads are sealed at rest, read with a dynamic token, verified by
//! the reader and purged without breaking a proof; documents streamed into the object
//! store against their signed anchors, downloaded and verified against both digests.
//! Every bad input is refused with a message that names the problem and writes nothing.

use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_node::demo::org_key;
use gridledger_proto::v1 as gpb;
use gridledger_tests::{DevNode, Port, table_rows};
use prost::Message as _;
use serde_json::Value;
use tonic::Code;

use crate::util::DEV_ORIGIN;

/// A transaction signed by a demo org key. Nonces are offset far above the demo seed's
/// (whose order among token-key registrations varies from run to run), so a test's
/// nonce never collides with one the seed used.
fn signed(key: &ed25519_dalek::SigningKey, nonce: u64, payload: Payload) -> Vec<u8> {
    gridledger_core::tx::sign(
        key,
        &pb::TxBody {
            origin: DEV_ORIGIN.into(),
            nonce: 9_100_000 + nonce,
            client_time_ms: 0,
            payload: Some(payload),
        },
    )
    .encode_to_vec()
}

async fn tree_size(n: &DevNode) -> u64 {
    let (s, b) = n.http(Port::Public, "GET", "/v1/status", None, None).await;
    assert_eq!(s, 200, "{b}");
    serde_json::from_str::<Value>(&b).unwrap()["tree_size"]
        .as_u64()
        .unwrap()
}

/// A reading of `asset` on `day` with fresh salt: (transaction, private payload,
/// commitment).
fn reading(
    asset: &str,
    day: &str,
    collection: &str,
    values: &pb::ReadingValues,
    salt: [u8; 32],
) -> (Payload, gpb::PrivatePayload, Vec<u8>) {
    let payload = values.encode_to_vec();
    let commitment = gridledger_core::private::commitment(&salt, &payload).to_vec();
    (
        Payload::RecordReading(pb::RecordReading {
            asset_no: asset.into(),
            day: day.into(),
            corrects: None,
            commitment: commitment.clone(),
            collection: collection.into(),
        }),
        gpb::PrivatePayload {
            salt: salt.to_vec(),
            payload,
        },
        commitment,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn class_ii_readings_are_committed_sealed_verified_and_purgeable() {
    let mut n = DevNode::start(20);
    let mut c = n.client().await;
    let grid = org_key("grid-north");
    let values = pb::ReadingValues {
        import_wh: (0..96).map(|i| 100 + i).collect(),
        export_wh: vec![0; 96],
        register_import_wh: 1_234_567,
        register_export_wh: 89,
    };
    let meter = "GN-M000002";
    let day = "2026-11-20";
    let (tx, private, commitment) = reading(meter, day, "readings", &values, [7; 32]);
    let submit =
        |nonce: u64, payload: Payload, private: Option<gpb::PrivatePayload>| gpb::SubmitRequest {
            signed_tx: signed(&grid, nonce, payload).into(),
            private_payload: private,
        };
    let before = tree_size(&n).await;

    // Bad input: each refused with a message naming the problem; nothing is written.
    let mut wrong_salt = private.clone();
    wrong_salt.salt = vec![8; 32];
    let mut short_salt = private.clone();
    short_salt.salt = vec![7; 16];
    let too_many = pb::ReadingValues {
        import_wh: vec![1; 97],
        ..Default::default()
    };
    let (tx97, p97, _) = reading(meter, day, "readings", &too_many, [9; 32]);
    let (foreign, pf, _) = reading("GS-M000001", day, "readings", &values, [10; 32]);
    let (unknown, pu, _) = reading("NO-SUCH-METER", day, "readings", &values, [11; 32]);
    let (uncovered, pc, _) = reading(meter, day, "no-such-collection", &values, [12; 32]);
    let (future, pfu, _) = reading(meter, "2099-01-01", "readings", &values, [13; 32]);
    let class_i = Payload::CastVote(pb::CastVote {
        proposal_id: "nothing".into(),
        approve: true,
    });
    let cases: Vec<(&str, gpb::SubmitRequest, Code, &str)> = vec![
        (
            "no payload",
            submit(1, tx.clone(), None),
            Code::InvalidArgument,
            "class II",
        ),
        (
            "wrong salt",
            submit(2, tx.clone(), Some(wrong_salt)),
            Code::InvalidArgument,
            "do not match",
        ),
        (
            "short salt",
            submit(3, tx.clone(), Some(short_salt)),
            Code::InvalidArgument,
            "32 bytes",
        ),
        (
            "97 intervals",
            submit(4, tx97, Some(p97)),
            Code::InvalidArgument,
            "at most 96",
        ),
        (
            "another grid company's meter",
            submit(5, foreign, Some(pf)),
            Code::PermissionDenied,
            "4.6/owner",
        ),
        (
            "unknown meter",
            submit(6, unknown, Some(pu)),
            Code::FailedPrecondition,
            "4.6/instrument",
        ),
        // Sealing needs the collection's key, so a node refuses before ordering (the
        // contract's 4.6/collection is the replicas' check; see core/tests/classes.rs).
        (
            "unknown collection",
            submit(7, uncovered, Some(pc)),
            Code::FailedPrecondition,
            "no key for collection",
        ),
        (
            "day in the future",
            submit(8, future, Some(pfu)),
            Code::FailedPrecondition,
            "4.6/date",
        ),
        (
            "payload beside a class I transaction",
            submit(9, class_i, Some(private.clone())),
            Code::InvalidArgument,
            "only for class II",
        ),
    ];
    for (what, req, code, needle) in cases {
        let e = c.submit(req).await.expect_err(what);
        assert_eq!(e.code(), code, "{what}: {e:?}");
        assert!(e.message().contains(needle), "{what}: {}", e.message());
    }
    assert_eq!(tree_size(&n).await, before, "nothing was written");

    // The good reading: the leaf holds only the commitment.
    let r = c
        .submit(submit(20, tx.clone(), Some(private.clone())))
        .await
        .unwrap()
        .into_inner();
    let leaf = r.leaf_index;
    // A second reading with the same commitment (a reused salt) is refused.
    let (again, pa, _) = reading(meter, "2026-11-21", "readings", &values, [7; 32]);
    let e = c.submit(submit(21, again, Some(pa))).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(e.message().contains("fresh salt"), "{}", e.message());

    // Read it as the market operator would, through a dynamic token, and verify every
    // row with the client library: receipt, commitment, values.
    let market = n.login("px-market").await;
    let grant = n.grant(&market, &[format!("readings:{meter}")]).await;
    let path = format!("/v1/meters/{meter}/readings?from={day}&to={day}&receipt=true");
    let (s, b) = n.http(Port::Public, "GET", &path, Some(&grant), None).await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let rows = table_rows(&v, "readings");
    assert_eq!(rows.len(), 1, "{b}");
    assert_eq!(rows[0]["leaf_index"], leaf);
    assert_eq!(rows[0]["import_wh"], values.import_wh.iter().sum::<u64>());
    assert_eq!(rows[0]["register_import_wh"], 1_234_567);
    assert_eq!(rows[0]["salt"], hex::encode([7u8; 32]));
    let policy = gridledger_client::profile::load_policy(&n.trust()).unwrap();
    let verify = |view: &gpb::DataView| {
        gridledger_client::records::verify_view(
            view,
            &policy,
            &gridledger_client::records::Query {
                asset: Some(meter.into()),
                period: None,
            },
        )
    };
    let data = gpb::data_service_client::DataServiceClient::new(n.channel(Port::Public).await);
    let view = |token: String| {
        let mut data = data.clone();
        async move {
            data.settlement_check(
                gridledger_client::grpc::with_bearer(
                    gpb::SettlementRequest {
                        asset_no: meter.into(),
                        from: day.into(),
                        to: day.into(),
                        receipts: true,
                    },
                    &token,
                )
                .unwrap(),
            )
            .await
            .unwrap()
            .into_inner()
        }
    };
    let verified = verify(&view(grant.clone()).await).unwrap();
    assert!(verified.rows.iter().any(|r| r.leaf_index == leaf));

    // Purge (retention): not with the dev CLI's operator key, yes with the owner's
    // admin key; the row then says purged and carries no values, and still verifies.
    let hex_c = hex::encode(&commitment);
    let o = n.cli(&["purge", "--commitment", &hex_c, "--reason", "retention"]);
    assert!(!o.status.success());
    assert!(
        gridledger_tests::stderr(&o).contains("3/purge"),
        "{}",
        gridledger_tests::stderr(&o)
    );
    let purge = |nonce| {
        submit(
            nonce,
            Payload::PurgePrivate(pb::PurgePrivate {
                commitment: commitment.clone(),
                reason: "retention period over".into(),
            }),
            None,
        )
    };
    let purged = c.submit(purge(30)).await.unwrap().into_inner().leaf_index;
    let e = c.submit(purge(31)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    assert!(e.message().contains("was purged"), "{}", e.message());
    let check_purged = |b: &str| {
        let v: Value = serde_json::from_str(b).unwrap();
        let rows = table_rows(&v, "readings");
        assert_eq!(rows[0]["purged_by"], purged, "{b}");
        assert!(
            rows[0]["import_wh"].is_null() && rows[0]["salt"].is_null(),
            "{b}"
        );
    };
    let (s, b) = n.http(Port::Public, "GET", &path, Some(&grant), None).await;
    assert_eq!(s, 200, "{b}");
    check_purged(&b);
    let verified = verify(&view(grant.clone()).await).unwrap();
    assert!(verified.rows.iter().any(|r| r.leaf_index == leaf));
    // The demo's own reading of the meter is untouched.
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/meters/{meter}/readings?from=2026-11-01&to=2026-11-01"),
            Some(&grant),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        table_rows(&serde_json::from_str(&b).unwrap(), "readings")[0]["import_wh"].is_u64(),
        "{b}"
    );

    // A restart keeps the purge and the sealed payloads of the others.
    n.stop();
    n.spawn();
    let grant = n
        .grant(&n.login("px-market").await, &[format!("readings:{meter}")])
        .await;
    let (s, b) = n.http(Port::Public, "GET", &path, Some(&grant), None).await;
    assert_eq!(s, 200, "{b}");
    check_purged(&b);
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/meters/{meter}/readings?from=2026-11-01&to=2026-11-01"),
            Some(&grant),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let rows = table_rows(&serde_json::from_str(&b).unwrap(), "readings");
    assert!(
        rows[0]["import_wh"].is_u64() && rows[0]["salt"].is_string(),
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn class_iii_documents_stream_in_verified_and_bad_uploads_leave_nothing() {
    let n = DevNode::start(20);
    // A binary file (every byte value), bigger than one upload chunk.
    let content: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let file = n.dir.join("VC-2026-000002-scan.pdf");
    std::fs::write(&file, &content).unwrap();
    let d = gridledger_client::documents::digest_file(&file).unwrap();
    assert_eq!(d.size, content.len() as u64);

    // Upload with the CLI (the dev profile's grid-north key signs the anchor).
    let o = n.cli(&[
        "document",
        "put",
        file.to_str().unwrap(),
        "--subject",
        "VC-2026-000002",
    ]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let out = gridledger_tests::stdout(&o);
    assert!(out.contains(&d.sha256) && out.contains(&d.md5), "{out}");

    // Download verified: receipt, then size, SHA-256 and MD5 against the proven anchor.
    let copy = n.dir.join("copy.pdf");
    let o = n.cli(&[
        "document",
        "get",
        &d.sha256,
        "--out",
        copy.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let v: Value = serde_json::from_str(&gridledger_tests::stdout(&o)).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["md5"], d.md5.as_str());
    assert_eq!(std::fs::read(&copy).unwrap(), content);

    // The anchor as ImageJson, for any authenticated caller; the bytes over HTTP.
    let token = n.login("resident-1").await;
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/documents/{}?receipt=true", d.sha256),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let img: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(img["type"], "ImageJson");
    assert_eq!(img["size"], content.len());
    assert_eq!(img["subject"], "VC-2026-000002");
    assert_eq!(img["stored"], true);
    assert!(img["receipt"].as_str().unwrap().contains("c2sp.org"), "{b}");
    let (s, _) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/documents/{}", d.sha256),
            None,
            None,
        )
        .await;
    assert_eq!(s, 401, "anonymous callers get no documents");
    let (s, bytes) = gridledger_tests::http_bytes(
        &n.addr(Port::Public),
        &n.dir.join("ca.pem"),
        None,
        "GET",
        img["download"].as_str().unwrap(),
        &[("authorization", format!("Bearer {token}"))],
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(bytes, content);

    // Bad uploads over HTTP, each with a fresh anchor signed by the institution.
    let nmc = org_key("inst-nmc");
    let verifier = n.login("nmc-verifier").await;
    let anchor = |nonce: u64, body: &[u8], size: Option<u64>, sha: Option<&str>| {
        let mut h = gridledger_core::private::DocumentHasher::default();
        h.update(body);
        let dg = h.finish();
        let tx = signed(
            &nmc,
            nonce,
            Payload::AnchorDocument(pb::AnchorDocument {
                sha256: sha.map(str::to_string).unwrap_or(dg.sha256),
                md5: dg.md5,
                size: size.unwrap_or(dg.size),
                media_type: "image/png".into(),
                file_name: "auth.png".into(),
                subject: "inst-nmc".into(),
            }),
        );
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(tx)
    };
    let upload = |a: Option<String>, body: Vec<u8>| {
        let (n, verifier) = (&n, verifier.clone());
        async move {
            let mut headers = vec![("authorization", format!("Bearer {verifier}"))];
            if let Some(a) = a {
                headers.push(("x-gridledger-anchor", a));
            }
            let (s, b) = gridledger_tests::http_bytes(
                &n.addr(Port::Public),
                &n.dir.join("ca.pem"),
                None,
                "POST",
                "/v1/documents",
                &headers,
                &body,
            )
            .await;
            (s, String::from_utf8_lossy(&b).into_owned())
        }
    };
    let before = tree_size(&n).await;
    let real = b"authorisation document, page 1".to_vec();
    let other_sha = hex::encode([0xabu8; 32]);
    // (what, anchor header, body, expected status, words the message must contain)
    type Case<'a> = (&'a str, Option<String>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("no anchor", None, real.clone(), 400, "x-gridledger-anchor"),
        (
            "anchor not base64",
            Some("%%%".into()),
            real.clone(),
            400,
            "base64",
        ),
        (
            "digest mismatch",
            Some(anchor(1, &real, None, Some(&other_sha))),
            real.clone(),
            400,
            "does not match its anchor",
        ),
        (
            "bytes past the declared size",
            Some(anchor(2, &real, Some(5), None)),
            real.clone(),
            400,
            "runs past",
        ),
        (
            "over the node's limit",
            Some(anchor(3, &real, Some(64 << 20), None)),
            real.clone(),
            413,
            "at most",
        ),
        (
            "already anchored",
            Some(anchor(4, &content, None, None)),
            content.clone(),
            409,
            "already anchored",
        ),
    ];
    for (what, a, body, want, needle) in cases {
        let (s, b) = upload(a, body).await;
        assert_eq!(s, want, "{what}: {b}");
        assert!(b.contains(needle), "{what}: {b}");
    }
    // A forged anchor (its signature's last byte flipped) is refused before any byte is
    // stored.
    {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut forged = b64.decode(anchor(6, &real, None, None)).unwrap();
        *forged.last_mut().unwrap() ^= 1;
        let (s, b) = upload(Some(b64.encode(forged)), real.clone()).await;
        assert_eq!(s, 401, "{b}");
        assert!(b.contains("does not verify"), "{b}");
    }
    assert_eq!(tree_size(&n).await, before, "no anchor was written");
    // Nor any bytes: the object store has no file for the refused digests.
    let stored = |sha: &str| {
        n.dir
            .join("documents/sha256")
            .join(&sha[..2])
            .join(sha)
            .exists()
    };
    assert!(stored(&d.sha256), "the store layout this check relies on");
    let mut h = gridledger_core::private::DocumentHasher::default();
    h.update(&real);
    let real_sha = h.finish().sha256;
    assert!(
        !stored(&other_sha) && !stored(&real_sha),
        "refused uploads left bytes"
    );
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            &format!("/v1/documents/{other_sha}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = n
        .http(
            Port::Public,
            "GET",
            "/v1/documents/not-a-digest",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, 400, "{b}");
    // The same bytes, uploaded properly, are accepted (the refused attempt left nothing).
    let (s, b) = upload(Some(anchor(5, &real, None, None)), real.clone()).await;
    assert_eq!(s, 201, "{b}");
    let img: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(img["size"], real.len());
    // The curl way: the CLI prints a signed anchor, the body is the file.
    let letter = n.dir.join("authorisation-letter.txt");
    std::fs::write(&letter, b"authorisation letter for inst-nmc").unwrap();
    let o = n.cli(&[
        "document",
        "anchor",
        letter.to_str().unwrap(),
        "--subject",
        "inst-nmc",
        "--media-type",
        "text/plain",
    ]);
    assert!(o.status.success(), "{}", gridledger_tests::stderr(&o));
    let a = gridledger_tests::stdout(&o).trim().to_string();
    let (s, b) = upload(Some(a), std::fs::read(&letter).unwrap()).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        serde_json::from_str::<Value>(&b).unwrap()["media_type"],
        "text/plain"
    );
}
