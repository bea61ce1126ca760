//! Signed notes, cosignatures, the trust policy and receipts: the happy path and the
//! attacks a light client must refuse.

use ed25519_dalek::SigningKey;
use gridledger_core::checkpoint::Checkpoint;
use gridledger_core::merkle;
use gridledger_core::note::{Cosigner, NoteSigner, SignedNote};
use gridledger_core::receipt::{Receipt, ReceiptError};
use gridledger_core::trust::{TrustError, TrustPolicy};

const ORIGIN: &str = "gridledger.example/metering";

fn signer(i: u8) -> NoteSigner {
    NoteSigner::new(
        &format!("{ORIGIN}/node-{i}"),
        SigningKey::from_bytes(&[i; 32]),
    )
    .unwrap()
}

fn witness(i: u8) -> Cosigner {
    Cosigner::new(
        &format!("witness-{i}.example"),
        SigningKey::from_bytes(&[100 + i; 32]),
    )
    .unwrap()
}

fn policy(quorum: usize, witness_quorum: usize) -> TrustPolicy {
    TrustPolicy {
        origin: ORIGIN.into(),
        quorum,
        keys: (1..=3)
            .map(|i| signer(i).verifier_key().to_string())
            .collect(),
        witnesses: (1..=2)
            .map(|i| witness(i).verifier_key().to_string())
            .collect(),
        witness_quorum,
    }
}

fn tree(n: u64) -> Vec<[u8; 32]> {
    (0..n)
        .map(|i| merkle::leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

fn note_by(cp: &Checkpoint, signers: &[u8]) -> SignedNote {
    let text = cp.body();
    SignedNote {
        sigs: signers.iter().map(|&i| signer(i).sign(&text)).collect(),
        text,
    }
}

fn cp(n: u64) -> Checkpoint {
    Checkpoint {
        origin: ORIGIN.into(),
        size: n,
        root: merkle::root(tree(n).as_slice(), n).unwrap(),
    }
}

#[test]
fn quorum_is_counted_over_distinct_configured_keys() {
    let p = policy(2, 0).compile().unwrap();
    let c = cp(10);
    assert!(
        p.verify_checkpoint(&note_by(&c, &[1, 2]).to_string())
            .is_ok()
    );
    let one = p
        .verify_checkpoint(&note_by(&c, &[1]).to_string())
        .unwrap_err();
    assert!(
        matches!(
            one,
            TrustError::Quorum {
                need: 2,
                got: 1,
                ..
            }
        ),
        "{one}"
    );
    // The same key twice is not two signatures.
    let dup = p
        .verify_checkpoint(&note_by(&c, &[1, 1]).to_string())
        .unwrap_err();
    assert!(matches!(dup, TrustError::Note(_)), "{dup}");
    // Unknown keys are ignored, not counted.
    let stranger = NoteSigner::new(
        &format!("{ORIGIN}/node-9"),
        SigningKey::from_bytes(&[9; 32]),
    )
    .unwrap();
    let mut n = note_by(&c, &[1]);
    n.sigs.push(stranger.sign(&n.text));
    assert!(matches!(
        p.verify_checkpoint(&n.to_string()).unwrap_err(),
        TrustError::Quorum { got: 1, .. }
    ));
}

#[test]
fn a_known_key_signing_another_body_is_rejected() {
    let p = policy(1, 0).compile().unwrap();
    let c = cp(10);
    let other = cp(11);
    let mut n = note_by(&c, &[1, 2]);
    n.sigs[1] = signer(2).sign(&other.body());
    let e = p.verify_checkpoint(&n.to_string()).unwrap_err();
    assert!(matches!(e, TrustError::Note(_)), "{e}");
}

#[test]
fn wrong_origin_and_malformed_notes_are_rejected() {
    let p = policy(1, 0).compile().unwrap();
    let mut c = cp(3);
    c.origin = "evil.example/log".into();
    assert!(matches!(
        p.verify_checkpoint(&note_by(&c, &[1]).to_string())
            .unwrap_err(),
        TrustError::WrongOrigin { .. }
    ));
    let good = note_by(&cp(3), &[1]).to_string();
    for bad in [
        good.replace("\n\n", "\n"),
        good.trim_end().to_string(),
        good.replace('\u{2014}', "-"),
        format!("{}\n", good.replacen('\n', "\nextension\n", 3)),
        good.replacen("3\n", "03\n", 1),
        good.replacen("\n\n", "\n\x07\n", 1),
        String::new(),
    ] {
        assert!(p.verify_checkpoint(&bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn witness_cosignatures_meet_their_own_quorum() {
    let p = policy(1, 1).compile().unwrap();
    let c = cp(5);
    let mut n = note_by(&c, &[1]);
    assert!(matches!(
        p.verify_checkpoint(&n.to_string()).unwrap_err(),
        TrustError::WitnessQuorum { need: 1, got: 0 }
    ));
    n.sigs.push(witness(1).cosign(&n.text, 1_700_000_000));
    let v = p.verify_checkpoint(&n.to_string()).unwrap();
    assert_eq!(
        v.witnesses,
        vec![("witness-1.example".to_string(), 1_700_000_000)]
    );
    // A cosignature over a different checkpoint is a forgery.
    let mut forged = note_by(&c, &[1]);
    forged
        .sigs
        .push(witness(1).cosign(&cp(6).body(), 1_700_000_000));
    assert!(p.verify_checkpoint(&forged.to_string()).is_err());
    // A node's note signature does not count as a cosignature.
    let mut wrong_type = note_by(&c, &[1]);
    let w = witness(2);
    let mut line = signer(2).sign(&wrong_type.text);
    line.name = "witness-2.example".into();
    line.key_id = w.verifier_key().key_id;
    wrong_type.sigs.push(line);
    assert!(p.verify_checkpoint(&wrong_type.to_string()).is_err());
}

#[test]
fn invalid_policies_say_what_is_wrong() {
    let mut p = policy(4, 0);
    assert!(
        p.compile()
            .unwrap_err()
            .to_string()
            .contains("quorum 4 exceeds")
    );
    p.quorum = 0;
    assert!(p.compile().is_err());
    p.quorum = 1;
    p.keys.push(p.keys[0].clone());
    assert!(p.compile().unwrap_err().to_string().contains("twice"));
    let mut w = policy(1, 0);
    w.witnesses = vec![w.keys[0].clone()];
    assert!(
        w.compile()
            .unwrap_err()
            .to_string()
            .contains("signature type")
    );
    assert!(TrustPolicy::from_json("{\"origin\": 1}").is_err());
    assert!(TrustPolicy::from_json("not json").is_err());
}

#[test]
fn receipts_round_trip_and_tampering_is_rejected() {
    let p = policy(2, 0).compile().unwrap();
    let leaves: Vec<Vec<u8>> = (0..13u8).map(|i| vec![i; 40]).collect();
    let hashes: Vec<[u8; 32]> = leaves.iter().map(|l| merkle::leaf_hash(l)).collect();
    let c = Checkpoint {
        origin: ORIGIN.into(),
        size: 13,
        root: merkle::root(hashes.as_slice(), 13).unwrap(),
    };
    let note = note_by(&c, &[2, 3]).to_string();
    for i in 0..13u64 {
        let r = Receipt {
            leaf: leaves[i as usize].clone(),
            index: i,
            path: merkle::inclusion_proof(hashes.as_slice(), i, 13).unwrap(),
            checkpoint: note.clone(),
        };
        let s = r.to_string();
        let parsed = Receipt::parse(&s).unwrap();
        assert_eq!(parsed, r);
        assert_eq!(parsed.verify(&p).unwrap().index, i);
        let mut wrong_leaf = parsed.clone();
        wrong_leaf.leaf[0] ^= 1;
        assert!(matches!(wrong_leaf.verify(&p), Err(ReceiptError::Proof(_))));
        let mut wrong_index = parsed.clone();
        wrong_index.index = (i + 1) % 13;
        assert!(wrong_index.verify(&p).is_err());
        for bad in [
            s.replacen("c2sp.org/tlog-proof@v1", "c2sp.org/tlog-proof@v2", 1),
            s.replacen(&format!("index {i}\n"), &format!("index 0{i}\n"), 1),
            s.replacen("extra ", "extra !", 1),
            format!("{s}trailing"),
            s[..s.len() / 2].to_string(),
        ] {
            assert!(
                Receipt::parse(&bad).and_then(|r| r.verify(&p)).is_err(),
                "accepted tampered receipt {bad:?}"
            );
        }
    }
}
