//! What the services need from the node, as a trait: the node implements it over its
//! ledger and committer; tests can implement it in memory.

use bytes::Bytes;
use futures::future::BoxFuture;
use gridledger_core::block::BlockHeader;
use gridledger_core::merkle::Hash;
use tokio::sync::watch;

use crate::error::Result;

/// Chain status as the backend knows it.
#[derive(Debug, Clone)]
pub struct StatusInfo {
    /// Ledger origin.
    pub origin: String,
    /// Tree size.
    pub tree_size: u64,
    /// Block height.
    pub height: u64,
    /// Root.
    pub root: Hash,
    /// Node id.
    pub node_id: String,
    /// Accepted transactions by kind.
    pub counts: Vec<(String, u64)>,
    /// The Raft leader's node id (empty: standalone, or no leader known).
    pub leader_id: String,
    /// The leader's API address (empty: standalone, or no leader known).
    pub leader_api: String,
}

/// A committed submission.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// Leaf index.
    pub leaf_index: u64,
    /// Block height.
    pub block_height: u64,
    /// Tree size after the block.
    pub tree_size: u64,
    /// Leaf hash.
    pub leaf_hash: Hash,
}

/// A leaf with its position.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    /// Index.
    pub index: u64,
    /// SignedTx bytes.
    pub leaf: Vec<u8>,
    /// Block height.
    pub block_height: u64,
}

/// A block and, if asked, its leaves.
#[derive(Debug, Clone)]
pub struct BlockInfo {
    /// Header.
    pub header: BlockHeader,
    /// Leaves (empty unless asked for).
    pub leaves: Vec<Vec<u8>>,
}

/// The chain backend. Methods are synchronous reads of committed state (cheap: a few
/// storage reads) except `submit`, which resolves after commit.
pub trait ChainBackend: Send + Sync + 'static {
    /// The backend of channel `name` ("" = the system channel) as `caller` may read it.
    /// Submissions and cosignatures go through any channel's backend: they are routed by
    /// the origin they name.
    ///
    /// # Errors
    /// NotFound for a channel this ledger does not have; PermissionDenied when the
    /// caller's org is not a member of it (the regulator reads every channel).
    fn channel(
        self: &std::sync::Arc<Self>,
        name: &str,
        caller: &crate::auth::Principal,
    ) -> Result<std::sync::Arc<Self>>
    where
        Self: Sized;
    /// Status.
    ///
    /// # Errors
    /// Internal errors only.
    fn status(&self) -> Result<StatusInfo>;
    /// Latest signed checkpoint note, size and root.
    ///
    /// # Errors
    /// Internal errors only.
    fn checkpoint(&self) -> Result<(String, u64, Hash)>;
    /// A block.
    ///
    /// # Errors
    /// NotFound above the height.
    fn block(&self, height: u64, include_leaves: bool) -> Result<BlockInfo>;
    /// A leaf.
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn entry(&self, index: u64) -> Result<EntryInfo>;
    /// Inclusion proof; size 0 = current. Returns the size used.
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn inclusion(&self, index: u64, size: u64) -> Result<(u64, Vec<Hash>)>;
    /// Consistency proof; new 0 = current. Returns the new size used.
    ///
    /// # Errors
    /// InvalidArgument for old > new or old = 0; NotFound beyond the tree.
    fn consistency(&self, old: u64, new: u64) -> Result<(u64, Vec<Hash>)>;
    /// tlog-proof receipt text.
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn receipt(&self, index: u64) -> Result<String>;
    /// Root at a size (0 = current).
    ///
    /// # Errors
    /// NotFound beyond the tree.
    fn root_at(&self, size: u64) -> Result<Hash>;
    /// Submits encoded SignedTx bytes, with the salt and payload of a class II
    /// transaction; resolves once committed (or rejected).
    fn submit(
        &self,
        signed_tx: Bytes,
        private: Option<gridledger_proto::v1::PrivatePayload>,
    ) -> BoxFuture<'static, Result<Committed>>;
    /// Watch the committed height.
    fn heights(&self) -> watch::Receiver<u64>;
    /// Largest SignedTx accepted, in bytes.
    fn max_tx_bytes(&self) -> usize;
    /// Verifies and keeps a witness's cosignatures on one of this ledger's checkpoints;
    /// returns how many lines were accepted.
    fn add_cosignature(&self, note: &str) -> Result<u32>;
}

/// A fresh access and refresh token pair.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// The JWT.
    pub access_token: String,
    /// Opaque, single use, rotated on every refresh.
    pub refresh_token: String,
    /// Access-token lifetime, seconds.
    pub expires_in: u64,
}

/// An account as its org's admin sees it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// Login name.
    pub username: String,
    /// Org.
    pub org: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Meters bound to a resident.
    pub meters: Vec<String>,
    /// Disabled accounts cannot log in or refresh.
    pub disabled: bool,
}

/// A new account of the caller's org.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Login name.
    pub username: String,
    /// Initial password.
    pub password: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Meters (residents only).
    pub meters: Vec<String>,
}

/// Changes to one account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    /// Which account.
    pub username: String,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// Reset the password.
    pub new_password: Option<String>,
    /// Replace the roles.
    pub roles: Option<Vec<String>>,
    /// Replace the meter bindings.
    pub meters: Option<Vec<String>>,
}

/// A dynamic token.
#[derive(Debug, Clone)]
pub struct IssuedDynamic {
    /// The JWT.
    pub token: String,
    /// Lifetime, seconds.
    pub expires_in: u64,
    /// Its id.
    pub jti: String,
}

/// What AuthService and the gateway's auth routes need from the node. Callers are
/// already authenticated and past the matrix; the backend checks org ownership.
pub trait AuthBackend: Send + Sync + 'static {
    /// Password login.
    fn login(
        &self,
        username: String,
        password: String,
    ) -> impl std::future::Future<Output = Result<TokenPair>> + Send;
    /// Refresh-token rotation.
    fn refresh(&self, refresh_token: String) -> Result<TokenPair>;
    /// Revokes the caller's access token and, if given, a refresh token's family.
    fn logout(&self, caller: &crate::auth::Principal, refresh_token: Option<String>) -> Result<()>;
    /// JWKS JSON.
    fn jwks(&self) -> serde_json::Value;
    /// A dynamic token for `scope` (checked against what the caller may read).
    fn issue_dynamic(
        &self,
        caller: &crate::auth::Principal,
        scope: Vec<String>,
        ttl_secs: u64,
        single_use: bool,
    ) -> Result<IssuedDynamic>;
    /// Creates an account in the caller's org.
    fn create_account(
        &self,
        caller: &crate::auth::Principal,
        account: NewAccount,
    ) -> impl std::future::Future<Output = Result<AccountView>> + Send;
    /// The caller's org's accounts.
    fn list_accounts(&self, caller: &crate::auth::Principal) -> Result<Vec<AccountView>>;
    /// Changes an account of the caller's org.
    fn update_account(
        &self,
        caller: &crate::auth::Principal,
        update: AccountUpdate,
    ) -> impl std::future::Future<Output = Result<AccountView>> + Send;
    /// Signs a transaction the node records for its caller, a user of one of its orgs
    /// (a resident's dispute), with that org's token key.
    ///
    /// # Errors
    /// FAILED_PRECONDITION when the node holds no registered token key for the org.
    fn sign_for_user(
        &self,
        caller: &crate::auth::Principal,
        payload: gridledger_core::pb::tx_body::Payload,
    ) -> Result<Vec<u8>>;
}

/// A class II record's payload, as a node that holds its collection's key reads it: the
/// salt and payload match the leaf's commitment (checked by the backend), or the payload
/// was purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateRecord {
    /// The record's leaf index.
    pub leaf_index: u64,
    /// The record type (`reading`, `binding`).
    pub record_type: String,
    /// The collection named in the leaf.
    pub collection: String,
    /// The commitment in the leaf.
    pub commitment: Vec<u8>,
    /// The PurgePrivate leaf that deleted the payload, if one did (salt and payload are
    /// then empty).
    pub purged_by: Option<u64>,
    /// The 32-byte salt.
    pub salt: Vec<u8>,
    /// The encoded payload message.
    pub payload: Vec<u8>,
}

/// What DataService and the gateway's data routes need from the node.
pub trait DataBackend: Send + Sync + 'static {
    /// An instrument.
    fn meter(&self, asset_no: &str) -> Result<Option<gridledger_proto::v1::Meter>>;
    /// Readings of days in `[from, to]`, at most `limit`.
    fn readings(
        &self,
        asset_no: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<gridledger_proto::v1::DailyReading>>;
    /// The payload of the class II record at leaf `index`, opened with this node's
    /// collection key and checked against the leaf's commitment.
    fn private_record(&self, index: u64) -> Result<PrivateRecord>;
    /// The org of a registered signer key, if any.
    fn signer_org(&self, key: &[u8; 32]) -> Result<Option<String>>;
    /// The member orgs of a class II collection (on the ledger), if it exists.
    fn collection_members(&self, name: &str) -> Result<Option<Vec<String>>>;
    /// A metrology record by state key (`gridledger_core::metrology::keys`): its leaf
    /// index and JSON.
    fn record(&self, key: &[u8]) -> Result<Option<(u64, Vec<u8>)>>;
    /// Metrology records under a key prefix, in key order, at most `limit`.
    fn records(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<gridledger_core::contract::RecordEntry>>;
    /// The receipt (C2SP tlog-proof text) of a leaf, against the latest checkpoint.
    fn receipt(&self, index: u64) -> Result<String>;
    /// The ledger's origin and current tree size (stamped on views).
    fn position(&self) -> Result<(String, u64)>;
    /// The class III document store.
    fn documents(&self) -> std::sync::Arc<dyn crate::documents::DocumentStore>;
    /// Submits a class I transaction (a document's anchor, a resident's dispute);
    /// resolves once committed (or rejected).
    fn submit_tx(&self, signed_tx: Bytes) -> BoxFuture<'static, Result<Committed>>;
}
