//! Receipts for random leaves verify with the CLI and with the independent verifier.

use gridledger_tests::{DevNode, python_verify, stderr, stdout};

#[test]
fn receipts_for_random_leaves_verify_with_cli_and_independent_verifier() {
    let node = DevNode::start(50);
    let status: serde_json::Value =
        serde_json::from_str(&stdout(&node.cli(&["status", "--json"]))).expect("status json");
    let size = status["tree_size"].as_u64().unwrap();
    assert!(size > 100, "demo seeded: {status}");
    for i in 0..8u64 {
        let index = (rand::random::<u64>() % size).to_string();
        let out = node.dir.join(format!("r{i}.tlog-proof"));
        let o = node.cli(&["receipt", "--index", &index, "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "receipt {index}: {}", stderr(&o));
        let v = node.cli(&[
            "verify",
            out.to_str().unwrap(),
            "--trust",
            node.trust().to_str().unwrap(),
        ]);
        assert!(v.status.success(), "verify {index}: {}", stderr(&v));
        assert!(
            stdout(&v).starts_with(&format!("OK: leaf {index} ")),
            "{}",
            stdout(&v)
        );
        let p = python_verify(&[
            "receipt".as_ref(),
            out.as_os_str(),
            "--trust".as_ref(),
            node.trust().as_os_str(),
        ]);
        assert!(
            p.status.success(),
            "independent verifier rejected leaf {index}: {}",
            stderr(&p)
        );
    }
}
