//! gridledger-services: the gRPC handlers, the backend traits they need, and the one
//! place where errors become `tonic::Status`.
//!
//! # Layout
//! - [`backend`]: what the services need from the node ([`backend::ChainBackend`]).
//! - [`chain`]: the ChainService handlers.
//! - [`convert`]: domain ↔ proto conversions.
//! - [`error`]: [`error::ServiceError`] and its mapping to `Status`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod chain;
pub mod convert;
pub mod error;

pub use error::{Result, ServiceError};
