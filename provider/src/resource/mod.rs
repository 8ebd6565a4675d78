//! Managed resources.

pub mod app;

pub mod layered_ami;
