//! Integration tests: one binary, real node processes (see tests/lib.rs).

mod util;

mod audit;
mod authz;
mod bad_input;
mod bindings;
mod classes;
mod cli_errors;
mod cluster;
mod consistency;
mod crash;
mod metrology;
mod pki;
mod receipts;
mod restart;
mod services;
mod supply;
mod tampering;
mod tokens;
mod transport;
mod witness;
