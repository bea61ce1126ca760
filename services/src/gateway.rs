//! The HTTP/JSON gateway (axum): the same operations as the gRPC services, as REST routes.
//! It shares the listeners, the tokio runtime and the auth layer with gRPC; see
//! docs/API.md for each route.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::backend::{
    AccountUpdate, AccountView, AuthBackend, ChainBackend, DataBackend, NewAccount, TokenPair,
};
use crate::data::Data;
use crate::error::{Result, ServiceError};

/// The backends behind the routes.
pub struct Gateway<A, D, C> {
    /// Accounts and tokens.
    pub auth: Arc<A>,
    /// Records.
    pub data: Data<D>,
    /// The chain.
    pub chain: Arc<C>,
    /// Supplier collaboration and the sync stream.
    pub supply: crate::supply::Supply<D>,
}

/// JSON bodies are parsed by us, so a bad body gets our error shape, not axum's text.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| ServiceError::InvalidArgument(format!("request body: {e}")))
}

fn token_json(t: TokenPair) -> Json<Value> {
    Json(json!({
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        "expires_in": t.expires_in,
        "token_type": "Bearer",
    }))
}

fn account_json(a: &AccountView) -> Value {
    json!({
        "username": a.username, "org": a.org, "roles": a.roles,
        "meters": a.meters, "disabled": a.disabled,
    })
}

/// The answer for a path no route or service knows: gRPC UNIMPLEMENTED for gRPC calls,
/// HTTP 404 with a JSON body otherwise. Installed on the merged gRPC + HTTP router.
pub async fn fallback(req: axum::extract::Request) -> Response {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented(format!("no such method {}", req.uri().path()))
            .into_http::<axum::body::Body>();
    }
    ServiceError::NotFound(format!(
        "no route {} {}; see docs/API.md",
        req.method(),
        req.uri().path()
    ))
    .respond(false)
}

/// Builds the gateway's routes (the auth layer is added by the caller, over gRPC too;
/// the caller also installs [`fallback`] after merging with the gRPC services).
pub fn router<A: AuthBackend, D: DataBackend + ChainBackend, C: super::backend::ChainBackend>(
    g: Gateway<A, D, C>,
    max_body_bytes: usize,
) -> Router {
    let g = Arc::new(g);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/v1/status", get(status::<A, D, C>))
        .route("/v1/checkpoint", get(checkpoint::<A, D, C>))
        .route("/v1/witness/cosignatures", post(cosign::<A, D, C>))
        .route("/v1/records/{index}/receipt", get(receipt::<A, D, C>))
        .route("/v1/auth/login", post(login::<A, D, C>))
        .route("/v1/auth/refresh", post(refresh::<A, D, C>))
        .route("/v1/auth/logout", post(logout::<A, D, C>))
        .route("/v1/auth/jwks", get(jwks::<A, D, C>))
        .route("/.well-known/jwks.json", get(jwks::<A, D, C>))
        .route("/v1/auth/dynamic-tokens", post(dynamic::<A, D, C>))
        .route(
            "/v1/accounts",
            get(list_accounts::<A, D, C>).post(create_account::<A, D, C>),
        )
        .route("/v1/accounts/{username}", patch(update_account::<A, D, C>))
        .route("/v1/me/meters", get(my_meters::<A, D, C>))
        .route("/v1/me/disputes", post(open_dispute::<A, D, C>))
        .route("/v1/supplier/demand-plans", get(demand_plans::<A, D, C>))
        .route("/v1/supplier/test-batches", get(test_batches::<A, D, C>))
        .route("/v1/supplier/models", get(models::<A, D, C>))
        .route("/v1/supplier/transactions", post(supplier_tx::<A, D, C>))
        .route("/v1/sync", get(sync_sse::<A, D, C>))
        .route("/v1/meters/{asset}", get(meter::<A, D, C>))
        .route("/v1/meters/{asset}/readings", get(readings::<A, D, C>))
        .route("/v1/meters/{asset}/binding", get(bindings::<A, D, C>))
        .route(
            "/v1/meters/{asset}/traceability",
            get(traceability::<A, D, C>),
        )
        .route("/v1/institutions/{id}", get(institution::<A, D, C>))
        .route("/v1/settlement/check", get(settlement::<A, D, C>))
        .route("/v1/plans", get(plans::<A, D, C>))
        .route("/v1/documents", post(upload_document::<A, D, C>))
        .route("/v1/documents/{sha256}", get(document::<A, D, C>))
        .route(
            "/v1/documents/{sha256}/content",
            get(document_content::<A, D, C>),
        )
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .with_state(g)
}

type G<A, D, C> = State<Arc<Gateway<A, D, C>>>;

/// The `channel` query parameter of chain routes ("" = the system channel). Parsed here
/// so a bad query gets this API's JSON error, not the framework's text.
fn channel_param(query: Option<String>) -> Result<String> {
    let mut channel = String::new();
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("channel", v)) => channel = v.to_string(),
            _ => {
                return Err(ServiceError::InvalidArgument(format!(
                    "unknown query parameter {pair:?}; this route takes only channel=NAME"
                )));
            }
        }
    }
    Ok(channel)
}

async fn status<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let s = g.chain.channel(&channel_param(q)?, &p)?.status()?;
    let counts: serde_json::Map<String, Value> =
        s.counts.into_iter().map(|(k, v)| (k, v.into())).collect();
    Ok(Json(json!({
        "origin": s.origin, "node_id": s.node_id, "height": s.height,
        "tree_size": s.tree_size, "root": hex::encode(s.root), "counts": counts,
    })))
}

async fn checkpoint<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let (note, _, _) = g.chain.channel(&channel_param(q)?, &p)?.checkpoint()?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

async fn cosign<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let note = std::str::from_utf8(&body)
        .map_err(|_| ServiceError::InvalidArgument("the note is not UTF-8".into()))?;
    Ok(Json(json!({ "accepted": g.chain.add_cosignature(note)? })))
}

async fn receipt<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    Path(index): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let index: u64 = index.parse().map_err(|_| {
        ServiceError::InvalidArgument(format!("record index {index:?} is not a number"))
    })?;
    let r = g.chain.channel(&channel_param(q)?, &p)?.receipt(index)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], r).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let b: LoginBody = parse(&body)?;
    Ok(token_json(g.auth.login(b.username, b.password).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let b: RefreshBody = parse(&body)?;
    Ok(token_json(g.auth.refresh(b.refresh_token)?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

async fn logout<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<StatusCode> {
    let b: LogoutBody = if body.is_empty() {
        LogoutBody::default()
    } else {
        parse(&body)?
    };
    g.auth.logout(&p, b.refresh_token)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn jwks<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
) -> Json<Value> {
    Json(g.auth.jwks())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamicBody {
    scope: Vec<String>,
    #[serde(default)]
    ttl_seconds: u64,
    #[serde(default)]
    single_use: bool,
}

async fn dynamic<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let b: DynamicBody = parse(&body)?;
    let t = g
        .auth
        .issue_dynamic(&p, b.scope, b.ttl_seconds, b.single_use)?;
    Ok(Json(
        json!({"token": t.token, "expires_in": t.expires_in, "jti": t.jti, "token_type": "Bearer"}),
    ))
}

async fn list_accounts<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>> {
    let v: Vec<Value> = g.auth.list_accounts(&p)?.iter().map(account_json).collect();
    Ok(Json(json!({ "accounts": v })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    password: String,
    roles: Vec<String>,
    #[serde(default)]
    meters: Vec<String>,
}

async fn create_account<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let b: CreateBody = parse(&body)?;
    let a = g
        .auth
        .create_account(
            &p,
            NewAccount {
                username: b.username,
                password: b.password,
                roles: b.roles,
                meters: b.meters,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(account_json(&a))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    new_password: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    meters: Option<Vec<String>>,
}

async fn update_account<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    Path(username): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let b: UpdateBody = parse(&body)?;
    let a = g
        .auth
        .update_account(
            &p,
            AccountUpdate {
                username,
                disabled: b.disabled,
                new_password: b.new_password,
                roles: b.roles,
                meters: b.meters,
            },
        )
        .await?;
    Ok(Json(account_json(&a)))
}

/// Query parameters of the record routes: only the named keys, each at most once.
fn params(query: Option<String>, allowed: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let q = query.unwrap_or_default();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v)
            .ok_or_else(|| ServiceError::InvalidArgument(format!("query: bad escape in {k:?}")))?;
        if !allowed.contains(&k) {
            return Err(ServiceError::InvalidArgument(format!(
                "query: unknown parameter {k:?}; this route takes {allowed:?}"
            )));
        }
        if out.insert(k.to_string(), v).is_some() {
            return Err(ServiceError::InvalidArgument(format!(
                "query: {k:?} given twice"
            )));
        }
    }
    Ok(out)
}

fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn flag(q: &BTreeMap<String, String>, name: &str) -> Result<bool> {
    match q.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(v) => Err(ServiceError::InvalidArgument(format!(
            "query: {name} must be true or false, got {v:?}"
        ))),
    }
}

fn required<'a>(q: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str> {
    q.get(name)
        .map(String::as_str)
        .ok_or_else(|| ServiceError::InvalidArgument(format!("query: {name} is required")))
}

/// The current time, RFC 3339 UTC, for TableJson's `property.timestamp`.
fn now_rfc3339() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let s = t % 86_400;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        gridledger_core::metrology::day_string((t / 86_400) as i64),
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

fn view<D: DataBackend + ChainBackend>(
    data: &Data<D>,
    v: gridledger_proto::v1::DataView,
    receipts: bool,
) -> Result<Json<Value>> {
    let v = data.stamped(v)?;
    Ok(Json(crate::views::view_json(&v, &now_rfc3339(), receipts)))
}

async fn my_meters<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["receipt"])?;
    let r = flag(&q, "receipt")?;
    view(&g.data, g.data.my_meters_view(&p, r)?, r)
}

async fn meter<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Path(asset): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["receipt"])?;
    let r = flag(&q, "receipt")?;
    view(&g.data, g.data.instrument_view(&asset, r)?, r)
}

async fn readings<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    Path(asset): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["from", "to", "receipt"])?;
    let r = flag(&q, "receipt")?;
    let v = g
        .data
        .readings_view(&p, &asset, required(&q, "from")?, required(&q, "to")?, r)?;
    view(&g.data, v, r)
}

async fn bindings<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    Path(asset): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["receipt"])?;
    let r = flag(&q, "receipt")?;
    view(&g.data, g.data.bindings_view(&p, &asset, r)?, r)
}

async fn traceability<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Path(asset): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["date", "receipt"])?;
    let r = flag(&q, "receipt")?;
    let date = q.get("date").map(String::as_str).unwrap_or("");
    view(&g.data, g.data.traceability(&asset, date, r)?, r)
}

async fn institution<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["receipt"])?;
    let r = flag(&q, "receipt")?;
    view(
        &g.data,
        g.data.institution(&id, &crate::data::today(), r)?,
        r,
    )
}

async fn settlement<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["meter", "from", "to", "receipt"])?;
    let r = flag(&q, "receipt")?;
    let v = g.data.settlement(
        &p,
        required(&q, "meter")?,
        required(&q, "from")?,
        required(&q, "to")?,
        r,
    )?;
    view(&g.data, v, r)
}

async fn plans<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["status", "subject", "receipt"])?;
    let r = flag(&q, "receipt")?;
    let v = g.data.plans(
        q.get("status").map(String::as_str).unwrap_or(""),
        q.get("subject").map(String::as_str).unwrap_or(""),
        &crate::data::today(),
        r,
    )?;
    view(&g.data, v, r)
}

/// The header that carries a document upload's signed anchor (base64 of the encoded
/// SignedTx of an AnchorDocument).
pub const ANCHOR_HEADER: &str = "x-gridledger-anchor";

/// `POST /v1/documents`: the signed anchor in [`ANCHOR_HEADER`], the bytes as the body,
/// streamed (never buffered whole; the node's limit and the anchor's size stop it).
async fn upload_document<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    headers: axum::http::HeaderMap,
    RawQuery(q): RawQuery,
    body: axum::body::Body,
) -> Result<Response> {
    use base64::Engine as _;
    use futures::StreamExt as _;
    params(q, &[])?;
    let anchor = headers
        .get(ANCHOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ServiceError::InvalidArgument(format!(
                "an upload needs its signed AnchorDocument transaction, base64, in the {ANCHOR_HEADER} header"
            ))
        })?;
    let signed_tx = base64::engine::general_purpose::STANDARD
        .decode(anchor.trim())
        .map_err(|e| {
            ServiceError::InvalidArgument(format!("{ANCHOR_HEADER} is not base64: {e}"))
        })?;
    let data = body
        .into_data_stream()
        .map(|c| c.map_err(|e| ServiceError::InvalidArgument(format!("request body: {e}"))));
    let info = g.data.upload(signed_tx.into(), Box::pin(data)).await?;
    let (origin, size) = g.data.backend().position()?;
    Ok((
        StatusCode::CREATED,
        Json(crate::documents::image_json(&info, &origin, size)),
    )
        .into_response())
}

/// `GET /v1/documents/{sha256}`: the anchor as ImageJson.
async fn document<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Path(sha): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["receipt"])?;
    let info = g.data.document(&sha, flag(&q, "receipt")?).await?;
    let (origin, size) = g.data.backend().position()?;
    Ok(Json(crate::documents::image_json(&info, &origin, size)))
}

/// `GET /v1/documents/{sha256}/content`: the bytes, with the anchored digests in headers
/// (the client checks the bytes against the proven anchor, not against these).
async fn document_content<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Path(sha): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    params(q, &[])?;
    let (rec, data) = g.data.document_bytes(&sha).await?;
    let media = axum::http::HeaderValue::from_str(&rec.media_type).unwrap_or(
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    let mut r = axum::body::Body::from_stream(data).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, media);
    h.insert(header::CONTENT_LENGTH, rec.size.into());
    if let Ok(v) = axum::http::HeaderValue::from_str(&rec.sha256) {
        h.insert("x-gridledger-sha256", v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&rec.md5) {
        h.insert("x-gridledger-md5", v);
    }
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisputeBody {
    asset_no: String,
    reason: String,
}

/// `POST /v1/me/disputes`: a resident disputes one of their own meters. The node records
/// the dispute on the ledger, signed with the resident's org's token key and naming the
/// account; the grid company then has the meter tested, and the returned-meter
/// certificate that answers the dispute appears on the meter (`GET /v1/meters/{asset}`).
async fn open_dispute<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    body: axum::body::Bytes,
) -> Result<Response> {
    use rand::Rng as _;
    let b: DisputeBody = parse(&body)?;
    if !p.bound_meters().any(|m| m == b.asset_no) {
        // The same answer for someone else's meter and for no meter at all.
        return Err(ServiceError::PermissionDenied(format!(
            "{} is not bound to meter {:?}",
            p.describe(),
            b.asset_no
        )));
    }
    let reason = b.reason.trim();
    if reason.is_empty() || reason.len() > 1024 {
        return Err(ServiceError::InvalidArgument(
            "reason must say, in 1-1024 bytes, what is doubted about the meter".into(),
        ));
    }
    // Readable when it fits the contracts' identifier limit; with a very long asset
    // number only the random part (the dispute record names the meter anyway).
    // (The generator is not Send: it must not live across the await below.)
    let dispute_id = {
        let mut rng = rand::thread_rng();
        if b.asset_no.len() + 11 <= gridledger_core::contract::MAX_ID_LEN {
            format!("D-{}-{:08x}", b.asset_no, rng.r#gen::<u32>())
        } else {
            format!("D-{:016x}", rng.r#gen::<u64>())
        }
    };
    let payload =
        gridledger_core::pb::tx_body::Payload::OpenDispute(gridledger_core::pb::OpenDispute {
            dispute_id: dispute_id.clone(),
            asset_no: b.asset_no.clone(),
            account: p.subject.clone(),
            reason: reason.to_string(),
        });
    let signed = g.auth.sign_for_user(&p, payload)?;
    let c = g.data.backend().submit_tx(signed.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "dispute_id": dispute_id, "asset_no": b.asset_no, "account": p.subject,
            "leaf_index": c.leaf_index,
        })),
    )
        .into_response())
}

/// `GET /v1/supplier/demand-plans` and `/v1/supplier/test-batches`: the supplier view
/// `table` (`demand_plans` or `test_batches`).
fn supplier_view<A, D: DataBackend + ChainBackend, C>(
    g: &Gateway<A, D, C>,
    p: &Principal,
    query: Option<String>,
    table: &str,
) -> Result<Json<Value>> {
    let q = params(query, &["id", "receipt"])?;
    let r = flag(&q, "receipt")?;
    let id = q.get("id").map(String::as_str).unwrap_or("");
    view(&g.data, g.supply.records_view(p, table, id, r)?, r)
}

async fn demand_plans<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    supplier_view(&g, &p, q, "demand_plans")
}

async fn test_batches<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    supplier_view(&g, &p, q, "test_batches")
}

async fn models<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>> {
    let q = params(q, &["supplier", "receipt"])?;
    let r = flag(&q, "receipt")?;
    let supplier = q.get("supplier").map(String::as_str).unwrap_or("");
    view(&g.data, g.supply.models_view(supplier, r)?, r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SupplierTxBody {
    /// base64 of the encoded SignedTx.
    signed_tx: String,
    /// Class II: hex of the 32-byte salt.
    #[serde(default)]
    salt: Option<String>,
    /// Class II: base64 of the encoded payload message.
    #[serde(default)]
    payload: Option<String>,
}

/// `POST /v1/supplier/transactions`: a signed supplier-collaboration transaction (model,
/// demand plan, acknowledgement or test batch) with, for the class II ones, its salt and
/// payload; answered once committed.
async fn supplier_tx<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    body: axum::body::Bytes,
) -> Result<Response> {
    use base64::Engine as _;
    let b: SupplierTxBody = parse(&body)?;
    let b64 = |what: &str, v: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|e| ServiceError::InvalidArgument(format!("{what} is not base64: {e}")))
    };
    let signed_tx = b64("signed_tx", &b.signed_tx)?;
    let private = match (b.salt, b.payload) {
        (None, None) => None,
        (Some(salt), Some(payload)) => Some(gridledger_proto::v1::PrivatePayload {
            salt: hex::decode(salt.trim())
                .map_err(|e| ServiceError::InvalidArgument(format!("salt is not hex: {e}")))?,
            payload: b64("payload", &payload)?,
        }),
        _ => {
            return Err(ServiceError::InvalidArgument(
                "salt and payload go together (class II transactions), or neither".into(),
            ));
        }
    };
    let body = gridledger_core::tx::decode(&signed_tx)
        .map_err(|e| ServiceError::InvalidArgument(format!("signed_tx: {e}")))?
        .1;
    let kind = gridledger_core::tx::payload_kind(&body);
    if !matches!(
        kind,
        "register_model" | "publish_demand_plan" | "acknowledge_demand" | "publish_test_batch"
    ) {
        return Err(ServiceError::InvalidArgument(format!(
            "this route takes supplier-collaboration transactions (model, demand plan, acknowledgement, test batch), got {kind}"
        )));
    }
    let r = g
        .supply
        .submit_typed(
            kind,
            gridledger_proto::v1::SubmitRequest {
                signed_tx: signed_tx.into(),
                private_payload: private,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"type": kind, "leaf_index": r.leaf_index, "block_height": r.block_height,
                    "tree_size": r.tree_size, "leaf_hash": hex::encode(&r.leaf_hash)}),
        ),
    )
        .into_response())
}

/// `GET /v1/sync`: the caller's org's sync stream as Server-Sent Events. Each event's
/// `id` is its cursor, so a standard SSE client resumes by itself (`Last-Event-ID`,
/// which wins over `cursor=`); `event` is the type, `data` the SyncEvent as JSON.
async fn sync_sse<A: AuthBackend, D: DataBackend + ChainBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    headers: axum::http::HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt as _;
    let q = params(q, &["cursor", "receipts", "max"])?;
    let receipts = flag(&q, "receipts")?;
    let max = match q.get("max") {
        None => 0,
        Some(m) => m.parse::<u32>().map_err(|_| {
            ServiceError::InvalidArgument(format!("max must be a count, got {m:?}"))
        })?,
    };
    let cursor = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .map_err(|_| ServiceError::InvalidArgument("Last-Event-ID is not text".into()))?
            .to_string(),
        None => q.get("cursor").cloned().unwrap_or_default(),
    };
    let rx = g.supply.sync(
        &p,
        &gridledger_proto::v1::SyncRequest {
            cursor,
            receipts,
            max_events: max,
        },
    )?;
    let events = tokio_stream::wrappers::ReceiverStream::new(rx).map(|e| {
        Ok::<_, std::convert::Infallible>(match e {
            Ok(ev) => Event::default()
                .id(ev.cursor.clone())
                .event(ev.r#type.clone())
                .data(crate::supply::event_json(&ev).to_string()),
            // The stream ends after an error event (the consumer resumes from its
            // last cursor).
            Err(err) => Event::default()
                .event("error")
                .data(json!({"error": err.code_name(), "message": err.to_string()}).to_string()),
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
