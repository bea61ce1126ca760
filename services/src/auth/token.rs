//! EdDSA (Ed25519) JWTs for end users, verifiable with public keys from the ledger.
//!
//! A token's header names its key (`kid` = hex of the Ed25519 public key). That key must
//! be registered on the ledger with role `token-issuer` for the token's `org`, and still
//! be active: so a node can only mint tokens for users of the orgs whose admins
//! registered its key, and every member node checks any member's token without shared
//! session state. The claims are those of DESIGN.md §6 plus `typ` (access or dynamic).

use std::collections::BTreeSet;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use gridledger_core::contract::role_fits_org;
use gridledger_core::pb::OrgKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Principal, PrincipalKind, Role};

/// Longest access-token lifetime (DESIGN.md §6).
pub const MAX_ACCESS_TTL_SECS: u64 = 15 * 60;
/// Longest dynamic-token lifetime.
pub const MAX_DYNAMIC_TTL_SECS: u64 = 5 * 60;
/// Largest token accepted, bytes: bounds parsing work on hostile input.
pub const MAX_TOKEN_BYTES: usize = 8 << 10;
/// Clock skew tolerated between member nodes, seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Token use: a user's access token, or a dynamic token for named records.
pub const TYP_ACCESS: &str = "access";
/// See [`TYP_ACCESS`].
pub const TYP_DYNAMIC: &str = "dynamic";

/// JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuing node (`<origin>/<node id>`).
    pub iss: String,
    /// User name (dynamic tokens: the granting user).
    pub sub: String,
    /// Audience: the ledger's origin.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Unique id (revocation, single use).
    pub jti: String,
    /// The user's org.
    pub org: String,
    /// The user's roles.
    pub roles: Vec<String>,
    /// Space-separated grants: `meter:<asset>` (residents), `readings:...` (dynamic).
    pub scope: String,
    /// [`TYP_ACCESS`] or [`TYP_DYNAMIC`].
    pub typ: String,
    /// Dynamic tokens only: usable once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single_use: bool,
}

/// A token key as registered on the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKey {
    /// The org whose users' tokens it signs.
    pub org: String,
    /// Revoked keys sign nothing valid.
    pub active: bool,
}

/// What verification needs from the node: ledger lookups and revocation lists.
pub trait KeyDirectory: Send + Sync + 'static {
    /// The ledger registration of a `token-issuer` key, if it is one.
    fn token_key(&self, public_key: &[u8; 32]) -> Option<TokenKey>;
    /// The kind of a registered org.
    fn org_kind(&self, org: &str) -> Option<OrgKind>;
    /// Whether a token id was revoked (logout).
    fn is_revoked(&self, jti: &str) -> bool;
    /// Marks a single-use token used; false if it was used before, or if `key` is not
    /// one of this node's own token keys: only the issuing node knows whether a token
    /// was used, so single-use tokens are accepted at their issuer only.
    fn consume(&self, key: &[u8; 32], jti: &str, exp: u64) -> bool;
}

/// Why a token was refused. Messages name the problem, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a well-formed JWT of ours.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// Signed by something other than a registered token key.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The key was revoked on the ledger.
    #[error("token signed by a revoked key")]
    RevokedKey,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// For another ledger.
    #[error("token is for another audience")]
    WrongAudience,
    /// Claims that break our rules.
    #[error("token rejected: {0}")]
    Invalid(String),
    /// Logged out.
    #[error("token was revoked")]
    Revoked,
    /// A single-use token presented again, or elsewhere than at its issuer.
    #[error("single-use token already used, or presented to a node other than its issuer")]
    Used,
}

/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): the fixed 16-byte prefix then the
/// 32-byte seed. jsonwebtoken takes signing keys only as PKCS#8 DER.
fn pkcs8_ed25519(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    [PREFIX.as_slice(), seed].concat()
}

/// The `kid` of a public key.
pub fn kid(public_key: &[u8; 32]) -> String {
    hex::encode(public_key)
}

/// Signs tokens for one org with that org's token key.
#[derive(Clone)]
pub struct TokenSigner {
    key: EncodingKey,
    public: [u8; 32],
    org: String,
    // The same key signs the transactions the node records for the org's users (a
    // resident's dispute): it already vouches for those users in every token.
    tx_key: SigningKey,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("org", &self.org)
            .field("kid", &kid(&self.public))
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer for `org`'s users.
    pub fn new(org: &str, key: &SigningKey) -> Self {
        Self {
            key: EncodingKey::from_ed_der(&pkcs8_ed25519(key.as_bytes())),
            public: key.verifying_key().to_bytes(),
            org: org.to_string(),
            tx_key: key.clone(),
        }
    }

    /// Signs a transaction on behalf of one of the org's users (contract rule `dispute`
    /// accepts a token-issuer key only for transactions that name the user's account).
    pub fn sign_tx(&self, body: &gridledger_core::pb::TxBody) -> gridledger_core::pb::SignedTx {
        gridledger_core::tx::sign(&self.tx_key, body)
    }

    /// The public key (to register on the ledger, and in the JWKS).
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The org it signs for.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// Signs `claims`. Verifiers refuse a token whose `org` is not this signer's, so
    /// callers put [`TokenSigner::org`] there.
    ///
    /// # Errors
    /// Only if the key is unusable, which [`TokenSigner::new`] rules out.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(kid(&self.public));
        jsonwebtoken::encode(&h, claims, &self.key).map_err(|e| e.to_string())
    }

    /// The JWK (RFC 8037 OKP) of this key.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public),
            "kid": kid(&self.public),
            "alg": "EdDSA",
            "use": "sig",
            "org": self.org,
        })
    }
}

/// Verifies a token against ledger keys and turns it into a [`Principal`].
///
/// `now` is seconds since the epoch; `audience` is this ledger's origin.
///
/// # Errors
/// [`TokenError`] saying what is wrong.
pub fn verify(
    dir: &dyn KeyDirectory,
    token: &str,
    audience: &str,
    now: u64,
) -> Result<Principal, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed(format!(
            "longer than {MAX_TOKEN_BYTES} bytes"
        )));
    }
    // The header is parsed before any key is chosen; only EdDSA is accepted, so `none`
    // and HMAC-with-a-public-key confusions are refused here.
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::Malformed(format!(
            "algorithm {:?} is not accepted (EdDSA only)",
            header.alg
        )));
    }
    let kid_hex = header
        .kid
        .ok_or_else(|| TokenError::Malformed("header has no kid".into()))?;
    let public: [u8; 32] = hex::decode(&kid_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| TokenError::Malformed("kid is not a hex Ed25519 key".into()))?;
    let key = dir.token_key(&public).ok_or(TokenError::UnknownKey)?;
    if !key.active {
        return Err(TokenError::RevokedKey);
    }

    let mut v = Validation::new(Algorithm::EdDSA);
    v.leeway = LEEWAY_SECS;
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    // exp is checked below against our own `now`, so tests and replicas agree on time.
    v.validate_exp = false;
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_ed_der(&public), &v)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::InvalidAudience => TokenError::WrongAudience,
                K::ExpiredSignature => TokenError::Expired,
                K::InvalidAlgorithm => TokenError::Malformed("algorithm not accepted".into()),
                K::MissingRequiredClaim(c) => TokenError::Malformed(format!("missing claim {c}")),
                _ => TokenError::Malformed(e.to_string()),
            }
        })?;
    let c = data.claims;
    if c.exp + LEEWAY_SECS <= now {
        return Err(TokenError::Expired);
    }
    if c.iat > now + LEEWAY_SECS {
        return Err(TokenError::Invalid("issued in the future".into()));
    }
    let max_ttl = match c.typ.as_str() {
        TYP_ACCESS => MAX_ACCESS_TTL_SECS,
        TYP_DYNAMIC => MAX_DYNAMIC_TTL_SECS,
        other => return Err(TokenError::Invalid(format!("unknown token type {other:?}"))),
    };
    if c.exp < c.iat || c.exp - c.iat > max_ttl {
        return Err(TokenError::Invalid(format!(
            "lifetime exceeds {max_ttl} s for a {} token",
            c.typ
        )));
    }
    if c.org != key.org {
        return Err(TokenError::Invalid(
            "the token's org is not the org of the key that signed it".into(),
        ));
    }
    let org_kind = dir
        .org_kind(&c.org)
        .ok_or_else(|| TokenError::Invalid(format!("org {:?} is not registered", c.org)))?;
    let mut roles = BTreeSet::new();
    for r in &c.roles {
        let role =
            Role::parse(r).ok_or_else(|| TokenError::Invalid(format!("unknown role {r:?}")))?;
        if !role_fits_org(r, org_kind) {
            return Err(TokenError::Invalid(format!(
                "role {r:?} does not fit an org of kind {}",
                org_kind.as_str_name()
            )));
        }
        roles.insert(role);
    }
    if dir.is_revoked(&c.jti) {
        return Err(TokenError::Revoked);
    }
    // Single use is enforced by the auth layer once the request has passed the matrix and
    // the limits, so a refused request does not spend the token.
    let kind = if c.typ == TYP_DYNAMIC {
        PrincipalKind::Dynamic {
            single_use: c.single_use,
        }
    } else {
        PrincipalKind::User
    };
    let scope: Vec<String> = c
        .scope
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    Ok(Principal {
        kind,
        subject: c.sub,
        org: c.org,
        org_kind,
        // A dynamic token carries no roles: it grants its scope and nothing else.
        roles: if c.typ == TYP_DYNAMIC {
            BTreeSet::new()
        } else {
            roles
        },
        scope,
        jti: Some(c.jti),
        exp: Some(c.exp),
        token_key: Some(public),
        remote: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::collections::HashSet;

    struct Dir {
        keys: Vec<([u8; 32], TokenKey)>,
        revoked: HashSet<String>,
        used: Mutex<HashSet<String>>,
    }
    impl KeyDirectory for Dir {
        fn token_key(&self, k: &[u8; 32]) -> Option<TokenKey> {
            self.keys
                .iter()
                .find(|(p, _)| p == k)
                .map(|(_, t)| t.clone())
        }
        fn org_kind(&self, org: &str) -> Option<OrgKind> {
            match org {
                "gn" => Some(OrgKind::GridCompany),
                "sup" => Some(OrgKind::Supplier),
                _ => None,
            }
        }
        fn is_revoked(&self, jti: &str) -> bool {
            self.revoked.contains(jti)
        }
        fn consume(&self, _key: &[u8; 32], jti: &str, _exp: u64) -> bool {
            self.used.lock().insert(jti.to_string())
        }
    }

    fn setup() -> (TokenSigner, Dir) {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let s = TokenSigner::new("gn", &sk);
        let dir = Dir {
            keys: vec![(
                s.public_key(),
                TokenKey {
                    org: "gn".into(),
                    active: true,
                },
            )],
            revoked: HashSet::from(["gone".to_string()]),
            used: Mutex::new(HashSet::new()),
        };
        (s, dir)
    }

    fn claims() -> Claims {
        Claims {
            iss: "o/n1".into(),
            sub: "alice".into(),
            aud: "o".into(),
            exp: 1_000_600,
            iat: 1_000_000,
            jti: "j1".into(),
            org: "gn".into(),
            roles: vec!["operator".into()],
            scope: String::new(),
            typ: TYP_ACCESS.into(),
            single_use: false,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let (s, dir) = setup();
        let t = s.sign(&claims()).unwrap();
        let p = verify(&dir, &t, "o", 1_000_100).unwrap();
        assert_eq!(p.org, "gn");
        assert!(p.has(Role::Operator));

        assert_eq!(
            verify(&dir, &t, "other", 1_000_100),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(verify(&dir, &t, "o", 1_000_700), Err(TokenError::Expired));

        // Flip one signature character.
        let mut bad = t.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify(&dir, std::str::from_utf8(&bad).unwrap(), "o", 1_000_100),
            Err(TokenError::BadSignature)
        );

        // alg: none, unsigned.
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&serde_json::to_string(&claims()).unwrap())
        );
        assert!(matches!(
            verify(&dir, &none, "o", 1_000_100),
            Err(TokenError::Malformed(_))
        ));

        let mut c = claims();
        c.jti = "gone".into();
        assert_eq!(
            verify(&dir, &s.sign(&c).unwrap(), "o", 1_000_100),
            Err(TokenError::Revoked)
        );

        let mut c = claims();
        c.roles = vec!["regulator".into()];
        assert!(matches!(
            verify(&dir, &s.sign(&c).unwrap(), "o", 1_000_100),
            Err(TokenError::Invalid(_))
        ));

        let mut c = claims();
        c.exp = c.iat + MAX_ACCESS_TTL_SECS + 1;
        assert!(matches!(
            verify(&dir, &s.sign(&c).unwrap(), "o", 1_000_100),
            Err(TokenError::Invalid(_))
        ));

        // A key registered for org gn cannot speak for org sup.
        let mut c = claims();
        c.org = "sup".into();
        c.roles = vec!["supplier".into()];
        let forged = {
            let mut h = Header::new(Algorithm::EdDSA);
            h.kid = Some(kid(&s.public_key()));
            jsonwebtoken::encode(&h, &c, &EncodingKey::from_ed_der(&pkcs8_ed25519(&[7; 32])))
                .unwrap()
        };
        assert!(matches!(
            verify(&dir, &forged, "o", 1_000_100),
            Err(TokenError::Invalid(_))
        ));

        // An unregistered key.
        let other = TokenSigner::new("gn", &SigningKey::from_bytes(&[8; 32]));
        assert_eq!(
            verify(&dir, &other.sign(&claims()).unwrap(), "o", 1_000_100),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn single_use_dynamic() {
        let (s, dir) = setup();
        let mut c = claims();
        c.typ = TYP_DYNAMIC.into();
        c.exp = c.iat + 300;
        c.single_use = true;
        c.scope = "readings:M1".into();
        let t = s.sign(&c).unwrap();
        let p = verify(&dir, &t, "o", 1_000_100).unwrap();
        assert!(p.is_dynamic() && p.roles.is_empty());
        assert_eq!(p.kind, PrincipalKind::Dynamic { single_use: true });
        assert_eq!(p.token_key, Some(s.public_key()));
        c.exp = c.iat + 301;
        assert!(matches!(
            verify(&dir, &s.sign(&c).unwrap(), "o", 1_000_100),
            Err(TokenError::Invalid(_))
        ));
    }
}
