//! In-memory store: for tests and for fast service tests. Same contract as RocksDB,
//! minus durability across process restarts.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Cf, Durability, Result, Scope, Store, WriteBatch};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// A `BTreeMap` per column family behind one lock, so a batch is atomic to readers.
#[derive(Debug, Default)]
pub struct MemStore {
    cfs: Arc<RwLock<BTreeMap<Cf, Table>>>,
    scope: Scope,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = self.scope.key(cf, key);
        Ok(self
            .cfs
            .read()
            .get(&cf)
            .and_then(|m| m.get(key.as_ref()).cloned()))
    }

    fn seek_prev(&self, cf: Cf, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let key = self.scope.key(cf, key).into_owned();
        let g = self.cfs.read();
        Ok(g.get(&cf).and_then(|m| {
            m.range(..=key)
                .next_back()
                .filter(|(k, _)| self.scope.contains(cf, k))
                .map(|(k, v)| (self.scope.strip(cf, k.clone()), v.clone()))
        }))
    }

    fn scan(
        &self,
        cf: Cf,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let (from, to) = (
            self.scope.key(cf, from).into_owned(),
            self.scope.key(cf, to).into_owned(),
        );
        let g = self.cfs.read();
        Ok(g.get(&cf)
            .map(|m| {
                m.range(from..to)
                    .take(limit)
                    .map(|(k, v)| (self.scope.strip(cf, k.clone()), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn write(&self, batch: WriteBatch, _durability: Durability) -> Result<()> {
        let batch = self.scope.batch(batch);
        let mut g = self.cfs.write();
        for (cf, k, v) in batch.ops {
            let m = g.entry(cf).or_default();
            match v {
                Some(v) => {
                    m.insert(k, v.to_vec());
                }
                None => {
                    m.remove(&k);
                }
            }
        }
        Ok(())
    }

    fn scoped(&self, scope: Scope) -> Self {
        Self {
            cfs: self.cfs.clone(),
            scope,
        }
    }
}
