//! Tampering with a stopped node's RocksDB is caught: `gridledger-node audit` reports a
//! changed leaf, and a changed tree node of the latest block stops the node from
//! starting (so it never serves or signs from tampered storage).

use std::time::Duration;

use gridledger_node::store::rocks::RocksStore;
use gridledger_node::store::{Cf, Durability, Store as _, WriteBatch};
use gridledger_tests::{DevNode, stderr, stdout};

use crate::util::{audit, size_and_root};

/// Flips one bit of a stored value in the stopped node's ledger; returns the old value.
fn tamper(node: &DevNode, cf: Cf, key: &[u8], byte: usize) -> Vec<u8> {
    let store =
        RocksStore::open(&node.dir.join("data/ledger")).expect("open the stopped node's RocksDB");
    let old = store
        .get(cf, key)
        .expect("read")
        .unwrap_or_else(|| panic!("no value at {:?} key {}", cf, hex::encode(key)));
    let mut new = old.clone();
    let at = byte % new.len();
    new[at] ^= 0x01;
    let mut b = WriteBatch::new();
    b.put(cf, key.to_vec(), new.clone());
    store.write(b, Durability::Sync).expect("write");
    assert_eq!(
        store.get(cf, key).unwrap().as_deref(),
        Some(new.as_slice()),
        "the change is stored"
    );
    old
}

fn put(node: &DevNode, cf: Cf, key: &[u8], value: Vec<u8>) {
    let store =
        RocksStore::open(&node.dir.join("data/ledger")).expect("open the stopped node's RocksDB");
    let mut b = WriteBatch::new();
    b.put(cf, key.to_vec(), value);
    store.write(b, Durability::Sync).expect("write");
}

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![level];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

#[test]
fn audit_reports_a_changed_leaf() {
    let mut node = DevNode::start(20);
    let (size, _) = size_and_root(&node);
    node.stop();

    // Control: the untouched ledger audits clean.
    let a = audit(&node);
    assert_eq!(
        a.status.code(),
        Some(0),
        "audit of an untouched ledger: {} {}",
        stdout(&a),
        stderr(&a)
    );
    assert!(
        stdout(&a).starts_with(&format!("audit ok: {size} leaves")),
        "{}",
        stdout(&a)
    );

    // A leaf of one of the last blocks, which the start-up check re-hashes.
    let leaf = size - 2;
    tamper(&node, Cf::Leaves, &leaf.to_be_bytes(), 40);

    let a = audit(&node);
    let out = stdout(&a);
    assert_eq!(
        a.status.code(),
        Some(1),
        "audit must fail on a changed leaf: stdout {out} stderr {}",
        stderr(&a)
    );
    assert!(out.contains("audit FAILED"), "{out}");
    assert!(
        out.contains(&format!("leaf {leaf}")),
        "the report names the changed leaf {leaf}: {out}"
    );
    assert!(!stderr(&a).contains("panicked"), "{}", stderr(&a));

    // The changed leaf is inside the range the start-up check re-hashes (the last 32
    // blocks): the node refuses to start (and so to sign).
    let status = node
        .spawn_expect_exit(std::time::Duration::from_secs(20))
        .expect("a node on a ledger with a changed leaf must refuse to start");
    assert!(!status.success(), "{status}");
    assert!(node.log().contains("corrupt"), "{}", node.log());
}

#[test]
fn audit_reports_a_changed_tree_node_and_block_header() {
    let mut node = DevNode::start(20);
    node.stop();
    // An interior node (level 1, index 2, i.e. over leaves 4 and 5).
    let old = tamper(&node, Cf::Nodes, &node_key(1, 2), 0);
    let a = audit(&node);
    assert_eq!(a.status.code(), Some(1), "{} {}", stdout(&a), stderr(&a));
    assert!(
        stdout(&a).contains("audit FAILED") && stdout(&a).contains("level 1 index 2"),
        "{}",
        stdout(&a)
    );
    put(&node, Cf::Nodes, &node_key(1, 2), old);
    let a = audit(&node);
    assert_eq!(
        a.status.code(),
        Some(0),
        "restored node audits clean again: {} {}",
        stdout(&a),
        stderr(&a)
    );

    // Block 2's header: its root field (bytes 65..97) ...
    let a = {
        let old = tamper(&node, Cf::Blocks, &2u64.to_be_bytes(), 70);
        let a = audit(&node);
        put(&node, Cf::Blocks, &2u64.to_be_bytes(), old);
        a
    };
    assert_eq!(
        a.status.code(),
        Some(1),
        "a changed block root must fail the audit: {} {}",
        stdout(&a),
        stderr(&a)
    );
    assert!(
        stdout(&a).contains("audit FAILED") && stdout(&a).contains("block 2"),
        "names block 2: {}",
        stdout(&a)
    );
    // ... and its timestamp (bytes 97..105), which breaks the hash chain to block 3.
    let a = {
        let old = tamper(&node, Cf::Blocks, &2u64.to_be_bytes(), 100);
        let a = audit(&node);
        put(&node, Cf::Blocks, &2u64.to_be_bytes(), old);
        a
    };
    assert_eq!(
        a.status.code(),
        Some(1),
        "a changed block timestamp must fail the audit: {} {}",
        stdout(&a),
        stderr(&a)
    );
    assert!(
        stdout(&a).contains("audit FAILED") && stdout(&a).contains("block 3"),
        "names block 3 (its prev_hash no longer matches): {}",
        stdout(&a)
    );
}

/// Starts a node, makes its tree size odd or even as asked (by submitting one more
/// transaction if needed), stops it and changes the level-0 node (leaf hash) of its
/// last leaf. Returns the node and its tree size.
fn node_with_tampered_last_leaf_hash(odd: bool) -> (DevNode, u64) {
    let mut node = DevNode::start(20);
    let (mut size, _) = size_and_root(&node);
    if (size % 2 == 1) != odd {
        let l = node.cli(&["load", "--count", "1", "--json"]);
        assert!(l.status.success(), "{}", stderr(&l));
        size += 1;
        assert_eq!(size_and_root(&node).0, size);
    }
    node.stop();
    tamper(&node, Cf::Nodes, &node_key(0, size - 1), 5);
    (node, size)
}

fn assert_refuses_to_start(node: &mut DevNode, what: &str) {
    let before = node.log().len();
    match node.spawn_expect_exit(Duration::from_secs(20)) {
        None => panic!(
            "{what}: the node is still running 20 s after start on tampered storage; it serves and signs. Log:\n{}",
            &node.log()[before..]
        ),
        Some(s) => {
            let log = node.log()[before..].to_string();
            assert!(
                !s.success(),
                "{what}: the node exited with success on tampered storage: {log}"
            );
            assert!(
                log.to_lowercase().contains("corrupt"),
                "{what}: the log must say the ledger is corrupt:\n{log}"
            );
            assert!(!log.contains("panicked"), "{what}: {log}");
        }
    }
}

#[test]
fn changed_last_leaf_hash_of_latest_block_stops_the_node_from_starting_odd_size() {
    let (mut node, size) = node_with_tampered_last_leaf_hash(true);
    assert_refuses_to_start(
        &mut node,
        &format!("tree size {size}, node 0/{} changed", size - 1),
    );
    // The audit names it too.
    let a = audit(&node);
    assert_eq!(a.status.code(), Some(1), "{} {}", stdout(&a), stderr(&a));
    assert!(stdout(&a).contains("audit FAILED"), "{}", stdout(&a));
}

#[test]
fn changed_last_leaf_hash_of_latest_block_stops_the_node_from_starting_even_size() {
    let (mut node, size) = node_with_tampered_last_leaf_hash(false);
    let what = format!("tree size {size}, node 0/{} changed", size - 1);
    if node.spawn_expect_exit(Duration::from_secs(20)).is_none() {
        // Show the consequence before failing: the node serves a proof that does not verify.
        let r = node.cli(&["receipt", "--index", &(size - 2).to_string()]);
        // ... and keeps appending and signing.
        let l = node.cli(&["load", "--count", "1", "--json"]);
        let cp = node.cli(&["checkpoint"]);
        panic!(
            "{what}: the node started on tampered storage and serves; receipt for leaf {} → exit {:?}: {}; \
             load of 1 tx → exit {:?}; new signed checkpoint → exit {:?}:\n{}",
            size - 2,
            r.status.code(),
            stderr(&r).trim(),
            l.status.code(),
            cp.status.code(),
            stdout(&cp)
        );
    }
    let log = node.log();
    assert!(log.to_lowercase().contains("corrupt"), "{what}: {log}");
}
