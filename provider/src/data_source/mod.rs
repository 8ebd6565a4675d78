//! Data sources.

pub mod ami;
