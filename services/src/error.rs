//! Service errors and the one place they become `tonic::Status`.

use tonic::{Code, Status};

/// Why a request failed. Each variant is one gRPC status; the message says what is
/// wrong in terms the caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// It exists already (replay, duplicate record).
    #[error("{0}")]
    AlreadyExists(String),
    /// Unknown or revoked signer, bad credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Known caller, not allowed.
    #[error("{0}")]
    PermissionDenied(String),
    /// The ledger's state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A position past what this node has (a sync cursor ahead of its log).
    #[error("{0}")]
    OutOfRange(String),
    /// A limit was hit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The request's body is larger than allowed (a document over the node's limit):
    /// RESOURCE_EXHAUSTED over gRPC, 413 over HTTP (not 429: retrying will not help).
    #[error("{0}")]
    TooLarge(String),
    /// Not the leader, shutting down, or overloaded; `leader` says where to go.
    #[error("{message}")]
    Unavailable {
        /// What happened.
        message: String,
        /// The leader's address, when known.
        leader: Option<String>,
    },
    /// This node is broken (storage failure, corruption). Details go to the log.
    #[error("{0}")]
    Internal(String),
}

/// Metadata key that carries the leader's address on `unavailable`.
pub const LEADER_METADATA: &str = "x-gridledger-leader";

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::InvalidArgument(m) => Status::new(Code::InvalidArgument, m),
            ServiceError::NotFound(m) => Status::new(Code::NotFound, m),
            ServiceError::AlreadyExists(m) => Status::new(Code::AlreadyExists, m),
            ServiceError::Unauthenticated(m) => Status::new(Code::Unauthenticated, m),
            ServiceError::PermissionDenied(m) => Status::new(Code::PermissionDenied, m),
            ServiceError::FailedPrecondition(m) => Status::new(Code::FailedPrecondition, m),
            ServiceError::OutOfRange(m) => Status::new(Code::OutOfRange, m),
            ServiceError::ResourceExhausted(m) | ServiceError::TooLarge(m) => {
                Status::new(Code::ResourceExhausted, m)
            }
            ServiceError::Unavailable { message, leader } => {
                let mut s = Status::new(Code::Unavailable, message);
                if let Some(l) = leader.and_then(|l| l.parse().ok()) {
                    s.metadata_mut().insert(LEADER_METADATA, l);
                }
                s
            }
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::new(Code::Internal, format!("internal error: {m}"))
            }
        }
    }
}

impl From<gridledger_core::contract::Rejection> for ServiceError {
    fn from(r: gridledger_core::contract::Rejection) -> Self {
        use gridledger_core::contract::RejectKind as K;
        let m = r.to_string();
        match r.kind {
            K::Invalid => Self::InvalidArgument(m),
            K::Unauthenticated => Self::Unauthenticated(m),
            K::PermissionDenied => Self::PermissionDenied(m),
            K::AlreadyExists => Self::AlreadyExists(m),
            K::FailedPrecondition => Self::FailedPrecondition(m),
        }
    }
}

impl ServiceError {
    /// The gRPC code name, for per-item errors inside a stream response.
    pub fn code_name(&self) -> &'static str {
        match Status::from(self.clone()).code() {
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::Unavailable => "UNAVAILABLE",
            _ => "INTERNAL",
        }
    }
}

impl ServiceError {
    /// The HTTP status of this error on the JSON gateway.
    pub fn http_status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode as H;
        match self {
            ServiceError::InvalidArgument(_) => H::BAD_REQUEST,
            ServiceError::NotFound(_) => H::NOT_FOUND,
            ServiceError::AlreadyExists(_) => H::CONFLICT,
            ServiceError::Unauthenticated(_) => H::UNAUTHORIZED,
            ServiceError::PermissionDenied(_) => H::FORBIDDEN,
            ServiceError::FailedPrecondition(_) => H::UNPROCESSABLE_ENTITY,
            // 416 is for byte ranges; a position past the log is a bad request here.
            ServiceError::OutOfRange(_) => H::BAD_REQUEST,
            ServiceError::ResourceExhausted(_) => H::TOO_MANY_REQUESTS,
            ServiceError::TooLarge(_) => H::PAYLOAD_TOO_LARGE,
            ServiceError::Unavailable { .. } => H::SERVICE_UNAVAILABLE,
            ServiceError::Internal(_) => H::INTERNAL_SERVER_ERROR,
        }
    }

    /// The response for this error: a gRPC status (trailers-only) for gRPC calls, else
    /// HTTP with `{"error": CODE, "message": ...}` and the headers the status implies.
    pub fn respond(self, grpc: bool) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        if grpc {
            return Status::from(self).into_http::<axum::body::Body>();
        }
        let status = self.http_status();
        let code = self.code_name();
        if let ServiceError::Internal(m) = &self {
            tracing::error!(error = %m, "internal error");
        }
        let body = axum::Json(serde_json::json!({ "error": code, "message": self.to_string() }));
        let mut r = (status, body).into_response();
        let h = r.headers_mut();
        match status {
            axum::http::StatusCode::UNAUTHORIZED => {
                h.insert(
                    "www-authenticate",
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            axum::http::StatusCode::TOO_MANY_REQUESTS => {
                h.insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            _ => {}
        }
        r
    }
}

impl axum::response::IntoResponse for ServiceError {
    fn into_response(self) -> axum::response::Response {
        self.respond(false)
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ServiceError>;
