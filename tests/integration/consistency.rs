//! Consistency holds across growth: checkpoints before and after 3000 transactions are
//! linked by a proof that the CLI verifies and the independent verifier accepts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gridledger_tests::{DevNode, python_verify, stderr, stdout};

use crate::util::assert_no_panic;

/// The tree size line of a checkpoint note.
fn note_size(note: &str) -> u64 {
    note.lines()
        .nth(1)
        .expect("size line")
        .parse()
        .expect("size is a number")
}

fn checkpoint(node: &DevNode) -> String {
    let o = node.cli(&["checkpoint"]);
    assert!(o.status.success(), "checkpoint: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn consistency_proof_across_3000_new_transactions_verifies_independently() {
    let node = DevNode::start(20);
    let old = checkpoint(&node);
    let old_path = node.dir.join("old.note");
    std::fs::write(&old_path, &old).unwrap();
    let old_size = note_size(&old);

    // `gridledger checkpoint` output is a note the independent verifier accepts.
    let p = python_verify(&[
        "checkpoint".as_ref(),
        old_path.as_os_str(),
        "--trust".as_ref(),
        node.trust().as_os_str(),
    ]);
    assert!(
        p.status.success(),
        "independent verifier rejected `gridledger checkpoint` output: {}",
        stderr(&p)
    );
    assert!(
        stdout(&p).starts_with(&format!(
            "OK checkpoint gridledger.example/metering {old_size} "
        )),
        "{}",
        stdout(&p)
    );

    let l = node.cli(&["load", "--count", "3000", "--json"]);
    assert!(l.status.success(), "load: {}", stderr(&l));
    let report: serde_json::Value = serde_json::from_str(stdout(&l).trim())
        .unwrap_or_else(|e| panic!("load --json output is not JSON ({e}): {}", stdout(&l)));
    assert_eq!(
        report["committed"].as_u64(),
        Some(3000),
        "load report: {report}"
    );
    assert_eq!(
        report["rejected"].as_u64(),
        Some(0),
        "load report: {report}"
    );
    assert_eq!(
        report["submitted"].as_u64(),
        Some(3000),
        "load report: {report}"
    );

    let new = checkpoint(&node);
    let new_path = node.dir.join("new.note");
    std::fs::write(&new_path, &new).unwrap();
    let new_size = note_size(&new);
    assert_eq!(
        new_size,
        old_size + 3000,
        "the tree grew by exactly the committed transactions"
    );

    let o = node.cli(&[
        "proof",
        "consistency",
        "--from",
        &old_size.to_string(),
        "--to",
        &new_size.to_string(),
    ]);
    assert!(o.status.success(), "proof consistency: {}", stderr(&o));
    let proof = stdout(&o);
    let lines: Vec<&str> = proof.lines().collect();
    assert!(
        !lines.is_empty(),
        "a proof between different sizes is not empty"
    );
    for l in &lines {
        let raw = B64
            .decode(l)
            .unwrap_or_else(|_| panic!("proof line {l:?} is not base64"));
        assert_eq!(raw.len(), 32, "proof line {l:?} is not a SHA-256 hash");
    }
    let proof_path = node.dir.join("proof.txt");
    std::fs::write(&proof_path, &proof).unwrap();
    let p = python_verify(&[
        "consistency".as_ref(),
        "--old".as_ref(),
        old_path.as_os_str(),
        "--new".as_ref(),
        new_path.as_os_str(),
        "--proof".as_ref(),
        proof_path.as_os_str(),
        "--trust".as_ref(),
        node.trust().as_os_str(),
    ]);
    assert!(
        p.status.success(),
        "independent verifier rejected the consistency proof: {}",
        stderr(&p)
    );
    assert_eq!(
        stdout(&p).trim(),
        format!("OK consistency {old_size} -> {new_size}")
    );

    // Negative control: the same check must be able to fail.
    let mut bad: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    let mut h = B64.decode(&bad[0]).unwrap();
    h[0] ^= 1;
    bad[0] = B64.encode(h);
    let bad_path = node.dir.join("bad-proof.txt");
    std::fs::write(&bad_path, bad.join("\n") + "\n").unwrap();
    let p = python_verify(&[
        "consistency".as_ref(),
        "--old".as_ref(),
        old_path.as_os_str(),
        "--new".as_ref(),
        new_path.as_os_str(),
        "--proof".as_ref(),
        bad_path.as_os_str(),
        "--trust".as_ref(),
        node.trust().as_os_str(),
    ]);
    assert_eq!(
        p.status.code(),
        Some(1),
        "a corrupted proof must fail: {}",
        stdout(&p)
    );
    let p = python_verify(&[
        "consistency".as_ref(),
        "--old".as_ref(),
        new_path.as_os_str(),
        "--new".as_ref(),
        old_path.as_os_str(),
        "--proof".as_ref(),
        proof_path.as_os_str(),
        "--trust".as_ref(),
        node.trust().as_os_str(),
    ]);
    assert_eq!(
        p.status.code(),
        Some(1),
        "swapped checkpoints must fail: {}",
        stdout(&p)
    );

    // --from 1 to the latest.
    let o = node.cli(&["proof", "consistency", "--from", "1"]);
    assert!(
        o.status.success(),
        "proof consistency --from 1: {}",
        stderr(&o)
    );
    assert!(
        !stdout(&o).trim().is_empty(),
        "a proof from size 1 to {new_size} has hashes"
    );
    for l in stdout(&o).lines() {
        assert_eq!(B64.decode(l).map(|v| v.len()).ok(), Some(32), "line {l:?}");
    }

    // An intermediate size to the latest, verified by the CLI against the checkpoint.
    let mid = (old_size + new_size) / 2;
    let o = node.cli(&[
        "proof",
        "consistency",
        "--from",
        &old_size.to_string(),
        "--to",
        &mid.to_string(),
    ]);
    assert!(
        o.status.success(),
        "proof consistency --to {mid}: {}",
        stderr(&o)
    );
}

#[test]
fn consistency_proof_from_beyond_the_tree_is_refused_clearly() {
    let node = DevNode::start(20);
    let size = note_size(&checkpoint(&node));
    let beyond = (size + 1000).to_string();
    let o = node.cli(&["proof", "consistency", "--from", &beyond]);
    assert_no_panic("proof consistency --from beyond", &o);
    assert!(
        !o.status.success(),
        "--from beyond the tree must fail; stdout {}",
        stdout(&o)
    );
    assert!(
        stdout(&o).is_empty(),
        "nothing printed as a proof: {}",
        stdout(&o)
    );
    let e = stderr(&o);
    assert!(e.starts_with("error: "), "{e}");
    assert!(
        e.contains(&beyond),
        "the message names the size asked for: {e}"
    );
    assert!(
        e.contains(&size.to_string())
            || e.to_lowercase().contains("larger")
            || e.to_lowercase().contains("beyond"),
        "the message says why: {e}"
    );

    // --to beyond the tree is refused too.
    let o = node.cli(&["proof", "consistency", "--from", "1", "--to", &beyond]);
    assert_no_panic("proof consistency --to beyond", &o);
    assert!(!o.status.success(), "--to beyond the tree must fail");
    assert!(stderr(&o).contains(&beyond), "{}", stderr(&o));

    // --from 0 proves nothing and is refused.
    let o = node.cli(&["proof", "consistency", "--from", "0"]);
    assert_no_panic("proof consistency --from 0", &o);
    assert!(
        !o.status.success(),
        "--from 0 must fail; stdout {}",
        stdout(&o)
    );
    assert!(!stderr(&o).trim().is_empty());
}
