//! Signed transactions: `SignedTx { body, signer_key_id, signature }` with an Ed25519
//! signature over `"gridledger/tx/v1\n" || body`.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use prost::Message as _;

use crate::pb::{SignedTx, TxBody, tx_body::Payload};

/// Domain separator prepended to the body before signing, so a transaction signature can
/// never be confused with a note signature or any other use of the same key.
pub const TX_DOMAIN: &[u8] = b"gridledger/tx/v1\n";

/// What is wrong with a transaction before any ledger state is consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The leaf or body is not valid protobuf.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The signer key id is not a 32-byte Ed25519 public key.
    #[error("signer_key_id must be a 32-byte Ed25519 public key (got {0} bytes)")]
    BadSignerKey(usize),
    /// The signature does not verify.
    #[error("signature does not verify for signer {0}")]
    BadSignature(String),
}

/// The bytes an Ed25519 transaction signature covers.
pub fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(TX_DOMAIN.len() + body.len());
    m.extend_from_slice(TX_DOMAIN);
    m.extend_from_slice(body);
    m
}

/// Encodes and signs a body.
pub fn sign(key: &SigningKey, body: &TxBody) -> SignedTx {
    let body = body.encode_to_vec();
    let sig = key.sign(&signing_input(&body));
    SignedTx {
        body,
        signer_key_id: key.verifying_key().to_bytes().to_vec(),
        signature: sig.to_bytes().to_vec(),
    }
}

/// Decodes a leaf into the envelope and its body.
///
/// # Errors
/// [`TxError::Malformed`].
pub fn decode(leaf: &[u8]) -> Result<(SignedTx, TxBody), TxError> {
    let tx = SignedTx::decode(leaf).map_err(|e| TxError::Malformed(format!("SignedTx: {e}")))?;
    let body = TxBody::decode(tx.body.as_slice())
        .map_err(|e| TxError::Malformed(format!("TxBody: {e}")))?;
    Ok((tx, body))
}

/// Parses the signer key and signature fields.
///
/// # Errors
/// [`TxError::BadSignerKey`] or [`TxError::Malformed`] for a signature of the wrong size.
pub fn parts(tx: &SignedTx) -> Result<(VerifyingKey, Signature), TxError> {
    let key_bytes: [u8; 32] = tx
        .signer_key_id
        .as_slice()
        .try_into()
        .map_err(|_| TxError::BadSignerKey(tx.signer_key_id.len()))?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| TxError::BadSignerKey(32))?;
    let sig = Signature::from_slice(&tx.signature).map_err(|_| {
        TxError::Malformed(format!(
            "signature must be 64 bytes (got {})",
            tx.signature.len()
        ))
    })?;
    Ok((key, sig))
}

/// Verifies one transaction's signature with the ledger's rule ([`verify_cofactored`])
/// and returns the signer's key.
///
/// # Errors
/// See [`TxError`].
pub fn verify(tx: &SignedTx) -> Result<VerifyingKey, TxError> {
    let (key, _) = parts(tx)?;
    verify_cofactored(tx)?;
    Ok(key)
}

/// Why a public key may not be registered as a signer, or `None` when it may: it must
/// decode to a curve point that is neither of small order nor carries a torsion component
/// (every key an honest Ed25519 implementation generates passes).
pub fn unsound_key(key: &[u8; 32]) -> Option<&'static str> {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    match CompressedEdwardsY(*key).decompress() {
        None => Some("public_key is not a point on Ed25519"),
        Some(a) if a.is_small_order() => Some("public_key is a small-order point"),
        Some(a) if !a.is_torsion_free() => Some("public_key has a torsion component"),
        Some(_) => None,
    }
}

/// Signatures per batch when a block's signatures are checked at apply (batches run in
/// parallel; the verdicts do not depend on the batching, see [`verify_cofactored`]).
pub const APPLY_BATCH: usize = 256;

/// The parts of one signature check: `[8](s·B − k·A − R) = 0`.
struct Check {
    a: curve25519_dalek::EdwardsPoint,
    r: curve25519_dalek::EdwardsPoint,
    s: curve25519_dalek::Scalar,
    k: curve25519_dalek::Scalar,
}

fn check_parts(tx: &SignedTx) -> Result<Check, TxError> {
    use curve25519_dalek::Scalar;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use sha2::{Digest, Sha512};
    let key: [u8; 32] = tx
        .signer_key_id
        .as_slice()
        .try_into()
        .map_err(|_| TxError::BadSignerKey(tx.signer_key_id.len()))?;
    let a = CompressedEdwardsY(key)
        .decompress()
        .ok_or(TxError::BadSignerKey(32))?;
    // A small-order key satisfies the cofactored equation for any message with s = 0 and a
    // small-order R: it signs nothing, and no honest key is one.
    if a.is_small_order() {
        return Err(TxError::BadSignature(hex::encode(key)));
    }
    let bad = || TxError::BadSignature(hex::encode(key));
    if tx.signature.len() != 64 {
        return Err(TxError::Malformed(format!(
            "signature must be 64 bytes (got {})",
            tx.signature.len()
        )));
    }
    let r_bytes: [u8; 32] = tx.signature[..32].try_into().expect("32");
    let s_bytes: [u8; 32] = tx.signature[32..].try_into().expect("32");
    let r = CompressedEdwardsY(r_bytes).decompress().ok_or_else(bad)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or_else(bad)?;
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(r_bytes)
            .chain_update(key)
            .chain_update(TX_DOMAIN)
            .chain_update(&tx.body),
    );
    Ok(Check { a, r, s, k })
}

fn holds(c: &Check) -> bool {
    use curve25519_dalek::EdwardsPoint;
    use curve25519_dalek::traits::IsIdentity;
    (EdwardsPoint::vartime_double_scalar_mul_basepoint(&-c.k, &c.a, &c.s) - c.r)
        .mul_by_cofactor()
        .is_identity()
}

/// Verifies one signature with the cofactored Ed25519 equation `[8](s·B − k·A − R) = 0`
/// (canonical s; any decodable A and R), the rule of ZIP-215.
///
/// This is the ledger's signature rule at apply (rule `4.1/signature`). Its point is that
/// it is a property of each signature alone: the cofactored batch equation holds for a
/// batch exactly when it holds for every member (but with probability 2^-128), so a
/// verdict never depends on how transactions were batched, which node verified them, or
/// how many cores it has. (Cofactorless checks, such as dalek's `verify`, can accept a
/// signature with a small-order component in one batch and refuse it in another.) Every
/// signature an honest Ed25519 signer makes passes; a forgery is as hard as ever.
///
/// # Errors
/// See [`TxError`].
pub fn verify_cofactored(tx: &SignedTx) -> Result<(), TxError> {
    let c = check_parts(tx)?;
    if holds(&c) {
        Ok(())
    } else {
        Err(TxError::BadSignature(hex::encode(&tx.signer_key_id)))
    }
}

/// [`verify_cofactored`] for many transactions at once: one cofactored batch equation
/// (about twice as fast per signature), and one-by-one checks only when it fails, to name
/// the bad ones. The verdict for each transaction equals [`verify_cofactored`]'s.
///
/// The batch weights are 128-bit scalars derived by hashing every input (a Fiat–Shamir
/// choice, as dalek does), so the function is pure; an adversary cannot pick signatures
/// that cancel out without knowing the weights, which depend on the signatures.
pub fn verify_many(txs: &[&SignedTx]) -> Vec<Result<(), TxError>> {
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use curve25519_dalek::{EdwardsPoint, Scalar, constants::ED25519_BASEPOINT_POINT};
    use sha2::{Digest, Sha512};
    let mut out = Vec::with_capacity(txs.len());
    let mut checks = Vec::with_capacity(txs.len());
    for tx in txs {
        match check_parts(tx) {
            Ok(c) => {
                checks.push((out.len(), c));
                out.push(Ok(()));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if checks.is_empty() {
        return out;
    }
    let mut seed = Sha512::new();
    seed.update(b"gridledger/batch-weights/v1");
    for (_, c) in &checks {
        seed.update(c.a.compress().as_bytes());
        seed.update(c.r.compress().as_bytes());
        seed.update(c.s.as_bytes());
        seed.update(c.k.as_bytes());
    }
    let seed = seed.finalize();
    let weights: Vec<Scalar> = (0..checks.len() as u64)
        .map(|i| {
            let h = Sha512::new()
                .chain_update(seed)
                .chain_update(i.to_le_bytes())
                .finalize();
            let mut z = [0u8; 32];
            z[..16].copy_from_slice(&h[..16]);
            Scalar::from_bytes_mod_order(z)
        })
        .collect();
    let b_coeff: Scalar = checks.iter().zip(&weights).map(|((_, c), z)| z * c.s).sum();
    let scalars = std::iter::once(-b_coeff)
        .chain(weights.iter().copied())
        .chain(checks.iter().zip(&weights).map(|((_, c), z)| z * c.k));
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(checks.iter().map(|(_, c)| c.r))
        .chain(checks.iter().map(|(_, c)| c.a));
    // Σ z·R + Σ z·k·A − (Σ z·s)·B = 0, times the cofactor.
    let sum = EdwardsPoint::vartime_multiscalar_mul(scalars, points);
    if !sum.mul_by_cofactor().is_identity() {
        for (i, c) in &checks {
            if !holds(c) {
                out[*i] = Err(TxError::BadSignature(hex::encode(&txs[*i].signer_key_id)));
            }
        }
    }
    out
}

/// A stable short name for a payload type, used for per-type transaction counts.
pub fn payload_kind(body: &TxBody) -> &'static str {
    match &body.payload {
        None => "none",
        Some(Payload::RegisterOrg(_)) => "register_org",
        Some(Payload::RegisterSigner(_)) => "register_signer",
        Some(Payload::RegisterInstrument(_)) => "register_instrument",
        Some(Payload::IssueCertificate(_)) => "issue_certificate",
        Some(Payload::RecordReading(_)) => "record_reading",
        Some(Payload::RevokeSigner(_)) => "revoke_signer",
        Some(Payload::ProposeChange(_)) => "propose_change",
        Some(Payload::CastVote(_)) => "cast_vote",
        Some(Payload::GrantAuthorisation(_)) => "grant_authorisation",
        Some(Payload::RecordAccreditation(_)) => "record_accreditation",
        Some(Payload::RegisterPersonnelCertificate(_)) => "register_personnel_certificate",
        Some(Payload::RegisterEquipment(_)) => "register_equipment",
        Some(Payload::IssueCalibration(_)) => "issue_calibration",
        Some(Payload::SchedulePlan(_)) => "schedule_plan",
        Some(Payload::OpenDispute(_)) => "open_dispute",
        Some(Payload::AcceptCalibration(_)) => "accept_calibration",
        Some(Payload::PurgePrivate(_)) => "purge_private",
        Some(Payload::AnchorDocument(_)) => "anchor_document",
        Some(Payload::BindCustomer(_)) => "bind_customer",
        Some(Payload::RegisterModel(_)) => "register_model",
        Some(Payload::PublishDemandPlan(_)) => "publish_demand_plan",
        Some(Payload::AcknowledgeDemand(_)) => "acknowledge_demand",
        Some(Payload::PublishTestBatch(_)) => "publish_test_batch",
    }
}
