//! gridledger-client: a light client that trusts a policy, never a server, and the
//! `gridledger` CLI built on it.
//!
//! # Layout
//! - [`light`]: the light client (checkpoint verification, persisted state, consistency
//!   checks, fork evidence), receipt verification.
//! - [`fetch`]: the transport-agnostic [`fetch::Fetcher`] with gRPC and in-memory
//!   implementations.
//! - [`grpc`]: mutual-TLS connection setup.
//! - [`profile`]: CLI profiles and trust files.
//! - [`records`]: verified metrology views (each row checked by its receipt).
//! - [`documents`]: class III upload, and download verified against the proven anchor.
//! - [`load`]: the load generator behind `gridledger load`.
//! - [`table`]: plain-text tables for the CLI's record listings.
//! - [`cli`]: the commands (main.rs only parses and calls [`cli::run`]).
//! - [`error`]: the client error type, [`error::ClientError`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod documents;
pub mod error;
pub mod fetch;
pub mod grpc;
pub mod light;
pub mod load;
pub mod profile;
pub mod records;
pub mod supplier;
pub mod table;

pub use error::ClientError;
