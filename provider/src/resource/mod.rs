//! Managed resources.

pub mod layered_ami;
