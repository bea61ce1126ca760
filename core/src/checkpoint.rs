//! C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint):
//! `<origin>\n<tree size>\n<base64 root>\n`. gridledger writes no extension lines and its
//! verifiers reject them, so a checkpoint means exactly (origin, size, root).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::merkle::Hash;

/// A tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin, e.g. `gridledger.example/metering`.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root at that size.
    pub root: Hash,
}

/// Why a checkpoint body does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed checkpoint: {0}")]
pub struct CheckpointError(pub String);

impl Checkpoint {
    /// The note text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a note text strictly: three lines, decimal size without leading zeros,
    /// a 32-byte standard-base64 root, no extension lines.
    ///
    /// # Errors
    /// [`CheckpointError`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError(m.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("does not end in a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(bad("fewer than three lines"));
        }
        if lines.len() > 3 {
            return Err(bad(
                "extension lines are not allowed in gridledger checkpoints",
            ));
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        let size_s = lines[1];
        if size_s.is_empty()
            || !size_s.bytes().all(|b| b.is_ascii_digit())
            || (size_s.len() > 1 && size_s.starts_with('0'))
        {
            return Err(CheckpointError(format!(
                "tree size {size_s:?} is not a decimal without leading zeros"
            )));
        }
        let size = size_s.parse::<u64>().map_err(|_| {
            CheckpointError(format!("tree size {size_s:?} does not fit in 64 bits"))
        })?;
        let root_raw = B64
            .decode(lines[2])
            .map_err(|_| bad("root is not standard base64"))?;
        let root: Hash = root_raw.try_into().map_err(|v: Vec<u8>| {
            CheckpointError(format!("root has {} bytes, expected 32", v.len()))
        })?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}
