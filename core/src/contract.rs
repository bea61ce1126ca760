//! Contracts: deterministic checks run when a block is applied, on every replica.
//!
//! `check(view, ctx, signer, body)` consults only the state view and the block context
//! (origin, block time), never a clock, randomness or map iteration order, so every
//! replica reaches the same decision and the same root. A rejection names its rule.
//!
//! This module holds the ledger-level rules (DOMAIN.md §4.1: registered signer, role,
//! nonce, origin) and the record shapes; the metrology rules of §4.2–4.6 build on it.

use crate::pb::{TxBody, tx_body::Payload};

/// Roles a signer can hold (DOMAIN.md §1).
pub const ROLES: &[&str] = &[
    "admin",
    "regulator",
    "verifier",
    "operator",
    "supplier",
    "market",
    "resident",
    "auditor",
    TOKEN_ISSUER,
];

/// The role of a key that signs end users' JWTs for its org (docs/SECURITY.md). It signs
/// no transactions, so it is registered alone, never next to another role.
pub const TOKEN_ISSUER: &str = "token-issuer";

/// Whether an org of `kind` may hold `role`: a supplier cannot make its staff regulators,
/// and a verification institution cannot mint market operators. The contracts check it
/// when a key is registered and the token verifier when a JWT is presented.
pub fn role_fits_org(role: &str, kind: crate::pb::OrgKind) -> bool {
    use crate::pb::OrgKind as K;
    match role {
        "admin" | "auditor" | TOKEN_ISSUER => kind != K::Unspecified,
        "regulator" => kind == K::Regulator,
        "verifier" => kind == K::Institution,
        "operator" | "resident" => kind == K::GridCompany,
        "supplier" => kind == K::Supplier,
        "market" => kind == K::MarketOperator,
        _ => false,
    }
}

/// Every rule id a [`Rejection`] can carry. Rejections travel between replicas as text;
/// this list turns the text back into the `'static` id without allocating.
pub const RULES: &[&str] = &[
    "shape",
    "2.3/binding",
    "2.3/instrument",
    "2.3/owner",
    "3/document",
    "3/purge",
    "4.1/genesis",
    "4.1/nonce",
    "4.1/org",
    "4.1/origin",
    "4.1/revoke",
    "4.1/role",
    "4.1/role-kind",
    "4.1/signature",
    "4.1/signer",
    "4.1/token-key",
    "4.2/accuracy",
    "4.2/authorisation",
    "4.2/certificate",
    "4.2/date",
    "4.2/dispute",
    "4.2/equipment",
    "4.2/factory",
    "4.2/institution",
    "4.2/instrument",
    "4.2/personnel",
    "4.2/result",
    "4.3/acceptance",
    "4.3/calibration",
    "4.3/date",
    "4.3/equipment",
    "4.3/level",
    "4.4/ack",
    "4.4/batch",
    "4.4/collection",
    "4.4/demand",
    "4.4/model",
    "4.5/approval",
    "4.5/channel",
    "4.5/collection",
    "4.5/org",
    "4.5/policy",
    "4.5/proposal",
    "4.5/vote",
    "4.6/collection",
    "4.6/correction",
    "4.6/date",
    "4.6/instrument",
    "4.6/owner",
    "dispute",
    "equipment",
    "instrument",
    "plan",
    "qualification",
];

/// Size limits on payload fields, so a single transaction cannot bloat state.
pub const MAX_ID_LEN: usize = 128;
/// Interval values per reading day (96 quarter hours).
pub const INTERVALS_PER_DAY: usize = crate::private::INTERVALS_PER_DAY;

/// A registered signer, as the state view returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerInfo {
    /// Owning org.
    pub org_id: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Revoked keys may not sign.
    pub active: bool,
}

/// Read access to current ledger state that contracts need.
pub trait StateView: RecordSource {
    /// The signer registered under a public key.
    fn signer(&self, key: &[u8; 32]) -> Option<SignerInfo>;
    /// Whether any signer is registered yet (false only at genesis).
    fn has_signers(&self) -> bool;
    /// Whether (signer, nonce) was used before.
    fn nonce_used(&self, key: &[u8; 32], nonce: u64) -> bool;
    /// The kind of a registered org.
    fn org_kind(&self, org_id: &str) -> Option<crate::pb::OrgKind>;
    /// Whether an org is registered.
    fn org_exists(&self, org_id: &str) -> bool {
        self.org_kind(org_id).is_some()
    }
    /// Whether an instrument is registered, and its owner org.
    fn instrument_owner(&self, asset_no: &str) -> Option<String>;
    /// Leaf index of the reading for (asset, day), if any.
    fn reading(&self, asset_no: &str, day: &str) -> Option<u64>;
    /// A consortium change proposal.
    fn proposal(&self, id: &str) -> Option<Proposal>;
    /// Member orgs registered.
    fn org_count(&self) -> usize;
    /// A node registered by an approved proposal (removed ones included).
    fn node(&self, raft_id: u64) -> Option<NodeRecord>;
    /// A channel created by an approved proposal.
    fn channel(&self, name: &str) -> Option<ChannelDef>;
    /// A collection defined by an approved proposal.
    fn collection(&self, name: &str) -> Option<CollectionDef>;
    /// How proposals are decided.
    fn approval_policy(&self) -> ApprovalPolicy;
}

/// Read access to the metrology records (see [`crate::metrology::keys`]). Split from
/// [`StateView`] so that read-side code (views, traceability for clients) implements
/// only this and never answers a contract question it cannot know.
pub trait RecordSource {
    /// A record: the index of the leaf that wrote it last, and its JSON value.
    fn record(&self, key: &[u8]) -> Option<(u64, Vec<u8>)>;
    /// The records whose keys start with `prefix`, in key order, at most `limit`: (key,
    /// leaf index, value).
    fn records(&self, prefix: &[u8], limit: usize) -> Vec<RecordEntry>;
}

/// A stored metrology record: its state key, the index of the leaf that wrote it, and
/// its JSON value.
pub type RecordEntry = (Vec<u8>, u64, Vec<u8>);

/// A channel (DESIGN.md §7): a separate log with its own origin, written and read by its
/// member orgs; consortium administration stays on the system channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelDef {
    /// Name, `[a-z0-9][a-z0-9-]{0,31}`.
    pub name: String,
    /// `<system origin>/<name>`.
    pub origin: String,
    /// Member orgs, sorted.
    pub members: Vec<String>,
}

/// The origin of channel `name` under the system channel's origin. A client derives it
/// itself, so a server cannot pass one channel off as another.
pub fn channel_origin(system_origin: &str, name: &str) -> String {
    format!("{system_origin}/{name}")
}

/// Whether `name` is a valid channel or collection name.
pub fn valid_channel_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A collection: which orgs may read which class II record types (DOMAIN.md §2.8).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollectionDef {
    /// Name.
    pub name: String,
    /// Member orgs, sorted.
    pub members: Vec<String>,
    /// Record types, sorted.
    pub record_types: Vec<String>,
    /// 1 for the first definition, +1 for each approved redefinition.
    pub version: u64,
}

/// How proposals are decided (DOMAIN.md §4.5: "the regulator's, or a majority of member
/// orgs, depending on configuration"). The configuration is itself on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ApprovalPolicy {
    /// The regulator's vote decides; without it, a strict majority of member orgs.
    #[default]
    RegulatorOrMajority,
    /// Only the regulator's vote decides.
    Regulator,
    /// A strict majority of member orgs; the regulator's vote counts as one.
    Majority,
}

/// A member node as approved on the ledger.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeRecord {
    /// Raft id.
    pub raft_id: u64,
    /// Node id.
    pub node_id: String,
    /// Operating org.
    pub org_id: String,
    /// Peer port address.
    pub peer: String,
    /// API address.
    pub api: String,
    /// Checkpoint verifier key.
    pub checkpoint_key: String,
    /// Removed by a later approved proposal.
    pub removed: bool,
    /// First day of validity (YYYY-MM-DD), empty: from approval.
    #[serde(default)]
    pub valid_from: String,
    /// Last day of validity (YYYY-MM-DD), empty: open-ended.
    #[serde(default)]
    pub valid_until: String,
}

impl NodeRecord {
    /// Whether the registration is valid on `day` (YYYY-MM-DD; ISO dates compare as text).
    pub fn valid_on(&self, day: &str) -> bool {
        !self.removed
            && (self.valid_from.is_empty() || self.valid_from.as_str() <= day)
            && (self.valid_until.is_empty() || day <= self.valid_until.as_str())
    }
}

/// What a proposal changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    /// Add a node.
    AddNode(NodeRecord),
    /// Remove a node.
    RemoveNode(u64),
    /// Admit a member org (id, name, kind by its protobuf name).
    AddOrg {
        /// Org id.
        org_id: String,
        /// Display name.
        name: String,
        /// `OrgKind` name, e.g. `ORG_KIND_SUPPLIER`.
        kind: String,
    },
    /// Create a channel.
    CreateChannel(ChannelDef),
    /// Define or redefine a collection (version set on approval).
    DefineCollection(CollectionDef),
    /// Change the approval policy.
    SetApprovalPolicy(ApprovalPolicy),
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ProposalStatus {
    /// Votes are being collected.
    Open,
    /// Approved: the change takes effect.
    Approved,
    /// Refused by the regulator or a majority.
    Rejected,
}

/// A consortium change proposal and its votes (orgs, sorted: deterministic).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Proposal {
    /// The change.
    pub change: Change,
    /// Proposing org.
    pub proposer_org: String,
    /// Orgs that approved.
    pub approvals: std::collections::BTreeSet<String>,
    /// Orgs that refused.
    pub denials: std::collections::BTreeSet<String>,
    /// Status.
    pub status: ProposalStatus,
}

/// The context a block gives its transactions.
#[derive(Debug, Clone)]
pub struct BlockContext<'a> {
    /// The ledger's origin.
    pub origin: &'a str,
    /// The channel, for a data channel's ledger; `None` on the system channel.
    pub channel: Option<&'a ChannelDef>,
    /// The block's UTC day (YYYY-MM-DD), from its timestamp: the proposer's clock, never
    /// earlier than the previous block's, so every replica sees the same day.
    pub day: &'a str,
}

/// How far past the block's UTC day a record's date may be: a day, for writers east of
/// UTC whose local date is already the next one.
pub const DATE_SLACK_DAYS: i64 = 1;

// A record's date may not be later than the block's day (plus the slack): nobody certifies,
// calibrates or reads a meter in the future, and a mistyped year would otherwise stay the
// "latest" record for years.
fn not_after_block(
    rule: &'static str,
    what: &str,
    date: &str,
    ctx: &BlockContext<'_>,
) -> Result<(), Rejection> {
    use crate::metrology::day_number;
    match (day_number(date), day_number(ctx.day)) {
        (Some(d), Some(b)) if d > b + DATE_SLACK_DAYS => Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!("{what} {date} is after the block's day {}", ctx.day),
        )),
        _ => Ok(()),
    }
}

/// A state change an accepted transaction makes; the ledger writes them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Mark (signer, nonce) used.
    Nonce([u8; 32], u64),
    /// Register an org of a kind.
    Org(String, crate::pb::OrgKind),
    /// Register a signer.
    Signer([u8; 32], SignerInfo),
    /// Index an instrument (asset → owner).
    Instrument(String, String),
    /// Index the current certificate of an instrument (points at this leaf).
    Certificate(String),
    /// Index the reading of (asset, day) (points at this leaf).
    Reading(String, String),
    /// Store a proposal's new state.
    Proposal(String, Proposal),
    /// Store a node registration (added or removed by an approved proposal).
    Node(NodeRecord),
    /// Store a channel created by an approved proposal.
    Channel(ChannelDef),
    /// Store a collection (re)defined by an approved proposal.
    Collection(CollectionDef),
    /// Store the approval policy.
    Policy(ApprovalPolicy),
    /// Store a metrology record (key, JSON value), stamped with this leaf's index.
    Record(Vec<u8>, Vec<u8>),
    /// Delete the private (class II) payload of this leaf index on every replica.
    Purge(u64),
}

/// Why a transaction is rejected: the rule and the detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {detail}")]
pub struct Rejection {
    /// Rule id, e.g. `4.1/nonce`.
    pub rule: &'static str,
    /// What exactly failed.
    pub detail: String,
    /// The broad kind, so the server can pick the right status.
    pub kind: RejectKind,
}

/// Broad classes of rejection (mapped to gRPC codes in one place in the services crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// The payload itself is invalid.
    Invalid,
    /// Unknown or revoked signer.
    Unauthenticated,
    /// The signer may not do this.
    PermissionDenied,
    /// Replay or duplicate record.
    AlreadyExists,
    /// Refers to something that does not exist or is in the wrong state.
    FailedPrecondition,
}

pub(crate) fn reject(rule: &'static str, kind: RejectKind, detail: impl Into<String>) -> Rejection {
    Rejection {
        rule,
        detail: detail.into(),
        kind,
    }
}

/// Identifiers that name records (org ids, asset numbers) also appear inside token scopes
/// (`meter:<asset>`, `readings:<asset>:<from>:<to>`, space-separated), so they may not
/// contain whitespace or ':' — otherwise one id could smuggle a grant for another.
pub fn valid_ident(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_ID_LEN
        && !v
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == ':')
}

pub(crate) fn check_ident(what: &str, v: &str) -> Result<(), Rejection> {
    if !valid_ident(v) {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!(
                "{what} must be 1..={MAX_ID_LEN} printable characters without whitespace or ':'"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_id(what: &str, v: &str) -> Result<(), Rejection> {
    if v.is_empty() || v.len() > MAX_ID_LEN || v.chars().any(char::is_control) {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!("{what} must be 1..={MAX_ID_LEN} printable characters"),
        ));
    }
    Ok(())
}

pub(crate) fn check_day(what: &str, v: &str) -> Result<(), Rejection> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
        && {
            let y: u32 = v[0..4].parse().unwrap_or(0);
            let m: u32 = v[5..7].parse().unwrap_or(0);
            let d: u32 = v[8..10].parse().unwrap_or(0);
            let leap = y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
            let days = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            (1..=12).contains(&m) && (1..=days).contains(&d)
        };
    if !ok {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!("{what} {v:?} is not a YYYY-MM-DD date"),
        ));
    }
    Ok(())
}

/// Most orgs in a channel or collection, and record types in a collection.
pub const MAX_SET: usize = 64;

// A set of member orgs: non-empty, bounded, each registered; returned sorted.
fn member_orgs(
    view: &dyn StateView,
    rule: &'static str,
    orgs: &[String],
) -> Result<Vec<String>, Rejection> {
    let mut v = orgs.to_vec();
    v.sort();
    v.dedup();
    if v.is_empty() || v.len() > MAX_SET {
        return Err(reject(
            "shape",
            RejectKind::Invalid,
            format!("member_orgs must name 1..={MAX_SET} orgs"),
        ));
    }
    if let Some(o) = v.iter().find(|o| !view.org_exists(o)) {
        return Err(reject(
            rule,
            RejectKind::FailedPrecondition,
            format!("org {o:?} is not registered"),
        ));
    }
    Ok(v)
}

pub(crate) fn has_role(s: &SignerInfo, roles: &[&str]) -> bool {
    s.roles.iter().any(|r| roles.contains(&r.as_str()))
}

// Signer keys of an org are managed by that org's admin or by the regulator.
fn manages_keys_of(s: &SignerInfo, org_id: &str) -> bool {
    (s.org_id == org_id && has_role(s, &["admin"])) || has_role(s, &["regulator"])
}

/// Checks one transaction against the state and returns its effects.
///
/// # Errors
/// A [`Rejection`] naming the rule that failed.
pub fn check(
    view: &dyn StateView,
    ctx: &BlockContext<'_>,
    signer: &[u8; 32],
    body: &TxBody,
) -> Result<Vec<Effect>, Rejection> {
    if body.origin != ctx.origin {
        return Err(reject(
            "4.1/origin",
            RejectKind::Invalid,
            format!(
                "transaction is for origin {:?}, this ledger is {:?}",
                body.origin, ctx.origin
            ),
        ));
    }
    let payload = body
        .payload
        .as_ref()
        .ok_or_else(|| reject("shape", RejectKind::Invalid, "transaction has no payload"))?;
    if view.nonce_used(signer, body.nonce) {
        return Err(reject(
            "4.1/nonce",
            RejectKind::AlreadyExists,
            format!("nonce {} was already used by this signer", body.nonce),
        ));
    }
    let mut effects = vec![Effect::Nonce(*signer, body.nonce)];

    // Genesis: while no signer exists, only org and signer registrations are accepted, and
    // the first signer registered must be the key that signs it. This bootstraps the
    // consortium from one founding key without any out-of-ledger trust.
    let info = match view.signer(signer) {
        Some(info) if info.active => Some(info),
        Some(_) => {
            return Err(reject(
                "4.1/signer",
                RejectKind::Unauthenticated,
                "signer key is revoked",
            ));
        }
        None if view.has_signers() => {
            return Err(reject(
                "4.1/signer",
                RejectKind::Unauthenticated,
                format!(
                    "signer {} is not registered on this ledger",
                    hex::encode(signer)
                ),
            ));
        }
        None => None,
    };
    let genesis = info.is_none();

    if let Some(ch) = ctx.channel {
        if matches!(
            payload,
            Payload::RegisterOrg(_)
                | Payload::RegisterSigner(_)
                | Payload::RevokeSigner(_)
                | Payload::ProposeChange(_)
                | Payload::CastVote(_)
        ) {
            return Err(reject(
                "4.5/channel",
                RejectKind::Invalid,
                format!(
                    "consortium administration (orgs, keys, proposals, votes) is recorded on the system channel, not on channel {:?}",
                    ch.name
                ),
            ));
        }
        if let Some(i) = &info
            && !ch.members.contains(&i.org_id)
        {
            return Err(reject(
                "4.5/channel",
                RejectKind::PermissionDenied,
                format!(
                    "org {:?} is not a member of channel {:?}",
                    i.org_id, ch.name
                ),
            ));
        }
    }

    match payload {
        Payload::RegisterOrg(o) => {
            check_ident("org_id", &o.org_id)?;
            check_id("name", &o.name)?;
            let kind = match crate::pb::OrgKind::try_from(o.kind) {
                Ok(k) if k != crate::pb::OrgKind::Unspecified => k,
                _ => {
                    return Err(reject(
                        "shape",
                        RejectKind::Invalid,
                        "org kind is missing or unknown",
                    ));
                }
            };
            if let Some(i) = &info {
                if !has_role(i, &["regulator"]) {
                    return Err(reject(
                        "4.5/approval",
                        RejectKind::PermissionDenied,
                        "only the regulator registers member orgs (or propose add_org)",
                    ));
                }
                if view.approval_policy() == ApprovalPolicy::Majority {
                    return Err(reject(
                        "4.5/approval",
                        RejectKind::PermissionDenied,
                        "the approval policy is majority: admit the org with an add_org proposal",
                    ));
                }
            }
            if view.org_exists(&o.org_id) {
                return Err(reject(
                    "4.5/org",
                    RejectKind::AlreadyExists,
                    format!("org {:?} already exists", o.org_id),
                ));
            }
            effects.push(Effect::Org(o.org_id.clone(), kind));
        }
        Payload::RegisterSigner(s) => {
            let key: [u8; 32] =
                s.public_key.as_slice().try_into().map_err(|_| {
                    reject("shape", RejectKind::Invalid, "public_key must be 32 bytes")
                })?;
            if let Some(why) = crate::tx::unsound_key(&key) {
                return Err(reject("shape", RejectKind::Invalid, why));
            }
            check_ident("org_id", &s.org_id)?;
            if s.roles.is_empty() || s.roles.iter().any(|r| !ROLES.contains(&r.as_str())) {
                return Err(reject(
                    "shape",
                    RejectKind::Invalid,
                    format!("roles must be a non-empty subset of {ROLES:?}"),
                ));
            }
            if s.roles.iter().any(|r| r == TOKEN_ISSUER) {
                if s.roles.len() > 1 {
                    return Err(reject(
                        "shape",
                        RejectKind::Invalid,
                        "a token-issuer key holds no other role",
                    ));
                }
                // A token key speaks for the org's users, so only the org itself may
                // appoint one; the regulator can still revoke it (the kill switch).
                if !info
                    .as_ref()
                    .is_some_and(|i| i.org_id == s.org_id && has_role(i, &["admin"]))
                {
                    return Err(reject(
                        "4.1/token-key",
                        RejectKind::PermissionDenied,
                        "only the org's own admin registers its token keys",
                    ));
                }
            }
            let Some(kind) = view.org_kind(&s.org_id) else {
                return Err(reject(
                    "4.1/org",
                    RejectKind::FailedPrecondition,
                    format!("org {:?} is not registered", s.org_id),
                ));
            };
            if let Some(r) = s.roles.iter().find(|r| !role_fits_org(r, kind)) {
                return Err(reject(
                    "4.1/role-kind",
                    RejectKind::PermissionDenied,
                    format!(
                        "role {r:?} does not fit org {:?} of kind {}",
                        s.org_id,
                        kind.as_str_name()
                    ),
                ));
            }
            match &info {
                None if key != *signer => {
                    return Err(reject(
                        "4.1/genesis",
                        RejectKind::Unauthenticated,
                        "the first signer must register its own key",
                    ));
                }
                Some(i) if !manages_keys_of(i, &s.org_id) => {
                    return Err(reject(
                        "4.1/role",
                        RejectKind::PermissionDenied,
                        "only the org's admin or the regulator registers signer keys",
                    ));
                }
                None | Some(_) => {}
            }
            if view.signer(&key).is_some() {
                return Err(reject(
                    "4.1/signer",
                    RejectKind::AlreadyExists,
                    "key is already registered",
                ));
            }
            effects.push(Effect::Signer(
                key,
                SignerInfo {
                    org_id: s.org_id.clone(),
                    roles: s.roles.clone(),
                    active: true,
                },
            ));
        }
        _ if genesis => {
            return Err(reject(
                "4.1/genesis",
                RejectKind::Unauthenticated,
                "only org and signer registrations are accepted before the first signer exists",
            ));
        }
        Payload::ProposeChange(pc) => {
            let i = info.as_ref().expect("not genesis");
            check_ident("proposal_id", &pc.proposal_id)?;
            if pc.reason.len() > 1024 {
                return Err(reject(
                    "shape",
                    RejectKind::Invalid,
                    "reason is at most 1024 bytes",
                ));
            }
            if !has_role(i, &["admin", "regulator"]) {
                return Err(reject(
                    "4.5/proposal",
                    RejectKind::PermissionDenied,
                    "only an org's admin or the regulator proposes consortium changes",
                ));
            }
            if view.proposal(&pc.proposal_id).is_some() {
                return Err(reject(
                    "4.5/proposal",
                    RejectKind::AlreadyExists,
                    format!("proposal {:?} already exists", pc.proposal_id),
                ));
            }
            use crate::pb::propose_change::Change as C;
            let change = match &pc.change {
                Some(C::AddNode(a)) => {
                    check_ident("node_id", &a.node_id)?;
                    check_ident("org_id", &a.org_id)?;
                    check_id("peer", &a.peer)?;
                    check_id("api", &a.api)?;
                    if a.raft_id == 0 {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            "raft_id must be non-zero",
                        ));
                    }
                    if !view.org_exists(&a.org_id) {
                        return Err(reject(
                            "4.5/proposal",
                            RejectKind::FailedPrecondition,
                            format!("org {:?} is not registered", a.org_id),
                        ));
                    }
                    let key = crate::note::VerifierKey::parse(&a.checkpoint_key).map_err(|e| {
                        reject("shape", RejectKind::Invalid, format!("checkpoint_key: {e}"))
                    })?;
                    if key.name != format!("{}/{}", ctx.origin, a.node_id) {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            format!("checkpoint_key must be named {}/{}", ctx.origin, a.node_id),
                        ));
                    }
                    for (what, d) in [
                        ("valid_from", &a.valid_from),
                        ("valid_until", &a.valid_until),
                    ] {
                        if !d.is_empty() {
                            check_day(what, d)?;
                        }
                    }
                    if !a.valid_from.is_empty()
                        && !a.valid_until.is_empty()
                        && a.valid_until < a.valid_from
                    {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            "valid_until is before valid_from",
                        ));
                    }
                    // The same raft id and node id again is a renewal (new validity,
                    // addresses or checkpoint key, each visible in the proposal voted
                    // on); another node under a live id is refused, and a node never
                    // changes hands between orgs.
                    if let Some(n) = view.node(a.raft_id).filter(|n| !n.removed) {
                        if n.node_id != a.node_id {
                            return Err(reject(
                                "4.5/proposal",
                                RejectKind::AlreadyExists,
                                format!("raft id {} is already a registered node", a.raft_id),
                            ));
                        }
                        if n.org_id != a.org_id {
                            return Err(reject(
                                "4.5/proposal",
                                RejectKind::FailedPrecondition,
                                format!(
                                    "node {} belongs to org {:?}; a renewal cannot move it to {:?}",
                                    a.node_id, n.org_id, a.org_id
                                ),
                            ));
                        }
                    }
                    Change::AddNode(NodeRecord {
                        raft_id: a.raft_id,
                        node_id: a.node_id.clone(),
                        org_id: a.org_id.clone(),
                        peer: a.peer.clone(),
                        api: a.api.clone(),
                        checkpoint_key: a.checkpoint_key.clone(),
                        removed: false,
                        valid_from: a.valid_from.clone(),
                        valid_until: a.valid_until.clone(),
                    })
                }
                Some(C::AddOrg(o)) => {
                    check_ident("org_id", &o.org_id)?;
                    check_id("name", &o.name)?;
                    let kind = match crate::pb::OrgKind::try_from(o.kind) {
                        Ok(k) if k != crate::pb::OrgKind::Unspecified => k,
                        _ => {
                            return Err(reject(
                                "shape",
                                RejectKind::Invalid,
                                "org kind is missing or unknown",
                            ));
                        }
                    };
                    if view.org_exists(&o.org_id) {
                        return Err(reject(
                            "4.5/org",
                            RejectKind::AlreadyExists,
                            format!("org {:?} already exists", o.org_id),
                        ));
                    }
                    Change::AddOrg {
                        org_id: o.org_id.clone(),
                        name: o.name.clone(),
                        kind: kind.as_str_name().to_string(),
                    }
                }
                Some(C::CreateChannel(c)) => {
                    if !valid_channel_name(&c.name) {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            "channel name must match [a-z0-9][a-z0-9-]{0,31}",
                        ));
                    }
                    if view.channel(&c.name).is_some() {
                        return Err(reject(
                            "4.5/channel",
                            RejectKind::AlreadyExists,
                            format!("channel {:?} already exists", c.name),
                        ));
                    }
                    Change::CreateChannel(ChannelDef {
                        name: c.name.clone(),
                        origin: channel_origin(ctx.origin, &c.name),
                        members: member_orgs(view, "4.5/channel", &c.member_orgs)?,
                    })
                }
                Some(C::DefineCollection(c)) => {
                    if !valid_channel_name(&c.name) {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            "collection name must match [a-z0-9][a-z0-9-]{0,31}",
                        ));
                    }
                    let mut types = c.record_types.clone();
                    types.sort();
                    types.dedup();
                    if types.is_empty()
                        || types.len() > MAX_SET
                        || !types
                            .iter()
                            .all(|t| valid_channel_name(&t.replace('_', "-")))
                    {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            format!(
                                "record_types must be 1..={MAX_SET} names like \"reading\" or \"demand_plan\""
                            ),
                        ));
                    }
                    Change::DefineCollection(CollectionDef {
                        name: c.name.clone(),
                        members: member_orgs(view, "4.5/collection", &c.member_orgs)?,
                        record_types: types,
                        version: 0,
                    })
                }
                Some(C::SetApprovalPolicy(p)) => {
                    use crate::pb::ApprovalPolicy as P;
                    Change::SetApprovalPolicy(match P::try_from(p.policy) {
                        Ok(P::RegulatorOrMajority) => ApprovalPolicy::RegulatorOrMajority,
                        Ok(P::Regulator) => ApprovalPolicy::Regulator,
                        Ok(P::Majority) => ApprovalPolicy::Majority,
                        _ => {
                            return Err(reject(
                                "shape",
                                RejectKind::Invalid,
                                "approval policy is missing or unknown",
                            ));
                        }
                    })
                }
                Some(C::RemoveNode(r)) => {
                    if r.raft_id == 0 {
                        return Err(reject(
                            "shape",
                            RejectKind::Invalid,
                            "raft_id must be non-zero",
                        ));
                    }
                    Change::RemoveNode(r.raft_id)
                }
                None => {
                    return Err(reject(
                        "shape",
                        RejectKind::Invalid,
                        "proposal has no change",
                    ));
                }
            };
            effects.push(Effect::Proposal(
                pc.proposal_id.clone(),
                Proposal {
                    change,
                    proposer_org: i.org_id.clone(),
                    approvals: Default::default(),
                    denials: Default::default(),
                    status: ProposalStatus::Open,
                },
            ));
        }
        Payload::CastVote(v) => {
            let i = info.as_ref().expect("not genesis");
            if !has_role(i, &["admin", "regulator"]) {
                return Err(reject(
                    "4.5/vote",
                    RejectKind::PermissionDenied,
                    "only an org's admin or the regulator votes",
                ));
            }
            let mut p = view.proposal(&v.proposal_id).ok_or_else(|| {
                reject(
                    "4.5/vote",
                    RejectKind::FailedPrecondition,
                    format!("no proposal {:?}", v.proposal_id),
                )
            })?;
            if p.status != ProposalStatus::Open {
                return Err(reject(
                    "4.5/vote",
                    RejectKind::FailedPrecondition,
                    format!("proposal {:?} is already decided", v.proposal_id),
                ));
            }
            if p.approvals.contains(&i.org_id) || p.denials.contains(&i.org_id) {
                return Err(reject(
                    "4.5/vote",
                    RejectKind::AlreadyExists,
                    format!("org {:?} has already voted", i.org_id),
                ));
            }
            let regulator = view.org_kind(&i.org_id) == Some(crate::pb::OrgKind::Regulator);
            let orgs = view.org_count().max(1);
            if v.approve {
                p.approvals.insert(i.org_id.clone());
            } else {
                p.denials.insert(i.org_id.clone());
            }
            let yes = p.approvals.len() * 2 > orgs;
            let no = p.denials.len() * 2 >= orgs;
            p.status = match view.approval_policy() {
                ApprovalPolicy::RegulatorOrMajority if (regulator && v.approve) || yes => {
                    ProposalStatus::Approved
                }
                ApprovalPolicy::RegulatorOrMajority if (regulator && !v.approve) || no => {
                    ProposalStatus::Rejected
                }
                ApprovalPolicy::Regulator if regulator && v.approve => ProposalStatus::Approved,
                ApprovalPolicy::Regulator if regulator => ProposalStatus::Rejected,
                ApprovalPolicy::Majority if yes => ProposalStatus::Approved,
                ApprovalPolicy::Majority if no => ProposalStatus::Rejected,
                _ => ProposalStatus::Open,
            };
            if p.status == ProposalStatus::Approved {
                match &p.change {
                    Change::AddNode(n) => {
                        // Re-checked now: another proposal may have taken the id meanwhile.
                        if view
                            .node(n.raft_id)
                            .is_some_and(|x| !x.removed && x.node_id != n.node_id)
                        {
                            return Err(reject(
                                "4.5/proposal",
                                RejectKind::FailedPrecondition,
                                format!(
                                    "raft id {} was registered to another node since this proposal was made",
                                    n.raft_id
                                ),
                            ));
                        }
                        effects.push(Effect::Node(n.clone()));
                    }
                    Change::RemoveNode(id) => {
                        // Bootstrap members have no registration: record the removal anyway
                        // so the leader acts on it.
                        let mut n = view.node(*id).unwrap_or(NodeRecord {
                            raft_id: *id,
                            node_id: String::new(),
                            org_id: String::new(),
                            peer: String::new(),
                            api: String::new(),
                            checkpoint_key: String::new(),
                            removed: true,
                            valid_from: String::new(),
                            valid_until: String::new(),
                        });
                        n.removed = true;
                        effects.push(Effect::Node(n));
                    }
                    Change::AddOrg { org_id, kind, .. } => {
                        if view.org_exists(org_id) {
                            return Err(reject(
                                "4.5/org",
                                RejectKind::FailedPrecondition,
                                format!(
                                    "org {org_id:?} was registered since this proposal was made"
                                ),
                            ));
                        }
                        let kind = crate::pb::OrgKind::from_str_name(kind).ok_or_else(|| {
                            reject(
                                "4.5/org",
                                RejectKind::FailedPrecondition,
                                "unknown org kind",
                            )
                        })?;
                        effects.push(Effect::Org(org_id.clone(), kind));
                    }
                    Change::CreateChannel(c) => {
                        if view.channel(&c.name).is_some() {
                            return Err(reject(
                                "4.5/channel",
                                RejectKind::FailedPrecondition,
                                format!(
                                    "channel {:?} was created since this proposal was made",
                                    c.name
                                ),
                            ));
                        }
                        effects.push(Effect::Channel(c.clone()));
                    }
                    Change::DefineCollection(c) => {
                        let version = view.collection(&c.name).map_or(1, |x| x.version + 1);
                        effects.push(Effect::Collection(CollectionDef {
                            version,
                            ..c.clone()
                        }));
                    }
                    Change::SetApprovalPolicy(p) => effects.push(Effect::Policy(*p)),
                }
            }
            effects.push(Effect::Proposal(v.proposal_id.clone(), p));
        }
        Payload::RevokeSigner(r) => {
            let i = info.as_ref().expect("not genesis");
            let key: [u8; 32] =
                r.public_key.as_slice().try_into().map_err(|_| {
                    reject("shape", RejectKind::Invalid, "public_key must be 32 bytes")
                })?;
            if r.reason.len() > 1024 {
                return Err(reject(
                    "shape",
                    RejectKind::Invalid,
                    "reason is at most 1024 bytes",
                ));
            }
            let target = view.signer(&key).ok_or_else(|| {
                reject(
                    "4.1/revoke",
                    RejectKind::FailedPrecondition,
                    format!("key {} is not registered", hex::encode(key)),
                )
            })?;
            if !target.active {
                return Err(reject(
                    "4.1/revoke",
                    RejectKind::FailedPrecondition,
                    "key is already revoked",
                ));
            }
            if !manages_keys_of(i, &target.org_id) {
                return Err(reject(
                    "4.1/role",
                    RejectKind::PermissionDenied,
                    "only the key's org admin or the regulator revokes a signer key",
                ));
            }
            effects.push(Effect::Signer(
                key,
                SignerInfo {
                    active: false,
                    ..target
                },
            ));
        }
        Payload::RegisterInstrument(r) => {
            let i = info.as_ref().expect("not genesis");
            check_ident("asset_no", &r.asset_no)?;
            check_id("serial_no", &r.serial_no)?;
            check_ident("owner_org", &r.owner_org)?;
            if i.org_id != r.owner_org || !has_role(i, &["operator", "admin"]) {
                return Err(reject(
                    "4.6/owner",
                    RejectKind::PermissionDenied,
                    "instruments are registered by their owning grid company's operators",
                ));
            }
            if view.instrument_owner(&r.asset_no).is_some() {
                return Err(reject(
                    "instrument",
                    RejectKind::AlreadyExists,
                    format!("instrument {:?} already registered", r.asset_no),
                ));
            }
            let details = crate::metrology::check_instrument(view, r)?;
            effects.push(Effect::Instrument(r.asset_no.clone(), r.owner_org.clone()));
            effects.push(Effect::Record(
                crate::metrology::keys::instrument(&r.asset_no),
                serde_json::to_vec(&details).expect("plain record serialises"),
            ));
        }
        Payload::IssueCertificate(c) => {
            let i = info.as_ref().expect("not genesis");
            not_after_block("4.2/date", "test_date", &c.test_date, ctx)?;
            effects.extend(crate::metrology::issue_certificate(view, i, c)?);
            // The current certificate is the verification with the latest test date, so
            // a backdated certificate recorded late does not displace a newer one.
            let kind = crate::pb::CertificateKind::try_from(c.kind).ok();
            let verification = matches!(
                kind,
                Some(
                    crate::pb::CertificateKind::InitialVerification
                        | crate::pb::CertificateKind::PeriodicVerification
                        | crate::pb::CertificateKind::ReturnedMeter
                )
            );
            let newer = crate::metrology::list::<crate::metrology::CertificateRec>(
                view,
                &crate::metrology::keys::certificates_of(&c.asset_no),
            )
            .into_iter()
            .any(|(_, r)| r.is_verification() && r.test_date > c.test_date);
            if verification && !newer {
                effects.push(Effect::Certificate(c.asset_no.clone()));
            }
        }
        Payload::GrantAuthorisation(a) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::grant_authorisation(view, i, a)?);
        }
        Payload::RecordAccreditation(a) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::record_accreditation(view, i, a)?);
        }
        Payload::RegisterPersonnelCertificate(p) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::register_personnel(view, i, p)?);
        }
        Payload::RegisterEquipment(e) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::register_equipment(view, i, e)?);
        }
        Payload::IssueCalibration(c) => {
            let i = info.as_ref().expect("not genesis");
            not_after_block("4.3/date", "calibration date", &c.date, ctx)?;
            effects.extend(crate::metrology::issue_calibration(view, i, c)?);
        }
        Payload::SchedulePlan(p) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::schedule_plan(view, i, p)?);
        }
        Payload::PurgePrivate(p) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::private::purge_private(view, i, p)?);
        }
        Payload::AnchorDocument(a) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::private::anchor_document(view, i, a)?);
        }
        Payload::BindCustomer(b) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::private::bind_customer(view, i, body, b)?);
        }
        Payload::RegisterModel(m) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::supply::register_model(view, i, m)?);
        }
        Payload::PublishDemandPlan(d) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::supply::publish_demand(view, i, body, d)?);
        }
        Payload::AcknowledgeDemand(a) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::supply::acknowledge(view, i, body, a)?);
        }
        Payload::PublishTestBatch(b) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::supply::publish_batch(view, i, body, b)?);
        }
        Payload::AcceptCalibration(a) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::accept_calibration(view, i, a)?);
        }
        Payload::OpenDispute(d) => {
            let i = info.as_ref().expect("not genesis");
            effects.extend(crate::metrology::open_dispute(view, i, d)?);
        }
        Payload::RecordReading(r) => {
            let i = info.as_ref().expect("not genesis");
            check_ident("asset_no", &r.asset_no)?;
            check_day("day", &r.day)?;
            not_after_block("4.6/date", "reading day", &r.day, ctx)?;
            let owner = match view.instrument_owner(&r.asset_no) {
                None => {
                    return Err(reject(
                        "4.6/instrument",
                        RejectKind::FailedPrecondition,
                        format!("meter {:?} is not registered", r.asset_no),
                    ));
                }
                Some(owner) if owner != i.org_id || !has_role(i, &["operator", "admin"]) => {
                    return Err(reject(
                        "4.6/owner",
                        RejectKind::PermissionDenied,
                        "readings come only from the owning grid company's keys",
                    ));
                }
                Some(owner) => owner,
            };
            let class = crate::private::class_ii(body).expect("a reading is class II");
            effects.extend(crate::private::check_class_ii(
                view,
                &class,
                &owner,
                &r.asset_no,
            )?);
            match (view.reading(&r.asset_no, &r.day), r.corrects) {
                (Some(_), None) => {
                    return Err(reject(
                        "4.6/correction",
                        RejectKind::AlreadyExists,
                        format!(
                            "a reading for {} on {} exists; send a correction that refers to it",
                            r.asset_no, r.day
                        ),
                    ));
                }
                (Some(prev), Some(c)) if prev != c => {
                    return Err(reject(
                        "4.6/correction",
                        RejectKind::FailedPrecondition,
                        format!(
                            "correction refers to leaf {c}, the current reading is leaf {prev}"
                        ),
                    ));
                }
                (None, Some(_)) => {
                    return Err(reject(
                        "4.6/correction",
                        RejectKind::FailedPrecondition,
                        "nothing to correct: no reading exists for that day",
                    ));
                }
                _ => {}
            }
            effects.push(Effect::Reading(r.asset_no.clone(), r.day.clone()));
        }
    }
    Ok(effects)
}
