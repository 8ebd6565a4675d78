//! `cargo test -p agent`: the agent's loop against stand-ins for IMDS and ELB on
//! 127.0.0.1, the real binary, and the SigV4 test suite.

mod binary;
mod imds;
mod lifecycle;
mod notice;
mod sigv4;
mod standin;
