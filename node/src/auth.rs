//! End-user identity on this node: accounts (argon2id), login with lockout, rotating
//! refresh tokens, logout, dynamic tokens, and the key directory the auth layer checks
//! tokens against.
//!
//! Accounts live in the node-local `auth` column family: they are personal data of one
//! member's users, so they never enter the shared ledger. What other members need to
//! check a token is public and on the ledger: the org's token key (role `token-issuer`).
//! Each org this node hosts has its own token key, derived from the node's token secret
//! and the org id, so one secret file serves a node that hosts several orgs.
//!
//! Decisions (docs/SECURITY.md has the reasons):
//! - Unknown user names cost the same argon2id work as known ones, and both fail with the
//!   same message, so login reveals nothing about which accounts exist.
//! - Lockout counts failures per user name (known or not) in memory; it resets on
//!   restart, which is acceptable for a limit whose purpose is to slow guessing.
//! - Refresh tokens are opaque, stored hashed, single use; presenting a used one revokes
//!   its whole family. Disabling an account or resetting its password ends its refresh
//!   families; access tokens it already holds expire within 15 minutes.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ed25519_dalek::SigningKey;
use gridledger_core::contract::{TOKEN_ISSUER, role_fits_org};
use gridledger_core::pb::OrgKind;
use gridledger_services::ServiceError;
use gridledger_services::auth::token::{
    self, Claims, KeyDirectory, MAX_ACCESS_TTL_SECS, MAX_DYNAMIC_TTL_SECS, TokenKey, TokenSigner,
};
use gridledger_services::auth::{Principal, Role, ScopeItem, may_grant, parse_scope};
use gridledger_services::backend::{
    AccountUpdate, AccountView, AuthBackend, IssuedDynamic, NewAccount, TokenPair,
};
use parking_lot::Mutex;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::AuthConfig;
use crate::ledger::Ledger;
use crate::store::{Cf, Durability, Store, WriteBatch};

/// Longest user name.
pub const MAX_USERNAME: usize = 64;
/// Longest password (argon2id work grows with it).
pub const MAX_PASSWORD: usize = 1024;
/// Most scope items in one dynamic token.
pub const MAX_SCOPE_ITEMS: usize = 16;

type Result<T> = std::result::Result<T, ServiceError>;

/// Derives an org's token key from the node's token secret.
pub fn org_token_key(secret: &SigningKey, org: &str) -> SigningKey {
    let mut h = Sha256::new();
    h.update(b"gridledger/token-key/v1\n");
    h.update(secret.as_bytes());
    h.update((org.len() as u64).to_be_bytes());
    h.update(org.as_bytes());
    SigningKey::from_bytes(&h.finalize().into())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredAccount {
    org: String,
    roles: Vec<String>,
    #[serde(default)]
    meters: Vec<String>,
    disabled: bool,
    /// PHC string (argon2id).
    hash: String,
    /// Bumped when the password is reset or the account disabled: older refresh tokens
    /// stop working.
    epoch: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRefresh {
    username: String,
    family: String,
    epoch: u64,
    exp: u64,
    used: bool,
    /// Key of the token this one replaced. Rotating this one deletes that record, so a
    /// family keeps at most two records (current, and the last used one that detects
    /// reuse) however often it refreshes.
    #[serde(default)]
    prev: Option<String>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: u32,
    /// Attempts being checked right now: they count against the limit, so parallel
    /// guesses cannot all slip in before the first failures are recorded.
    in_flight: u32,
    locked_until: u64,
}

fn key(prefix: &str, id: &str) -> Vec<u8> {
    [prefix.as_bytes(), id.as_bytes()].concat()
}

fn random_id(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

fn argon() -> argon2::Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("constant parameters are valid");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a password (argon2id, random salt), as a PHC string.
///
/// # Errors
/// Only on internal argon2 failures.
pub fn hash_password(password: &str) -> std::result::Result<String, String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches a PHC string from [`hash_password`] (constant-time compare
/// inside argon2).
pub fn check_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| argon().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

fn check_username(u: &str) -> Result<()> {
    if u.is_empty()
        || u.len() > MAX_USERNAME
        || !u
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b))
    {
        return Err(ServiceError::InvalidArgument(format!(
            "username must be 1-{MAX_USERNAME} characters of [a-z0-9._@-]"
        )));
    }
    Ok(())
}

/// The node's identity service.
pub struct NodeAuth<S: Store> {
    ledger: Arc<Ledger<S>>,
    cfg: AuthConfig,
    issuer: String,
    signers: HashMap<String, TokenSigner>,
    dummy_hash: String,
    failures: Mutex<HashMap<String, Failures>>,
    revoked: Mutex<HashMap<String, u64>>,
    used: Mutex<HashMap<String, u64>>,
    // Serialises read-modify-write of refresh records and accounts.
    write: Mutex<()>,
    // argon2id is CPU-heavy: at most this many run at once, the rest wait their turn.
    hashing: tokio::sync::Semaphore,
    // To read customer bindings (class II) when binding meters to resident accounts.
    collection_keys: Arc<crate::private::CollectionKeys>,
    now: fn() -> u64,
}

impl<S: Store> std::fmt::Debug for NodeAuth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAuth")
            .field("orgs", &self.signers.keys())
            .finish_non_exhaustive()
    }
}

impl<S: Store> NodeAuth<S> {
    /// Opens the identity service: token keys for the hosted orgs, revocations from disk.
    ///
    /// # Errors
    /// Storage failures.
    pub fn open(
        ledger: Arc<Ledger<S>>,
        cfg: AuthConfig,
        secret: Option<&SigningKey>,
        collection_keys: Arc<crate::private::CollectionKeys>,
        now: fn() -> u64,
    ) -> anyhow::Result<Self> {
        let signers = match secret {
            Some(secret) => cfg
                .orgs
                .iter()
                .map(|o| (o.clone(), TokenSigner::new(o, &org_token_key(secret, o))))
                .collect(),
            None => HashMap::new(),
        };
        let load = |prefix: &[u8], end: &[u8]| -> anyhow::Result<HashMap<String, u64>> {
            let t = now();
            let mut m = HashMap::new();
            for (k, v) in ledger.store().scan(Cf::Auth, prefix, end, usize::MAX)? {
                let exp = u64::from_be_bytes(v.as_slice().try_into().unwrap_or([0; 8]));
                if exp + token::LEEWAY_SECS > t {
                    m.insert(
                        String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                        exp,
                    );
                }
            }
            Ok(m)
        };
        let revoked = load(b"revoked/", b"revoked0")?;
        let used = load(b"used/", b"used0")?;
        Ok(Self {
            issuer: format!("{}/{}", ledger.origin(), ledger.node_id()),
            ledger,
            dummy_hash: hash_password("not a password anyone has").map_err(anyhow::Error::msg)?,
            signers,
            failures: Mutex::new(HashMap::new()),
            revoked: Mutex::new(revoked),
            used: Mutex::new(used),
            write: Mutex::new(()),
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            ),
            cfg,
            collection_keys,
            now,
        })
    }

    /// Token signers of the hosted orgs (for registration on the ledger).
    pub fn token_signers(&self) -> impl Iterator<Item = &TokenSigner> {
        self.signers.values()
    }

    fn store(&self) -> &S {
        self.ledger.store()
    }

    fn account(&self, username: &str) -> Result<Option<StoredAccount>> {
        match self
            .store()
            .get(Cf::Auth, &key("account/", username))
            .map_err(internal)?
        {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(internal),
        }
    }

    fn put(&self, batch: &mut WriteBatch, k: Vec<u8>, v: &impl Serialize) {
        batch.put(
            Cf::Auth,
            k,
            serde_json::to_vec(v).expect("plain struct serialises"),
        );
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        // A synced write waits for the disk: tell the runtime, so other requests keep
        // their worker threads (the node runs the multi-threaded runtime).
        let write = || {
            self.store()
                .write(batch, Durability::Sync)
                .map_err(internal)
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(write),
            _ => write(),
        }
    }

    /// Creates or replaces an account directly (dev seeding, bootstrap of an org's first
    /// admin by the operator). Validates like [`AuthBackend::create_account`] except for
    /// the caller checks.
    ///
    /// # Errors
    /// Invalid fields.
    pub fn put_account(
        &self,
        username: &str,
        org: &str,
        roles: &[String],
        meters: &[String],
        password: &str,
    ) -> Result<()> {
        check_username(username)?;
        self.check_account_fields(org, username, roles, meters, password)?;
        let hash = hash_password(password).map_err(internal)?;
        let mut b = WriteBatch::new();
        let epoch = self.account(username)?.map(|a| a.epoch + 1).unwrap_or(0);
        self.put(
            &mut b,
            key("account/", username),
            &StoredAccount {
                org: org.into(),
                roles: roles.to_vec(),
                meters: meters.to_vec(),
                disabled: false,
                hash,
                epoch,
            },
        );
        self.write(b)
    }

    fn check_account_fields(
        &self,
        org: &str,
        username: &str,
        roles: &[String],
        meters: &[String],
        password: &str,
    ) -> Result<()> {
        if !self.signers.contains_key(org) {
            return Err(ServiceError::FailedPrecondition(format!(
                "this node does not host org {org:?} (auth.orgs in its config)"
            )));
        }
        let kind = self.ledger.org_kind(org).ok_or_else(|| {
            ServiceError::FailedPrecondition(format!("org {org:?} is not registered on the ledger"))
        })?;
        self.check_roles(roles, kind)?;
        self.check_meters(org, username, roles, meters, &[])?;
        self.check_password(password)
    }

    fn check_password(&self, p: &str) -> Result<()> {
        if p.len() < self.cfg.min_password_len || p.len() > MAX_PASSWORD {
            return Err(ServiceError::InvalidArgument(format!(
                "password must be {}-{MAX_PASSWORD} bytes",
                self.cfg.min_password_len
            )));
        }
        Ok(())
    }

    fn check_roles(&self, roles: &[String], kind: OrgKind) -> Result<()> {
        if roles.len() > Role::ALL.len() {
            return Err(ServiceError::InvalidArgument(format!(
                "an account has at most {} roles",
                Role::ALL.len()
            )));
        }
        if roles.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "an account needs at least one role".into(),
            ));
        }
        for r in roles {
            if Role::parse(r).is_none() {
                return Err(ServiceError::InvalidArgument(format!("unknown role {r:?}")));
            }
            if !role_fits_org(r, kind) {
                return Err(ServiceError::InvalidArgument(format!(
                    "role {r:?} does not fit an org of kind {}",
                    kind.as_str_name()
                )));
            }
        }
        Ok(())
    }

    /// Meters go only to resident accounts, and only meters the org owns whose current
    /// customer binding on the ledger (DOMAIN.md §2.3, class II) names this account:
    /// the grid company binds the customer on the ledger first, and the node's account
    /// follows the ledger, never the other way round. Meters in `already` (an update
    /// keeping them) are not re-checked, so an account can still be edited or disabled
    /// after its customer moved out.
    fn check_meters(
        &self,
        org: &str,
        username: &str,
        roles: &[String],
        meters: &[String],
        already: &[String],
    ) -> Result<()> {
        if meters.is_empty() {
            return Ok(());
        }
        if !roles.iter().any(|r| r == "resident") {
            return Err(ServiceError::InvalidArgument(
                "only resident accounts are bound to meters".into(),
            ));
        }
        if meters.len() > gridledger_services::data::MAX_BOUND_METERS {
            return Err(ServiceError::InvalidArgument(format!(
                "at most {} meters per resident",
                gridledger_services::data::MAX_BOUND_METERS
            )));
        }
        for m in meters {
            match self.ledger.instrument(m).map_err(internal)? {
                Some((owner, _)) if owner == org => {}
                Some(_) | None => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "meter {m:?} is not an instrument of org {org:?}"
                    )));
                }
            }
            if already.contains(m) {
                continue;
            }
            match self.customer_of(m)? {
                Some(c) if c == username => {}
                Some(c) if c.is_empty() => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "meter {m:?} has no customer on the ledger (its current binding is vacant or purged); \
                         bind account {username:?} to it first (BindCustomer, gridledger bind)"
                    )));
                }
                Some(_) => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "meter {m:?} is bound to another customer on the ledger; \
                         bind account {username:?} to it first (BindCustomer, gridledger bind)"
                    )));
                }
                None => {
                    return Err(ServiceError::FailedPrecondition(format!(
                        "meter {m:?} has no customer binding on the ledger; \
                         bind account {username:?} to it first (BindCustomer, gridledger bind)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The customer the ledger's current binding of `asset` names (see
    /// [`crate::private::current_customer`]).
    fn customer_of(&self, asset: &str) -> Result<Option<String>> {
        crate::private::current_customer(&self.ledger, &self.collection_keys, asset)
    }

    fn signer_for(&self, org: &str) -> Result<&TokenSigner> {
        let s = self.signers.get(org).ok_or_else(|| {
            ServiceError::FailedPrecondition(format!(
                "this node does not issue tokens for org {org:?}"
            ))
        })?;
        match self.ledger.signer(&s.public_key()) {
            Some(i) if i.active && i.org_id == org && i.roles.iter().any(|r| r == TOKEN_ISSUER) => {
                Ok(s)
            }
            _ => Err(ServiceError::FailedPrecondition(format!(
                "this node's token key for org {org:?} ({}) is not registered and active on the ledger; \
                 its admin registers it with role {TOKEN_ISSUER} (docs/OPERATIONS.md)",
                token::kid(&s.public_key())
            ))),
        }
    }

    fn issue_pair(
        &self,
        username: &str,
        a: &StoredAccount,
        family: &str,
        prev: Option<String>,
        b: &mut WriteBatch,
    ) -> Result<TokenPair> {
        let signer = self.signer_for(&a.org)?;
        let now = (self.now)();
        let ttl = self.cfg.access_ttl_secs.min(MAX_ACCESS_TTL_SECS);
        // A meter counts only while the ledger's current binding names this account: a
        // customer who moved out loses it at the next login or refresh (access tokens
        // already issued run out within their lifetime).
        let mut bound = Vec::with_capacity(a.meters.len());
        for m in &a.meters {
            match self.customer_of(m) {
                Ok(Some(c)) if c == username => bound.push(format!("meter:{m}")),
                Ok(_) => {
                    tracing::info!(user = username, meter = %m, "meter left out of the token: the ledger binds it to another customer")
                }
                Err(e) => {
                    tracing::warn!(user = username, meter = %m, error = %e, "meter left out of the token: its binding could not be read")
                }
            }
        }
        let scope = bound.join(" ");
        let access = signer
            .sign(&Claims {
                iss: self.issuer.clone(),
                sub: username.into(),
                aud: self.ledger.origin().into(),
                exp: now + ttl,
                iat: now,
                jti: random_id(16),
                org: a.org.clone(),
                roles: a.roles.clone(),
                scope,
                typ: token::TYP_ACCESS.into(),
                single_use: false,
            })
            .map_err(internal)?;
        let refresh = random_id(32);
        self.put(
            b,
            key("refresh/", &sha_hex(&refresh)),
            &StoredRefresh {
                username: username.into(),
                family: family.into(),
                epoch: a.epoch,
                exp: now + self.cfg.refresh_ttl_secs,
                used: false,
                prev,
            },
        );
        Ok(TokenPair {
            access_token: access,
            refresh_token: refresh,
            expires_in: ttl,
        })
    }

    /// Reserves one login attempt for `username`, or says for how long it is locked.
    fn reserve_attempt(&self, username: &str) -> std::result::Result<(), u64> {
        let now = (self.now)();
        let mut m = self.failures.lock();
        if m.len() >= 100_000 {
            // Bounded: forget names that are neither locked nor being checked.
            m.retain(|_, f| f.locked_until > now || f.in_flight > 0);
        }
        let f = m.entry(username.to_string()).or_default();
        if f.locked_until > now {
            return Err(f.locked_until - now);
        }
        if f.locked_until != 0 {
            // The lock ran out: start counting afresh.
            *f = Failures::default();
        }
        if f.count + f.in_flight >= self.cfg.lockout_after {
            return Err(1);
        }
        f.in_flight += 1;
        Ok(())
    }

    /// Settles a reserved attempt.
    fn settle_attempt(&self, username: &str, ok: bool) {
        let now = (self.now)();
        let mut m = self.failures.lock();
        let Some(f) = m.get_mut(username) else { return };
        f.in_flight = f.in_flight.saturating_sub(1);
        if ok {
            f.count = 0;
        } else {
            f.count += 1;
            if f.count >= self.cfg.lockout_after {
                f.locked_until = now + self.cfg.lockout_secs;
            }
        }
        if f.count == 0 && f.in_flight == 0 && f.locked_until == 0 {
            m.remove(username);
        }
    }

    /// When a family revocation may be forgotten: after every refresh token of the family
    /// has expired.
    fn family_expiry(&self) -> Vec<u8> {
        ((self.now)() + self.cfg.refresh_ttl_secs)
            .to_be_bytes()
            .to_vec()
    }

    /// Deletes expired refresh tokens, family revocations, token revocations and
    /// single-use marks: each is useless once what it refers to has expired. Runs at
    /// start-up and hourly, so the `auth` column family stays proportional to live
    /// sessions. Returns how many records went.
    ///
    /// # Errors
    /// Storage failures.
    pub fn prune(&self) -> anyhow::Result<usize> {
        let now = (self.now)();
        let grace = token::LEEWAY_SECS;
        let be = |v: &[u8]| v.try_into().map(u64::from_be_bytes).unwrap_or(u64::MAX);
        let mut b = WriteBatch::new();
        for (prefix, end) in [
            (&b"revoked/"[..], &b"revoked0"[..]),
            (b"used/", b"used0"),
            (b"family_revoked/", b"family_revoked0"),
        ] {
            for (k, v) in self.store().scan(Cf::Auth, prefix, end, usize::MAX)? {
                if be(&v).saturating_add(grace) <= now {
                    b.delete(Cf::Auth, k);
                }
            }
        }
        for (k, v) in self
            .store()
            .scan(Cf::Auth, b"refresh/", b"refresh0", usize::MAX)?
        {
            let exp = serde_json::from_slice::<StoredRefresh>(&v)
                .map(|r| r.exp)
                .unwrap_or(0);
            if exp <= now {
                b.delete(Cf::Auth, k);
            }
        }
        let n = b.len();
        if n > 0 {
            self.store().write(b, Durability::Sync)?;
        }
        Ok(n)
    }

    fn revoke_jti(&self, b: &mut WriteBatch, jti: &str, exp: u64) {
        b.put(Cf::Auth, key("revoked/", jti), exp.to_be_bytes().to_vec());
        let now = (self.now)();
        let mut r = self.revoked.lock();
        r.retain(|_, e| *e + token::LEEWAY_SECS > now);
        r.insert(jti.to_string(), exp);
    }
}

impl<S: Store> KeyDirectory for NodeAuth<S> {
    fn token_key(&self, public_key: &[u8; 32]) -> Option<TokenKey> {
        self.ledger
            .signer(public_key)
            .filter(|i| i.roles.iter().any(|r| r == TOKEN_ISSUER))
            .map(|i| TokenKey {
                org: i.org_id,
                active: i.active,
            })
    }

    fn org_kind(&self, org: &str) -> Option<OrgKind> {
        self.ledger.org_kind(org)
    }

    fn is_revoked(&self, jti: &str) -> bool {
        self.revoked.lock().contains_key(jti)
    }

    fn consume(&self, token_key: &[u8; 32], jti: &str, exp: u64) -> bool {
        // Only this node's own single-use tokens can be tracked here: another node
        // cannot know whether the token was used at its issuer.
        if !self.signers.values().any(|s| s.public_key() == *token_key) {
            return false;
        }
        let mut used = self.used.lock();
        if used.contains_key(jti) {
            return false;
        }
        let mut b = WriteBatch::new();
        b.put(Cf::Auth, key("used/", jti), exp.to_be_bytes().to_vec());
        if self.write(b).is_err() {
            // Fail closed: a use we cannot record is refused.
            return false;
        }
        let now = (self.now)();
        used.retain(|_, e| *e + token::LEEWAY_SECS > now);
        used.insert(jti.to_string(), exp);
        true
    }
}

impl<S: Store> AuthBackend for NodeAuth<S> {
    fn sign_for_user(
        &self,
        caller: &Principal,
        payload: gridledger_core::pb::tx_body::Payload,
    ) -> Result<Vec<u8>> {
        use prost::Message as _;
        let signer = self.signer_for(&caller.org)?;
        let body = gridledger_core::pb::TxBody {
            origin: self.ledger.origin().to_string(),
            // The key signs for many users at once: a random nonce never repeats.
            nonce: rand::random(),
            client_time_ms: ((self.now)() * 1000) as i64,
            payload: Some(payload),
        };
        Ok(signer.sign_tx(&body).encode_to_vec())
    }

    async fn login(&self, username: String, password: String) -> Result<TokenPair> {
        const FAILED: &str = "invalid username or password";
        if username.is_empty() || username.len() > MAX_USERNAME || password.len() > MAX_PASSWORD {
            return Err(ServiceError::Unauthenticated(FAILED.into()));
        }
        if let Err(secs) = self.reserve_attempt(&username) {
            return Err(ServiceError::ResourceExhausted(format!(
                "too many failed logins for this username; try again in {secs} s"
            )));
        }
        let checked = async {
            let account = self.account(&username)?;
            let hash = account
                .as_ref()
                .map(|a| a.hash.clone())
                .unwrap_or_else(|| self.dummy_hash.clone());
            let _permit = self.hashing.acquire().await.map_err(internal)?;
            let ok = tokio::task::spawn_blocking(move || check_password(&hash, &password))
                .await
                .map_err(internal)?;
            Ok::<_, ServiceError>(account.filter(|_| ok))
        }
        .await;
        self.settle_attempt(&username, matches!(checked, Ok(Some(_))));
        let Some(a) = checked? else {
            return Err(ServiceError::Unauthenticated(FAILED.into()));
        };
        if a.disabled {
            return Err(ServiceError::PermissionDenied(
                "this account is disabled".into(),
            ));
        }
        let mut b = WriteBatch::new();
        let pair = self.issue_pair(&username, &a, &random_id(16), None, &mut b)?;
        self.write(b)?;
        Ok(pair)
    }

    fn refresh(&self, refresh_token: String) -> Result<TokenPair> {
        if refresh_token.len() != 64 {
            return Err(ServiceError::Unauthenticated(
                "unknown refresh token".into(),
            ));
        }
        let _w = self.write.lock();
        let k = key("refresh/", &sha_hex(&refresh_token));
        let r: StoredRefresh = match self.store().get(Cf::Auth, &k).map_err(internal)? {
            Some(v) => serde_json::from_slice(&v).map_err(internal)?,
            None => {
                return Err(ServiceError::Unauthenticated(
                    "unknown refresh token".into(),
                ));
            }
        };
        let fam_key = key("family_revoked/", &r.family);
        if self
            .store()
            .get(Cf::Auth, &fam_key)
            .map_err(internal)?
            .is_some()
        {
            return Err(ServiceError::Unauthenticated(
                "refresh token was revoked".into(),
            ));
        }
        if r.used {
            // A used refresh token presented again: someone holds a copy. End the family.
            let mut b = WriteBatch::new();
            b.put(Cf::Auth, fam_key, self.family_expiry());
            self.write(b)?;
            tracing::warn!(user = %r.username, "refresh token reuse; session family revoked");
            return Err(ServiceError::Unauthenticated(
                "refresh token was already used; every session of this login is now revoked".into(),
            ));
        }
        if r.exp <= (self.now)() {
            return Err(ServiceError::Unauthenticated(
                "refresh token expired".into(),
            ));
        }
        let a = self
            .account(&r.username)?
            .ok_or_else(|| ServiceError::Unauthenticated("the account no longer exists".into()))?;
        if a.disabled {
            return Err(ServiceError::PermissionDenied(
                "this account is disabled".into(),
            ));
        }
        if a.epoch != r.epoch {
            return Err(ServiceError::Unauthenticated(
                "the session ended when the account's password or status changed".into(),
            ));
        }
        let mut b = WriteBatch::new();
        self.put(
            &mut b,
            k,
            &StoredRefresh {
                used: true,
                ..r.clone()
            },
        );
        if let Some(prev) = &r.prev {
            b.delete(Cf::Auth, key("refresh/", prev));
        }
        let hashed = sha_hex(&refresh_token);
        let pair = self.issue_pair(&r.username, &a, &r.family, Some(hashed), &mut b)?;
        self.write(b)?;
        Ok(pair)
    }

    fn logout(&self, caller: &Principal, refresh_token: Option<String>) -> Result<()> {
        let mut b = WriteBatch::new();
        if let (Some(jti), Some(exp)) = (&caller.jti, caller.exp) {
            self.revoke_jti(&mut b, jti, exp);
        }
        if let Some(t) = refresh_token {
            let _w = self.write.lock();
            if let Some(v) = self
                .store()
                .get(Cf::Auth, &key("refresh/", &sha_hex(&t)))
                .map_err(internal)?
            {
                let r: StoredRefresh = serde_json::from_slice(&v).map_err(internal)?;
                // Only one's own sessions can be ended this way.
                if r.username == caller.subject {
                    b.put(
                        Cf::Auth,
                        key("family_revoked/", &r.family),
                        self.family_expiry(),
                    );
                }
            }
        }
        self.write(b)
    }

    fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<_> = self.signers.values().map(TokenSigner::jwk).collect();
        keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        serde_json::json!({ "keys": keys })
    }

    fn issue_dynamic(
        &self,
        caller: &Principal,
        scope: Vec<String>,
        ttl_secs: u64,
        single_use: bool,
    ) -> Result<IssuedDynamic> {
        if scope.is_empty() || scope.len() > MAX_SCOPE_ITEMS {
            return Err(ServiceError::InvalidArgument(format!(
                "scope must name 1-{MAX_SCOPE_ITEMS} records"
            )));
        }
        let ttl = if ttl_secs == 0 {
            MAX_DYNAMIC_TTL_SECS
        } else {
            ttl_secs
        };
        if ttl > MAX_DYNAMIC_TTL_SECS {
            return Err(ServiceError::InvalidArgument(format!(
                "ttl_seconds is at most {MAX_DYNAMIC_TTL_SECS}"
            )));
        }
        for item in &scope {
            // The org whose records the item opens: a meter's owner, or the named org.
            let owner = match parse_scope(item).map_err(ServiceError::InvalidArgument)? {
                ScopeItem::Supply { org } => Some(org.to_string()),
                i => self
                    .ledger
                    .instrument(i.asset().unwrap_or_default())
                    .map_err(internal)?
                    .map(|(o, _)| o),
            };
            if !owner.is_some_and(|o| may_grant(caller, item, &o)) {
                return Err(ServiceError::PermissionDenied(format!(
                    "{} may not grant {item:?}",
                    caller.describe()
                )));
            }
        }
        let signer = self.signer_for(&caller.org)?;
        let now = (self.now)();
        let jti = random_id(16);
        let t = signer
            .sign(&Claims {
                iss: self.issuer.clone(),
                sub: caller.subject.clone(),
                aud: self.ledger.origin().into(),
                exp: now + ttl,
                iat: now,
                jti: jti.clone(),
                org: caller.org.clone(),
                roles: Vec::new(),
                scope: scope.join(" "),
                typ: token::TYP_DYNAMIC.into(),
                single_use,
            })
            .map_err(internal)?;
        Ok(IssuedDynamic {
            token: t,
            expires_in: ttl,
            jti,
        })
    }

    async fn create_account(&self, caller: &Principal, a: NewAccount) -> Result<AccountView> {
        check_username(&a.username)?;
        self.check_account_fields(&caller.org, &a.username, &a.roles, &a.meters, &a.password)?;
        let _permit = self.hashing.acquire().await.map_err(internal)?;
        let password = a.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let _w = self.write.lock();
        if self.account(&a.username)?.is_some() {
            return Err(ServiceError::AlreadyExists(format!(
                "username {:?} is taken",
                a.username
            )));
        }
        let stored = StoredAccount {
            org: caller.org.clone(),
            roles: a.roles,
            meters: a.meters,
            disabled: false,
            hash,
            epoch: 0,
        };
        let mut b = WriteBatch::new();
        self.put(&mut b, key("account/", &a.username), &stored);
        self.write(b)?;
        tracing::info!(admin = %caller.subject, org = %caller.org, user = %a.username, "account created");
        Ok(view(&a.username, &stored))
    }

    fn list_accounts(&self, caller: &Principal) -> Result<Vec<AccountView>> {
        let rows = self
            .store()
            .scan(Cf::Auth, b"account/", b"account0", usize::MAX)
            .map_err(internal)?;
        let mut out = Vec::new();
        for (k, v) in rows {
            let a: StoredAccount = serde_json::from_slice(&v).map_err(internal)?;
            if a.org == caller.org {
                out.push(view(&String::from_utf8_lossy(&k[8..]), &a));
            }
        }
        Ok(out)
    }

    async fn update_account(&self, caller: &Principal, u: AccountUpdate) -> Result<AccountView> {
        let not_found = || {
            ServiceError::NotFound(format!(
                "no account {:?} in org {:?}",
                u.username, caller.org
            ))
        };
        // Cheap checks first, so a bad request costs no argon2id work.
        self.account(&u.username)?
            .filter(|a| a.org == caller.org)
            .ok_or_else(not_found)?;
        let kind = self.ledger.org_kind(&caller.org).ok_or_else(not_found)?;
        if let Some(r) = &u.roles {
            self.check_roles(r, kind)?;
        }
        let new_hash = match &u.new_password {
            Some(p) => {
                self.check_password(p)?;
                let _permit = self.hashing.acquire().await.map_err(internal)?;
                let p = p.clone();
                Some(
                    tokio::task::spawn_blocking(move || hash_password(&p))
                        .await
                        .map_err(internal)?
                        .map_err(internal)?,
                )
            }
            None => None,
        };
        let _w = self.write.lock();
        // Re-read under the lock and build the result from that record only, so two
        // admins' concurrent updates cannot undo each other's changes.
        let mut a = self
            .account(&u.username)?
            .filter(|a| a.org == caller.org)
            .ok_or_else(not_found)?;
        let roles = u.roles.clone().unwrap_or_else(|| a.roles.clone());
        let meters = u.meters.clone().unwrap_or_else(|| a.meters.clone());
        self.check_roles(&roles, kind)?;
        self.check_meters(&caller.org, &u.username, &roles, &meters, &a.meters)?;
        let ends_sessions = new_hash.is_some() || (u.disabled == Some(true) && !a.disabled);
        if let Some(h) = new_hash {
            a.hash = h;
        }
        if let Some(d) = u.disabled {
            a.disabled = d;
        }
        a.roles = roles;
        a.meters = meters;
        if ends_sessions {
            a.epoch += 1;
        }
        let mut b = WriteBatch::new();
        self.put(&mut b, key("account/", &u.username), &a);
        self.write(b)?;
        tracing::info!(admin = %caller.subject, user = %u.username, "account updated");
        Ok(view(&u.username, &a))
    }
}

fn view(username: &str, a: &StoredAccount) -> AccountView {
    AccountView {
        username: username.into(),
        org: a.org.clone(),
        roles: a.roles.clone(),
        meters: a.meters.clone(),
        disabled: a.disabled,
    }
}
