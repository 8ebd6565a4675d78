//! The one integration-test binary of `codegen`.

mod agent;
mod cli;
mod errors;
mod example;
mod fingerprints;
mod snapshots;
mod support;
