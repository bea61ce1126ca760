//! The `gridledger` CLI fails cleanly: exit 2 for operational problems (no profile,
//! missing files, not found, node down), exit 1 when data does not verify, never a panic.

use gridledger_tests::{DevNode, stderr, stdout};

use crate::util::{
    DEV_ORIGIN, assert_no_panic, cli_raw, foreign_verifier_key, policy_json, trust_keys,
};

#[test]
fn commands_without_a_profile_exit_2_naming_gridledger_profile() {
    for args in [
        vec!["status"],
        vec!["checkpoint"],
        vec!["receipt", "--index", "0"],
        vec!["proof", "consistency", "--from", "1"],
        vec!["load", "--count", "1"],
    ] {
        let os: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let o = cli_raw(&os, None);
        assert_no_panic(&format!("{args:?} without profile"), &o);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?} without a profile: stdout {} stderr {}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("GRIDLEDGER_PROFILE"),
            "{args:?}: the message names GRIDLEDGER_PROFILE: {}",
            stderr(&o)
        );
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }
}

#[test]
fn a_profile_that_does_not_exist_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-profile.toml");
    let o = cli_raw(&["status".as_ref()], Some(&missing));
    assert_no_panic("status with a missing profile", &o);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no-such-profile.toml"),
        "{}",
        stderr(&o)
    );
    // A profile that is not TOML.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "endpoint = [not toml").unwrap();
    let o = cli_raw(&["status".as_ref()], Some(&bad));
    assert_no_panic("status with a malformed profile", &o);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));
}

#[test]
fn verify_of_missing_files_fails_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("trust.json");
    std::fs::write(
        &trust,
        policy_json(
            DEV_ORIGIN,
            1,
            &[foreign_verifier_key("gridledger.example/metering/node-1")],
        ),
    )
    .unwrap();
    let missing = dir.path().join("missing.tlog-proof");
    let o = cli_raw(
        &[
            "verify".as_ref(),
            missing.as_os_str(),
            "--trust".as_ref(),
            trust.as_os_str(),
        ],
        None,
    );
    assert_no_panic("verify of a missing receipt", &o);
    assert!(!o.status.success(), "verify of a missing file succeeded");
    assert_eq!(
        o.status.code(),
        Some(2),
        "a missing file is an operational failure, not a verification verdict: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("missing.tlog-proof"),
        "names the file: {}",
        stderr(&o)
    );

    // A missing trust file.
    let receipt = dir.path().join("r.tlog-proof");
    std::fs::write(&receipt, "c2sp.org/tlog-proof@v1\n").unwrap();
    let no_trust = dir.path().join("no-trust.json");
    let o = cli_raw(
        &[
            "verify".as_ref(),
            receipt.as_os_str(),
            "--trust".as_ref(),
            no_trust.as_os_str(),
        ],
        None,
    );
    assert_no_panic("verify with a missing trust file", &o);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-trust.json"), "{}", stderr(&o));

    // A directory instead of a file.
    let o = cli_raw(
        &[
            "verify".as_ref(),
            dir.path().as_os_str(),
            "--trust".as_ref(),
            trust.as_os_str(),
        ],
        None,
    );
    assert_no_panic("verify of a directory", &o);
    assert!(!o.status.success());
}

#[test]
fn receipt_for_an_index_beyond_the_tree_reports_not_found() {
    let node = DevNode::start(20);
    let size = crate::util::size_and_root(&node).0;
    for index in [size, size + 1, u64::MAX] {
        let out = node.dir.join("beyond.tlog-proof");
        let o = node.cli(&[
            "receipt",
            "--index",
            &index.to_string(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_no_panic(&format!("receipt --index {index}"), &o);
        assert_eq!(
            o.status.code(),
            Some(2),
            "receipt --index {index}: {}",
            stderr(&o)
        );
        let e = stderr(&o).to_lowercase();
        assert!(
            e.contains("not found") || e.contains("notfound"),
            "receipt --index {index}: the message says NotFound: {e}"
        );
        assert!(
            e.contains(&index.to_string()),
            "the message names the index: {e}"
        );
        assert!(!out.exists(), "no receipt file is written for a failure");
    }
}

#[test]
fn checkpoint_against_a_policy_with_another_key_does_not_verify() {
    let node = DevNode::start(20);
    // Control: the real policy verifies (and stores light-client state).
    let o = node.cli(&["checkpoint"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let real = std::fs::read(node.trust()).unwrap();
    let name = trust_keys(&node.trust())[0]
        .split('+')
        .next()
        .unwrap()
        .to_string();
    std::fs::write(
        node.trust(),
        policy_json(DEV_ORIGIN, 1, &[foreign_verifier_key(&name)]) + "\n",
    )
    .unwrap();
    let o = node.cli(&["checkpoint"]);
    assert_no_panic("checkpoint with a foreign key", &o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout {} stderr {}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stdout(&o).is_empty(),
        "nothing unverified is printed: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("signature"), "says why: {}", stderr(&o));
    // Receipts and proofs are refused under that policy too.
    let o = node.cli(&["receipt", "--index", "0"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "receipt under a foreign policy: {}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
    let o = node.cli(&["proof", "consistency", "--from", "1"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "proof under a foreign policy: {}",
        stderr(&o)
    );

    // Restoring the real policy makes it verify again.
    std::fs::write(node.trust(), real).unwrap();
    let o = node.cli(&["checkpoint"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn unreachable_node_is_an_operational_failure_not_a_verdict() {
    let mut node = DevNode::start(20);
    node.stop();
    for args in [
        vec!["checkpoint"],
        vec!["status"],
        vec!["receipt", "--index", "0"],
    ] {
        let o = node.cli(&args);
        assert_no_panic(&format!("{args:?} with the node down"), &o);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?} with the node down: {}",
            stderr(&o)
        );
        assert!(!stderr(&o).trim().is_empty());
    }
}
