//! Witness cosignatures (C2SP tlog-cosignature/v1, type 0x04) from external witnesses,
//! for example a regulator's, attached to the checkpoints this node serves.
//!
//! A witness follows the log itself: it fetches checkpoints and consistency proofs from
//! its last size (the C2SP tlog-witness discipline), cosigns, and hands its cosignature
//! lines in. The node keeps a line only if it verifies under a configured witness key
//! and the checkpoint names this ledger's root at that size. With witnesses configured,
//! the node serves the largest witnessed checkpoint (so clients whose policies require a
//! witness quorum get one); newer leaves get receipts once the witnesses catch up.

use std::collections::BTreeMap;

use gridledger_core::checkpoint::Checkpoint;
use gridledger_core::note::{SignatureLine, SignedNote, VerifierKey, verify_line};
use gridledger_services::ServiceError;
use parking_lot::Mutex;

use crate::ledger::Ledger;
use crate::store::Store;

/// Sizes whose cosignatures are kept.
const KEEP_SIZES: usize = 64;

/// Configured witnesses and the cosignatures they handed in.
pub struct Witnesses {
    keys: Vec<VerifierKey>,
    // size → witness key name → line
    lines: Mutex<BTreeMap<u64, BTreeMap<String, SignatureLine>>>,
}

impl Witnesses {
    /// Accepts cosignatures from these keys (type 0x04 verifier keys).
    pub fn new(keys: Vec<VerifierKey>) -> Self {
        Self {
            keys,
            lines: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether any witness is configured.
    pub fn configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Verifies and keeps the configured witnesses' lines on `note`.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for a malformed note, FAILED_PRECONDITION for a checkpoint that
    /// is not this ledger's, UNAUTHENTICATED when no line verifies under a configured key.
    pub fn add<S: Store>(&self, ledger: &Ledger<S>, note: &str) -> Result<u32, ServiceError> {
        let n =
            SignedNote::parse(note).map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
        let cp =
            Checkpoint::parse(&n.text).map_err(|e| ServiceError::InvalidArgument(e.to_string()))?;
        // Authenticate first: only a configured witness learns whether a size and root
        // are this ledger's.
        let mut accepted = BTreeMap::new();
        for line in &n.sigs {
            if let Some(k) = self
                .keys
                .iter()
                .find(|k| k.name == line.name && k.key_id == line.key_id)
                && verify_line(k, &n.text, line).is_ok()
            {
                accepted.insert(k.name.clone(), line.clone());
            }
        }
        if accepted.is_empty() {
            return Err(ServiceError::Unauthenticated(
                "no cosignature verifies under a witness key this node is configured with".into(),
            ));
        }
        if cp.origin != ledger.origin() {
            return Err(ServiceError::FailedPrecondition(format!(
                "checkpoint for origin {:?}, this ledger is {:?}",
                cp.origin,
                ledger.origin()
            )));
        }
        if cp.size == 0 || cp.size > ledger.tip().size || ledger.root_at(cp.size)? != cp.root {
            return Err(ServiceError::FailedPrecondition(format!(
                "the cosigned checkpoint (size {}) is not one of this ledger's",
                cp.size
            )));
        }
        let count = accepted.len() as u32;
        let mut lines = self.lines.lock();
        lines.entry(cp.size).or_default().extend(accepted);
        while lines.len() > KEEP_SIZES {
            lines.pop_first();
        }
        Ok(count)
    }

    /// The largest witnessed size.
    pub fn latest(&self) -> Option<u64> {
        self.lines.lock().keys().next_back().copied()
    }

    /// `note` with the witnesses' lines for its text appended.
    pub fn attach(&self, mut note: SignedNote, size: u64) -> SignedNote {
        if let Some(ls) = self.lines.lock().get(&size) {
            note.sigs.extend(ls.values().cloned());
        }
        note
    }
}

impl std::fmt::Debug for Witnesses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witnesses")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}
