//! The client's trust policy: which origin, which node keys, how many of them (k), and
//! optional witnesses with their own quorum. A checkpoint is accepted only when it meets
//! the policy; nothing the server says can lower it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::note::{
    ALG_COSIGNATURE_V1, ALG_ED25519, NoteError, SignedNote, VerifierKey, verify_line,
};

/// The policy as written in `trust.json`:
/// `{"origin", "quorum", "keys", "witnesses", "witness_quorum"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// The ledger (channel) origin the client expects.
    pub origin: String,
    /// Signatures needed from distinct node keys.
    pub quorum: usize,
    /// Node verifier keys (type 0x01).
    pub keys: Vec<String>,
    /// Witness verifier keys (type 0x04 cosignatures).
    #[serde(default)]
    pub witnesses: Vec<String>,
    /// Cosignatures needed from distinct witnesses.
    #[serde(default)]
    pub witness_quorum: usize,
}

impl TrustPolicy {
    /// The policy for channel `name` of the ledger this policy trusts: the channel's
    /// origin (`<origin>/<name>`, see `contract::channel_origin`) and the same node keys
    /// under the channel's key names (`<channel origin>/<node>`), with the same quorum
    /// and witnesses. Derived here rather than fetched, so a server cannot pass one
    /// channel off as another.
    ///
    /// # Errors
    /// [`TrustError::InvalidPolicy`] for a bad channel name or a key not named under
    /// this policy's origin.
    pub fn for_channel(&self, name: &str) -> Result<TrustPolicy, TrustError> {
        if !crate::contract::valid_channel_name(name) {
            return Err(TrustError::InvalidPolicy(format!(
                "channel name {name:?} must match [a-z0-9][a-z0-9-]{{0,31}}"
            )));
        }
        let origin = crate::contract::channel_origin(&self.origin, name);
        let keys = self
            .keys
            .iter()
            .map(|k| {
                let v = VerifierKey::parse(k)?;
                let node = v
                    .name
                    .strip_prefix(self.origin.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                    .ok_or_else(|| {
                        TrustError::InvalidPolicy(format!(
                            "key {:?} is not named <origin>/<node>, so its channel name cannot be derived",
                            v.name
                        ))
                    })?;
                Ok(VerifierKey::new(&format!("{origin}/{node}"), v.alg, v.public)?.to_string())
            })
            .collect::<Result<_, TrustError>>()?;
        Ok(TrustPolicy {
            origin,
            keys,
            ..self.clone()
        })
    }
}

/// Why a policy is unusable or a checkpoint does not meet it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The policy file itself is wrong.
    #[error("invalid trust policy: {0}")]
    InvalidPolicy(String),
    /// The note does not parse, or a known key's signature is bad.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note text is not a checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint is for another log.
    #[error("checkpoint origin {got:?} is not the trusted origin {expected:?}")]
    WrongOrigin {
        /// Policy origin.
        expected: String,
        /// Checkpoint origin.
        got: String,
    },
    /// Too few node signatures.
    #[error("only {got} of the required {need} node signatures verify (signed by: {signers:?})")]
    Quorum {
        /// Policy quorum.
        need: usize,
        /// Valid distinct node signatures.
        got: usize,
        /// Who signed.
        signers: Vec<String>,
    },
    /// Too few witness cosignatures.
    #[error("only {got} of the required {need} witness cosignatures verify")]
    WitnessQuorum {
        /// Policy witness quorum.
        need: usize,
        /// Valid distinct cosignatures.
        got: usize,
    },
}

/// A checkpoint that met the policy, with the evidence of who signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// The signed note exactly as received.
    pub note: String,
    /// Names of node keys whose signatures verified.
    pub signers: Vec<String>,
    /// Names of witnesses whose cosignatures verified, with their timestamps.
    pub witnesses: Vec<(String, u64)>,
}

/// A validated policy with parsed keys, ready to verify notes.
#[derive(Debug, Clone)]
pub struct Policy {
    origin: String,
    quorum: usize,
    keys: Vec<VerifierKey>,
    witnesses: Vec<VerifierKey>,
    witness_quorum: usize,
}

impl TrustPolicy {
    /// Parses `trust.json`.
    ///
    /// # Errors
    /// [`TrustError::InvalidPolicy`] with the JSON error.
    pub fn from_json(s: &str) -> Result<Self, TrustError> {
        serde_json::from_str(s).map_err(|e| {
            TrustError::InvalidPolicy(format!("trust file is not valid policy JSON: {e}"))
        })
    }

    /// Validates the policy and parses its keys.
    ///
    /// # Errors
    /// [`TrustError::InvalidPolicy`] saying what is wrong.
    pub fn compile(&self) -> Result<Policy, TrustError> {
        let bad = |m: String| TrustError::InvalidPolicy(m);
        if self.origin.is_empty() || self.origin.contains('\n') {
            return Err(bad("origin must be a non-empty single line".into()));
        }
        let parse =
            |list: &[String], alg: u8, what: &str| -> Result<Vec<VerifierKey>, TrustError> {
                let mut out: Vec<VerifierKey> = Vec::new();
                for s in list {
                    let k = VerifierKey::parse(s).map_err(|e| bad(format!("{what}: {e}")))?;
                    if k.alg != alg {
                        return Err(bad(format!(
                            "{what} {:?} has signature type {:#04x}, expected {alg:#04x}",
                            k.name, k.alg
                        )));
                    }
                    if out.iter().any(|o| o.name == k.name || o.public == k.public) {
                        return Err(bad(format!("{what} {:?} is listed twice", k.name)));
                    }
                    out.push(k);
                }
                Ok(out)
            };
        let keys = parse(&self.keys, ALG_ED25519, "node key")?;
        let witnesses = parse(&self.witnesses, ALG_COSIGNATURE_V1, "witness key")?;
        if self.quorum == 0 {
            return Err(bad("quorum must be at least 1".into()));
        }
        if self.quorum > keys.len() {
            return Err(bad(format!(
                "quorum {} exceeds the {} node keys listed",
                self.quorum,
                keys.len()
            )));
        }
        if self.witness_quorum > witnesses.len() {
            return Err(bad(format!(
                "witness_quorum {} exceeds the {} witnesses listed",
                self.witness_quorum,
                witnesses.len()
            )));
        }
        Ok(Policy {
            origin: self.origin.clone(),
            quorum: self.quorum,
            keys,
            witnesses,
            witness_quorum: self.witness_quorum,
        })
    }
}

impl Policy {
    /// The trusted origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How many node signatures a checkpoint needs.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Verifies a signed checkpoint note against the policy.
    ///
    /// Signature lines of unknown keys are ignored (C2SP signed-note); a line from a known
    /// key that does not verify rejects the whole note, because it proves someone is
    /// sending forged material.
    ///
    /// # Errors
    /// See [`TrustError`].
    pub fn verify_checkpoint(&self, note: &str) -> Result<VerifiedCheckpoint, TrustError> {
        let parsed = SignedNote::parse(note)?;
        let checkpoint = Checkpoint::parse(&parsed.text)?;
        if checkpoint.origin != self.origin {
            return Err(TrustError::WrongOrigin {
                expected: self.origin.clone(),
                got: checkpoint.origin,
            });
        }
        let mut signers = BTreeSet::new();
        let mut witnesses = Vec::new();
        for line in &parsed.sigs {
            let known = self
                .keys
                .iter()
                .chain(self.witnesses.iter())
                .find(|k| k.name == line.name && k.key_id == line.key_id);
            let Some(key) = known else { continue };
            let ts = verify_line(key, &parsed.text, line)?;
            let fresh = match ts {
                None => signers.insert(key.name.clone()),
                Some(ts) => {
                    let dup = witnesses
                        .iter()
                        .any(|(n, _): &(String, u64)| n == &key.name);
                    if !dup {
                        witnesses.push((key.name.clone(), ts));
                    }
                    !dup
                }
            };
            if !fresh {
                return Err(NoteError::Duplicate(key.name.clone()).into());
            }
        }
        if signers.len() < self.quorum {
            return Err(TrustError::Quorum {
                need: self.quorum,
                got: signers.len(),
                signers: signers.into_iter().collect(),
            });
        }
        if witnesses.len() < self.witness_quorum {
            return Err(TrustError::WitnessQuorum {
                need: self.witness_quorum,
                got: witnesses.len(),
            });
        }
        Ok(VerifiedCheckpoint {
            checkpoint,
            note: note.to_string(),
            signers: signers.into_iter().collect(),
            witnesses,
        })
    }
}
