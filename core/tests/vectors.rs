//! Known-answer tests against core/testdata (copied from shared/testdata: RFC 9162 vectors
//! and a C2SP signed-note vector), plus systematic negatives derived from each vector.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use gridledger_core::merkle::{self, Hash, ProofError};
use gridledger_core::note::{NoteSigner, SignedNote, VerifierKey};
use serde_json::Value;

fn load(name: &str) -> Value {
    let p = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("testdata")
    .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn h(s: &Value) -> Hash {
    hex::decode(s.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(h).collect()
}

fn leaves() -> Vec<Hash> {
    load("merkle-vectors.json")["leaves_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| merkle::leaf_hash(&hex::decode(l.as_str().unwrap()).unwrap()))
        .collect()
}

fn flip_each(path: &[Hash]) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    for i in 0..path.len() {
        for bit in [0usize, 7, 128, 255] {
            let mut p = path.to_vec();
            p[i][bit / 8] ^= 1 << (bit % 8);
            out.push(p);
        }
    }
    out
}

#[test]
fn roots_match_vectors() {
    let v = load("merkle-vectors.json");
    let leaves = leaves();
    for r in v["roots"].as_array().unwrap() {
        let n = r["tree_size"].as_u64().unwrap();
        assert_eq!(
            merkle::root(&leaves[..n as usize], n).unwrap(),
            h(&r["root"]),
            "size {n}"
        );
        let mut f = merkle::Frontier::new();
        leaves[..n as usize]
            .iter()
            .for_each(|l| f.push(*l, |_, _, _| {}));
        assert_eq!(f.root(), h(&r["root"]), "frontier size {n}");
    }
}

#[test]
fn inclusion_vectors_build_verify_and_reject_mutations() {
    let v = load("merkle-vectors.json");
    let leaves = leaves();
    for c in v["inclusion"].as_array().unwrap() {
        let (i, n) = (
            c["leaf_index"].as_u64().unwrap(),
            c["tree_size"].as_u64().unwrap(),
        );
        let path = hashes(&c["path"]);
        let src = &leaves[..n as usize];
        assert_eq!(
            merkle::inclusion_proof(src, i, n).unwrap(),
            path,
            "build {i}/{n}"
        );
        let root = merkle::root(src, n).unwrap();
        let leaf = leaves[i as usize];
        merkle::verify_inclusion(&leaf, i, n, &path, &root).unwrap();
        for bad in flip_each(&path) {
            assert!(matches!(
                merkle::verify_inclusion(&leaf, i, n, &bad, &root),
                Err(ProofError::RootMismatch { .. })
            ));
        }
        if !path.is_empty() {
            let e =
                merkle::verify_inclusion(&leaf, i, n, &path[..path.len() - 1], &root).unwrap_err();
            assert!(
                matches!(e, ProofError::WrongLength { .. }),
                "truncated {i}/{n}: {e}"
            );
        }
        let mut longer = path.clone();
        longer.push([7; 32]);
        assert!(
            merkle::verify_inclusion(&leaf, i, n, &longer, &root).is_err(),
            "trailing {i}/{n}"
        );
        // A wrong size is caught by the path when its shape differs; when the shape is
        // the same (leaf 0 of 3 vs 4) only the checkpoint, which signs size and root
        // together, catches it: the trust tests cover that.
        for wrong in [n + 1, n + 2, 2 * n + 1] {
            if merkle::inclusion_len(i, wrong) != path.len() {
                assert!(
                    matches!(
                        merkle::verify_inclusion(&leaf, i, wrong, &path, &root),
                        Err(ProofError::WrongLength { .. })
                    ),
                    "size {wrong} {i}/{n}"
                );
            }
        }
        if n > 1 {
            let other = leaves[((i + 1) % n) as usize];
            assert!(
                merkle::verify_inclusion(&other, i, n, &path, &root).is_err(),
                "wrong leaf {i}/{n}"
            );
            assert!(
                merkle::verify_inclusion(&leaf, (i + 1) % n, n, &path, &root).is_err(),
                "wrong index {i}/{n}"
            );
        }
        assert!(
            merkle::verify_inclusion(&leaf, n, n, &path, &root).is_err(),
            "index = size"
        );
        let mut root_flip = root;
        root_flip[0] ^= 1;
        assert!(merkle::verify_inclusion(&leaf, i, n, &path, &root_flip).is_err());
    }
}

#[test]
fn consistency_vectors_build_verify_and_reject_mutations() {
    let v = load("merkle-vectors.json");
    let leaves = leaves();
    for c in v["consistency"].as_array().unwrap() {
        let (m, n) = (
            c["old_size"].as_u64().unwrap(),
            c["new_size"].as_u64().unwrap(),
        );
        let proof = hashes(&c["path"]);
        let src = &leaves[..n as usize];
        assert_eq!(
            merkle::consistency_proof(src, m, n).unwrap(),
            proof,
            "build {m}->{n}"
        );
        let (r1, r2) = (merkle::root(src, m).unwrap(), merkle::root(src, n).unwrap());
        merkle::verify_consistency(m, n, &r1, &r2, &proof).unwrap();
        for bad in flip_each(&proof) {
            assert!(
                merkle::verify_consistency(m, n, &r1, &r2, &bad).is_err(),
                "flip {m}->{n}"
            );
        }
        if !proof.is_empty() {
            assert!(
                merkle::verify_consistency(m, n, &r1, &r2, &proof[1..]).is_err(),
                "truncated"
            );
        }
        let mut longer = proof.clone();
        longer.push([9; 32]);
        assert!(
            merkle::verify_consistency(m, n, &r1, &r2, &longer).is_err(),
            "trailing {m}->{n}"
        );
        if m != n {
            assert!(
                merkle::verify_consistency(m, n, &r2, &r1, &proof).is_err(),
                "swapped roots {m}->{n}"
            );
            assert!(
                merkle::verify_consistency(n, m, &r2, &r1, &proof).is_err(),
                "swapped sizes"
            );
            if merkle::consistency_len(m, n + 1) != proof.len() {
                assert!(
                    merkle::verify_consistency(m, n + 1, &r1, &r2, &proof).is_err(),
                    "wrong new size {m}->{n}"
                );
            }
            if m > 1
                && (merkle::consistency_len(m - 1, n) != proof.len()
                    || (m - 1).is_power_of_two() != m.is_power_of_two())
            {
                assert!(
                    merkle::verify_consistency(m - 1, n, &r1, &r2, &proof).is_err(),
                    "wrong old size {m}->{n}"
                );
            }
        }
    }
}

#[test]
fn large_tree_vectors() {
    let v = load("merkle-vectors.json");
    let large = &v["large"];
    let leaves: Vec<Hash> = (0..1000)
        .map(|i| merkle::leaf_hash(format!("leaf-{i}").as_bytes()))
        .collect();
    let root = merkle::root(&leaves, 1000).unwrap();
    assert_eq!(root, h(&large["root_1000"]));
    let path = hashes(&large["inclusion_517_of_1000"]);
    assert_eq!(merkle::inclusion_proof(&leaves, 517, 1000).unwrap(), path);
    merkle::verify_inclusion(&leaves[517], 517, 1000, &path, &root).unwrap();
    let cons = hashes(&large["consistency_333_to_1000"]);
    assert_eq!(merkle::consistency_proof(&leaves, 333, 1000).unwrap(), cons);
    let r333 = h(&large["root_333"]);
    assert_eq!(merkle::root(&leaves, 333).unwrap(), r333);
    merkle::verify_consistency(333, 1000, &r333, &root, &cons).unwrap();
}

#[test]
fn signed_note_vector_reproduces_byte_for_byte() {
    let v = load("signed-note-vectors.json");
    let seed: [u8; 32] = hex::decode(v["private_key_seed_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = SigningKey::from_bytes(&seed);
    assert_eq!(
        hex::encode(key.verifying_key().as_bytes()),
        v["public_key_hex"].as_str().unwrap()
    );
    let signer = NoteSigner::new(v["key_name"].as_str().unwrap(), key).unwrap();
    assert_eq!(
        signer.verifier_key().to_string(),
        v["verifier_key"].as_str().unwrap()
    );
    let vk = VerifierKey::parse(v["verifier_key"].as_str().unwrap()).unwrap();
    assert_eq!(vk, signer.verifier_key());

    let note_s = v["note"].as_str().unwrap();
    let note = SignedNote::parse(note_s).unwrap();
    assert_eq!(note.to_string(), note_s, "round trip");
    // Ed25519 is deterministic: signing the same text must give the same line.
    let line = signer.sign(&note.text);
    assert_eq!(line, note.sigs[0]);
    let cp = gridledger_core::checkpoint::Checkpoint::parse(&note.text).unwrap();
    assert_eq!(cp.size, v["tree_size"].as_u64().unwrap());
    assert_eq!(cp.root, h(&v["root_hex"]));
    assert_eq!(cp.body(), note.text);
    // The same checkpoint root is the merkle vector's size-8 root.
    assert_eq!(B64.encode(cp.root), note.text.lines().nth(2).unwrap());
}
