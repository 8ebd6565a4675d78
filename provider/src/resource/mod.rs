//! Managed resources.
