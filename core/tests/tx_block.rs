//! Transaction signatures (single and batch) and block header encoding.

use ed25519_dalek::SigningKey;
use gridledger_core::block::BlockHeader;
use gridledger_core::pb;
use gridledger_core::pb::{RegisterOrg, TxBody, tx_body::Payload};
use gridledger_core::tx;
use prost::Message as _;

fn body(nonce: u64) -> TxBody {
    TxBody {
        origin: "o".into(),
        nonce,
        client_time_ms: 1,
        payload: Some(Payload::RegisterOrg(RegisterOrg {
            org_id: "org".into(),
            name: "Org".into(),
            kind: 1,
        })),
    }
}

#[test]
fn signatures_cover_domain_and_body() {
    let k = SigningKey::from_bytes(&[3; 32]);
    let t = tx::sign(&k, &body(1));
    tx::verify(&t).unwrap();
    let mut other = t.clone();
    other.body = prost::Message::encode_to_vec(&body(2));
    assert!(
        tx::verify(&other).is_err(),
        "signature by a known key over a different body"
    );
    // Signing the body without the domain separator must not verify.
    use ed25519_dalek::Signer as _;
    let mut raw = t.clone();
    raw.signature = k.sign(&t.body).to_bytes().to_vec();
    assert!(tx::verify(&raw).is_err());
    let mut short = t.clone();
    short.signer_key_id.pop();
    assert!(matches!(
        tx::verify(&short),
        Err(tx::TxError::BadSignerKey(31))
    ));
}

#[test]
fn batch_verification_names_exactly_the_bad_ones() {
    let k = SigningKey::from_bytes(&[4; 32]);
    let mut txs: Vec<_> = (0..50).map(|n| tx::sign(&k, &body(n))).collect();
    txs[7].signature[0] ^= 1;
    txs[31].body.push(0);
    txs[40].signature.truncate(10);
    let refs: Vec<_> = txs.iter().collect();
    let res = tx::verify_many(&refs);
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r.is_err(), [7, 31, 40].contains(&i), "tx {i}: {r:?}");
    }
}

#[test]
fn block_header_round_trip_and_hash() {
    let h = BlockHeader {
        height: 2,
        prev_hash: [1; 32],
        first_index: 10,
        leaf_count: 5,
        tree_size: 15,
        root: [2; 32],
        timestamp_ms: 99,
        proposer: "node-1".into(),
    };
    let b = h.encode();
    assert_eq!(BlockHeader::decode(&b).unwrap(), h);
    assert_ne!(
        h.hash(),
        BlockHeader {
            height: 3,
            ..h.clone()
        }
        .hash()
    );
    let mut bad = b.clone();
    bad[0] = 9;
    assert!(BlockHeader::decode(&bad).is_err());
    assert!(BlockHeader::decode(&b[..b.len() - 1]).is_err());
    let mut inconsistent = h.clone();
    inconsistent.tree_size = 16;
    assert!(BlockHeader::decode(&inconsistent.encode()).is_err());
}

/// A signature built with a small-order (torsion) component in R by someone who holds
/// the key: `[8](s·B − k·A − R) = 0` holds but the cofactorless equation does not. The
/// ledger's rule accepts it, and (the point of the rule) gets the same verdict alone and
/// in every batch, with good or bad neighbours, so replicas that batch differently agree.
#[test]
fn verdicts_do_not_depend_on_batching_even_for_torsion_signatures() {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};
    let a = Scalar::from_bytes_mod_order([7; 32]);
    let key = (a * B).compress().to_bytes();
    let b = body(1).encode_to_vec();
    let r = Scalar::from_bytes_mod_order([9; 32]);
    let big_r = (r * B + EIGHT_TORSION[1]).compress().to_bytes();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r)
            .chain_update(key)
            .chain_update(tx::TX_DOMAIN)
            .chain_update(&b),
    );
    let s = r + k * a;
    let torsion = pb::SignedTx {
        body: b,
        signer_key_id: key.to_vec(),
        signature: [big_r, s.to_bytes()].concat(),
    };
    assert!(tx::verify_cofactored(&torsion).is_ok());
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&torsion.signature).unwrap();
    assert!(
        vk.verify_strict(&tx::signing_input(&torsion.body), &sig)
            .is_err(),
        "the cofactorless strict rule refuses it: the rules differ exactly here"
    );

    let good = tx::sign(&SigningKey::from_bytes(&[4; 32]), &body(2));
    let mut bad = tx::sign(&SigningKey::from_bytes(&[4; 32]), &body(3));
    bad.signature[5] ^= 1;
    for batch in [
        vec![&torsion],
        vec![&good, &torsion],
        vec![&torsion, &bad, &good],
        vec![&bad, &good, &good, &torsion],
    ] {
        let verdicts: Vec<bool> = tx::verify_many(&batch).iter().map(Result::is_ok).collect();
        let single: Vec<bool> = batch
            .iter()
            .map(|t| tx::verify_cofactored(t).is_ok())
            .collect();
        assert_eq!(verdicts, single, "batch and single agree");
        for (t, ok) in batch.iter().zip(&verdicts) {
            assert_eq!(*ok, !std::ptr::eq(*t, &bad));
        }
    }
    // A non-canonical s (top bits set, so s ≥ ℓ) is refused.
    let mut high = torsion.clone();
    let l_plus_s = {
        let mut v = s.to_bytes();
        v[31] |= 0xf0;
        v
    };
    high.signature[32..].copy_from_slice(&l_plus_s);
    assert!(tx::verify_cofactored(&high).is_err());
}

/// A small-order public key "signs" every message under the cofactored equation with
/// s = 0 and a small-order R, without any secret. Such keys are refused outright, alone
/// and in batches, and cannot be registered as signers.
#[test]
fn small_order_keys_sign_nothing_and_torsion_keys_cannot_be_registered() {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::scalar::Scalar;
    let key = EIGHT_TORSION[1].compress().to_bytes();
    let forged = pb::SignedTx {
        body: body(1).encode_to_vec(),
        signer_key_id: key.to_vec(),
        signature: [EIGHT_TORSION[2].compress().to_bytes(), [0u8; 32]].concat(),
    };
    assert!(tx::verify_cofactored(&forged).is_err());
    let good = tx::sign(&SigningKey::from_bytes(&[4; 32]), &body(2));
    let verdicts: Vec<bool> = tx::verify_many(&[&good, &forged])
        .iter()
        .map(Result::is_ok)
        .collect();
    assert_eq!(verdicts, [true, false]);

    let honest = SigningKey::from_bytes(&[4; 32]).verifying_key().to_bytes();
    assert_eq!(tx::unsound_key(&honest), None);
    assert!(tx::unsound_key(&key).unwrap().contains("small-order"));
    let mixed = (Scalar::from_bytes_mod_order([7; 32]) * B + EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    assert!(tx::unsound_key(&mixed).unwrap().contains("torsion"));
    // y = 2 is not on the curve.
    let mut off = [0u8; 32];
    off[0] = 2;
    assert!(tx::unsound_key(&off).unwrap().contains("not a point"));
}
