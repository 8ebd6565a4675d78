//! The one integration-test binary of `codegen`.

mod agent;
mod cli;
mod current_packer;
mod errors;
mod example;
mod fingerprints;
mod hcl_structure;
mod snapshots;
mod ssh;
mod support;
