//! The HTTP/JSON gateway (axum): the same operations as the gRPC services, as REST routes.
//! It shares the listeners, the tokio runtime and the auth layer with gRPC; see
//! docs/API.md for each route.

use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
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

fn meter_json(m: &gridledger_proto::v1::Meter) -> Value {
    json!({
        "asset_no": m.asset_no, "serial_no": m.serial_no, "manufacturer_org": m.manufacturer_org,
        "model": m.model, "kind": m.kind, "accuracy_class": m.accuracy_class,
        "ratings": m.ratings, "owner_org": m.owner_org, "leaf_index": m.leaf_index,
        "data_class": "I",
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
pub fn router<A: AuthBackend, D: DataBackend, C: super::backend::ChainBackend>(
    g: Gateway<A, D, C>,
    max_body_bytes: usize,
) -> Router {
    let g = Arc::new(g);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
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
        .route("/v1/meters/{asset}", get(meter::<A, D, C>))
        .route("/v1/meters/{asset}/readings", get(readings::<A, D, C>))
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

async fn status<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn checkpoint<A: AuthBackend, D: DataBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<Response> {
    let (note, _, _) = g.chain.channel(&channel_param(q)?, &p)?.checkpoint()?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response())
}

async fn cosign<A: AuthBackend, D: DataBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let note = std::str::from_utf8(&body)
        .map_err(|_| ServiceError::InvalidArgument("the note is not UTF-8".into()))?;
    Ok(Json(json!({ "accepted": g.chain.add_cosignature(note)? })))
}

async fn receipt<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn login<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn refresh<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn logout<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn jwks<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn dynamic<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn list_accounts<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn create_account<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn update_account<A: AuthBackend, D: DataBackend, C: ChainBackend>(
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

async fn my_meters<A: AuthBackend, D: DataBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Value>> {
    let v: Vec<Value> = g.data.my_meters(&p)?.iter().map(meter_json).collect();
    Ok(Json(json!({ "meters": v })))
}

async fn meter<A: AuthBackend, D: DataBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Path(asset): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(meter_json(&g.data.meter(&asset)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: String,
    to: String,
}

async fn readings<A: AuthBackend, D: DataBackend, C: ChainBackend>(
    State(g): G<A, D, C>,
    Extension(p): Extension<Principal>,
    Path(asset): Path<String>,
    q: std::result::Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>> {
    let Query(q) = q.map_err(|e| {
        ServiceError::InvalidArgument(format!(
            "query: {}; expected ?from=YYYY-MM-DD&to=YYYY-MM-DD",
            e.body_text()
        ))
    })?;
    let r = g.data.readings(&p, &asset, &q.from, &q.to)?;
    let rows: Vec<Value> = r
        .readings
        .iter()
        .map(|d| {
            json!({
                "day": d.day, "leaf_index": d.leaf_index, "import_wh": d.import_wh,
                "export_wh": d.export_wh, "register_import_wh": d.register_import_wh,
                "register_export_wh": d.register_export_wh,
                "import_intervals_wh": d.import_intervals_wh, "export_intervals_wh": d.export_intervals_wh,
            })
        })
        .collect();
    Ok(Json(
        json!({ "asset_no": r.asset_no, "data_class": "II", "readings": rows }),
    ))
}
