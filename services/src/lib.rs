//! gridledger-services: the gRPC handlers, the backend traits they need, and the one
//! place where errors become `tonic::Status`.
//!
//! # Layout
//! - [`auth`]: principals, the role × operation matrix, JWTs, and the one
//!   authentication/authorisation layer in front of every route.
//! - [`backend`]: what the services need from the node ([`backend::ChainBackend`],
//!   [`backend::AuthBackend`], [`backend::DataBackend`]).
//! - [`chain`]: the ChainService handlers.
//! - [`auth_service`]: the AuthService handlers.
//! - [`data`]: DataService: records with per-record access checks.
//! - [`documents`]: class III uploads checked against their anchors, ImageJson, downloads.
//! - [`views`]: the metrology views (instrument, traceability, institution, settlement,
//!   plans) as tables of ledger records, and their TableJson rendering.
//! - [`supply`]: SupplierService: supplier collaboration and the per-org sync stream.
//! - [`gateway`]: the HTTP/JSON routes (axum) over the same backends.
//! - [`openapi`]: the gateway's OpenAPI 3.1 document (`/openapi.json`).
//! - [`convert`]: domain ↔ proto conversions.
//! - [`error`]: [`error::ServiceError`] and its mapping to `Status`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod auth_service;
pub mod backend;
pub mod chain;
pub mod convert;
pub mod data;
pub mod documents;
pub mod error;
pub mod gateway;
pub mod openapi;
pub mod supply;
pub mod views;

pub use error::{Result, ServiceError};
