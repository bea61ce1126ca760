//! gridledger-node: the node. Storage, the ledger and its single apply path, group
//! commit, server wiring, the dev consortium and the commands of the node binary.
//!
//! # Layout
//! - [`store`]: the storage trait and its contract, RocksDB and in-memory backends, and
//!   the conformance suite both pass.
//! - [`ledger`]: the Merkle log, blocks, checkpoints and contract state; `apply`, proofs,
//!   receipts, start-up check and audit.
//! - [`commit`]: group commit (collect → verify signatures in parallel → apply + sync).
//! - [`backend`]: the services' `ChainBackend` over ledger and committer.
//! - [`server`]: opens everything and serves gRPC over TLS with the tower stack.
//! - [`config`]: the node's TOML configuration, validated at start-up.
//! - [`pki`]: development CA and certificates (rcgen).
//! - [`dev`]: `gridledger-node dev`, the single-directory demo node.
//! - [`demo`]: the deterministic demo consortium.
//! - [`private`]: class II payloads at rest (collection keys, XChaCha20-Poly1305).
//! - [`documents`]: class III documents in the object store (streamed, digests checked).
//! - [`cli`]: the node binary's commands (main.rs only parses and calls in).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod backend;
pub mod channels;
pub mod cli;
pub mod commit;
pub mod config;
pub mod demo;
pub mod dev;
pub mod dev_cluster;
pub mod documents;
pub mod ledger;
pub mod pki;
pub mod private;
pub mod quorum;
pub mod raft;
pub mod server;
pub mod store;
pub mod tls;
pub mod witness;
