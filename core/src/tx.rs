//! Signed transactions: `SignedTx { body, signer_key_id, signature }` with an Ed25519
//! signature over `"gridledger/tx/v1\n" || body`.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
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

/// Verifies one transaction's signature.
///
/// # Errors
/// See [`TxError`].
pub fn verify(tx: &SignedTx) -> Result<VerifyingKey, TxError> {
    let (key, sig) = parts(tx)?;
    key.verify(&signing_input(&tx.body), &sig)
        .map_err(|_| TxError::BadSignature(hex::encode(key.as_bytes())))?;
    Ok(key)
}

/// Verifies one signature with dalek's strict rules (no small-order components,
/// canonical encodings), the same way on every machine.
///
/// # Errors
/// See [`TxError`].
pub fn verify_strict(tx: &SignedTx) -> Result<(), TxError> {
    let (key, sig) = parts(tx)?;
    key.verify_strict(&signing_input(&tx.body), &sig)
        .map_err(|_| TxError::BadSignature(hex::encode(key.as_bytes())))
}

/// Verifies many signatures at once with Ed25519 batch verification, falling back to
/// one-by-one checks only when the batch fails, to name the bad ones.
///
/// Batch verification (random linear combination) is about twice as fast per signature
/// as single checks; it accepts exactly the signatures single verification accepts for
/// signatures that pass dalek's strict encoding checks, which `parts` enforces.
pub fn verify_many(txs: &[&SignedTx]) -> Vec<Result<(), TxError>> {
    let mut out: Vec<Result<(), TxError>> = Vec::with_capacity(txs.len());
    let mut keys = Vec::with_capacity(txs.len());
    let mut sigs = Vec::with_capacity(txs.len());
    let mut msgs = Vec::with_capacity(txs.len());
    let mut idx = Vec::with_capacity(txs.len());
    for (i, tx) in txs.iter().enumerate() {
        match parts(tx) {
            Ok((k, s)) => {
                keys.push(k);
                sigs.push(s);
                msgs.push(signing_input(&tx.body));
                idx.push(i);
                out.push(Ok(()));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if idx.is_empty() {
        return out;
    }
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&refs, &sigs, &keys).is_err() {
        for (j, &i) in idx.iter().enumerate() {
            if keys[j].verify(refs[j], &sigs[j]).is_err() {
                out[i] = Err(TxError::BadSignature(hex::encode(keys[j].as_bytes())));
            }
        }
    }
    out
}

/// Signatures per batch in [`verify_for_apply`]. Fixed, so the batches of a block are
/// the same on every replica whatever its core count.
pub const APPLY_BATCH: usize = 256;

/// Verifies one apply batch (a block's transactions `[k * APPLY_BATCH, (k + 1) *
/// APPLY_BATCH)`) so that every replica reaches the same verdict for each transaction.
///
/// dalek's batch verification draws its weights from a transcript of the batch's own
/// inputs, not from an RNG, so the same batch gets the same answer on every machine; a
/// batch that fails is re-checked one by one with the strict rules, also deterministic.
/// The verdict is therefore a function of the block's bytes alone, at batch speed in the
/// common case where every signature is good. (A signature with a crafted small-order
/// component can pass inside an otherwise-good batch and fail alone; that is the signer
/// malleating its own signature, never a forgery, and every replica decides it alike.)
pub fn verify_for_apply(txs: &[&SignedTx]) -> Vec<Result<(), TxError>> {
    let mut out = Vec::with_capacity(txs.len());
    let mut batch = Vec::with_capacity(txs.len());
    for (i, tx) in txs.iter().enumerate() {
        match parts(tx) {
            Ok((k, s)) => {
                batch.push((i, k, s, signing_input(&tx.body)));
                out.push(Ok(()));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if batch.is_empty() {
        return out;
    }
    let msgs: Vec<&[u8]> = batch.iter().map(|b| b.3.as_slice()).collect();
    let sigs: Vec<Signature> = batch.iter().map(|b| b.2).collect();
    let keys: Vec<VerifyingKey> = batch.iter().map(|b| b.1).collect();
    if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_err() {
        for (i, key, sig, msg) in &batch {
            if key.verify_strict(msg, sig).is_err() {
                out[*i] = Err(TxError::BadSignature(hex::encode(key.as_bytes())));
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
    }
}
