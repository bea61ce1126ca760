//! Bad input gets the right gRPC status with a descriptive message and changes nothing;
//! clients without a certificate of the consortium CA are refused.

use std::collections::BTreeMap;

use gridledger_proto::v1 as gpb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use gridledger_tests::DevNode;
use prost::Message as _;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::util::{DEV_ORIGIN, fresh_key, grpc_tree_size, instrument_tx, valid_tx};

/// Asserts an RPC failed with `code` and a message that mentions one of `needles`
/// (case-insensitive).
fn assert_status<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, tonic::Status>,
    code: Code,
    needles: &[&str],
) {
    let s = match r {
        Ok(v) => panic!("{what}: expected {code:?}, got OK: {v:?}"),
        Err(s) => s,
    };
    assert_eq!(
        s.code(),
        code,
        "{what}: wrong code; message {:?}",
        s.message()
    );
    let m = s.message().to_lowercase();
    assert!(
        m.trim().len() >= 10,
        "{what}: message is not descriptive: {:?}",
        s.message()
    );
    assert!(
        needles.iter().any(|n| m.contains(&n.to_lowercase())),
        "{what}: message {:?} mentions none of {needles:?}",
        s.message()
    );
}

async fn submit(
    c: &mut ChainServiceClient<Channel>,
    tx: Vec<u8>,
) -> Result<gpb::SubmitResponse, tonic::Status> {
    c.submit(gpb::SubmitRequest {
        private_payload: None,
        signed_tx: tx.into(),
    })
    .await
    .map(|r| r.into_inner())
}

/// Runs one bad submission on a fresh node and checks the tree did not change.
async fn bad_submit(
    make_tx: impl FnOnce(&DevNode) -> Vec<u8>,
    code: Code,
    needles: &[&str],
    what: &str,
) {
    let node = DevNode::start(20);
    let mut c = node.client().await;
    let before = grpc_tree_size(&mut c).await;
    let tx = make_tx(&node);
    assert_status(what, submit(&mut c, tx).await, code, needles);
    assert_eq!(
        grpc_tree_size(&mut c).await,
        before,
        "{what}: the tree changed"
    );
    // The node still accepts good transactions afterwards.
    let ok = submit(&mut c, valid_tx(&node))
        .await
        .unwrap_or_else(|s| panic!("{what}: a valid tx after the bad one was refused: {s:?}"));
    assert_eq!(
        ok.leaf_index, before,
        "{what}: the next good tx gets the next index"
    );
}

fn flip_signature_bit(tx: &[u8]) -> Vec<u8> {
    let mut s = gpb::SignedTx::decode(tx).expect("signed tx");
    s.signature[0] ^= 0x01;
    s.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_of_non_protobuf_bytes_is_invalid_argument() {
    bad_submit(
        |_| vec![0xff; 10],
        Code::InvalidArgument,
        &["protobuf", "signedtx", "malformed"],
        "Submit [0xff; 10]",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_of_empty_signed_tx_is_invalid_argument() {
    bad_submit(
        |_| Vec::new(),
        Code::InvalidArgument,
        &["empty"],
        "Submit empty",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_with_flipped_signature_bit_is_unauthenticated() {
    let node = DevNode::start(20);
    let mut c = node.client().await;
    let before = grpc_tree_size(&mut c).await;
    let good = valid_tx(&node);
    let bad = flip_signature_bit(&good);
    assert_status(
        "Submit with a flipped signature bit",
        submit(&mut c, bad).await,
        Code::Unauthenticated,
        &["signature"],
    );
    assert_eq!(grpc_tree_size(&mut c).await, before, "the tree changed");
    // The original, correctly signed, is still accepted: the bad copy did not burn its nonce.
    let ok = submit(&mut c, good)
        .await
        .expect("the correctly signed original is accepted");
    assert_eq!(ok.leaf_index, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_signed_by_unregistered_key_is_unauthenticated() {
    let tx = |_: &DevNode| {
        instrument_tx(
            &fresh_key(),
            DEV_ORIGIN,
            "grid-north",
            1,
            "IT-UNKNOWN-KEY",
            "220V",
        )
    };
    bad_submit(
        tx,
        Code::Unauthenticated,
        &["not registered", "signer"],
        "Submit by an unknown key",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_replayed_transaction_is_already_exists() {
    let node = DevNode::start(20);
    let mut c = node.client().await;
    let before = grpc_tree_size(&mut c).await;
    let tx = valid_tx(&node);
    let first = submit(&mut c, tx.clone()).await.expect("first submission");
    assert_eq!(first.leaf_index, before);
    assert_eq!(first.tree_size, before + 1);
    assert_status(
        "replayed Submit",
        submit(&mut c, tx.clone()).await,
        Code::AlreadyExists,
        &["nonce"],
    );
    assert_eq!(
        grpc_tree_size(&mut c).await,
        before + 1,
        "the replay changed the tree"
    );
    // Still refused after a restart (nonces are persisted, not just cached).
    let mut node = node;
    node.stop();
    node.spawn();
    let mut c = node.client().await;
    assert_status(
        "replayed Submit after restart",
        submit(&mut c, tx).await,
        Code::AlreadyExists,
        &["nonce"],
    );
    assert_eq!(grpc_tree_size(&mut c).await, before + 1);
}

/// A RegisterInstrument whose encoded SignedTx is exactly `size` bytes.
fn tx_of_size(node: &DevNode, size: usize) -> Vec<u8> {
    let key = node.signing_key();
    let n: u64 = rand::random();
    let asset = format!("IT-BIG-{n:016x}");
    let mut ratings_len = size.saturating_sub(1000);
    loop {
        let tx = instrument_tx(
            &key,
            DEV_ORIGIN,
            "grid-north",
            n,
            &asset,
            &"R".repeat(ratings_len),
        );
        match tx.len().cmp(&size) {
            std::cmp::Ordering::Equal => return tx,
            std::cmp::Ordering::Less => ratings_len += 1,
            std::cmp::Ordering::Greater => {
                panic!("cannot hit exactly {size} bytes (jumped to {})", tx.len())
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_over_64_kib_is_resource_exhausted() {
    let node = DevNode::start(20);
    let key = node.signing_key();
    let mut c = node.client().await;
    let before = grpc_tree_size(&mut c).await;
    let big = instrument_tx(
        &key,
        DEV_ORIGIN,
        "grid-north",
        rand::random(),
        "IT-HUGE",
        &"x".repeat(70_000),
    );
    assert!(big.len() > 64 * 1024);
    assert_status(
        "Submit of a 70 000-byte ratings tx",
        submit(&mut c, big).await,
        Code::ResourceExhausted,
        &["65536", "limit"],
    );
    assert_eq!(grpc_tree_size(&mut c).await, before, "the tree changed");

    // The limit is exact: 65 537 bytes refused, 65 536 bytes accepted.
    let over = tx_of_size(&node, 64 * 1024 + 1);
    assert_status(
        "Submit of 65 537 bytes",
        submit(&mut c, over).await,
        Code::ResourceExhausted,
        &["65537", "limit"],
    );
    assert_eq!(grpc_tree_size(&mut c).await, before);
    // A transaction of exactly 64 KiB passes the size limit and reaches the contracts,
    // which judge its content (every payload field has its own bound; here the padded
    // ratings text is over its 256 bytes).
    let at = tx_of_size(&node, 64 * 1024);
    assert_status(
        "Submit of exactly 65 536 bytes",
        submit(&mut c, at).await,
        Code::InvalidArgument,
        &["rule shape", "ratings"],
    );
    assert_eq!(grpc_tree_size(&mut c).await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_for_another_origin_is_invalid_argument() {
    // Signed by a registered operator, valid in every way except the origin.
    let tx = |n: &DevNode| {
        instrument_tx(
            &n.signing_key(),
            "gridledger.example/other-channel",
            "grid-north",
            rand::random(),
            "IT-OTHER-ORIGIN",
            "220V",
        )
    };
    bad_submit(
        tx,
        Code::InvalidArgument,
        &["origin"],
        "Submit for another origin",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_beyond_the_tree_are_not_found_and_impossible_ranges_invalid() {
    let node = DevNode::start(20);
    let mut c = node.client().await;
    let st = c
        .get_status(gpb::GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (size, height) = (st.tree_size, st.height);
    assert!(size > 0 && height > 0);

    // Controls: the last valid item of each kind exists.
    c.get_entry(gpb::GetEntryRequest {
        index: size - 1,
        ..Default::default()
    })
    .await
    .expect("last leaf exists");
    c.get_inclusion_proof(gpb::GetInclusionProofRequest {
        index: 0,
        tree_size: size,
        ..Default::default()
    })
    .await
    .expect("proof at the tree size");
    c.get_consistency_proof(gpb::GetConsistencyProofRequest {
        old_size: 1,
        new_size: size,
        ..Default::default()
    })
    .await
    .expect("consistency 1 -> size");
    c.get_block(gpb::GetBlockRequest {
        height,
        include_leaves: false,
        ..Default::default()
    })
    .await
    .expect("top block exists");

    assert_status(
        "GetEntry(tree_size)",
        c.get_entry(gpb::GetEntryRequest {
            index: size,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &[&size.to_string()],
    );
    assert_status(
        "GetEntry(u64::MAX)",
        c.get_entry(gpb::GetEntryRequest {
            index: u64::MAX,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &["does not exist", "tree size"],
    );
    assert_status(
        "GetInclusionProof(tree_size + 1)",
        c.get_inclusion_proof(gpb::GetInclusionProofRequest {
            index: 0,
            tree_size: size + 1,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &["beyond", &(size + 1).to_string()],
    );
    assert_status(
        "GetInclusionProof(index = size)",
        c.get_inclusion_proof(gpb::GetInclusionProofRequest {
            index: size,
            tree_size: 0,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &[&size.to_string()],
    );
    assert_status(
        "GetConsistencyProof(old > new)",
        c.get_consistency_proof(gpb::GetConsistencyProofRequest {
            old_size: 10,
            new_size: 5,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        &["larger", "old size"],
    );
    assert_status(
        "GetConsistencyProof(old = 0)",
        c.get_consistency_proof(gpb::GetConsistencyProofRequest {
            old_size: 0,
            new_size: size,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        &["at least 1", "old size"],
    );
    assert_status(
        "GetConsistencyProof(new beyond the tree)",
        c.get_consistency_proof(gpb::GetConsistencyProofRequest {
            old_size: 1,
            new_size: size + 1,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &["beyond"],
    );
    assert_status(
        "GetBlock(0)",
        c.get_block(gpb::GetBlockRequest {
            height: 0,
            include_leaves: false,
            ..Default::default()
        })
        .await,
        Code::InvalidArgument,
        &["start at 1", "height"],
    );
    assert_status(
        "GetBlock(height + 1)",
        c.get_block(gpb::GetBlockRequest {
            height: height + 1,
            include_leaves: true,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &[&(height + 1).to_string()],
    );
    assert_status(
        "GetReceipt(tree_size)",
        c.get_receipt(gpb::GetReceiptRequest {
            index: size,
            ..Default::default()
        })
        .await,
        Code::NotFound,
        &[&size.to_string()],
    );
    assert_eq!(grpc_tree_size(&mut c).await, size, "reads changed the tree");
}

#[tokio::test(flavor = "multi_thread")]
async fn submit_stream_judges_each_transaction_and_reports_positions_and_codes() {
    let node = DevNode::start(20);
    let mut c = node.client().await;
    let replayed = valid_tx(&node);
    submit(&mut c, replayed.clone())
        .await
        .expect("first submission of the tx replayed later");
    let before = grpc_tree_size(&mut c).await;

    let good1 = valid_tx(&node);
    let good2 = valid_tx(&node);
    let stream: Vec<(Vec<u8>, Option<&str>)> = vec![
        (good1.clone(), None),
        (vec![0xff; 10], Some("INVALID_ARGUMENT")),
        (good2.clone(), None),
        (replayed, Some("ALREADY_EXISTS")),
        (
            flip_signature_bit(&valid_tx(&node)),
            Some("UNAUTHENTICATED"),
        ),
        (
            instrument_tx(
                &fresh_key(),
                DEV_ORIGIN,
                "grid-north",
                5,
                "IT-STREAM-UNKNOWN",
                "220V",
            ),
            Some("UNAUTHENTICATED"),
        ),
        (
            instrument_tx(
                &node.signing_key(),
                DEV_ORIGIN,
                "grid-north",
                rand::random(),
                "IT-STREAM-HUGE",
                &"x".repeat(70_000),
            ),
            Some("RESOURCE_EXHAUSTED"),
        ),
        (Vec::new(), Some("INVALID_ARGUMENT")),
        (
            instrument_tx(
                &node.signing_key(),
                "another/origin",
                "grid-north",
                rand::random(),
                "IT-STREAM-ORIGIN",
                "220V",
            ),
            Some("INVALID_ARGUMENT"),
        ),
        (
            instrument_tx(
                &node.signing_key(),
                DEV_ORIGIN,
                "grid-south",
                rand::random(),
                "IT-STREAM-SOUTH",
                "220V",
            ),
            Some("PERMISSION_DENIED"),
        ),
    ];
    let reqs: Vec<gpb::SubmitRequest> = stream
        .iter()
        .map(|(b, _)| gpb::SubmitRequest {
            private_payload: None,
            signed_tx: b.clone().into(),
        })
        .collect();
    let r = c
        .submit_stream(tokio_stream::iter(reqs))
        .await
        .expect("SubmitStream")
        .into_inner();

    assert_eq!(r.received, stream.len() as u64);
    assert_eq!(r.committed, 2, "{r:?}");
    assert_eq!(r.leaf_indexes.len(), 2, "{r:?}");
    let got: BTreeMap<u64, String> = r
        .errors
        .iter()
        .map(|e| (e.position, e.code.clone()))
        .collect();
    assert_eq!(got.len(), r.errors.len(), "one error per position: {r:?}");
    let want: BTreeMap<u64, String> = stream
        .iter()
        .enumerate()
        .filter_map(|(i, (_, c))| c.map(|c| (i as u64, c.to_string())))
        .collect();
    assert_eq!(got, want, "errors by position");
    for e in &r.errors {
        assert!(
            e.message.trim().len() >= 10,
            "error at {} has no descriptive message: {e:?}",
            e.position
        );
    }
    assert_eq!(
        grpc_tree_size(&mut c).await,
        before + 2,
        "exactly the two good transactions were appended"
    );
    // leaf_indexes are in stream order: good1 then good2, stored verbatim.
    for (idx, tx) in r.leaf_indexes.iter().zip([&good1, &good2]) {
        let e = c
            .get_entry(gpb::GetEntryRequest {
                index: *idx,
                ..Default::default()
            })
            .await
            .expect("entry")
            .into_inner();
        assert_eq!(&e.leaf, tx, "leaf {idx}");
    }
}

/// The node's gRPC endpoint from endpoints.json.
fn endpoint(node: &DevNode) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(node.dir.join("endpoints.json")).unwrap()).unwrap();
    v["grpc"].as_str().unwrap().to_string()
}

/// Connects with the dev CA as the only trust root and an optional client identity,
/// then makes the first RPC. Under TLS 1.3 a refused client certificate may only show
/// on the first RPC, so both steps count.
async fn first_rpc(node: &DevNode, identity: Option<Identity>) -> Result<u64, String> {
    let ca = std::fs::read(node.dir.join("ca.pem")).unwrap();
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(id) = identity {
        tls = tls.identity(id);
    }
    let ch = Channel::from_shared(endpoint(node))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| format!("tls config: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut c = ChainServiceClient::new(ch);
    c.get_status(gpb::GetStatusRequest::default())
        .await
        .map(|r| r.into_inner().tree_size)
        .map_err(|s| format!("get_status: {:?} {}", s.code(), s.message()))
}

#[tokio::test(flavor = "multi_thread")]
async fn client_without_certificate_is_refused() {
    let node = DevNode::start(20);
    // Control: the same connection code with the profile's certificate works.
    let id = Identity::from_pem(
        std::fs::read(node.dir.join("client.pem")).unwrap(),
        std::fs::read(node.dir.join("client-key.pem")).unwrap(),
    );
    let size = first_rpc(&node, Some(id))
        .await
        .expect("with the consortium client certificate the first RPC succeeds");
    assert!(size > 0);
    let r = first_rpc(&node, None).await;
    assert!(
        r.is_err(),
        "a client without a certificate got an answer: tree size {r:?}"
    );
    // The node keeps serving authorised clients afterwards.
    let mut c = node.client().await;
    assert_eq!(grpc_tree_size(&mut c).await, size);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_from_another_ca_is_refused() {
    let node = DevNode::start(20);
    let other = gridledger_node::pki::Ca::new("intruder consortium").expect("ca");
    // Same names as the real client certificate: only the issuer differs.
    let pem = other.client("dev-cli", "grid-north").expect("client cert");
    let r = first_rpc(&node, Some(Identity::from_pem(pem.cert, pem.key))).await;
    assert!(
        r.is_err(),
        "a client certificate from another CA got an answer: tree size {r:?}"
    );
    let mut c = node.client().await;
    assert!(
        grpc_tree_size(&mut c).await > 0,
        "the node still serves authorised clients"
    );
}
