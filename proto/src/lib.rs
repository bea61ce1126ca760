//! gridledger-proto: the `gridledger.v1` gRPC services and messages.
//!
//! # Layout
//! - [`v1`]: generated messages, clients and servers (transaction messages are
//!   re-exported from `gridledger_core::pb`).
//! - [`FILE_DESCRIPTOR_SET`]: for gRPC reflection.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// gridledger.v1, generated.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("gridledger.v1");
    pub use gridledger_core::pb::*;
}

/// Encoded file descriptors of gridledger.v1, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gridledger_descriptor");
