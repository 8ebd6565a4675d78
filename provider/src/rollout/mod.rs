//! Blue/green rollout: a pure state machine ([`machine`]) that decides, and a small
//! async runner ([`runner`]) that performs the AWS calls it asks for and reports
//! what it observed, keeping a [`record`] of the steps.

pub mod machine;
pub mod record;
pub mod runner;
