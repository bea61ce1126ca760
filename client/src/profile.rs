//! CLI profiles: where the node is, how to authenticate, how to sign, whom to trust.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ClientError;

/// A profile file (`profile.toml`), as `gridledger-node dev` writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `https://host:port` of the node's API.
    pub endpoint: String,
    /// Name to check in the server certificate (defaults to the endpoint's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// CA certificate (PEM) the server certificate must chain to.
    pub ca: PathBuf,
    /// Client certificate (PEM) for mutual TLS.
    pub cert: PathBuf,
    /// Client private key (PEM).
    pub key: PathBuf,
    /// Ed25519 transaction signing key (64 hex chars).
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// The org whose system this profile is (`gridledger sync` asks for its stream).
    #[serde(default)]
    pub org: Option<String>,
    /// Trust policy (JSON).
    pub trust: PathBuf,
    /// Where the light client keeps its largest verified checkpoint per origin.
    pub state_dir: PathBuf,
}

impl Profile {
    /// Loads a profile.
    ///
    /// # Errors
    /// [`ClientError::Config`] saying what is wrong.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let s = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Config(format!("cannot read profile {}: {e}", path.display()))
        })?;
        toml::from_str(&s)
            .map_err(|e| ClientError::Config(format!("profile {}: {e}", path.display())))
    }

    /// A transaction carrying `payload`, for the trust policy's origin, with a random
    /// nonce, signed with the profile's key.
    ///
    /// # Errors
    /// Unreadable key or trust policy.
    pub fn sign(
        &self,
        payload: gridledger_core::pb::tx_body::Payload,
    ) -> Result<gridledger_core::pb::SignedTx, ClientError> {
        let key = self.signing_key()?;
        let policy = load_policy(&self.trust)?;
        let body = gridledger_core::pb::TxBody {
            origin: policy.origin().to_string(),
            nonce: rand::random(),
            client_time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            payload: Some(payload),
        };
        Ok(gridledger_core::tx::sign(&key, &body))
    }

    /// Reads the signing key.
    ///
    /// # Errors
    /// [`ClientError::Config`] if missing or malformed.
    pub fn signing_key(&self) -> Result<ed25519_dalek::SigningKey, ClientError> {
        let p = self
            .signing_key
            .as_ref()
            .ok_or_else(|| ClientError::Config("the profile has no signing_key".into()))?;
        let s = std::fs::read_to_string(p)
            .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", p.display())))?;
        let seed: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                ClientError::Config(format!(
                    "{} must hold 64 hex characters (an Ed25519 seed)",
                    p.display()
                ))
            })?;
        Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
    }
}

/// Loads and compiles a trust policy file.
///
/// # Errors
/// [`ClientError::Config`] for unreadable files, [`ClientError::Trust`] for bad policies.
pub fn load_policy(path: &Path) -> Result<gridledger_core::trust::Policy, ClientError> {
    load_channel_policy(path, "")
}

/// Reads a trust policy and derives the policy of channel `channel` from it ("" = the
/// policy as written, for the system channel).
///
/// # Errors
/// As [`load_policy`], and a channel name that is not valid.
pub fn load_channel_policy(
    path: &Path,
    channel: &str,
) -> Result<gridledger_core::trust::Policy, ClientError> {
    let s = read_bounded(path, MAX_TRUST_BYTES, "trust file")?;
    let mut policy = gridledger_core::trust::TrustPolicy::from_json(&s)?;
    if !channel.is_empty() {
        policy = policy.for_channel(channel)?;
    }
    Ok(policy.compile()?)
}

/// Largest trust file read (a policy lists keys: kilobytes).
pub const MAX_TRUST_BYTES: u64 = 1 << 20;

/// Reads a text file, refusing files above `max` bytes before reading them, so a wrong
/// path (a disk image, /dev/zero) gives an error instead of exhausting memory.
///
/// # Errors
/// [`ClientError::Config`] naming the file and the problem.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> Result<String, ClientError> {
    use std::io::Read as _;
    let cannot = |e: std::io::Error| {
        ClientError::Config(format!("cannot read {what} {}: {e}", path.display()))
    };
    let f = std::fs::File::open(path).map_err(cannot)?;
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf).map_err(cannot)?;
    if buf.len() as u64 > max {
        return Err(ClientError::Config(format!(
            "{what} {} is larger than {max} bytes",
            path.display()
        )));
    }
    String::from_utf8(buf)
        .map_err(|_| ClientError::Config(format!("{what} {} is not UTF-8 text", path.display())))
}
