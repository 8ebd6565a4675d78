//! The capacity seam: where an app's instances come from. A rollout asks a [`Capacity`]
//! backend for a group of instances per generation (request, status, instances, resize,
//! cancel) and never names the AWS service behind it. [`spot_fleet::SpotFleet`] is the
//! backend today; another (an EC2 Auto Scaling group, an EC2 Fleet) is one more module
//! here that maps a [`GroupSpec`] onto its API.

pub mod spot_fleet;

use crate::aws::AwsError;
pub use crate::aws::fleets::SpotOptions;
use crate::aws::launch_templates::{self, TemplateData};
use async_trait::async_trait;
use std::collections::BTreeMap;

/// One generation of an app, resolved to ids and ARNs: what to launch, where, how many,
/// how Spot capacity is bought, and the tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSpec {
    pub app: String,
    pub generation: u64,
    pub template: TemplateData,
    /// Tags of the launch template only (the app's arguments, for import).
    pub template_tags: BTreeMap<String, String>,
    /// Instance types to diversify across.
    pub instance_types: Vec<String>,
    /// Where: subnets, else availability zones, else the default subnets.
    pub subnet_ids: Vec<String>,
    pub availability_zones: Vec<String>,
    pub target_capacity: u32,
    pub on_demand_capacity: u32,
    pub spot: SpotOptions,
    pub target_group_arns: Vec<String>,
    /// Tags of the group, its instances and volumes (user tags, default tags,
    /// `immutable:*`, `Commit`).
    pub tags: BTreeMap<String, String>,
}

impl GroupSpec {
    /// The launch template of this generation.
    pub fn template_name(&self) -> String {
        launch_templates::template_name(&self.app, self.generation)
    }

    /// The object that owns the group (its `immutable:owner` tag).
    pub fn owner(&self) -> Option<&str> {
        self.tags.get(conventions::fleet_tags::OWNER).map(String::as_str)
    }
}

/// A group of an app found in AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub generation: Option<u64>,
    /// The token of the configuration it was requested with (see [`Capacity::token`]);
    /// none on groups from before the provider tagged them so.
    pub token: Option<String>,
    pub launch_template_id: Option<String>,
    /// The Terraform object that owns it; none on groups from before ownership.
    pub owner: Option<String>,
    /// Whether the apply that made it serve finished.
    pub committed: bool,
}

impl Group {
    /// Whether it was requested with another configuration than the one of `token`
    /// (groups without a token count as the same).
    pub fn runs_other_config_than(&self, token: &str) -> bool {
        self.token.as_deref().is_some_and(|t| t != token)
    }

    /// Whether the object `owner` may adopt, roll over or cancel it: its own, or one
    /// from before ownership.
    pub fn belongs_to(&self, owner: Option<&str>) -> bool {
        self.owner.is_none() || self.owner.as_deref() == owner
    }
}

/// What a group is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Not cancelled, failed or expired (nor gone).
    pub open: bool,
    /// Its running instances.
    pub instances: Vec<String>,
    pub target_capacity: u32,
    /// Every instance it wants is there.
    pub fulfilled: bool,
    /// AWS's reason when the group cannot be fulfilled (bad role, price, no capacity).
    pub error: Option<String>,
}

impl Status {
    /// A group that is gone.
    pub fn closed() -> Self {
        Status { open: false, instances: Vec::new(), target_capacity: 0, fulfilled: false, error: None }
    }
}

/// A source of instances for an app, one group per generation.
#[async_trait]
pub trait Capacity: Send + Sync {
    /// What the backend calls a group, for messages: "Spot Fleet".
    fn kind(&self) -> &'static str;

    /// The idempotency token of `spec` with this backend's own settings: the same
    /// configuration always gives the same token (at most 64 characters), so that a
    /// retried request cannot create a second group and an interrupted run's group can
    /// be told apart from one of another configuration.
    fn token(&self, spec: &GroupSpec) -> String;

    /// The open group of `app` tagged with `generation`, if any: left by an
    /// interrupted run between its request and the state save.
    async fn find(&self, app: &str, generation: u64) -> Result<Option<Group>, AwsError>;

    /// Requests a group for `spec` launching from `template_id`; returns its id.
    async fn request(&self, spec: &GroupSpec, template_id: &str, token: &str) -> Result<String, AwsError>;

    async fn status(&self, id: &str) -> Result<Status, AwsError>;

    /// The group's running instances.
    async fn instances(&self, id: &str) -> Result<Vec<String>, AwsError>;

    /// Marks the group as the finished work of an apply of `owner` (see
    /// `conventions::fleet_tags::COMMITTED`); a group from before ownership gets the
    /// owner tag then.
    async fn commit(&self, id: &str, owner: &str) -> Result<(), AwsError>;

    async fn resize(&self, id: &str, target: u32, on_demand: u32) -> Result<(), AwsError>;

    /// Shrinks the group to `target` by terminating exactly `instances` (deregistered
    /// and drained by the caller), which the group does not replace.
    async fn retire(
        &self,
        id: &str,
        instances: &[String],
        target: u32,
        on_demand: u32,
    ) -> Result<(), AwsError>;

    /// Cancels the group and terminates its instances; a group already gone is fine.
    async fn cancel(&self, id: &str) -> Result<(), AwsError>;
}

/// A short digest of `text`, for idempotency tokens.
pub(crate) fn digest(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().take(12).map(|b| format!("{b:02x}")).collect()
}
