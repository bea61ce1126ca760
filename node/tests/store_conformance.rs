//! Both storage backends pass the one conformance suite, and RocksDB keeps what it
//! acknowledged across a reopen.

use gridledger_node::store::{
    Cf, Durability, Store, WriteBatch, conformance, mem::MemStore, rocks::RocksStore,
};

#[test]
fn mem_store_conforms() {
    conformance::run(&MemStore::new());
}

#[test]
fn rocks_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run(&RocksStore::open(dir.path()).unwrap());
}

#[test]
fn rocks_store_keeps_synced_batches_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = RocksStore::open(dir.path()).unwrap();
        let mut b = WriteBatch::new();
        b.put(Cf::Leaves, 1u64.to_be_bytes().to_vec(), b"one".to_vec());
        s.write(b, Durability::Sync).unwrap();
    }
    let s = RocksStore::open(dir.path()).unwrap();
    assert_eq!(
        s.get(Cf::Leaves, &1u64.to_be_bytes()).unwrap().as_deref(),
        Some(&b"one"[..])
    );
}

#[test]
fn second_open_of_a_live_rocks_store_is_refused_not_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let _a = RocksStore::open(dir.path()).unwrap();
    let e = RocksStore::open(dir.path()).unwrap_err().to_string();
    assert!(e.to_lowercase().contains("lock"), "{e}");
}
