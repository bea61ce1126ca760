//! Node configuration: one TOML file, environment overrides, validated at start-up.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::commit::CommitConfig;

/// Everything a node needs to run. See docs/OPERATIONS.md for each field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id; its checkpoint key name is `<origin>/<node_id>`.
    pub node_id: String,
    /// The ledger's origin (first checkpoint line), e.g. `gridledger.example/metering`.
    pub origin: String,
    /// Where RocksDB lives.
    pub data_dir: PathBuf,
    /// File with the node's Ed25519 checkpoint signing key (64 hex chars, the seed).
    pub signing_key: PathBuf,
    /// The API listener.
    pub api: ApiConfig,
    /// Group commit.
    #[serde(default)]
    pub commit: CommitSection,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// The public listener for end users (server-authenticated TLS plus JWTs). Off when
    /// absent.
    #[serde(default)]
    pub public: Option<PublicConfig>,
    /// End-user accounts and tokens.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Replication. Absent: a standalone node that applies its own blocks.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// Witness verifier keys (C2SP tlog-cosignature/v1, `name+keyid+base64(0x04||key)`)
    /// whose cosignatures this node accepts and attaches.
    #[serde(default)]
    pub witness_keys: Vec<String>,
    /// Class II and III data (DESIGN.md §4).
    #[serde(default)]
    pub data: DataConfig,
}

/// Where class II keys and class III documents live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of collection keys, `<collection>.key` (64 hex digits each). Only nodes
    /// of a collection's member orgs should hold its key. Default: `<data_dir>/collection-keys`.
    #[serde(default)]
    pub collection_keys: Option<PathBuf>,
    /// The object store's directory for class III documents (local disk). Default:
    /// `<data_dir>/documents`.
    #[serde(default)]
    pub documents: Option<PathBuf>,
    /// Largest document an upload may carry, bytes.
    #[serde(default = "max_document_bytes")]
    pub max_document_bytes: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            collection_keys: None,
            documents: None,
            max_document_bytes: max_document_bytes(),
        }
    }
}

fn max_document_bytes() -> u64 {
    32 << 20
}

/// One member of a cluster, as the bootstrapping node announces it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Raft id (unique, non-zero).
    pub id: u64,
    /// Its node id (`node_id` in its config).
    pub name: String,
    /// Peer port address (host:port) other members reach.
    pub peer: String,
    /// API address (host:port) followers redirect clients to.
    pub api: String,
    /// Its checkpoint verifier key (`<origin>/<name>+<key id>+<key>`), whose signatures
    /// this node collects into quorum checkpoints.
    #[serde(default)]
    pub checkpoint_key: Option<String>,
}

/// Replication settings (docs/OPERATIONS.md, "Running a cluster").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's Raft id.
    pub id: u64,
    /// Where the peer port listens. It uses the API certificate, key and client CA, and
    /// accepts node certificates (OU=node) only.
    pub peer_listen: SocketAddr,
    /// The initial members. The node with `bootstrap = true` initialises the cluster with
    /// them once, on an empty log; later membership changes go through AdminService.
    pub members: Vec<MemberConfig>,
    /// Whether this node initialises the cluster (exactly one node, once).
    #[serde(default)]
    pub bootstrap: bool,
    /// Signatures a served checkpoint needs, this node's included (default: a majority
    /// of the members).
    #[serde(default)]
    pub quorum: Option<usize>,
    /// Raft heartbeat, ms.
    #[serde(default = "heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// Raft election timeout range, ms.
    #[serde(default = "election_ms")]
    pub election_ms: [u64; 2],
    /// Build a snapshot after this many log entries (blocks) since the last one.
    #[serde(default = "snapshot_every")]
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot, so briefly lagging members catch up from the
    /// log rather than by snapshot.
    #[serde(default = "snapshot_keep")]
    pub snapshot_keep: u64,
}

fn snapshot_every() -> u64 {
    5000
}

fn snapshot_keep() -> u64 {
    1000
}

fn heartbeat_ms() -> u64 {
    200
}

fn election_ms() -> [u64; 2] {
    [800, 1600]
}

/// The public listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Server certificate chain (PEM), e.g. from `gridledger-node pki server`.
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
}

/// End-user identity settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// File with the node's token secret (64 hex chars); each hosted org's token key is
    /// derived from it. Without it this node issues no tokens (it still verifies them).
    pub token_key: Option<PathBuf>,
    /// Orgs whose users log in at this node.
    pub orgs: Vec<String>,
    /// Access-token lifetime, seconds (at most 900).
    pub access_ttl_secs: u64,
    /// Refresh-token lifetime, seconds.
    pub refresh_ttl_secs: u64,
    /// Failed logins for one user name before it is locked.
    pub lockout_after: u32,
    /// How long a lock lasts, seconds.
    pub lockout_secs: u64,
    /// Shortest password accepted for new accounts and resets.
    pub min_password_len: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_key: None,
            orgs: Vec::new(),
            access_ttl_secs: 900,
            refresh_ttl_secs: 7 * 24 * 3600,
            lockout_after: 5,
            lockout_secs: 900,
            min_password_len: 12,
        }
    }
}

/// API listener (gRPC over TLS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to bind; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA that client certificates must chain to (PEM).
    pub client_ca: PathBuf,
    /// Require a client certificate (organisation systems). Default true: the API port
    /// is for members' systems; end users come through the public listener (later).
    #[serde(default = "yes")]
    pub require_client_cert: bool,
}

fn yes() -> bool {
    true
}

/// Group-commit settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommitSection {
    /// Collection window after the first transaction of a block, ms.
    pub window_ms: u64,
    /// Most transactions per block.
    pub max_batch: usize,
    /// Queue length before submissions get ResourceExhausted.
    pub queue: usize,
}

impl Default for CommitSection {
    fn default() -> Self {
        let d = CommitConfig::default();
        Self {
            window_ms: d.window.as_millis() as u64,
            max_batch: d.max_batch,
            queue: d.queue,
        }
    }
}

/// Limits on what one request may cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest SignedTx, bytes. 64 KiB fits a day of readings many times over.
    pub max_tx_bytes: usize,
    /// Largest decoded gRPC message, bytes.
    pub max_message_bytes: usize,
    /// Requests served at once across all connections; more wait, then are shed.
    pub max_concurrent_requests: usize,
    /// Per-request timeout, ms (streams excluded).
    pub request_timeout_ms: u64,
    /// Requests one identity (certificate, user, or anonymous IP) may have in flight;
    /// streams count until they end. Beyond it: RESOURCE_EXHAUSTED / HTTP 429.
    pub per_identity_concurrent: usize,
    /// Largest HTTP request body on the gateway, bytes (HTTP 413 beyond).
    pub max_http_body_bytes: usize,
    /// How often certificate files are checked for changes, seconds (SIGHUP reloads at
    /// once).
    pub tls_reload_secs: u64,
    /// Transactions per second one SubmitStream call may submit; beyond it the extra
    /// positions get RESOURCE_EXHAUSTED. 0 means no cap.
    pub stream_tx_per_sec: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tx_bytes: 64 << 10,
            max_message_bytes: 4 << 20,
            max_concurrent_requests: 4096,
            request_timeout_ms: 30_000,
            per_identity_concurrent: 256,
            max_http_body_bytes: 1 << 20,
            tls_reload_secs: 30,
            stream_tx_per_sec: 200_000,
        }
    }
}

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("config: {field}: {problem}")]
pub struct ConfigError {
    /// Field path, e.g. `api.cert`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

fn err(field: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

impl NodeConfig {
    /// Reads a TOML file, applies environment overrides, and validates.
    ///
    /// Overrides: `GRIDLEDGER_DATA_DIR`, `GRIDLEDGER_API_LISTEN`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("file", format!("cannot read {}: {e}", path.display())))?;
        let mut cfg: NodeConfig =
            toml::from_str(&text).map_err(|e| err("file", format!("{}: {e}", path.display())))?;
        if let Ok(v) = std::env::var("GRIDLEDGER_DATA_DIR") {
            cfg.data_dir = v.into();
        }
        if let Ok(v) = std::env::var("GRIDLEDGER_API_LISTEN") {
            cfg.api.listen = v
                .parse()
                .map_err(|e| err("GRIDLEDGER_API_LISTEN", format!("{v:?}: {e}")))?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every field and says exactly what is wrong.
    ///
    /// # Errors
    /// [`ConfigError`] for the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id.is_empty()
            || self.node_id.len() > 64
            || !self
                .node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(err("node_id", "1-64 characters of [A-Za-z0-9._-]"));
        }
        if self.origin.is_empty()
            || self.origin.len() > 200
            || self
                .origin
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '+')
        {
            return Err(err(
                "origin",
                "non-empty, at most 200 characters, no whitespace or '+'",
            ));
        }
        for (field, p) in [
            ("signing_key", &self.signing_key),
            ("api.cert", &self.api.cert),
            ("api.key", &self.api.key),
            ("api.client_ca", &self.api.client_ca),
        ] {
            if !p.is_file() {
                return Err(err(
                    field,
                    format!("{} is not a readable file", p.display()),
                ));
            }
        }
        if self.commit.window_ms > 1000 {
            return Err(err(
                "commit.window_ms",
                "at most 1000 ms: the window is added to every commit's latency",
            ));
        }
        if self.commit.max_batch == 0 || self.commit.max_batch > 100_000 {
            return Err(err("commit.max_batch", "between 1 and 100000"));
        }
        if self.commit.queue < self.commit.max_batch {
            return Err(err("commit.queue", "must be at least commit.max_batch"));
        }
        if self.limits.max_tx_bytes < 256
            || self.limits.max_tx_bytes > self.limits.max_message_bytes
        {
            return Err(err(
                "limits.max_tx_bytes",
                "between 256 and limits.max_message_bytes",
            ));
        }
        if self.limits.max_concurrent_requests == 0 {
            return Err(err("limits.max_concurrent_requests", "at least 1"));
        }
        if self.limits.per_identity_concurrent == 0 {
            return Err(err("limits.per_identity_concurrent", "at least 1"));
        }
        if self.limits.max_http_body_bytes < 1024 {
            return Err(err("limits.max_http_body_bytes", "at least 1024"));
        }
        if self.limits.tls_reload_secs == 0 {
            return Err(err("limits.tls_reload_secs", "at least 1"));
        }
        if let Some(p) = &self.public {
            for (field, f) in [("public.cert", &p.cert), ("public.key", &p.key)] {
                if !f.is_file() {
                    return Err(err(
                        field,
                        format!("{} is not a readable file", f.display()),
                    ));
                }
            }
            if p.listen == self.api.listen && p.listen.port() != 0 {
                return Err(err("public.listen", "must differ from api.listen"));
            }
        }
        if let Some(c) = &self.cluster {
            if c.id == 0 {
                return Err(err("cluster.id", "must be non-zero"));
            }
            if !c.members.iter().any(|m| m.id == c.id) {
                return Err(err(
                    "cluster.members",
                    "must include this node's cluster.id",
                ));
            }
            let mut ids: Vec<u64> = c.members.iter().map(|m| m.id).collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() != c.members.len() {
                return Err(err("cluster.members", "ids must be unique"));
            }
            if c.heartbeat_ms == 0
                || c.election_ms[0] <= c.heartbeat_ms * 2
                || c.election_ms[1] <= c.election_ms[0]
            {
                return Err(err(
                    "cluster.election_ms",
                    "need heartbeat_ms > 0, election_ms[0] > 2 * heartbeat_ms and election_ms[1] > election_ms[0]",
                ));
            }
        }
        for (i, k) in self.witness_keys.iter().enumerate() {
            match gridledger_core::note::VerifierKey::parse(k) {
                Ok(v) if v.alg == gridledger_core::note::ALG_COSIGNATURE_V1 => {}
                Ok(_) => {
                    return Err(err(
                        &format!("witness_keys[{i}]"),
                        "not a cosignature (type 0x04) key",
                    ));
                }
                Err(e) => return Err(err(&format!("witness_keys[{i}]"), e.to_string())),
            }
        }
        let a = &self.auth;
        if let Some(k) = &a.token_key
            && !k.is_file()
        {
            return Err(err(
                "auth.token_key",
                format!("{} is not a readable file", k.display()),
            ));
        }
        if !a.orgs.is_empty() && a.token_key.is_none() {
            return Err(err("auth.orgs", "hosting orgs needs auth.token_key"));
        }
        if a.access_ttl_secs == 0 || a.access_ttl_secs > 900 {
            return Err(err(
                "auth.access_ttl_secs",
                "between 1 and 900 (15 minutes)",
            ));
        }
        if a.refresh_ttl_secs < a.access_ttl_secs {
            return Err(err(
                "auth.refresh_ttl_secs",
                "at least auth.access_ttl_secs",
            ));
        }
        if a.lockout_after == 0 {
            return Err(err("auth.lockout_after", "at least 1"));
        }
        if a.min_password_len < 8 {
            return Err(err("auth.min_password_len", "at least 8"));
        }
        if self.data.max_document_bytes == 0
            || self.data.max_document_bytes > gridledger_core::private::MAX_DOCUMENT_BYTES
        {
            return Err(err(
                "data.max_document_bytes",
                "1 byte to 4 GiB (the contracts' limit)",
            ));
        }
        Ok(())
    }

    /// The collection-key directory.
    pub fn collection_keys_dir(&self) -> PathBuf {
        self.data
            .collection_keys
            .clone()
            .unwrap_or_else(|| self.data_dir.join("collection-keys"))
    }

    /// The document store's directory.
    pub fn documents_dir(&self) -> PathBuf {
        self.data
            .documents
            .clone()
            .unwrap_or_else(|| self.data_dir.join("documents"))
    }

    /// The group-commit settings.
    pub fn commit_config(&self) -> CommitConfig {
        CommitConfig {
            window: Duration::from_millis(self.commit.window_ms),
            max_batch: self.commit.max_batch,
            queue: self.commit.queue,
            ..CommitConfig::default()
        }
    }
}

/// Reads an Ed25519 signing key file (64 hex characters: the 32-byte seed).
///
/// # Errors
/// A message saying what is wrong with the file.
pub fn read_signing_key(path: &Path) -> Result<ed25519_dalek::SigningKey, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let seed: [u8; 32] = hex::decode(s.trim())
        .map_err(|_| format!("{} is not hex", path.display()))?
        .try_into()
        .map_err(|_| {
            format!(
                "{} must hold 64 hex characters (a 32-byte Ed25519 seed)",
                path.display()
            )
        })?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// Writes a signing key file readable by the owner only.
///
/// # Errors
/// I/O errors.
pub fn write_secret(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}
