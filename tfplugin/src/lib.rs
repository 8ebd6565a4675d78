//! Terraform's plugin protocol 6 for providers written in Rust.
//!
//! The crate speaks go-plugin's handshake and automatic mutual TLS, serves the
//! `tfplugin6.Provider` gRPC service (schema written against protocol 6.9), encodes
//! and decodes cty values, and drives a provider's resources and data sources through
//! the [`provider`] traits. It knows nothing of any cloud.

pub mod cleanup;
pub mod client;
mod convert;
pub mod diag;
pub mod duration;
pub mod engine;
pub mod function;
pub mod log;
pub mod path;
mod pinned;
pub mod plugin;
mod proto;
pub mod provider;
pub mod schema;
mod server;
pub mod value;
