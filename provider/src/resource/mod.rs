//! Managed resources: one folder each (schema, model, the steps of each Terraform call),
//! and what they share: plan-time lookups (`resolve`) and validators.

pub mod app;
pub mod layered_ami;
pub mod resolve;
pub mod validators;
