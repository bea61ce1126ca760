//! C2SP signed notes (https://c2sp.org/signed-note): Ed25519 note signatures (type 0x01),
//! Ed25519 tlog cosignatures v1 (type 0x04, https://c2sp.org/tlog-cosignature), key ids
//! and verifier-key strings.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of an Ed25519 note signature (signed-note §Signature types).
pub const ALG_ED25519: u8 = 0x01;
/// Signature type byte of an Ed25519 tlog cosignature v1 (tlog-cosignature §Format).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Header line of the cosigned message (tlog-cosignature §Ed25519 signed message).
pub const COSIGNATURE_HEADER: &str = "cosignature/v1\n";
/// A signature line starts with U+2014 EM DASH and a space.
pub const SIG_LINE_PREFIX: &str = "\u{2014} ";
/// Upper bound on signature lines we parse: a note is small, and a server that sends
/// thousands of lines is attacking the verifier's CPU (Go's x/mod/sumdb/note uses 100).
pub const MAX_SIGNATURES: usize = 100;

/// What is wrong with a note, a key or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note could not be parsed.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A verifier key string could not be parsed.
    #[error("malformed verifier key {key:?}: {reason}")]
    BadKey {
        /// The offending key string.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A key name breaks the signed-note rules (non-empty, no spaces, no '+').
    #[error("invalid key name {0:?}: must be non-empty and contain no whitespace or '+'")]
    BadName(String),
    /// A signature by a known key does not verify: the note must be rejected as a whole.
    #[error("signature by {name} (key id {key_id}) does not verify")]
    BadSignature {
        /// Key name.
        name: String,
        /// Key id, hex.
        key_id: String,
    },
    /// The same known key signed twice.
    #[error("duplicate signature by {0}")]
    Duplicate(String),
}

/// SHA-256(name || 0x0A || alg || public key)[:4].
pub fn key_id(name: &str, alg: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', alg]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::BadName(name.to_string()));
    }
    Ok(())
}

/// A public key as configured in a trust policy: `name+hexkeyid+base64(alg || key)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    /// Key name, e.g. `gridledger.example/metering/node-1`.
    pub name: String,
    /// The 4-byte key id, recomputed and checked when parsed.
    pub key_id: [u8; 4],
    /// [`ALG_ED25519`] or [`ALG_COSIGNATURE_V1`].
    pub alg: u8,
    /// The Ed25519 public key.
    pub public: VerifyingKey,
}

impl VerifierKey {
    /// Builds a verifier key for a public key.
    ///
    /// # Errors
    /// [`NoteError::BadName`] for an invalid name.
    pub fn new(name: &str, alg: u8, public: VerifyingKey) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self {
            name: name.to_string(),
            key_id: key_id(name, alg, public.as_bytes()),
            alg,
            public,
        })
    }

    /// Parses `name+hexkeyid+base64(alg || key)` and checks that the key id matches.
    ///
    /// # Errors
    /// [`NoteError::BadKey`] saying what is wrong.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let bad = |reason: &str| NoteError::BadKey {
            key: s.to_string(),
            reason: reason.to_string(),
        };
        // Names cannot contain '+', but standard base64 can: split at the first two only.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+keyid+key"));
        };
        check_name(name).map_err(|_| bad("invalid key name"))?;
        if id_hex.len() != 8
            || !id_hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad("key id must be 8 lowercase hex digits"));
        }
        let id: [u8; 4] = hex::decode(id_hex)
            .map_err(|_| bad("key id is not hex"))?
            .try_into()
            .map_err(|_| bad("key id length"))?;
        let raw = B64
            .decode(key_b64)
            .map_err(|_| bad("key is not standard base64"))?;
        if raw.len() != 33 {
            return Err(bad("key must be 1 type byte and 32 key bytes"));
        }
        let alg = raw[0];
        if alg != ALG_ED25519 && alg != ALG_COSIGNATURE_V1 {
            return Err(bad("unsupported signature type (want 0x01 or 0x04)"));
        }
        let public_bytes: [u8; 32] = raw[1..].try_into().expect("33 - 1 bytes");
        let public =
            VerifyingKey::from_bytes(&public_bytes).map_err(|_| bad("not an Ed25519 point"))?;
        if key_id(name, alg, &public_bytes) != id {
            return Err(bad("key id does not match name and key"));
        }
        Ok(Self {
            name: name.to_string(),
            key_id: id,
            alg,
            public,
        })
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(33);
        raw.push(self.alg);
        raw.extend_from_slice(self.public.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_id),
            B64.encode(raw)
        )
    }
}

/// One signature line: `— <name> base64(key id || signature bytes)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureLine {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: [u8; 4],
    /// Signature bytes after the key id (64 for type 0x01, 8 + 64 for type 0x04).
    pub sig: Vec<u8>,
}

impl std::fmt::Display for SignatureLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = Vec::with_capacity(4 + self.sig.len());
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.sig);
        writeln!(f, "{SIG_LINE_PREFIX}{} {}", self.name, B64.encode(raw))
    }
}

/// A parsed signed note: the signed text and its signature lines, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The text, ending in a newline; exactly the bytes that type-0x01 signatures cover.
    pub text: String,
    /// Signature lines, in the order they appear.
    pub sigs: Vec<SignatureLine>,
}

impl SignedNote {
    /// Parses a signed note strictly.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] naming the first problem found.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        let bad = |m: &str| NoteError::Malformed(m.to_string());
        if let Some(c) = note.chars().find(|&c| c != '\n' && c.is_control()) {
            return Err(NoteError::Malformed(format!(
                "control character U+{:04X} in note",
                c as u32
            )));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = &note[..split + 1];
        let sig_block = &note[split + 2..];
        if sig_block.is_empty() {
            return Err(bad("no signature lines"));
        }
        if !sig_block.ends_with('\n') {
            return Err(bad("signature block does not end in a newline"));
        }
        let mut sigs = Vec::new();
        for line in sig_block[..sig_block.len() - 1].split('\n') {
            if sigs.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed(format!(
                    "more than {MAX_SIGNATURES} signatures"
                )));
            }
            let rest = line.strip_prefix(SIG_LINE_PREFIX).ok_or_else(|| {
                NoteError::Malformed(format!(
                    "signature line {line:?} does not start with an em dash and a space"
                ))
            })?;
            let (name, b64) = rest.split_once(' ').ok_or_else(|| {
                NoteError::Malformed(format!("signature line {line:?} has no signature"))
            })?;
            check_name(name).map_err(|e| NoteError::Malformed(e.to_string()))?;
            let raw = B64.decode(b64).map_err(|_| {
                NoteError::Malformed(format!("signature by {name} is not standard base64"))
            })?;
            if raw.len() < 5 {
                return Err(NoteError::Malformed(format!(
                    "signature by {name} is too short"
                )));
            }
            sigs.push(SignatureLine {
                name: name.to_string(),
                key_id: raw[..4].try_into().expect("4 bytes"),
                sig: raw[4..].to_vec(),
            });
        }
        Ok(Self {
            text: text.to_string(),
            sigs,
        })
    }
}

impl std::fmt::Display for SignedNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for s in &self.sigs {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// An Ed25519 note signer (type 0x01): how a node signs its checkpoints.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &hex::encode(self.key_id))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer with a key name (`<origin>/<node-id>` in gridledger).
    ///
    /// # Errors
    /// [`NoteError::BadName`] for an invalid name.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_id = key_id(name, ALG_ED25519, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            key,
            key_id,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string clients put in their trust policy.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            alg: ALG_ED25519,
            public: self.key.verifying_key(),
        }
    }

    /// Signs a note text (which must end in a newline).
    pub fn sign(&self, text: &str) -> SignatureLine {
        let sig = self.key.sign(text.as_bytes());
        SignatureLine {
            name: self.name.clone(),
            key_id: self.key_id,
            sig: sig.to_bytes().to_vec(),
        }
    }
}

/// The message an Ed25519 cosigner signs for a checkpoint body at a POSIX time.
pub fn cosignature_message(timestamp: u64, text: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(COSIGNATURE_HEADER.len() + 32 + text.len());
    m.extend_from_slice(COSIGNATURE_HEADER.as_bytes());
    m.extend_from_slice(format!("time {timestamp}\n").as_bytes());
    m.extend_from_slice(text.as_bytes());
    m
}

/// An Ed25519 tlog cosigner (type 0x04): a witness. Lives in core so tests and a future
/// witness share the one message format with the verifier.
#[derive(Clone)]
pub struct Cosigner {
    name: String,
    key: SigningKey,
    key_id: [u8; 4],
}

impl Cosigner {
    /// A cosigner with a key name.
    ///
    /// # Errors
    /// [`NoteError::BadName`] for an invalid name.
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_id = key_id(name, ALG_COSIGNATURE_V1, key.verifying_key().as_bytes());
        Ok(Self {
            name: name.to_string(),
            key,
            key_id,
        })
    }

    /// The verifier key string (type 0x04).
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            alg: ALG_COSIGNATURE_V1,
            public: self.key.verifying_key(),
        }
    }

    /// Cosigns a checkpoint text at `timestamp` (POSIX seconds, at most 2^63 - 1).
    pub fn cosign(&self, text: &str, timestamp: u64) -> SignatureLine {
        let sig = self.key.sign(&cosignature_message(timestamp, text));
        let mut raw = Vec::with_capacity(72);
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        SignatureLine {
            name: self.name.clone(),
            key_id: self.key_id,
            sig: raw,
        }
    }
}

/// Verifies one signature line against a key of matching name and key id.
///
/// Returns the cosignature timestamp for type 0x04 keys.
///
/// # Errors
/// [`NoteError::BadSignature`] if it does not verify (including a wrong length, or a
/// cosignature timestamp above 2^63 - 1).
pub fn verify_line(
    key: &VerifierKey,
    text: &str,
    line: &SignatureLine,
) -> Result<Option<u64>, NoteError> {
    let bad = || NoteError::BadSignature {
        name: key.name.clone(),
        key_id: hex::encode(key.key_id),
    };
    match key.alg {
        ALG_ED25519 => {
            let sig = Signature::from_slice(&line.sig).map_err(|_| bad())?;
            key.public
                .verify(text.as_bytes(), &sig)
                .map_err(|_| bad())?;
            Ok(None)
        }
        ALG_COSIGNATURE_V1 => {
            if line.sig.len() != 72 {
                return Err(bad());
            }
            let ts = u64::from_be_bytes(line.sig[..8].try_into().expect("8 bytes"));
            if ts > i64::MAX as u64 {
                return Err(bad());
            }
            let sig = Signature::from_slice(&line.sig[8..]).map_err(|_| bad())?;
            key.public
                .verify(&cosignature_message(ts, text), &sig)
                .map_err(|_| bad())?;
            Ok(Some(ts))
        }
        _ => Err(bad()),
    }
}
