//! RocksDB store: one column family per [`Cf`], synced write batches for durability.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, ReadOptions,
    WriteOptions,
};

use std::sync::Arc;

use super::{Cf, Durability, Result, Scope, Store, StoreError, WriteBatch};

/// A RocksDB database with gridledger's column families.
pub struct RocksStore {
    db: Arc<DB>,
    scope: Scope,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore")
            .field("path", &self.db.path())
            .finish()
    }
}

fn engine(e: rocksdb::Error) -> StoreError {
    StoreError::Engine(e.into_string())
}

impl RocksStore {
    /// Opens (creating if missing) the database at `path`.
    ///
    /// # Errors
    /// [`StoreError::Engine`] if RocksDB cannot open it (locked by another process,
    /// corrupt, unreadable).
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Two background jobs match the 2-core machines this runs on in development;
        // production can raise it through RocksDB's own OPTIONS file.
        opts.increase_parallelism(2);
        // Commit latency is one WAL fsync per block, and a flush's writeback can delay
        // it. Syncing SSTs every MiB as they are written keeps that backlog small
        // (docs/BENCHMARKS.md, "Flush-time tail", for what remains).
        opts.set_bytes_per_sync(1 << 20);
        opts.set_wal_bytes_per_sync(1 << 20);
        // Flushes and compactions are CPU bursts (compression, filters) that, on a small
        // machine, compete with the commit path; run them at lower CPU and I/O priority.
        let mut env = rocksdb::Env::new().map_err(engine)?;
        env.lower_thread_pool_cpu_priority();
        env.lower_high_priority_thread_pool_cpu_priority();
        env.lower_thread_pool_io_priority();
        env.lower_high_priority_thread_pool_io_priority();
        opts.set_env(&env);
        let cfs = Cf::ALL.iter().map(|cf| {
            let mut o = Options::default();
            let mut t = BlockBasedOptions::default();
            // Point lookups dominate (nonce replay checks, leaves, nodes): a bloom filter
            // makes a miss cost no disk read.
            t.set_bloom_filter(10.0, false);
            o.set_block_based_table_factory(&t);
            // Hashes and nonce keys are random bytes: compressing them only costs CPU.
            let random = matches!(cf, Cf::Nodes | Cf::Nonces);
            o.set_compression_type(if random {
                rocksdb::DBCompressionType::None
            } else {
                rocksdb::DBCompressionType::Lz4
            });
            ColumnFamilyDescriptor::new(cf.name(), o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(engine)?;
        Ok(Self {
            db: Arc::new(db),
            scope: Scope::default(),
        })
    }

    fn cf(&self, cf: Cf) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(cf.name())
            .expect("every Cf is created at open")
    }
}

impl Store for RocksStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(cf), self.scope.key(cf, key))
            .map_err(engine)
    }

    fn multi_get(&self, cf: Cf, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let h = self.cf(cf);
        let keys: Vec<_> = keys.iter().map(|k| self.scope.key(cf, k)).collect();
        self.db
            .batched_multi_get_cf(h, keys.iter(), false)
            .into_iter()
            .map(|r| r.map(|o| o.map(|p| p.to_vec())).map_err(engine))
            .collect()
    }

    fn seek_prev(&self, cf: Cf, key: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf));
        it.seek_for_prev(self.scope.key(cf, key));
        if it.valid() {
            let k = it.key().expect("valid");
            if !self.scope.contains(cf, k) {
                return Ok(None);
            }
            return Ok(Some((
                self.scope.strip(cf, k.to_vec()),
                it.value().expect("valid").to_vec(),
            )));
        }
        it.status().map_err(engine)?;
        Ok(None)
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
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(self.scope.key(cf, to).into_owned());
        let from = self.scope.key(cf, from);
        let it = self.db.iterator_cf_opt(
            self.cf(cf),
            ro,
            IteratorMode::From(&from, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in it.take(limit) {
            let (k, v) = item.map_err(engine)?;
            out.push((self.scope.strip(cf, k.to_vec()), v.to_vec()));
        }
        Ok(out)
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let batch = self.scope.batch(batch);
        let mut wb = rocksdb::WriteBatch::default();
        for (cf, k, v) in &batch.ops {
            match v {
                Some(v) => wb.put_cf(self.cf(*cf), k, v),
                None => wb.delete_cf(self.cf(*cf), k),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(durability == Durability::Sync);
        self.db.write_opt(wb, &wo).map_err(engine)
    }

    fn scoped(&self, scope: Scope) -> Self {
        Self {
            db: self.db.clone(),
            scope,
        }
    }

    fn checkpoint_to(&self, dir: &Path) -> Result<()> {
        let cp = rocksdb::checkpoint::Checkpoint::new(&self.db).map_err(engine)?;
        cp.create_checkpoint(dir).map_err(engine)
    }
}
