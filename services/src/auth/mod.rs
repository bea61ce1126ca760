//! Who is calling, and what they may do.
//!
//! # Layout
//! - this module: [`Role`], [`Principal`], [`Operation`] and the role × operation
//!   matrix ([`permits`]), plus the resource checks handlers call when the resource is
//!   known ([`may_read_readings`], [`may_grant`]). The matrix is written out in
//!   docs/SECURITY.md and tested cell by cell by tests/integration/authz.rs.
//! - [`token`]: EdDSA JWTs (claims, issuing, verification against ledger keys).
//! - [`layer`]: the one tower layer that authenticates every request, checks the matrix,
//!   enforces per-identity limits and puts the [`Principal`] into request extensions.
//!
//! Nothing here does I/O: key lookups and revocations come through
//! [`token::KeyDirectory`], implemented by the node.

pub mod layer;
pub mod token;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use gridledger_core::pb::OrgKind;

/// A user role (DOMAIN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Manages the org's accounts and keys.
    Admin,
    /// The metrology authority: registers standards, approves members, audits.
    Regulator,
    /// Staff of a verification institution.
    Verifier,
    /// Staff of a grid company.
    Operator,
    /// Staff of a supplier.
    Supplier,
    /// Staff of a market operator (settlement).
    Market,
    /// A household customer: own meters only.
    Resident,
    /// Reads all class I data, writes nothing.
    Auditor,
}

impl Role {
    /// Every role, in matrix order.
    pub const ALL: [Role; 8] = [
        Role::Admin,
        Role::Regulator,
        Role::Verifier,
        Role::Operator,
        Role::Supplier,
        Role::Market,
        Role::Resident,
        Role::Auditor,
    ];

    /// The role's name in tokens, accounts and on the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Regulator => "regulator",
            Role::Verifier => "verifier",
            Role::Operator => "operator",
            Role::Supplier => "supplier",
            Role::Market => "market",
            Role::Resident => "resident",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role an organisation system (client certificate, OU=system) of an org kind
    /// acts with: the org's own line of business.
    pub fn of_org_kind(kind: OrgKind) -> Option<Role> {
        match kind {
            OrgKind::Regulator => Some(Role::Regulator),
            OrgKind::GridCompany => Some(Role::Operator),
            OrgKind::Institution => Some(Role::Verifier),
            OrgKind::Supplier => Some(Role::Supplier),
            OrgKind::MarketOperator => Some(Role::Market),
            OrgKind::Unspecified => None,
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// Nothing presented (public listener only).
    Anonymous,
    /// A client certificate from the consortium CA: an organisation's system
    /// (OU=system) or a member node (OU=node).
    System {
        /// The certificate's CN.
        name: String,
        /// OU=node: a member node rather than an org's system.
        node: bool,
    },
    /// An access token (JWT) of a user.
    User,
    /// A dynamic token: short-lived, for named records only.
    Dynamic {
        /// Whether this token may be used once only (already consumed on entry).
        single_use: bool,
    },
}

/// The authenticated caller of one request, put into request extensions by the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How it was authenticated.
    pub kind: PrincipalKind,
    /// Subject: user name, certificate CN, or `-` for anonymous.
    pub subject: String,
    /// The caller's org (empty for anonymous).
    pub org: String,
    /// The org's kind, from the ledger (Unspecified for anonymous).
    pub org_kind: OrgKind,
    /// Roles (for systems: the one role of their org's kind).
    pub roles: BTreeSet<Role>,
    /// Resource grants carried by the token: `meter:<asset>` for residents,
    /// `readings:<asset>[:<from>:<to>]` for dynamic tokens.
    pub scope: Vec<String>,
    /// The token id, for logout.
    pub jti: Option<String>,
    /// The token's expiry, seconds since the epoch.
    pub exp: Option<u64>,
    /// The public key that signed the token.
    pub token_key: Option<[u8; 32]>,
    /// The peer address.
    pub remote: Option<SocketAddr>,
}

impl Principal {
    /// The caller with no credentials.
    pub fn anonymous(remote: Option<SocketAddr>) -> Self {
        Self {
            kind: PrincipalKind::Anonymous,
            subject: "-".into(),
            org: String::new(),
            org_kind: OrgKind::Unspecified,
            roles: BTreeSet::new(),
            scope: Vec::new(),
            jti: None,
            exp: None,
            token_key: None,
            remote,
        }
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether this is an organisation system or member node (client certificate).
    pub fn is_system(&self) -> bool {
        matches!(self.kind, PrincipalKind::System { .. })
    }

    /// Whether this is a user's access token.
    pub fn is_user(&self) -> bool {
        self.kind == PrincipalKind::User
    }

    /// Whether this is a dynamic token.
    pub fn is_dynamic(&self) -> bool {
        matches!(self.kind, PrincipalKind::Dynamic { .. })
    }

    /// The key per-identity limits count against.
    pub fn limit_key(&self) -> String {
        match &self.kind {
            PrincipalKind::Anonymous => match self.remote {
                Some(a) => format!("ip:{}", a.ip()),
                None => "ip:?".into(),
            },
            PrincipalKind::System { name, .. } => format!("cert:{}/{name}", self.org),
            PrincipalKind::User | PrincipalKind::Dynamic { .. } => {
                format!("user:{}/{}", self.org, self.subject)
            }
        }
    }

    /// The meters a resident token is bound to.
    pub fn bound_meters(&self) -> impl Iterator<Item = &str> {
        self.scope.iter().filter_map(|s| s.strip_prefix("meter:"))
    }

    /// A short description for logs and error messages (no secrets).
    pub fn describe(&self) -> String {
        match &self.kind {
            PrincipalKind::Anonymous => "an anonymous caller".into(),
            PrincipalKind::System { name, node } => format!(
                "{} {name:?} of org {:?}",
                if *node { "node" } else { "system" },
                self.org
            ),
            PrincipalKind::User => format!("user {:?} of org {:?}", self.subject, self.org),
            PrincipalKind::Dynamic { .. } => "a dynamic token".into(),
        }
    }
}

/// What a request does: the rows of the matrix. Each RPC and HTTP route maps to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// Status, checkpoints, inclusion and consistency proofs, health, reflection: hashes
    /// and counts only (class I).
    ChainPublic,
    /// Raw leaves: blocks, entries, receipts (with the leaf), the block stream. Leaves
    /// carry every record, so only member systems, regulators and auditors.
    ChainReadLeaves,
    /// Submitting signed transactions (the transaction's own key decides what it may do).
    ChainSubmit,
    /// Login, refresh and the JWKS: no token needed.
    AuthPublic,
    /// Logout: revoke one's own tokens.
    AuthLogout,
    /// Mint a dynamic token for records one may read.
    AuthDynamicToken,
    /// Accounts of one's own org.
    AccountsManage,
    /// Class I metrology records: instruments, certificates, traceability chains,
    /// institutions' credit views, verification plans.
    MeterRead,
    /// A resident's own meters.
    MyMeters,
    /// Class II records: a meter's readings, the settlement check over them, and its
    /// customer bindings, with the per-meter check in the handler.
    PrivateRead,
    /// A resident opening a dispute about one of their meters.
    DisputeOpen,
    /// Class III documents: anchors and bytes (any authenticated caller).
    DocumentRead,
    /// Supplier records (class II) and the sync stream: a dynamic token with scope
    /// `supply:<its org>`, checked by the handler.
    SupplyRead,
    /// SupplierService writes (the transaction's own key then decides, as for
    /// ChainSubmit).
    SupplySubmit,
    /// Uploading a class III document with its signed anchor (the anchor's key then
    /// decides, as for submissions).
    DocumentUpload,
    /// Anything else (unknown routes): needs some authentication, then 404.
    Other,
}

impl Operation {
    /// Every operation, in matrix order.
    pub const ALL: [Operation; 16] = [
        Operation::ChainPublic,
        Operation::ChainReadLeaves,
        Operation::ChainSubmit,
        Operation::AuthPublic,
        Operation::AuthLogout,
        Operation::AuthDynamicToken,
        Operation::AccountsManage,
        Operation::MeterRead,
        Operation::MyMeters,
        Operation::PrivateRead,
        Operation::DisputeOpen,
        Operation::DocumentRead,
        Operation::DocumentUpload,
        Operation::SupplyRead,
        Operation::SupplySubmit,
        Operation::Other,
    ];

    /// The operation of a gRPC method path or an HTTP route.
    pub fn of(method: &axum::http::Method, path: &str) -> Operation {
        use Operation as O;
        if let Some(rest) = path.strip_prefix("/gridledger.v1.") {
            let (service, rpc) = rest.split_once('/').unwrap_or((rest, ""));
            return match (service, rpc) {
                (
                    "ChainService",
                    "GetStatus" | "GetCheckpoint" | "GetInclusionProof" | "GetConsistencyProof",
                ) => O::ChainPublic,
                // A witness proves itself by its cosignature, checked by the handler
                // against the configured witness keys: no credentials needed.
                ("ChainService", "AddCosignature") => O::ChainPublic,
                // The consortium's composition is class I: anyone may read it.
                (
                    "AdminService",
                    "ListMembers" | "ListNodes" | "ListProposals" | "ListChannels"
                    | "ListCollections" | "GetConfig",
                ) => O::ChainPublic,
                (
                    "ChainService",
                    "GetBlock" | "GetBlocks" | "GetEntry" | "GetReceipt" | "WatchBlocks",
                ) => O::ChainReadLeaves,
                ("ChainService", "Submit" | "SubmitStream") => O::ChainSubmit,
                ("AuthService", "Login" | "Refresh" | "GetJwks") => O::AuthPublic,
                ("AuthService", "Logout") => O::AuthLogout,
                ("AuthService", "IssueDynamicToken") => O::AuthDynamicToken,
                ("AuthService", "CreateAccount" | "ListAccounts" | "UpdateAccount") => {
                    O::AccountsManage
                }
                (
                    "DataService",
                    "GetMeter" | "GetInstrument" | "GetTraceability" | "GetInstitution"
                    | "ListPlans",
                ) => O::MeterRead,
                ("SupplierService", "ListModels") => O::MeterRead,
                ("DataService", "SettlementCheck") => O::PrivateRead,
                ("DataService", "ListMyMeters") => O::MyMeters,
                ("DataService", "GetReadings" | "GetBindings") => O::PrivateRead,
                ("DataService", "UploadDocument") => O::DocumentUpload,
                ("DataService", "GetDocument" | "DownloadDocument") => O::DocumentRead,
                ("SupplierService", "ListDemandPlans" | "ListTestBatches" | "Sync") => {
                    O::SupplyRead
                }
                (
                    "SupplierService",
                    "RegisterModel" | "PublishDemandPlan" | "AcknowledgeDemand"
                    | "PublishTestBatch",
                ) => O::SupplySubmit,
                _ => O::Other,
            };
        }
        if path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") {
            return O::ChainPublic;
        }
        // HEAD runs the GET handler (headers only), so it is authorised as GET.
        let get = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
        let post = method == axum::http::Method::POST;
        let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        match segs.as_slice() {
            ["healthz"] | ["openapi.json"] | ["v1", "status"] | ["v1", "checkpoint"] if get => {
                O::ChainPublic
            }
            ["v1", "witness", "cosignatures"] if post => O::ChainPublic,
            ["v1", "auth", "login" | "refresh"] if post => O::AuthPublic,
            ["v1", "auth", "jwks"] | [".well-known", "jwks.json"] if get => O::AuthPublic,
            ["v1", "auth", "logout"] if post => O::AuthLogout,
            ["v1", "auth", "dynamic-tokens"] if post => O::AuthDynamicToken,
            ["v1", "accounts"] | ["v1", "accounts", _] => O::AccountsManage,
            ["v1", "records", _, "receipt"] if get => O::ChainReadLeaves,
            ["v1", "me", "meters"] if get => O::MyMeters,
            ["v1", "meters", _] | ["v1", "meters", _, "traceability"] if get => O::MeterRead,
            ["v1", "institutions", _] | ["v1", "plans"] | ["v1", "supplier", "models"] if get => {
                O::MeterRead
            }
            ["v1", "meters", _, "readings" | "binding"] | ["v1", "settlement", "check"] if get => {
                O::PrivateRead
            }
            ["v1", "me", "disputes"] if post => O::DisputeOpen,
            ["v1", "supplier", "demand-plans" | "test-batches"] | ["v1", "sync"] if get => {
                O::SupplyRead
            }
            ["v1", "supplier", "transactions"] if post => O::SupplySubmit,
            ["v1", "documents"] if post => O::DocumentUpload,
            ["v1", "documents", _] | ["v1", "documents", _, "content"] if get => O::DocumentRead,
            _ => O::Other,
        }
    }
}

/// The role × operation matrix (docs/SECURITY.md): whether `p` may attempt `op` at all.
/// Resource checks ([`may_read_readings`], account ownership) come on top in handlers.
pub fn permits(p: &Principal, op: Operation) -> bool {
    use Operation as O;
    use Role as R;
    let user_or_system = p.is_user() || p.is_system();
    match op {
        O::ChainPublic | O::AuthPublic | O::MeterRead => true,
        O::ChainReadLeaves => {
            p.is_system() || (p.is_user() && (p.has(R::Regulator) || p.has(R::Auditor)))
        }
        O::ChainSubmit => {
            p.is_system()
                || (p.is_user()
                    && [
                        R::Admin,
                        R::Regulator,
                        R::Verifier,
                        R::Operator,
                        R::Supplier,
                    ]
                    .into_iter()
                    .any(|r| p.has(r)))
        }
        O::AuthLogout => p.is_user(),
        O::AuthDynamicToken => {
            user_or_system
                && [R::Admin, R::Operator, R::Market, R::Resident, R::Supplier]
                    .into_iter()
                    .any(|r| p.has(r))
        }
        O::AccountsManage => p.is_user() && p.has(R::Admin),
        O::MyMeters | O::DisputeOpen => p.is_user() && p.has(R::Resident),
        // Class II (DESIGN.md §4): the on-ledger policy decides who may be granted a
        // dynamic token (`may_grant`), and only a dynamic token reads.
        O::PrivateRead => p.is_dynamic(),
        O::DocumentRead => !matches!(p.kind, PrincipalKind::Anonymous),
        // An upload carries a signed anchor transaction: whoever may submit may upload.
        O::DocumentUpload | O::SupplySubmit => permits(p, O::ChainSubmit),
        O::SupplyRead => p.is_dynamic(),
        O::Other => !matches!(p.kind, PrincipalKind::Anonymous),
    }
}

/// Whether `p` may read the readings of meter `asset` owned by `owner_org` for the days
/// `[from, to]`: the bound resident, the owning grid company's operators and admins (and
/// its systems), any market operator, or a dynamic token naming the meter (and covering
/// the days, when it names days).
pub fn may_read_readings(
    p: &Principal,
    asset: &str,
    owner_org: &str,
    from: &str,
    to: &str,
) -> bool {
    use Role as R;
    // A grant (dynamic token, resident binding) counts only when its issuer could read
    // the meter itself: the owning grid company, or a market operator. A token key of
    // one org can so never open another org's meters, whatever scope it signs.
    let grantor_may = p.org == owner_org || p.org_kind == OrgKind::MarketOperator;
    if p.is_dynamic() {
        return grantor_may && p.scope.iter().any(|s| scope_covers(s, asset, from, to));
    }
    if !(p.is_user() || p.is_system()) {
        return false;
    }
    if p.has(R::Resident) && p.org == owner_org && p.bound_meters().any(|m| m == asset) {
        return true;
    }
    if (p.has(R::Operator) || p.has(R::Admin))
        && p.org == owner_org
        && p.org_kind == OrgKind::GridCompany
    {
        return true;
    }
    p.has(R::Market) && p.org_kind == OrgKind::MarketOperator
}

/// Whether a `readings:<asset>[:<from>:<to>]` scope item covers the request.
pub fn scope_covers(item: &str, asset: &str, from: &str, to: &str) -> bool {
    let Some(rest) = item.strip_prefix("readings:") else {
        return false;
    };
    let mut parts = rest.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), None, None, None) => a == asset,
        (Some(a), Some(f), Some(t), None) => a == asset && f <= from && to <= t,
        _ => false,
    }
}

/// One grant a dynamic token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeItem<'a> {
    /// `readings:<asset>[:<from>:<to>]`: the meter's readings (and settlement check).
    Readings {
        /// The meter.
        asset: &'a str,
        /// The days covered, when named.
        days: Option<(&'a str, &'a str)>,
    },
    /// `binding:<asset>[:<account>]`: the meter's customer bindings, all of them or only
    /// those naming one account.
    Binding {
        /// The meter.
        asset: &'a str,
        /// Only bindings of this account, when named.
        account: Option<&'a str>,
    },
    /// `supply:<org>`: the class II supplier records org may see (demand plans,
    /// acknowledgements, test batches) and its sync stream.
    Supply {
        /// The org (the grantor's own).
        org: &'a str,
    },
}

impl ScopeItem<'_> {
    /// The meter the item names (none for `supply:`).
    pub fn asset(&self) -> Option<&str> {
        match self {
            ScopeItem::Readings { asset, .. } | ScopeItem::Binding { asset, .. } => Some(asset),
            ScopeItem::Supply { .. } => None,
        }
    }
}

/// Parses and checks one dynamic-token scope item.
///
/// # Errors
/// What is wrong with the item.
pub fn parse_scope(item: &str) -> Result<ScopeItem<'_>, String> {
    let ok_day = |d: &str| {
        d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    let ident = |a: &str| gridledger_core::contract::valid_ident(a);
    if let Some(org) = item.strip_prefix("supply:") {
        return if ident(org) {
            Ok(ScopeItem::Supply { org })
        } else {
            Err(format!("scope item {item:?}: expected supply:<org>"))
        };
    }
    if let Some(rest) = item.strip_prefix("binding:") {
        let parts: Vec<&str> = rest.split(':').collect();
        return match parts.as_slice() {
            [a] if ident(a) => Ok(ScopeItem::Binding {
                asset: a,
                account: None,
            }),
            [a, acct] if ident(a) && ident(acct) => Ok(ScopeItem::Binding {
                asset: a,
                account: Some(acct),
            }),
            _ => Err(format!(
                "scope item {item:?}: expected binding:<asset> or binding:<asset>:<account>"
            )),
        };
    }
    let rest = item.strip_prefix("readings:").ok_or_else(|| {
        format!(
            "scope item {item:?}: expected readings:<asset>[:<from>:<to>], binding:<asset>[:<account>] or supply:<org>"
        )
    })?;
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [a] if ident(a) => Ok(ScopeItem::Readings {
            asset: a,
            days: None,
        }),
        [a, f, t] if ident(a) && ok_day(f) && ok_day(t) && f <= t => Ok(ScopeItem::Readings {
            asset: a,
            days: Some((f, t)),
        }),
        _ => Err(format!(
            "scope item {item:?}: expected readings:<asset> or readings:<asset>:<YYYY-MM-DD>:<YYYY-MM-DD> with from <= to"
        )),
    }
}

/// Whether `p` may hand a dynamic token with `item` to someone else: only for records it
/// may read itself (readings: the whole history), so a grant never widens access.
///
/// Customer bindings: the owning grid company's operators, admins and systems grant any
/// binding item of its meters; a resident grants only `binding:<asset>:<own user name>`
/// for a meter bound to them, so a new tenant never reads the previous one's binding.
pub fn may_grant(p: &Principal, item: &str, owner_org: &str) -> bool {
    if p.is_dynamic() {
        return false;
    }
    match parse_scope(item) {
        Err(_) => false,
        Ok(ScopeItem::Readings { asset, .. }) => {
            may_read_readings(p, asset, owner_org, "0000-00-00", "9999-99-99")
        }
        Ok(ScopeItem::Supply { org }) => {
            // Its own org's supplier records, for an org that has any.
            org == p.org
                && org == owner_org
                && matches!(p.org_kind, OrgKind::GridCompany | OrgKind::Supplier)
                && (p.is_system()
                    || (p.is_user()
                        && [Role::Admin, Role::Operator, Role::Supplier]
                            .into_iter()
                            .any(|r| p.has(r))))
        }
        Ok(ScopeItem::Binding { asset, account }) => {
            if !(p.is_user() || p.is_system()) || p.org != owner_org {
                return false;
            }
            let grid = p.org_kind == OrgKind::GridCompany
                && (p.is_system() || p.has(Role::Operator) || p.has(Role::Admin));
            let resident = p.is_user()
                && p.has(Role::Resident)
                && p.bound_meters().any(|m| m == asset)
                && account == Some(p.subject.as_str());
            grid || resident
        }
    }
}

/// Which customer bindings of meter `asset` (owned by `owner_org`) a caller may read:
/// `None` none; `Some(None)` all; `Some(Some(account))` only those naming `account`. Only
/// a dynamic token reads them, and only one its owner's token key signed.
pub fn binding_grant<'a>(
    p: &'a Principal,
    asset: &str,
    owner_org: &str,
) -> Option<Option<&'a str>> {
    if !p.is_dynamic() || p.org != owner_org {
        return None;
    }
    let mut best = None;
    for item in &p.scope {
        if let Ok(ScopeItem::Binding { asset: a, account }) = parse_scope(item)
            && a == asset
        {
            match account {
                None => return Some(None),
                Some(acct) => best = Some(Some(acct)),
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_items() {
        assert!(scope_covers(
            "readings:M1",
            "M1",
            "2026-01-01",
            "2026-12-31"
        ));
        assert!(!scope_covers(
            "readings:M1",
            "M2",
            "2026-01-01",
            "2026-01-01"
        ));
        assert!(scope_covers(
            "readings:M1:2026-01-01:2026-01-31",
            "M1",
            "2026-01-05",
            "2026-01-31"
        ));
        assert!(!scope_covers(
            "readings:M1:2026-01-01:2026-01-31",
            "M1",
            "2026-01-05",
            "2026-02-01"
        ));
        assert!(!scope_covers("meter:M1", "M1", "2026-01-01", "2026-01-01"));
        assert!(parse_scope("readings:M1:2026-02-01:2026-01-01").is_err());
        assert!(parse_scope("readings:").is_err());
        assert!(parse_scope("readings:M1:x:y").is_err());
        assert!(parse_scope("readings:M1 readings:M2").is_err());
        assert_eq!(parse_scope("readings:M1").unwrap().asset(), Some("M1"));
        assert_eq!(
            parse_scope("binding:M1:jane").unwrap(),
            ScopeItem::Binding {
                asset: "M1",
                account: Some("jane")
            }
        );
        assert!(parse_scope("binding:M1:a:b").is_err());
        assert_eq!(
            parse_scope("supply:sup-alpha").unwrap(),
            ScopeItem::Supply { org: "sup-alpha" }
        );
        assert!(parse_scope("supply:").is_err());
        assert!(parse_scope("supply:a b").is_err());
    }

    #[test]
    fn operations_of_paths() {
        use axum::http::Method;
        assert_eq!(
            Operation::of(&Method::POST, "/gridledger.v1.ChainService/Submit"),
            Operation::ChainSubmit
        );
        assert_eq!(
            Operation::of(&Method::POST, "/gridledger.v1.ChainService/Nope"),
            Operation::Other
        );
        assert_eq!(
            Operation::of(&Method::GET, "/v1/meters/X/readings"),
            Operation::PrivateRead
        );
        assert_eq!(
            Operation::of(&Method::GET, "/v1/meters/X"),
            Operation::MeterRead
        );
        assert_eq!(
            Operation::of(&Method::POST, "/v1/meters/X"),
            Operation::Other
        );
        assert_eq!(
            Operation::of(&Method::POST, "/v1/auth/login"),
            Operation::AuthPublic
        );
        assert_eq!(
            Operation::of(&Method::GET, "/v1/auth/login"),
            Operation::Other
        );
    }
}
