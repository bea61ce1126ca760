//! gridledger-core: the pure heart of gridledger. No I/O, no async runtime: everything
//! here is a function of its inputs, so the node, the light client, the C ABI and any
//! test reuse one implementation of every format and proof.
//!
//! # Layout
//! - [`merkle`]: RFC 9162 §2.1 hashing, inclusion and consistency proofs (build over a
//!   [`merkle::HashSource`], verify), and the append [`merkle::Frontier`].
//! - [`note`]: C2SP signed notes, Ed25519 signatures (0x01), cosignatures v1 (0x04),
//!   key ids and verifier keys.
//! - [`checkpoint`]: C2SP tlog-checkpoint bodies.
//! - [`trust`]: the client's trust policy (origin, keys, quorum, witnesses).
//! - [`receipt`]: C2SP tlog-proof receipts with the leaf in `extra`.
//! - [`tx`]: signing and verifying `SignedTx` (`gridledger/tx/v1\n` domain).
//! - [`block`]: block headers and their hash.
//! - [`contract`]: deterministic transaction checks run at apply (ledger rules §4.1,
//!   consortium §4.5, readings §4.6).
//! - [`metrology`]: the metering domain's records and rules (DOMAIN.md §2, §4.2, §4.3):
//!   accuracy classes and error limits, traceability chains, certificates, plans.
//! - [`private`]: data classes II and III: the commitment a class II leaf holds, the
//!   payload checks, and a class III document's SHA-256 + MD5 + size.
//! - [`pb`]: the transaction messages generated from `proto/gridledger/v1/tx.proto`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block;
pub mod checkpoint;
pub mod contract;
pub mod merkle;
pub mod metrology;
pub mod note;
pub mod private;
pub mod receipt;
pub mod supply;
pub mod trust;
pub mod tx;

/// Transaction messages (the log leaves), generated from `tx.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/gridledger.v1.rs"));
}

pub use merkle::Hash;
