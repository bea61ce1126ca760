//! gridledger-bench: measurements that are not end-to-end load (that is `gridledger load`).
//!
//! - `proofs`: builds a tree of N leaves in RocksDB through the ledger's own node layout,
//!   then times inclusion and consistency proof construction (storage reads included) and
//!   verification.
//! - `sigs`: Ed25519 single vs batch verification of signed transactions on one core.

use std::time::Instant;

use clap::{Parser, Subcommand};
use gridledger_core::merkle::{self, Frontier};
use gridledger_node::ledger::StoreHashes;
use gridledger_node::store::{Cf, Durability, Store, WriteBatch, rocks::RocksStore};
use rand::Rng as _;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Proof build and verify times over a RocksDB tree.
    Proofs {
        #[arg(long, default_value_t = 1_000_000)]
        leaves: u64,
        #[arg(long, default_value_t = 10_000)]
        samples: usize,
    },
    /// Ed25519 transaction signature verification, single vs batch, one thread.
    Sigs {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
    },
    /// JWT sign and full verification (as the auth layer does it), and argon2id
    /// password hashing and checking, one thread.
    Tokens {
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        #[arg(long, default_value_t = 20)]
        passwords: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Proofs { leaves, samples } => proofs(leaves, samples),
        Cmd::Sigs { count } => sigs(count),
        Cmd::Tokens { count, passwords } => tokens(count, passwords),
    }
}

fn node_key(level: u32, index: u64) -> Vec<u8> {
    let mut k = vec![level as u8];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn proofs(n: u64, samples: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = RocksStore::open(dir.path())?;
    let t = Instant::now();
    let mut f = Frontier::new();
    let mut batch = WriteBatch::new();
    for i in 0..n {
        f.push(
            merkle::leaf_hash(format!("leaf-{i}").as_bytes()),
            |l, idx, h| batch.put(Cf::Nodes, node_key(l, idx), h.to_vec()),
        );
        if batch.len() >= 50_000 {
            store.write(std::mem::take(&mut batch), Durability::Buffered)?;
        }
    }
    store.write(batch, Durability::Sync)?;
    let build_tree_s = t.elapsed().as_secs_f64();
    let src = StoreHashes(&store);
    let root = merkle::root(&src, n).map_err(anyhow::Error::msg)?;
    assert_eq!(root, f.root());

    let mut rng = rand::thread_rng();
    let idx: Vec<u64> = (0..samples).map(|_| rng.gen_range(0..n)).collect();
    let t = Instant::now();
    let paths: Vec<_> = idx
        .iter()
        .map(|&i| merkle::inclusion_proof(&src, i, n))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let incl_build = t.elapsed().as_secs_f64() / samples as f64;
    let leaf_hashes: Vec<_> = idx
        .iter()
        .map(|i| merkle::leaf_hash(format!("leaf-{i}").as_bytes()))
        .collect();
    let t = Instant::now();
    for ((i, p), lh) in idx.iter().zip(&paths).zip(&leaf_hashes) {
        merkle::verify_inclusion(lh, *i, n, p, &root).map_err(anyhow::Error::msg)?;
    }
    let incl_verify = t.elapsed().as_secs_f64() / samples as f64;

    let olds: Vec<u64> = (0..samples).map(|_| rng.gen_range(1..n)).collect();
    let t = Instant::now();
    let cons: Vec<_> = olds
        .iter()
        .map(|&m| merkle::consistency_proof(&src, m, n))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let cons_build = t.elapsed().as_secs_f64() / samples as f64;
    let old_roots: Vec<_> = olds
        .iter()
        .map(|&m| merkle::root(&src, m))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let t = Instant::now();
    for ((m, p), r) in olds.iter().zip(&cons).zip(&old_roots) {
        merkle::verify_consistency(*m, n, r, &root, p).map_err(anyhow::Error::msg)?;
    }
    let cons_verify = t.elapsed().as_secs_f64() / samples as f64;
    println!(
        "{}",
        serde_json::json!({
            "leaves": n, "samples": samples, "tree_build_s": build_tree_s,
            "inclusion_build_us": incl_build * 1e6, "inclusion_verify_us": incl_verify * 1e6,
            "inclusion_path_len": paths[0].len(),
            "consistency_build_us": cons_build * 1e6, "consistency_verify_us": cons_verify * 1e6,
        })
    );
    Ok(())
}

fn sigs(count: usize) -> anyhow::Result<()> {
    use gridledger_core::pb::{TxBody, tx_body::Payload};
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let txs: Vec<_> = (0..count as u64)
        .map(|n| {
            let body = TxBody {
                origin: "bench".into(),
                nonce: n,
                client_time_ms: 0,
                payload: Some(Payload::RegisterOrg(Default::default())),
            };
            gridledger_core::tx::sign(&key, &body)
        })
        .collect();
    let t = Instant::now();
    for tx in &txs {
        gridledger_core::tx::verify(tx).map_err(anyhow::Error::msg)?;
    }
    let single = count as f64 / t.elapsed().as_secs_f64();
    let refs: Vec<_> = txs.iter().collect();
    let t = Instant::now();
    for chunk in refs.chunks(4096) {
        assert!(
            gridledger_core::tx::verify_many(chunk)
                .iter()
                .all(Result::is_ok)
        );
    }
    let batch = count as f64 / t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"count": count, "single_per_s": single, "batch_per_s": batch})
    );
    Ok(())
}

struct OneKey([u8; 32]);

impl gridledger_services::auth::token::KeyDirectory for OneKey {
    fn token_key(&self, k: &[u8; 32]) -> Option<gridledger_services::auth::token::TokenKey> {
        (k == &self.0).then(|| gridledger_services::auth::token::TokenKey {
            org: "grid-north".into(),
            active: true,
        })
    }
    fn org_kind(&self, _: &str) -> Option<gridledger_core::pb::OrgKind> {
        Some(gridledger_core::pb::OrgKind::GridCompany)
    }
    fn is_revoked(&self, _: &str) -> bool {
        false
    }
    fn consume(&self, _: &[u8; 32], _: &str, _: u64) -> bool {
        true
    }
}

fn tokens(count: usize, passwords: usize) -> anyhow::Result<()> {
    use gridledger_services::auth::token::{Claims, TYP_ACCESS, TokenSigner, verify};
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let signer = TokenSigner::new("grid-north", &key);
    let dir = OneKey(signer.public_key());
    let now = 2_000_000_000;
    let claims = |i: usize| Claims {
        iss: "bench/node-1".into(),
        sub: format!("resident-{i}"),
        aud: "bench".into(),
        exp: now + 900,
        iat: now,
        jti: format!("{i:032x}"),
        org: "grid-north".into(),
        roles: vec!["resident".into()],
        scope: "meter:GN-M000000 meter:GN-M000002".into(),
        typ: TYP_ACCESS.into(),
        single_use: false,
    };
    let t = Instant::now();
    let toks: Vec<String> = (0..count)
        .map(|i| signer.sign(&claims(i)))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let sign_us = t.elapsed().as_secs_f64() * 1e6 / count as f64;
    let t = Instant::now();
    for tok in &toks {
        verify(&dir, tok, "bench", now + 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let verify_us = t.elapsed().as_secs_f64() * 1e6 / count as f64;
    let t = Instant::now();
    let hashes: Vec<String> = (0..passwords)
        .map(|i| gridledger_node::auth::hash_password(&format!("password number {i}")))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let hash_ms = t.elapsed().as_secs_f64() * 1e3 / passwords as f64;
    let t = Instant::now();
    for (i, h) in hashes.iter().enumerate() {
        anyhow::ensure!(gridledger_node::auth::check_password(
            h,
            &format!("password number {i}")
        ));
    }
    let check_ms = t.elapsed().as_secs_f64() * 1e3 / passwords as f64;
    println!(
        "{}",
        serde_json::json!({
            "tokens": count, "jwt_sign_us": sign_us, "jwt_verify_us": verify_us,
            "token_bytes": toks[0].len(),
            "passwords": passwords, "argon2id_hash_ms": hash_ms, "argon2id_check_ms": check_ms,
        })
    );
    Ok(())
}
