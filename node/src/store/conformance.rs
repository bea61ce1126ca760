//! The storage conformance suite: every [`Store`] implementation must pass it.
//! Run from the node's tests against RocksDB and the in-memory store.

use super::{Cf, Durability, Scope, Store, WriteBatch};

/// Runs every contract check against a fresh, empty store.
///
/// # Panics
/// On the first contract violation, with a message naming it.
pub fn run<S: Store>(store: &S) {
    // Absence is Ok(None).
    assert_eq!(
        store.get(Cf::Leaves, b"missing").unwrap(),
        None,
        "absent key must read as None"
    );

    // Batches are atomic and visible after write returns; column families are separate.
    let mut b = WriteBatch::new();
    for i in 0u64..100 {
        b.put(
            Cf::Leaves,
            i.to_be_bytes().to_vec(),
            format!("leaf {i}").into_bytes(),
        );
    }
    b.put(Cf::Meta, b"tip".to_vec(), b"x".to_vec());
    store.write(b, Durability::Sync).unwrap();
    assert_eq!(
        store
            .get(Cf::Leaves, &7u64.to_be_bytes())
            .unwrap()
            .as_deref(),
        Some(&b"leaf 7"[..])
    );
    assert_eq!(
        store.get(Cf::Nodes, b"tip").unwrap(),
        None,
        "column families must not share keys"
    );
    assert_eq!(
        store.get(Cf::Meta, b"tip").unwrap().as_deref(),
        Some(&b"x"[..])
    );

    // multi_get keeps order and reports absence per key.
    let keys = vec![
        3u64.to_be_bytes().to_vec(),
        1000u64.to_be_bytes().to_vec(),
        0u64.to_be_bytes().to_vec(),
    ];
    let got = store.multi_get(Cf::Leaves, &keys).unwrap();
    assert_eq!(
        got,
        vec![Some(b"leaf 3".to_vec()), None, Some(b"leaf 0".to_vec())]
    );

    // Big-endian keys sort numerically; scan is half-open and bounded.
    let s = store
        .scan(Cf::Leaves, &10u64.to_be_bytes(), &20u64.to_be_bytes(), 1000)
        .unwrap();
    assert_eq!(s.len(), 10, "scan [10,20) must return 10 entries");
    assert_eq!(s[0].0, 10u64.to_be_bytes().to_vec());
    assert_eq!(s[9].0, 19u64.to_be_bytes().to_vec());
    assert_eq!(
        store
            .scan(Cf::Leaves, &10u64.to_be_bytes(), &20u64.to_be_bytes(), 3)
            .unwrap()
            .len(),
        3,
        "limit"
    );
    assert!(
        store
            .scan(Cf::Leaves, &20u64.to_be_bytes(), &10u64.to_be_bytes(), 10)
            .unwrap()
            .is_empty(),
        "empty range"
    );
    let all = store
        .scan(
            Cf::Leaves,
            &0u64.to_be_bytes(),
            &u64::MAX.to_be_bytes(),
            usize::MAX,
        )
        .unwrap();
    assert_eq!(all.len(), 100);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ascending order");

    // seek_prev: greatest key <= probe.
    let mut b = WriteBatch::new();
    for start in [0u64, 10, 25] {
        b.put(
            Cf::BlockStarts,
            start.to_be_bytes().to_vec(),
            start.to_be_bytes().to_vec(),
        );
    }
    store.write(b, Durability::Buffered).unwrap();
    let sp = |k: u64| {
        store
            .seek_prev(Cf::BlockStarts, &k.to_be_bytes())
            .unwrap()
            .map(|(k, _)| u64::from_be_bytes(k.try_into().unwrap()))
    };
    assert_eq!(sp(0), Some(0));
    assert_eq!(sp(9), Some(0));
    assert_eq!(sp(10), Some(10));
    assert_eq!(sp(24), Some(10));
    assert_eq!(sp(1 << 40), Some(25));
    assert_eq!(
        store.seek_prev(Cf::Nonces, b"\x00").unwrap(),
        None,
        "empty cf"
    );

    // Deletes and overwrites in one batch apply in order.
    let mut b = WriteBatch::new();
    b.delete(Cf::Leaves, 5u64.to_be_bytes().to_vec());
    b.put(Cf::Meta, b"tip".to_vec(), b"y".to_vec());
    b.put(Cf::Meta, b"tip".to_vec(), b"z".to_vec());
    store.write(b, Durability::Sync).unwrap();
    assert_eq!(store.get(Cf::Leaves, &5u64.to_be_bytes()).unwrap(), None);
    assert_eq!(
        store.get(Cf::Meta, b"tip").unwrap().as_deref(),
        Some(&b"z"[..]),
        "last write in a batch wins"
    );

    // Empty values are values, not absence.
    let mut b = WriteBatch::new();
    b.put(Cf::Nonces, vec![1u8; 40], Vec::new());
    store.write(b, Durability::Sync).unwrap();
    assert_eq!(store.get(Cf::Nonces, &[1u8; 40]).unwrap(), Some(Vec::new()));
    scopes(store);
}

/// Scoped handles: each channel sees only its own keys in per-channel column families,
/// node-wide families are shared, and `a` never sees `ab`.
fn scopes<S: Store>(store: &S) {
    let a = store.scoped(Scope::channel("a"));
    let ab = store.scoped(Scope::channel("ab"));
    let mut b = WriteBatch::new();
    for i in 0u64..5 {
        b.put(
            Cf::Leaves,
            i.to_be_bytes().to_vec(),
            format!("a{i}").into_bytes(),
        );
    }
    b.put(Cf::RaftMeta, b"shared".to_vec(), b"from a".to_vec());
    a.write(b, Durability::Sync).unwrap();
    let mut b = WriteBatch::new();
    b.put(Cf::Leaves, 2u64.to_be_bytes().to_vec(), b"ab2".to_vec());
    ab.write(b, Durability::Sync).unwrap();

    assert_eq!(
        a.get(Cf::Leaves, &2u64.to_be_bytes()).unwrap().as_deref(),
        Some(&b"a2"[..]),
        "a scoped handle reads its own writes"
    );
    assert_eq!(
        ab.get(Cf::Leaves, &2u64.to_be_bytes()).unwrap().as_deref(),
        Some(&b"ab2"[..]),
        "scopes must not share keys"
    );
    assert_eq!(
        store
            .get(Cf::Leaves, &2u64.to_be_bytes())
            .unwrap()
            .as_deref(),
        Some(&b"leaf 2"[..]),
        "a scope's writes must not reach the unscoped key space"
    );
    assert_eq!(
        store.get(Cf::RaftMeta, b"shared").unwrap().as_deref(),
        Some(&b"from a"[..]),
        "node-wide column families are not scoped"
    );
    assert_eq!(
        a.multi_get(
            Cf::Leaves,
            &[4u64.to_be_bytes().to_vec(), 5u64.to_be_bytes().to_vec()]
        )
        .unwrap(),
        vec![Some(b"a4".to_vec()), None]
    );

    let s = a
        .scan(
            Cf::Leaves,
            &0u64.to_be_bytes(),
            &u64::MAX.to_be_bytes(),
            100,
        )
        .unwrap();
    assert_eq!(s.len(), 5, "a scan stays inside its scope");
    assert_eq!(
        s[0].0,
        0u64.to_be_bytes().to_vec(),
        "keys come back unprefixed"
    );
    assert_eq!(
        ab.scan(
            Cf::Leaves,
            &0u64.to_be_bytes(),
            &u64::MAX.to_be_bytes(),
            100
        )
        .unwrap()
        .len(),
        1
    );
    let (k, v) = a
        .seek_prev(Cf::Leaves, &u64::MAX.to_be_bytes())
        .unwrap()
        .unwrap();
    assert_eq!((k, v), (4u64.to_be_bytes().to_vec(), b"a4".to_vec()));
    assert_eq!(
        ab.seek_prev(Cf::Leaves, &1u64.to_be_bytes()).unwrap(),
        None,
        "seek_prev must not step below its scope (into channel a)"
    );
    let c = store.scoped(Scope::channel("c"));
    assert_eq!(
        c.seek_prev(Cf::Leaves, &u64::MAX.to_be_bytes()).unwrap(),
        None,
        "an empty scope has no last key, whatever precedes it"
    );
    // The unscoped key space does not see scoped keys in its ranges.
    assert_eq!(
        store
            .scan(
                Cf::Leaves,
                &0u64.to_be_bytes(),
                &(1u64 << 56).to_be_bytes(),
                1000
            )
            .unwrap()
            .len(),
        99,
        "scoped keys must stay out of the system channel's index ranges"
    );
}
