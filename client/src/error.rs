//! Client errors.

use gridledger_core::merkle::ProofError;
use gridledger_core::receipt::ReceiptError;
use gridledger_core::trust::TrustError;

use crate::light::ForkEvidence;

/// What went wrong. Verification failures are kept apart from transport and
/// configuration failures, because they mean "do not trust this" rather than "retry".
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Profile, key or trust file problems.
    #[error("{0}")]
    Config(String),
    /// The server could not be reached or refused the call.
    #[error("server: {}: {}", .0.code(), .0.message())]
    Rpc(#[from] tonic::Status),
    /// Connection setup failed.
    #[error("transport: {0}")]
    Transport(String),
    /// A checkpoint does not meet the trust policy.
    #[error("checkpoint rejected: {0}")]
    Trust(#[from] TrustError),
    /// A proof does not verify.
    #[error("proof rejected: {0}")]
    Proof(#[from] ProofError),
    /// A receipt does not verify.
    #[error("{0}")]
    Receipt(#[from] ReceiptError),
    /// The server answered something malformed.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Two checkpoints that cannot both be true: evidence attached.
    #[error("FORK DETECTED: {}", .0.summary())]
    Fork(Box<ForkEvidence>),
    /// Local state could not be read or written.
    #[error("client state: {0}")]
    State(String),
}

impl ClientError {
    /// Whether this means "the data does not verify" (exit 1) rather than an operational
    /// failure (exit 2).
    pub fn is_verification_failure(&self) -> bool {
        matches!(
            self,
            Self::Trust(_) | Self::Proof(_) | Self::Receipt(_) | Self::Fork(_) | Self::Malformed(_)
        )
    }
}
