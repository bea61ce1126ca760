//! Transaction signatures (single and batch) and block header encoding.

use ed25519_dalek::SigningKey;
use gridledger_core::block::BlockHeader;
use gridledger_core::pb::{RegisterOrg, TxBody, tx_body::Payload};
use gridledger_core::tx;

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
