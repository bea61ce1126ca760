//! The authentication and authorisation layer: one place, in front of every gRPC method
//! and HTTP route, on every listener.
//!
//! For each request it:
//! 1. builds the [`Principal`] from the connection's client certificate ([`ConnInfo`],
//!    parsed once per connection by the node) and/or the `authorization: Bearer` token;
//! 2. checks the role × operation matrix ([`permits`]);
//! 3. holds a per-identity concurrency permit for the life of the response (streams
//!    included), answering RESOURCE_EXHAUSTED / HTTP 429 beyond the limit;
//! 4. puts the principal into the request extensions for the handlers' resource checks.
//!
//! Refusals are UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED (known
//! caller, operation not allowed), as gRPC statuses for gRPC calls and HTTP 401/403 with
//! a JSON body otherwise.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use gridledger_core::pb::OrgKind;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::token::{self, KeyDirectory};
use super::{Operation, Principal, PrincipalKind, Role, permits};
use crate::error::ServiceError;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The API port: client certificates from the consortium CA (by default required).
    Api,
    /// The public listener: server-authenticated TLS, end users with JWTs.
    Public,
}

/// The identity in a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// Subject O: the member org.
    pub org: String,
    /// Subject CN: the system's or node's name.
    pub name: String,
    /// Subject OU: `system` or `node`.
    pub unit: String,
}

/// Per-connection facts, attached by the node's TLS acceptor (tonic copies them into
/// every request's extensions).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The listener.
    pub listener: Listener,
    /// The peer's address.
    pub remote: Option<SocketAddr>,
    /// The verified client certificate, if one was presented.
    pub cert: Option<CertIdentity>,
}

/// Counts concurrent requests per identity.
#[derive(Debug)]
pub struct IdentityLimiter {
    per_identity: usize,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl IdentityLimiter {
    /// At most `per_identity` requests (streams count until they end) per identity.
    pub fn new(per_identity: usize) -> Self {
        Self {
            per_identity: per_identity.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn try_acquire(&self, key: &str) -> Option<OwnedSemaphorePermit> {
        let mut slots = self.slots.lock();
        // Forget idle identities now and then so the map cannot grow without bound.
        if slots.len() > 10_000 {
            // Only semaphores nobody holds a clone of and with every permit free: a
            // request between cloning and acquiring keeps its entry alive.
            let full = self.per_identity;
            slots.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < full);
        }
        let sem = slots
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_identity)))
            .clone();
        drop(slots);
        sem.try_acquire_owned().ok()
    }
}

/// What the layer needs.
pub struct AuthState {
    /// Ledger keys, org kinds, revocations.
    pub dir: Arc<dyn KeyDirectory>,
    /// This ledger's origin: the only audience accepted.
    pub audience: String,
    /// Per-identity limits.
    pub limiter: IdentityLimiter,
    /// Seconds since the epoch (a function, so tests can move time).
    pub now: fn() -> u64,
}

/// Wall-clock seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

fn bearer(req: &Request) -> Result<Option<&str>, ServiceError> {
    let Some(v) = req.headers().get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ServiceError::Unauthenticated("authorization header is not ASCII".into()))?;
    match v.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
            Ok(Some(t.trim()))
        }
        _ => Err(ServiceError::Unauthenticated(
            "authorization header must be `Bearer <token>`".into(),
        )),
    }
}

/// Builds the principal of a request.
///
/// # Errors
/// UNAUTHENTICATED with the reason.
pub fn authenticate(
    state: &AuthState,
    conn: Option<&ConnInfo>,
    token: Option<&str>,
) -> Result<Principal, ServiceError> {
    let remote = conn.and_then(|c| c.remote);
    if let Some(t) = token {
        let mut p = token::verify(state.dir.as_ref(), t, &state.audience, (state.now)())
            .map_err(|e| ServiceError::Unauthenticated(e.to_string()))?;
        p.remote = remote;
        return Ok(p);
    }
    let Some(cert) = conn.and_then(|c| c.cert.as_ref()) else {
        return Ok(Principal::anonymous(remote));
    };
    let node = match cert.unit.as_str() {
        "system" => false,
        "node" => true,
        other => {
            return Err(ServiceError::Unauthenticated(format!(
                "client certificate OU {other:?} is neither `system` nor `node`"
            )));
        }
    };
    // The consortium CA vouches for the certificate; the ledger says what the org is. A
    // certificate of an org not (yet) on the ledger still reads the chain and submits
    // transactions (whose own keys decide what they may do: that is how genesis is
    // submitted), but holds no role.
    let kind = state
        .dir
        .org_kind(&cert.org)
        .unwrap_or(OrgKind::Unspecified);
    Ok(Principal {
        kind: PrincipalKind::System {
            name: cert.name.clone(),
            node,
        },
        subject: cert.name.clone(),
        org: cert.org.clone(),
        org_kind: kind,
        roles: Role::of_org_kind(kind).into_iter().collect(),
        scope: Vec::new(),
        jti: None,
        exp: None,
        token_key: None,
        remote,
    })
}

/// The middleware (installed with `axum::middleware::from_fn_with_state`).
pub async fn authorize(
    State(state): State<Arc<AuthState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let grpc = is_grpc(&req);
    let op = Operation::of(req.method(), req.uri().path());
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let principal = match bearer(&req).and_then(|t| authenticate(&state, conn.as_ref(), t)) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(path = req.uri().path(), error = %e, "unauthenticated");
            return e.respond(grpc);
        }
    };
    if !permits(&principal, op) {
        let e = if principal.kind == PrincipalKind::Anonymous {
            ServiceError::Unauthenticated(
                "this operation needs credentials: a bearer token or a client certificate".into(),
            )
        } else if op == Operation::PrivateRead {
            let path = req.uri().path();
            let what = if path.ends_with("/binding") || path.ends_with("/GetBindings") {
                "customer bindings"
            } else {
                "readings"
            };
            ServiceError::PermissionDenied(format!(
                "{what} are class II: {} must present a dynamic token scoped to the meter \
                 (POST /v1/auth/dynamic-tokens or AuthService.IssueDynamicToken), which is \
                 granted only to readers the on-ledger policy admits",
                principal.describe()
            ))
        } else if op == Operation::SupplyRead {
            ServiceError::PermissionDenied(format!(
                "{} may not perform SupplyRead: supplier records and sync streams need a \
                 dynamic token with scope \"supply:<its org>\" (POST /v1/auth/dynamic-tokens \
                 or AuthService.IssueDynamicToken)",
                principal.describe()
            ))
        } else {
            ServiceError::PermissionDenied(format!(
                "{} may not perform {op:?}",
                principal.describe()
            ))
        };
        tracing::info!(path = req.uri().path(), who = %principal.describe(), "denied");
        return e.respond(grpc);
    }
    let Some(permit) = state.limiter.try_acquire(&principal.limit_key()) else {
        return ServiceError::ResourceExhausted(format!(
            "too many concurrent requests for {}; retry when some finish",
            principal.describe()
        ))
        .respond(grpc);
    };
    if let (PrincipalKind::Dynamic { single_use: true }, Some(key), Some(jti), Some(exp)) = (
        &principal.kind,
        &principal.token_key,
        &principal.jti,
        principal.exp,
    ) && !state.dir.consume(key, jti, exp)
    {
        return ServiceError::Unauthenticated(token::TokenError::Used.to_string()).respond(grpc);
    }
    req.extensions_mut().insert(principal);
    let mut resp = next.run(req).await;
    size_limit_is_resource_exhausted(resp.headers_mut());
    resp.map(|b| {
        Body::new(PermitBody {
            inner: b,
            _permit: permit,
        })
    })
}

/// tonic reports a message over the size limit as OUT_OF_RANGE; the gRPC status-code
/// spec (and our API) says RESOURCE_EXHAUSTED. Rewritten here, in headers (trailers-only
/// responses) and in trailers (streams), so clients see one code for every limit.
fn size_limit_is_resource_exhausted(h: &mut axum::http::HeaderMap) {
    let too_large = h.get("grpc-status").is_some_and(|v| v == "11")
        && h.get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|m| m.contains("length too large") || m.contains("length%20too%20large"));
    if too_large {
        h.insert("grpc-status", axum::http::HeaderValue::from_static("8"));
    }
}

/// A response body that holds its identity's concurrency permit until it is dropped, so
/// long streams count against the limit for as long as they run.
struct PermitBody {
    inner: Body,
    _permit: OwnedSemaphorePermit,
}

impl HttpBody for PermitBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx).map(|f| {
            f.map(|r| {
                r.map(|frame| match frame.into_trailers() {
                    Ok(mut t) => {
                        size_limit_is_resource_exhausted(&mut t);
                        http_body::Frame::trailers(t)
                    }
                    Err(frame) => frame,
                })
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The principal the layer attached (handlers behind the layer always find one).
///
/// # Errors
/// INTERNAL if the layer is missing, which is a wiring bug.
pub fn principal(ext: &axum::http::Extensions) -> Result<&Principal, ServiceError> {
    ext.get::<Principal>().ok_or_else(|| {
        ServiceError::Internal("request reached a handler without the auth layer".into())
    })
}
