//! External witnesses: a witness follows the log (consistency from its last size),
//! cosigns with a C2SP tlog-cosignature/v1 key and hands the line in; the node verifies it
//! against its configured witness keys, attaches it to the checkpoint it serves, and a
//! client whose policy requires the witness accepts the receipt. Bad cosignatures change
//! nothing.

use ed25519_dalek::SigningKey;
use gridledger_core::note::{Cosigner, SignedNote};
use gridledger_tests::{DevNode, Port, stderr, stdout};

use crate::util::{DEV_ORIGIN, trust_keys};

fn checkpoint(n: &DevNode) -> SignedNote {
    let o = n.cli(&["checkpoint"]);
    assert!(o.status.success(), "{}", stderr(&o));
    SignedNote::parse(&stdout(&o)).unwrap()
}

#[tokio::test]
async fn witness_cosignatures_are_verified_attached_and_required_by_policy() {
    let mut n = DevNode::start(4);
    let witness = Cosigner::new(
        "witness.example/regulator",
        SigningKey::from_bytes(&[77; 32]),
    )
    .unwrap();
    let stranger = Cosigner::new(
        "witness.example/regulator",
        SigningKey::from_bytes(&[78; 32]),
    )
    .unwrap();
    n.stop();
    let cfg_path = n.dir.join("node.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    assert!(cfg.contains("witness_keys = []"), "{cfg}");
    let cfg = cfg.replace(
        "witness_keys = []",
        &format!("witness_keys = [{:?}]", witness.verifier_key().to_string()),
    );
    std::fs::write(&cfg_path, cfg).unwrap();
    n.spawn();

    // The witness's first view, then it follows: new entries, and a consistency proof
    // from its last size before it cosigns the new checkpoint.
    let first = checkpoint(&n);
    let first_size: u64 = first.text.lines().nth(1).unwrap().parse().unwrap();
    let o = n.cli(&["load", "--count", "50", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cp = checkpoint(&n);
    let size: u64 = cp.text.lines().nth(1).unwrap().parse().unwrap();
    assert!(size > first_size);
    let o = n.cli(&[
        "proof",
        "consistency",
        "--from",
        &first_size.to_string(),
        "--to",
        &size.to_string(),
    ]);
    assert!(
        o.status.success(),
        "the witness checks consistency first: {}",
        stderr(&o)
    );

    let post = |note: String| {
        let n = &n;
        async move {
            n.http(
                Port::Public,
                "POST",
                "/v1/witness/cosignatures",
                None,
                Some(&note),
            )
            .await
        }
    };
    let cosigned = |signer: &Cosigner, text: &str| {
        SignedNote {
            text: text.to_string(),
            sigs: vec![signer.cosign(text, 1_767_225_600)],
        }
        .to_string()
    };
    // Bad input first: nothing is attached.
    let (s, b) = post(cosigned(&stranger, &cp.text)).await;
    assert_eq!(s, 401, "an unconfigured key: {b}");
    let forged = cp.text.replace(
        cp.text.lines().nth(2).unwrap(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let (s, b) = post(cosigned(&witness, &forged)).await;
    assert_eq!(s, 422, "a root that is not this ledger's: {b}");
    let (s, b) = post("not a note".into()).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(checkpoint(&n).sigs.len(), 1, "nothing attached");

    let (s, b) = post(cosigned(&witness, &cp.text)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains(r#""accepted":1"#), "{b}");

    // The node now serves the witnessed checkpoint with the witness line, and a policy
    // that requires the witness accepts the receipt; the same receipt without the
    // witness line would not meet it.
    let served = checkpoint(&n);
    assert_eq!(served.text, cp.text);
    assert!(
        served
            .sigs
            .iter()
            .any(|l| l.name == "witness.example/regulator"),
        "{served:?}"
    );
    let policy = n.dir.join("witnessed.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "origin": DEV_ORIGIN, "quorum": 1, "keys": trust_keys(&n.trust()),
            "witnesses": [witness.verifier_key().to_string()], "witness_quorum": 1,
        })
        .to_string(),
    )
    .unwrap();
    let r = n.dir.join("w.tlog-proof");
    let o = n.cli(&["receipt", "--index", "3", "-o", r.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = n.cli(&[
        "verify",
        r.to_str().unwrap(),
        "--trust",
        policy.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&r).unwrap();
    let stripped: String = text
        .lines()
        .filter(|l| !l.contains("witness.example"))
        .map(|l| format!("{l}\n"))
        .collect();
    let bare = n.dir.join("bare.tlog-proof");
    std::fs::write(&bare, stripped).unwrap();
    let o = n.cli(&[
        "verify",
        bare.to_str().unwrap(),
        "--trust",
        policy.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = gridledger_tests::python_verify(&[
        "receipt".as_ref(),
        "--trust".as_ref(),
        policy.as_os_str(),
        r.as_os_str(),
    ]);
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
