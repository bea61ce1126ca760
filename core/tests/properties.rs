//! Property tests: for random trees every proof verifies, every mutation fails, and the
//! frontier, the stored-subtree source and the proof-length rules agree.

use gridledger_core::merkle::{self, Frontier, Hash, HashSource};
use proptest::prelude::*;
use std::collections::HashMap;

// A source that serves only what a ledger would have stored: the subtrees the frontier
// reported as completed. Proof building must never need anything else.
struct Stored(HashMap<(u32, u64), Hash>);
impl HashSource for Stored {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, String> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or_else(|| format!("missing {level}/{index}"))
    }
}

fn tree(n: u64) -> (Vec<Hash>, Stored, Frontier) {
    let leaves: Vec<Hash> = (0..n)
        .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
        .collect();
    let mut f = Frontier::new();
    let mut stored = HashMap::new();
    for l in &leaves {
        f.push(*l, |lvl, idx, h| {
            stored.insert((lvl, idx), *h);
        });
    }
    (leaves, Stored(stored), f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inclusion_proofs_verify_and_mutations_fail(n in 1u64..600, seed in any::<u64>(), bit in 0usize..256) {
        let (leaves, src, f) = tree(n);
        let root = merkle::root(&src, n).unwrap();
        prop_assert_eq!(root, f.root());
        prop_assert_eq!(root, merkle::root(leaves.as_slice(), n).unwrap());
        let i = seed % n;
        let path = merkle::inclusion_proof(&src, i, n).unwrap();
        prop_assert_eq!(path.len(), merkle::inclusion_len(i, n));
        merkle::verify_inclusion(&leaves[i as usize], i, n, &path, &root).unwrap();
        for j in 0..path.len() {
            let mut bad = path.clone();
            bad[j][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(merkle::verify_inclusion(&leaves[i as usize], i, n, &bad, &root).is_err());
        }
        let mut bad_leaf = leaves[i as usize];
        bad_leaf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(merkle::verify_inclusion(&bad_leaf, i, n, &path, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_mutations_fail(n in 2u64..600, seed in any::<u64>(), bit in 0usize..256) {
        let (_, src, _) = tree(n);
        let m = 1 + seed % (n - 1);
        let (r1, r2) = (merkle::root(&src, m).unwrap(), merkle::root(&src, n).unwrap());
        let proof = merkle::consistency_proof(&src, m, n).unwrap();
        prop_assert_eq!(proof.len(), merkle::consistency_len(m, n));
        merkle::verify_consistency(m, n, &r1, &r2, &proof).unwrap();
        for j in 0..proof.len() {
            let mut bad = proof.clone();
            bad[j][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(merkle::verify_consistency(m, n, &r1, &r2, &bad).is_err());
        }
        prop_assert!(merkle::verify_consistency(m, n, &r2, &r1, &proof).is_err());
    }

    #[test]
    fn frontier_reloads_from_stored_subtrees(n in 0u64..2000) {
        let (_, src, f) = tree(n);
        let g = Frontier::load(&src, n).unwrap();
        prop_assert_eq!(g.root(), f.root());
        prop_assert_eq!(g, f);
    }
}
