//! `immutable-agent`: on an EC2 Spot instance of an app, takes the instance out of its
//! load balancer target groups when Spot announces its interruption (or, if asked, a
//! rebalance recommendation), runs an optional drain hook, lets connections drain,
//! and idles until the instance goes.
//!
//! Blocking I/O on std threads: the loop is [`run`], which takes its [`Config`], a
//! [`Stop`] flag and a [`Log`]; the binary only parses options and wires signals.

mod agent;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod elb;
pub mod http;
pub mod imds;
pub mod log;
pub mod signals;
pub mod sigv4;
pub mod stop;

pub use agent::{Fatal, NOTICE_LEAD, Outcome, run};
pub use config::{Command, Config, ConfigError, OnRebalance};
pub use log::Log;
pub use stop::Stop;
