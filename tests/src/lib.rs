//! End-to-end test harness for `terraform-provider-immutable`.
//!
//! * [`LocalAws`] runs the local AWS emulator (`scripts/local-aws serve`, moto in
//!   server mode on 127.0.0.1) and hands out isolated [`Account`]s.
//!   [`Account::requests`] tells which AWS actions an account asked for, and
//!   [`mutating`] which of them may have changed something.
//! * [`register_ami`] and [`seed_lineage`] put AMIs into an account the way the
//!   image pipeline would have.
//! * [`Account::put_alarm`] and [`Account::set_alarm`] raise and clear the CloudWatch
//!   alarms a rollout is gated on; [`Watch`] samples an app's healthy targets and
//!   instances while it rolls out.
//! * [`Workdir`] runs the real Terraform CLI in a temporary directory, with the
//!   provider installed from a local filesystem mirror ([`provider_binary`]).
//!
//! The same harness backs the integration tests (`tests/it`) and the demo and
//! benchmark commands of `cargo xtask`.

mod agents;
mod alarms;
mod behaviour;
mod builders;
mod crash;
mod faults;
mod infra;
mod local_aws;
mod paths;
mod prices;
mod requests;
mod seed;
mod terraform;
pub mod watch;

pub use agents::Agents;
pub use alarms::{ALARM_NAMESPACE, ALARM_STATES};
pub use behaviour::{TEST_CLOCK_SCALE, realistic_health, scaled};
pub use builders::{BUILDER_TAG, BuilderPlayer, builder_instances, stand_in_packer};
pub use crash::{Hold, RunningTerraform, children, is_alive, kill9, parent_of, wait_until};
pub use faults::{FAULT_SEED_ENV, FaultCounts, FaultKind, FaultPlan, FaultProxy, fault_seed};
pub use infra::{CoreInfra, core_infra, web_app_config};
pub use local_aws::{ACCESS_KEY_PREFIX, Account, LocalAws};
pub use paths::{
    agent_binary, provider_binary, repo_root, target_dir, try_provider_binary, use_provider_binary,
};
pub use prices::SpotPriceSeed;
pub use requests::RequestStats;
pub use requests::{READ_ONLY_ACTIONS, READ_ONLY_PREFIXES, RequestCounts, is_mutating, mutating};
pub use seed::{DEFAULT_PROJECT, LayerSeed, register_ami, seed_example_lineage, seed_lineage};
pub use terraform::{
    PROVIDER_SOURCE, TfOutput, Workdir, diagnostic_blocks, first_line_is, provider_mirror, shows_source_line,
    terraform_binary,
};
pub use watch::{Sample, Watch, Watched};
