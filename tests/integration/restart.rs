//! Data survives a graceful restart: same tree, old receipts still verify, new
//! submissions continue, and the light client's persisted state keeps working.

use gridledger_tests::{DevNode, python_verify, stderr, stdout};

use crate::util::size_and_root;

#[test]
fn ledger_receipts_and_light_client_state_survive_graceful_restart() {
    let mut node = DevNode::start(20);
    let (size, root) = size_and_root(&node);
    let status_before = crate::util::status_json(&node);

    // A receipt and a checkpoint (the latter stores the light client's state).
    let receipt = node.dir.join("before.tlog-proof");
    let o = node.cli(&["receipt", "--index", "7", "-o", receipt.to_str().unwrap()]);
    assert!(o.status.success(), "receipt: {}", stderr(&o));
    let cp = node.cli(&["checkpoint"]);
    assert!(cp.status.success(), "checkpoint: {}", stderr(&cp));
    let state_dir = node.dir.join("client-state");
    let state_files: Vec<_> = std::fs::read_dir(&state_dir)
        .expect("client-state exists after checkpoint")
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        state_files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "checkpoint")),
        "light client state persisted: {state_files:?}"
    );

    node.stop();
    // The node is really down: the CLI cannot reach it.
    let down = node.cli(&["status", "--json"]);
    assert!(
        !down.status.success(),
        "status must fail while the node is stopped"
    );
    node.spawn();

    let (size2, root2) = size_and_root(&node);
    assert_eq!(
        (size2, &root2),
        (size, &root),
        "tree size and root unchanged by a restart"
    );
    let status_after = crate::util::status_json(&node);
    assert_eq!(status_after["height"], status_before["height"]);
    assert_eq!(
        status_after["tx_counts"], status_before["tx_counts"],
        "per-kind counts survive the restart"
    );

    // The old receipt still verifies, with both verifiers.
    let v = node.cli(&[
        "verify",
        receipt.to_str().unwrap(),
        "--trust",
        node.trust().to_str().unwrap(),
    ]);
    assert!(
        v.status.success(),
        "old receipt after restart: {}",
        stderr(&v)
    );
    let p = python_verify(&[
        "receipt".as_ref(),
        receipt.as_os_str(),
        "--trust".as_ref(),
        node.trust().as_os_str(),
    ]);
    assert!(
        p.status.success(),
        "old receipt after restart (python): {}",
        stderr(&p)
    );

    // The served checkpoint is the same one, byte for byte (same size, same signer).
    let cp2 = node.cli(&["checkpoint"]);
    assert!(
        cp2.status.success(),
        "checkpoint right after restart: {}",
        stderr(&cp2)
    );
    assert_eq!(
        stdout(&cp2),
        stdout(&cp),
        "same tree, same signed checkpoint after restart"
    );

    // New submissions continue where the log left off.
    let l = node.cli(&["load", "--count", "100", "--json"]);
    assert!(l.status.success(), "load after restart: {}", stderr(&l));
    let r: serde_json::Value = serde_json::from_str(stdout(&l).trim()).expect("load json");
    assert_eq!(r["committed"].as_u64(), Some(100), "{r}");
    let (size3, root3) = size_and_root(&node);
    assert_eq!(size3, size + 100, "the tree grows by 100 after the restart");
    assert_ne!(root3, root);

    // The light client (persisted state from before the restart) accepts the grown
    // tree: this needs a consistency proof from the pre-restart checkpoint.
    let cp3 = node.cli(&["checkpoint"]);
    assert!(
        cp3.status.success(),
        "checkpoint after restart and growth: {}",
        stderr(&cp3)
    );
    assert!(
        stderr(&cp3).is_empty(),
        "no warnings expected: {}",
        stderr(&cp3)
    );
    assert_eq!(
        stdout(&cp3).lines().nth(1),
        Some(size3.to_string().as_str())
    );

    // A receipt of a new leaf and one of an old leaf both verify after the restart.
    for idx in [size + 50, 7] {
        let f = node.dir.join(format!("after-{idx}.tlog-proof"));
        let o = node.cli(&[
            "receipt",
            "--index",
            &idx.to_string(),
            "-o",
            f.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "receipt {idx} after restart: {}",
            stderr(&o)
        );
        let p = python_verify(&[
            "receipt".as_ref(),
            f.as_os_str(),
            "--trust".as_ref(),
            node.trust().as_os_str(),
        ]);
        assert!(
            p.status.success(),
            "receipt {idx} after restart (python): {}",
            stderr(&p)
        );
    }

    // A second restart after growth keeps the grown tree.
    node.stop();
    node.spawn();
    assert_eq!(size_and_root(&node), (size3, root3));
    let cp4 = node.cli(&["checkpoint"]);
    assert!(
        cp4.status.success(),
        "checkpoint after second restart: {}",
        stderr(&cp4)
    );
}
