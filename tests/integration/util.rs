//! Small helpers shared by the integration modules (no product logic here).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use ed25519_dalek::SigningKey;
use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_proto::v1 as gpb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use gridledger_tests::{DevNode, bin, stderr, stdout};
use prost::Message as _;
use tonic::transport::Channel;

/// Origin of every dev node.
pub const DEV_ORIGIN: &str = "gridledger.example/metering";

/// `gridledger status --json`, parsed; panics with the CLI's stderr if it fails.
pub fn status_json(node: &DevNode) -> serde_json::Value {
    let o = node.cli(&["status", "--json"]);
    assert!(o.status.success(), "status failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("status is not JSON ({e}): {}", stdout(&o)))
}

/// (tree_size, hex root) from `gridledger status --json`.
pub fn size_and_root(node: &DevNode) -> (u64, String) {
    let s = status_json(node);
    (
        s["tree_size"].as_u64().expect("tree_size"),
        s["root"].as_str().expect("root").to_string(),
    )
}

/// Tree size through gRPC.
pub async fn grpc_tree_size(c: &mut ChainServiceClient<Channel>) -> u64 {
    c.get_status(gpb::GetStatusRequest::default())
        .await
        .expect("GetStatus")
        .into_inner()
        .tree_size
}

/// Asserts a process did not panic (Rust) or crash with a traceback (Python).
pub fn assert_no_panic(what: &str, o: &Output) {
    let e = stderr(o);
    assert!(
        !e.contains("panicked"),
        "{what}: the process panicked:\n{e}"
    );
    assert!(
        !e.contains("Traceback"),
        "{what}: the process crashed with a traceback:\n{e}"
    );
    // A signal death (e.g. SIGABRT on a double panic) has no exit code.
    assert!(
        o.status.code().is_some(),
        "{what}: killed by a signal ({:?}); stderr:\n{e}",
        o.status
    );
}

/// Runs `gridledger-node audit --config DIR/node.toml --quiet` (the node must be stopped).
pub fn audit(node: &DevNode) -> Output {
    Command::new(bin("gridledger-node"))
        .args(["audit", "--config"])
        .arg(node.dir.join("node.toml"))
        .arg("--quiet")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run gridledger-node audit")
}

/// Runs the `gridledger` CLI with an explicit environment (no profile unless given).
pub fn cli_raw(args: &[&OsStr], profile: Option<&Path>) -> Output {
    let mut c = Command::new(bin("gridledger"));
    c.args(args)
        .env_remove("GRIDLEDGER_PROFILE")
        .stdin(std::process::Stdio::null());
    if let Some(p) = profile {
        c.env("GRIDLEDGER_PROFILE", p);
    }
    c.output().expect("run gridledger")
}

/// A fresh random Ed25519 key.
pub fn fresh_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// The verifier key string `name+keyid+base64(0x01||pub)` of a fresh key named like the
/// dev node's key (so only the key differs from the real policy).
pub fn foreign_verifier_key(name: &str) -> String {
    gridledger_core::note::NoteSigner::new(name, fresh_key())
        .expect("note signer")
        .verifier_key()
        .to_string()
}

/// A trust policy JSON text.
pub fn policy_json(origin: &str, quorum: usize, keys: &[String]) -> String {
    serde_json::json!({ "origin": origin, "quorum": quorum, "keys": keys, "witnesses": [], "witness_quorum": 0 }).to_string()
}

/// The node keys of a trust.json.
pub fn trust_keys(trust: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trust).expect("read trust")).expect("trust json");
    v["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k.as_str().expect("key").to_string())
        .collect()
}

/// Encoded SignedTx registering one instrument owned by `org`, signed by `key`.
pub fn instrument_tx(
    key: &SigningKey,
    origin: &str,
    org: &str,
    nonce: u64,
    asset: &str,
    ratings: &str,
) -> Vec<u8> {
    let body = pb::TxBody {
        origin: origin.to_string(),
        nonce,
        client_time_ms: 0,
        payload: Some(Payload::RegisterInstrument(pb::RegisterInstrument {
            asset_no: asset.to_string(),
            serial_no: format!("SN-{asset}"),
            manufacturer_org: "sup-alpha".into(),
            model: "DDZY-TEST".into(),
            kind: pb::InstrumentKind::Meter as i32,
            accuracy_class: "1".into(),
            ratings: ratings.to_string(),
            owner_org: org.to_string(),
        })),
    };
    gridledger_core::tx::sign(key, &body).encode_to_vec()
}

/// A valid, never-seen RegisterInstrument by the CLI's key (grid-north operator).
pub fn valid_tx(node: &DevNode) -> Vec<u8> {
    let n: u64 = rand::random();
    instrument_tx(
        &node.signing_key(),
        DEV_ORIGIN,
        "grid-north",
        n,
        &format!("IT-{n:016x}"),
        "220V 5(60)A",
    )
}
