//! Receipts: C2SP tlog-proof (https://c2sp.org/tlog-proof) with `extra` = the leaf bytes.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 leaf bytes>
//! index <N>
//! <base64 hash>           (inclusion path, leaf sibling first; zero or more lines)
//!
//! <signed checkpoint note, verbatim>
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::merkle::{Hash, ProofError, leaf_hash, verify_inclusion};
use crate::trust::{Policy, TrustError, VerifiedCheckpoint};

/// First line of a tlog-proof.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// A receipt is small: the leaf (bounded by the node's transaction size limit), at most
/// 64 hashes and a note. Anything bigger is refused before parsing.
pub const MAX_RECEIPT_BYTES: usize = 4 << 20;

/// A parsed receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The leaf bytes (a SignedTx), carried in `extra`.
    pub leaf: Vec<u8>,
    /// Leaf index.
    pub index: u64,
    /// Inclusion path.
    pub path: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// Why a receipt is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// It does not parse.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// The checkpoint does not meet the trust policy.
    #[error("receipt checkpoint rejected: {0}")]
    Trust(#[from] TrustError),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof rejected: {0}")]
    Proof(#[from] ProofError),
}

/// A receipt whose checkpoint met the policy and whose leaf is proven included.
#[derive(Debug, Clone)]
pub struct VerifiedReceipt {
    /// The leaf bytes.
    pub leaf: Vec<u8>,
    /// Leaf index.
    pub index: u64,
    /// The checkpoint and who signed it.
    pub checkpoint: VerifiedCheckpoint,
}

impl Receipt {
    /// Parses a receipt strictly.
    ///
    /// # Errors
    /// [`ReceiptError::Malformed`] naming the first problem.
    pub fn parse(s: &str) -> Result<Self, ReceiptError> {
        let bad = |m: String| ReceiptError::Malformed(m);
        if s.len() > MAX_RECEIPT_BYTES {
            return Err(bad(format!(
                "{} bytes exceeds the {MAX_RECEIPT_BYTES}-byte limit",
                s.len()
            )));
        }
        let (head, checkpoint) = s
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
        let mut lines = head.split('\n');
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(bad(format!("first line must be {TLOG_PROOF_HEADER:?}")));
        }
        let extra = lines
            .next()
            .and_then(|l| l.strip_prefix("extra "))
            .ok_or_else(|| bad("second line must be `extra <base64 leaf bytes>`".into()))?;
        let leaf = B64
            .decode(extra)
            .map_err(|_| bad("extra is not standard base64".into()))?;
        let index_s = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .ok_or_else(|| bad("missing `index N` line".into()))?;
        if index_s.is_empty()
            || !index_s.bytes().all(|b| b.is_ascii_digit())
            || (index_s.len() > 1 && index_s.starts_with('0'))
        {
            return Err(bad(format!(
                "index {index_s:?} is not a decimal without leading zeros"
            )));
        }
        let index = index_s
            .parse()
            .map_err(|_| bad(format!("index {index_s:?} does not fit in 64 bits")))?;
        let mut path = Vec::new();
        for (i, l) in lines.enumerate() {
            if path.len() == 64 {
                return Err(bad("more than 64 proof hashes".into()));
            }
            let raw = B64
                .decode(l)
                .map_err(|_| bad(format!("proof hash {i} is not standard base64")))?;
            let h: Hash = raw.try_into().map_err(|v: Vec<u8>| {
                bad(format!("proof hash {i} has {} bytes, expected 32", v.len()))
            })?;
            path.push(h);
        }
        Ok(Self {
            leaf,
            index,
            path,
            checkpoint: checkpoint.to_string(),
        })
    }

    /// Verifies the checkpoint against the policy and the leaf's inclusion in it.
    ///
    /// # Errors
    /// [`ReceiptError::Trust`] or [`ReceiptError::Proof`].
    pub fn verify(&self, policy: &Policy) -> Result<VerifiedReceipt, ReceiptError> {
        let checkpoint = policy.verify_checkpoint(&self.checkpoint)?;
        verify_inclusion(
            &leaf_hash(&self.leaf),
            self.index,
            checkpoint.checkpoint.size,
            &self.path,
            &checkpoint.checkpoint.root,
        )?;
        Ok(VerifiedReceipt {
            leaf: self.leaf.clone(),
            index: self.index,
            checkpoint,
        })
    }
}

impl std::fmt::Display for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{TLOG_PROOF_HEADER}")?;
        writeln!(f, "extra {}", B64.encode(&self.leaf))?;
        writeln!(f, "index {}", self.index)?;
        for h in &self.path {
            writeln!(f, "{}", B64.encode(h))?;
        }
        writeln!(f)?;
        f.write_str(&self.checkpoint)
    }
}
