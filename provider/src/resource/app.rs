//! `immutable_app`: an app on a Spot Fleet behind target groups. A change of what
//! runs (AMI, instance types, user data, launch settings) is a blue/green rollout,
//! gated on target health, rolled back automatically; a capacity change modifies the
//! fleet in place.

use crate::aws::network::LaunchImage;
use crate::aws::reads::ObservedFleet;
use crate::aws::{AwsError, Clients, elb, fleet, iam, network};
use crate::config::Shared;
use crate::rollout::machine::{self, Blue, Outcome, Settings};
use crate::rollout::runner::{Backoff, Runner};
use async_trait::async_trait;
use conventions::{ami_tags, fleet_tags};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::provider::{Change, Context, Plan, Resource, State};
use tfplugin::schema::{self, Attribute, Block, NestedBlock, PlanModifier, Schema, Validator, validators};
use tfplugin::value::{Type, Val, Value, from_value, to_value};
use tokio::time::Instant;

pub const TYPE_NAME: &str = "immutable_app";
pub const DEFAULT_FLEET_ROLE: &str = "aws-ec2-spot-fleet-tagging-role";
const DEFAULT_ALLOCATION: &str = "priceCapacityOptimized";
const DEFAULT_INTERRUPTION: &str = "terminate";
const DEFAULT_HEALTH_TIMEOUT: &str = "10m";
const DEFAULT_DRAIN_TIMEOUT: &str = "30s";
const DEFAULT_MIN_HEALTHY: u32 = 100;
const CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Launch template tags carrying the app's arguments, so that import restores them.
const ARGS_TAG_PREFIX: &str = "immutable:args:";
const ARGS_CHUNK: usize = 250;

pub struct AppResource {
    shared: Arc<Shared>,
}

impl AppResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The resource's model: configuration, plan and state alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Model {
    name: Val<String>,
    ami_id: Val<String>,
    instance_types: Val<Vec<String>>,
    target_capacity: Val<u32>,
    on_demand_capacity: Val<u32>,
    allocation_strategy: Val<String>,
    instance_pools_to_use_count: Val<u32>,
    max_price: Val<String>,
    interruption_behavior: Val<String>,
    subnet_ids: Val<Vec<String>>,
    availability_zones: Val<Vec<String>>,
    security_groups: Val<Vec<String>>,
    iam_instance_profile: Val<String>,
    iam_fleet_role: Val<String>,
    target_groups: Val<Vec<String>>,
    user_data: Val<String>,
    key_name: Val<String>,
    tags: Val<BTreeMap<String, String>>,
    valid_until: Val<String>,
    rollout: Val<RolloutSettings>,
    timeouts: Val<Timeouts>,
    id: Val<String>,
    fleet_id: Val<String>,
    instance_ids: Val<Vec<String>>,
    generation: Val<u64>,
    healthy_count: Val<u32>,
    commit: Val<String>,
    target_group_arns: Val<Vec<String>>,
    launch_template_id: Val<String>,
    stray_fleet_ids: Val<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct RolloutSettings {
    health_timeout: Val<String>,
    min_healthy_percent: Val<u32>,
    drain_timeout: Val<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Timeouts {
    create: Val<String>,
    update: Val<String>,
    delete: Val<String>,
}

/// The arguments that cannot be read back from EC2 as the user wrote them (names
/// rather than ids, defaults), kept on the launch template for import.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Args {
    instance_types: Option<Vec<String>>,
    on_demand_capacity: Option<u32>,
    allocation_strategy: Option<String>,
    instance_pools_to_use_count: Option<u32>,
    max_price: Option<String>,
    interruption_behavior: Option<String>,
    subnet_ids: Option<Vec<String>>,
    availability_zones: Option<Vec<String>>,
    security_groups: Option<Vec<String>>,
    iam_instance_profile: Option<String>,
    iam_fleet_role: Option<String>,
    target_groups: Option<Vec<String>>,
    key_name: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    valid_until: Option<String>,
    health_timeout: Option<String>,
    min_healthy_percent: Option<u32>,
    drain_timeout: Option<String>,
}

/// What a change does to the running app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    /// What runs changes: a new fleet, blue/green.
    Rollout,
    /// Only the fleet's size changes: modified in place.
    Capacity,
    /// Only how the provider behaves (rollout settings, timeouts): nothing in AWS.
    Settings,
}

fn change_kind(prior: &Model, next: &Model) -> ChangeKind {
    let launch_changed = prior.ami_id != next.ami_id
        || prior.instance_types != next.instance_types
        || prior.allocation_strategy != next.allocation_strategy
        || prior.instance_pools_to_use_count != next.instance_pools_to_use_count
        || prior.max_price != next.max_price
        || prior.interruption_behavior != next.interruption_behavior
        || prior.subnet_ids != next.subnet_ids
        || prior.availability_zones != next.availability_zones
        || prior.security_groups != next.security_groups
        || prior.iam_instance_profile != next.iam_instance_profile
        || prior.iam_fleet_role != next.iam_fleet_role
        || prior.target_groups != next.target_groups
        || prior.user_data != next.user_data
        || prior.key_name != next.key_name
        || prior.tags != next.tags
        || prior.valid_until != next.valid_until;
    if launch_changed {
        ChangeKind::Rollout
    } else if prior.target_capacity != next.target_capacity
        || prior.on_demand_capacity != next.on_demand_capacity
    {
        ChangeKind::Capacity
    } else {
        ChangeKind::Settings
    }
}

fn list(ty: Type) -> Type {
    Type::list(ty)
}

fn name_validator() -> Validator {
    Validator::new("1 to 40 letters, digits and hyphens.", |value, path, diags| {
        if let Value::String(s) = value
            && (s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            diags.error_at(
                path.clone(),
                "Invalid App Name",
                format!("{path} must be 1 to 40 letters, digits and hyphens (it names fleets and launch templates), got {s:?}"),
            );
        }
    })
}

fn ami_validator() -> Validator {
    Validator::new("An AMI id (`ami-…`).", |value, path, diags| {
        if let Value::String(s) = value
            && !(s.starts_with("ami-") && s.len() > 4 && s[4..].bytes().all(|b| b.is_ascii_hexdigit()))
        {
            diags.error_at(
                path.clone(),
                "Invalid AMI Id",
                format!("{path} must be an AMI id like \"ami-0abc…\", got {s:?}"),
            );
        }
    })
}

fn price_validator() -> Validator {
    Validator::new("A price in USD per hour, e.g. `\"0.05\"`.", |value, path, diags| {
        if let Value::String(s) = value
            && !s.parse::<f64>().is_ok_and(|p| p.is_finite() && p > 0.0)
        {
            diags.error_at(
                path.clone(),
                "Invalid Price",
                format!("{path} must be a positive price in USD per hour, got {s:?}"),
            );
        }
    })
}

fn timestamp_validator() -> Validator {
    Validator::new("An RFC 3339 timestamp, e.g. `2027-01-01T00:00:00Z`.", |value, path, diags| {
        if let Value::String(s) = value
            && aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime).is_err()
        {
            diags.error_at(
                path.clone(),
                "Invalid Timestamp",
                format!("{path} must be an RFC 3339 timestamp, got {s:?}"),
            );
        }
    })
}

/// Tag keys the user may not set: AWS reserves `aws:`, the provider `immutable:`.
fn user_tags_validator() -> Validator {
    Validator::new("Keys may not start with `aws:` or `immutable:`.", |value, path, diags| {
        if let Value::Map(tags) = value {
            for key in tags.keys() {
                let lower = key.to_ascii_lowercase();
                if lower.starts_with("aws:") || lower.starts_with("immutable:") {
                    diags.error_at(
                        path.clone().push_key(key.clone()),
                        "Reserved Tag Key",
                        format!(
                            "tag key {key:?}: keys starting with aws: are AWS's, immutable: the provider's"
                        ),
                    );
                }
            }
        }
    })
}

fn app_schema() -> Schema {
    let computed = |name: &str, ty: Type, text: &str| Attribute::computed(name, ty).description(text);
    Schema::new(
        Block::new(
            "An app on a Spot Fleet behind load balancer target groups. Changing what runs (`ami_id`, \
             `instance_types`, `user_data`, launch settings) is a blue/green rollout: a new fleet is requested, \
             its instances registered and awaited healthy in every target group, and only then is the old \
             fleet drained and cancelled. A rollout that fails (unhealthy, timeout, Spot errors, Ctrl-C) is \
             rolled back: the new fleet is cancelled and the old one keeps serving, untouched. Changing only \
             `target_capacity` or `on_demand_capacity` resizes the fleet in place. Every launch requires IMDSv2 \
             and encrypts the root volume. A run that was interrupted (killed, crashed) leaves nothing behind: \
             the next apply adopts the app's fleet when it runs the configuration, rolls out over it when it \
             runs another, and cancels an unfinished fleet the configuration no longer wants. The app's `name` \
             must be unique in the account and region.",
        )
        .attribute(
            Attribute::required("name", Type::String)
                .description("App name; used in tags, fleet and launch template names and idempotency tokens.")
                .modifier(PlanModifier::RequiresReplace)
                .validator(name_validator()),
        )
        .attribute(
            Attribute::required("ami_id", Type::String)
                .description("The AMI to run. Changing it rolls out a new fleet.")
                .validator(ami_validator()),
        )
        .attribute(
            Attribute::required("instance_types", list(Type::String))
                .description("Instance types to diversify across Spot pools, e.g. `[\"t3.small\", \"t3a.small\"]`.")
                .validator(validators::non_empty_list()),
        )
        .attribute(
            Attribute::required("target_capacity", Type::Number)
                .description("How many instances serve the app.")
                .validator(validators::int_between(1, 10_000)),
        )
        .attribute(
            Attribute::optional("on_demand_capacity", Type::Number)
                .description("How many of them are On-Demand rather than Spot (default 0).")
                .validator(validators::int_between(0, 10_000)),
        )
        .attribute(
            Attribute::optional("allocation_strategy", Type::String)
                .description(format!("How Spot capacity is chosen (default `{DEFAULT_ALLOCATION}`)."))
                .validator(validators::one_of(&["lowestPrice", "diversified", "capacityOptimized", "priceCapacityOptimized"])),
        )
        .attribute(
            Attribute::optional("instance_pools_to_use_count", Type::Number)
                .description("Number of cheapest pools to spread over; only with `lowestPrice`.")
                .validator(validators::int_between(1, 100)),
        )
        .attribute(
            Attribute::optional("max_price", Type::String)
                .description("Highest Spot price per instance-hour in USD (default: the On-Demand price).")
                .validator(price_validator()),
        )
        .attribute(
            Attribute::optional("interruption_behavior", Type::String)
                .description(format!("What Spot does on interruption (default `{DEFAULT_INTERRUPTION}`)."))
                .validator(validators::one_of(&["terminate", "stop", "hibernate"])),
        )
        .attribute(
            Attribute::optional("subnet_ids", list(Type::String))
                .description("Subnets to launch in. Conflicts with `availability_zones`.")
                .validator(validators::non_empty_list()),
        )
        .attribute(
            Attribute::optional("availability_zones", list(Type::String))
                .description("Availability zones to launch in (default subnets). Conflicts with `subnet_ids`.")
                .validator(validators::non_empty_list()),
        )
        .attribute(
            Attribute::optional("security_groups", list(Type::String))
                .description("Security groups by name or id, resolved at plan time."),
        )
        .attribute(
            Attribute::optional("iam_instance_profile", Type::String)
                .description("Instance profile by name or ARN, resolved at plan time."),
        )
        .attribute(
            Attribute::optional("iam_fleet_role", Type::String)
                .description(format!("Role that lets Spot Fleet launch and tag instances, by name or ARN (default `{DEFAULT_FLEET_ROLE}`).")),
        )
        .attribute(
            Attribute::optional("target_groups", list(Type::String))
                .description("Target groups by name or ARN. New instances must be healthy in every one before the old fleet goes."),
        )
        .attribute(Attribute::optional("user_data", Type::String).description("User data (plain text; encoded for EC2)."))
        .attribute(
            Attribute::optional("key_name", Type::String)
                .description("SSH key pair. None by default: immutable servers need no remote access."),
        )
        .attribute(
            Attribute::optional("tags", Type::map(Type::String))
                .description("Tags for the fleet, its instances and volumes, on top of the provider's `default_tags`.")
                .validator(user_tags_validator()),
        )
        .attribute(
            Attribute::optional("valid_until", Type::String)
                .description("When the fleet request expires (its instances are then terminated).")
                .validator(timestamp_validator()),
        )
        .attribute(computed("id", Type::String, "The app name.").modifier(PlanModifier::UseStateForUnknown))
        .attribute(computed("fleet_id", Type::String, "The serving Spot Fleet request."))
        .attribute(computed("instance_ids", list(Type::String), "The serving instances."))
        .attribute(computed("generation", Type::Number, "Rollout generation: 1 on create, +1 per rollout."))
        .attribute(computed("healthy_count", Type::Number, "Serving instances healthy in every target group at the last read."))
        .attribute(computed("commit", Type::String, "The `Commit` tag of the AMI."))
        .attribute(computed("target_group_arns", list(Type::String), "The target groups, resolved."))
        .attribute(computed("launch_template_id", Type::String, "The launch template of the serving generation."))
        .attribute(computed(
            "stray_fleet_ids",
            list(Type::String),
            "Open Spot Fleets tagged with this app other than `fleet_id`, at the last read: left by an \
             interrupted run or a cancellation that kept failing. While there are any, the plan shows an \
             update, and the apply deregisters and cancels them.",
        ))
        .block(NestedBlock::single(
            "rollout",
            Block::new("How a rollout decides that the new fleet is healthy and retires the old one.")
                .attribute(
                    Attribute::optional("health_timeout", Type::String)
                        .description(format!("How long the new fleet has to get healthy (default `{DEFAULT_HEALTH_TIMEOUT}`)."))
                        .validator(validators::duration()),
                )
                .attribute(
                    Attribute::optional("min_healthy_percent", Type::Number)
                        .description(format!("Share of new instances that must be healthy in every target group (default {DEFAULT_MIN_HEALTHY})."))
                        .validator(validators::int_between(0, 100)),
                )
                .attribute(
                    Attribute::optional("drain_timeout", Type::String)
                        .description(format!("How long old instances drain after deregistration (default `{DEFAULT_DRAIN_TIMEOUT}`)."))
                        .validator(validators::duration()),
                ),
        ))
        .timeouts(&[("create", "30m"), ("update", "30m"), ("delete", "15m")]),
    )
}

impl Model {
    fn rollout_settings(&self) -> RolloutSettings {
        self.rollout.known().cloned().unwrap_or_default()
    }

    fn health_timeout(&self) -> Duration {
        let text = self
            .rollout_settings()
            .health_timeout
            .into_option()
            .unwrap_or_else(|| DEFAULT_HEALTH_TIMEOUT.into());
        tfplugin::duration::parse(&text).unwrap_or(Duration::from_secs(600))
    }

    fn drain_timeout(&self) -> Duration {
        let text = self
            .rollout_settings()
            .drain_timeout
            .into_option()
            .unwrap_or_else(|| DEFAULT_DRAIN_TIMEOUT.into());
        tfplugin::duration::parse(&text).unwrap_or(Duration::from_secs(30))
    }

    fn min_healthy_percent(&self) -> u32 {
        self.rollout_settings().min_healthy_percent.into_option().unwrap_or(DEFAULT_MIN_HEALTHY)
    }

    fn list(v: &Val<Vec<String>>) -> Vec<String> {
        v.known().cloned().unwrap_or_default()
    }

    fn args(&self) -> Args {
        let rollout = self.rollout_settings();
        Args {
            instance_types: self.instance_types.known().cloned(),
            on_demand_capacity: self.on_demand_capacity.known().copied(),
            allocation_strategy: self.allocation_strategy.known().cloned(),
            instance_pools_to_use_count: self.instance_pools_to_use_count.known().copied(),
            max_price: self.max_price.known().cloned(),
            interruption_behavior: self.interruption_behavior.known().cloned(),
            subnet_ids: self.subnet_ids.known().cloned(),
            availability_zones: self.availability_zones.known().cloned(),
            security_groups: self.security_groups.known().cloned(),
            iam_instance_profile: self.iam_instance_profile.known().cloned(),
            iam_fleet_role: self.iam_fleet_role.known().cloned(),
            target_groups: self.target_groups.known().cloned(),
            key_name: self.key_name.known().cloned(),
            tags: self.tags.known().cloned(),
            valid_until: self.valid_until.known().cloned(),
            health_timeout: rollout.health_timeout.into_option(),
            min_healthy_percent: rollout.min_healthy_percent.into_option(),
            drain_timeout: rollout.drain_timeout.into_option(),
        }
    }
}

fn args_tags(args: &Args) -> BTreeMap<String, String> {
    let json = serde_json::to_string(args).unwrap_or_default();
    let chars: Vec<char> = json.chars().collect();
    chars
        .chunks(ARGS_CHUNK)
        .enumerate()
        .map(|(i, chunk)| (format!("{ARGS_TAG_PREFIX}{i}"), chunk.iter().collect()))
        .collect()
}

fn args_from_tags(tags: &BTreeMap<String, String>) -> Option<Args> {
    let mut chunks: Vec<(usize, &String)> =
        tags.iter().filter_map(|(k, v)| Some((k.strip_prefix(ARGS_TAG_PREFIX)?.parse().ok()?, v))).collect();
    chunks.sort();
    let json: String = chunks.into_iter().map(|(_, v)| v.as_str()).collect();
    serde_json::from_str(&json).ok()
}

/// Everything resolved for a launch, or diagnostics on the attributes that did not
/// resolve.
struct Resolved {
    image: Option<LaunchImage>,
    security_group_ids: Vec<String>,
    target_groups: Vec<elb::TargetGroup>,
    instance_profile_arn: Option<String>,
    fleet_role_arn: Option<String>,
}

/// Looks up every name the model refers to (skipping unknown values), all at once.
/// Reads only.
async fn resolve(clients: &Clients, model: &Model, diags: &mut Diagnostics) -> Resolved {
    let mut resolved = Resolved {
        image: None,
        security_group_ids: Vec::new(),
        target_groups: Vec::new(),
        instance_profile_arn: None,
        fleet_role_arn: None,
    };
    let aws =
        |diags: &mut Diagnostics, attr: &str, e: AwsError| diags.error_at(attr, "AWS Error", e.to_string());
    let fleet_role = (!model.iam_fleet_role.is_unknown())
        .then(|| model.iam_fleet_role.known().cloned().unwrap_or_else(|| DEFAULT_FLEET_ROLE.to_owned()));
    // Independent lookups: one round trip instead of one per argument.
    let (image, security_groups, target_groups, profile, role, types, key, zones, subnets) = tokio::join!(
        lookup(model.ami_id.known(), |ami| network::launch_image(&clients.ec2, ami)),
        lookup(model.security_groups.known(), |g| network::resolve_security_groups(&clients.ec2, g)),
        lookup(model.target_groups.known(), |g| elb::resolve_target_groups(&clients.elbv2, g)),
        lookup(model.iam_instance_profile.known(), |p| iam::instance_profile_arn(&clients.iam, p)),
        lookup(fleet_role.as_ref(), |r| iam::role_arn(&clients.iam, r)),
        lookup(model.instance_types.known(), |t| network::unknown_instance_types(&clients.ec2, t)),
        lookup(model.key_name.known(), |k| network::key_pair_exists(&clients.ec2, k)),
        lookup(model.availability_zones.known(), |z| network::missing_zones(&clients.ec2, z)),
        lookup(model.subnet_ids.known(), |s| network::missing_subnets(&clients.ec2, s)),
    );
    if let (Some(ami), Some(image)) = (model.ami_id.known(), image) {
        match image {
            Ok(Some(image)) if image.state == "available" => resolved.image = Some(image),
            Ok(Some(image)) => diags.error_at(
                "ami_id",
                "AMI Not Available",
                format!("AMI {ami} is {}, not available; wait for it or choose another", image.state),
            ),
            Ok(None) => diags.error_at(
                "ami_id",
                "AMI Not Found",
                format!(
                    "AMI {ami} does not exist in {} (or is not shared with this account)",
                    clients.region
                ),
            ),
            Err(e) => aws(diags, "ami_id", e),
        }
    }
    if let Some(groups) = security_groups {
        match groups {
            Ok(Ok(ids)) => resolved.security_group_ids = ids,
            Ok(Err(missing)) => diags.error_at(
                "security_groups",
                "Unknown Security Group",
                format!("no security group named or with id {}", missing.join(", ")),
            ),
            Err(e) => aws(diags, "security_groups", e),
        }
    }
    if let Some(groups) = target_groups {
        match groups {
            Ok(Ok(found)) => resolved.target_groups = found,
            Ok(Err(missing)) => diags.error_at(
                "target_groups",
                "Unknown Target Group",
                format!("no target group named or with ARN {}", missing.join(", ")),
            ),
            Err(e) => aws(diags, "target_groups", e),
        }
    }
    if let (Some(profile), Some(found)) = (model.iam_instance_profile.known(), profile) {
        match found {
            Ok(Some(arn)) => resolved.instance_profile_arn = Some(arn),
            Ok(None) => diags.error_at(
                "iam_instance_profile",
                "Unknown Instance Profile",
                format!("no instance profile {profile:?}"),
            ),
            Err(e) => aws(diags, "iam_instance_profile", e),
        }
    }
    if let (Some(role), Some(found)) = (fleet_role, role) {
        match found {
            Ok(Some(arn)) => resolved.fleet_role_arn = Some(arn),
            Ok(None) => diags.error_at(
                "iam_fleet_role",
                "Unknown Fleet Role",
                format!(
                    "no IAM role {role:?}; Spot Fleet needs a role it can assume to launch and tag instances"
                ),
            ),
            Err(e) => aws(diags, "iam_fleet_role", e),
        }
    }
    if let Some(types) = types {
        match types {
            Ok(unknown) if unknown.is_empty() => {}
            Ok(unknown) => diags.error_at(
                "instance_types",
                "Unknown Instance Type",
                format!("EC2 offers no instance type {} in {}", unknown.join(", "), clients.region),
            ),
            Err(e) => aws(diags, "instance_types", e),
        }
    }
    if let (Some(key), Some(exists)) = (model.key_name.known(), key) {
        match exists {
            Ok(true) => {}
            Ok(false) => diags.error_at(
                "key_name",
                "Unknown Key Pair",
                format!("no key pair {key:?} in {}", clients.region),
            ),
            Err(e) => aws(diags, "key_name", e),
        }
    }
    if let Some(zones) = zones {
        match zones {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => diags.error_at(
                "availability_zones",
                "Unknown Availability Zone",
                format!("{} has no availability zone {}", clients.region, missing.join(", ")),
            ),
            Err(e) => aws(diags, "availability_zones", e),
        }
    }
    if let Some(subnets) = subnets {
        match subnets {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                diags.error_at("subnet_ids", "Unknown Subnet", format!("no subnet {}", missing.join(", ")))
            }
            Err(e) => aws(diags, "subnet_ids", e),
        }
    }
    resolved
}

/// Runs `find` on the value when there is one.
async fn lookup<'a, T: ?Sized, R, F, Fut>(value: Option<&'a T>, find: F) -> Option<R>
where
    F: FnOnce(&'a T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    match value {
        Some(value) => Some(find(value).await),
        None => None,
    }
}

/// Decodes a configuration, plan or state. A collection with an unknown inside
/// (`tags = { v = aws_x.y.id }`) reads as not yet known as a whole.
fn decode(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<Model> {
    match from_value::<Model>(&value.collapse_partial_unknowns()) {
        Ok(model) => Some(model),
        Err(e) => {
            diags.error_at(e.path.clone(), "Invalid Value", format!("reading {what}: {e}"));
            None
        }
    }
}

fn encode(model: &Model, diags: &mut Diagnostics) -> Option<Value> {
    match to_value(model, &app_schema().value_type()) {
        Ok(value) => Some(value),
        Err(e) => {
            diags.error("Provider Bug", format!("encoding {TYPE_NAME} state: {e}"));
            None
        }
    }
}

impl AppResource {
    fn spec(
        &self,
        clients: &Clients,
        model: &Model,
        resolved: &Resolved,
        generation: u64,
    ) -> Option<fleet::FleetSpec> {
        let app = model.name.known()?.clone();
        let image = resolved.image.as_ref()?;
        let mut tags = clients.default_tags.clone();
        tags.extend(model.tags.known().cloned().unwrap_or_default());
        tags.insert(fleet_tags::APP.into(), app.clone());
        tags.insert(fleet_tags::GENERATION.into(), generation.to_string());
        tags.insert(fleet_tags::AMI.into(), image.id.clone());
        tags.insert(ami_tags::MANAGED_BY.into(), ami_tags::MANAGED_BY_VALUE.into());
        if let Some(commit) = &image.commit {
            tags.insert(ami_tags::COMMIT.into(), commit.clone());
        }
        Some(fleet::FleetSpec {
            app,
            generation,
            ami_id: image.id.clone(),
            root_device_name: image.root_device_name.clone().unwrap_or_else(|| "/dev/xvda".into()),
            instance_types: Model::list(&model.instance_types),
            subnet_ids: Model::list(&model.subnet_ids),
            availability_zones: Model::list(&model.availability_zones),
            target_capacity: model.target_capacity.known().copied().unwrap_or(1),
            on_demand_capacity: model.on_demand_capacity.known().copied().unwrap_or(0),
            allocation_strategy: model
                .allocation_strategy
                .known()
                .cloned()
                .unwrap_or_else(|| DEFAULT_ALLOCATION.into()),
            instance_pools_to_use_count: model.instance_pools_to_use_count.known().copied(),
            max_price: model.max_price.known().cloned(),
            interruption_behavior: model
                .interruption_behavior
                .known()
                .cloned()
                .unwrap_or_else(|| DEFAULT_INTERRUPTION.into()),
            fleet_role_arn: resolved.fleet_role_arn.clone()?,
            valid_until: model.valid_until.known().cloned(),
            security_group_ids: resolved.security_group_ids.clone(),
            instance_profile_arn: resolved.instance_profile_arn.clone(),
            user_data: model.user_data.known().cloned(),
            key_name: model.key_name.known().cloned(),
            target_group_arns: resolved.target_groups.iter().map(|g| g.arn.clone()).collect(),
            tags,
            template_tags: args_tags(&model.args()),
        })
    }

    /// Runs a rollout (a first deploy when `blue` is `None`) and returns the new
    /// state, or `None` with the failure in `diags`.
    async fn deploy(
        &self,
        ctx: &Context,
        clients: &Clients,
        model: &Model,
        step: Step,
        diags: &mut Diagnostics,
    ) -> Option<Model> {
        let Step { mut generation, mut blue, timeout: operation_timeout, lost_track } = step;
        let resolved = resolve(clients, model, diags).await;
        if diags.has_errors() {
            return None;
        }
        let mut spec = self.spec(clients, model, &resolved, generation)?;
        if blue.is_none() && lost_track {
            // A create that finds this generation's fleet serving another configuration
            // (Terraform lost track of the app, and the configuration changed since):
            // that fleet is blue, and the configuration rolls out over it.
            let serving = match fleet::find_fleet_by_tags(&clients.ec2, &spec.app, generation).await {
                Ok(found) => found.filter(|f| f.runs_other_config_than(&spec)),
                Err(e) => {
                    diags.error("AWS Error", e.to_string());
                    return None;
                }
            };
            if let Some(serving) = serving {
                let instances = match fleet::fleet_instances(&clients.ec2, &serving.id).await {
                    Ok(instances) => instances,
                    Err(e) => {
                        diags.error("AWS Error", e.to_string());
                        return None;
                    }
                };
                tracing::info!(app = %spec.app, "fleet {} (generation {generation}) serves another configuration; rolling out over it", serving.id);
                generation += 1;
                blue = Some(Blue { fleet_id: serving.id, instances });
                spec = self.spec(clients, model, &resolved, generation)?;
            }
        }
        let settings = Settings {
            target_groups: spec.target_group_arns.clone(),
            required_healthy: machine::required_healthy(spec.target_capacity, model.min_healthy_percent()),
            drain: model.drain_timeout(),
        };
        let deadline = Instant::now() + model.health_timeout().min(operation_timeout);
        let runner = Runner { clients, ctx, spec: &spec, deadline };
        let result = runner.run(settings, blue.clone()).await;
        for problem in &result.cleanup_errors {
            diags.warning("Cleanup Incomplete", problem.clone());
        }
        let what = if generation == 1 { "deploying" } else { "rolling out" };
        match result.outcome {
            Outcome::Switched { fleet_id, instances } => {
                let mut state = model.clone();
                // Blue's cancellation kept failing: record it as a stray, so that the
                // next plan shows it and the next apply cancels it.
                state.stray_fleet_ids = Val::Known(match &blue {
                    Some(blue) if !result.cleanup_errors.is_empty() => vec![blue.fleet_id.clone()],
                    _ => Vec::new(),
                });
                state.id = Val::Known(spec.app.clone());
                state.fleet_id = Val::Known(fleet_id);
                state.healthy_count = Val::Known(
                    healthy_count(clients, &spec.target_group_arns, &instances).await.unwrap_or(0),
                );
                state.instance_ids = Val::Known(instances);
                state.generation = Val::Known(generation);
                state.commit = resolved.image.and_then(|i| i.commit).map_or(Val::Null, Val::Known);
                state.target_group_arns = Val::Known(spec.target_group_arns.clone());
                state.launch_template_id = result.green_template.map_or(Val::Null, Val::Known);
                Some(state)
            }
            Outcome::RolledBack { failure } => {
                let mut failure = failure.to_string();
                for group in &resolved.target_groups {
                    failure = failure.replace(&group.arn, &group.name);
                }
                let blue_note = match &blue {
                    Some(b) => format!("; the previous fleet {} keeps serving", b.fleet_id),
                    None => String::new(),
                };
                diags.error(
                    "Rollout Failed",
                    format!("{what} app {} (generation {generation}): {failure}{blue_note}", spec.app),
                );
                None
            }
        }
    }

    async fn resize(
        &self,
        ctx: &Context,
        clients: &Clients,
        prior: &Model,
        planned: &Model,
        timeout: Duration,
        diags: &mut Diagnostics,
    ) -> Option<Model> {
        let fleet_id = prior.fleet_id.known()?.clone();
        let target = planned.target_capacity.known().copied().unwrap_or(1);
        let on_demand = planned.on_demand_capacity.known().copied().unwrap_or(0);
        tracing::info!("resizing fleet {fleet_id} to {target} instances");
        if let Err(e) = fleet::modify_capacity(&clients.ec2, &fleet_id, target, on_demand).await {
            diags.error("Resize Failed", e.to_string());
            return None;
        }
        let groups = Model::list(&prior.target_group_arns);
        let deadline = Instant::now() + planned.health_timeout().min(timeout);
        let mut backoff = Backoff::new();
        let required = machine::required_healthy(target, planned.min_healthy_percent());
        let mut instances = Vec::new();
        let mut healthy = 0;
        while Instant::now() < deadline && !ctx.is_stopped() {
            tokio::time::sleep(backoff.next_delay()).await;
            instances = match fleet::fleet_instances(&clients.ec2, &fleet_id).await {
                Ok(i) => i,
                Err(e) => {
                    diags.error("AWS Error", e.to_string());
                    return None;
                }
            };
            if instances.len() != target as usize {
                continue;
            }
            for group in &groups {
                let registered = elb::target_health(&clients.elbv2, group, None).await.unwrap_or_default();
                let missing: Vec<String> = instances
                    .iter()
                    .filter(|i| !registered.iter().any(|t| &t.instance_id == *i))
                    .cloned()
                    .collect();
                if let Err(e) = elb::register(&clients.elbv2, group, &missing).await {
                    diags.error("AWS Error", e.to_string());
                    return None;
                }
            }
            healthy = healthy_count(clients, &groups, &instances).await.unwrap_or(0);
            if healthy as usize >= required || groups.is_empty() {
                break;
            }
        }
        if instances.len() != target as usize {
            diags.error(
                "Resize Incomplete",
                format!(
                    "fleet {fleet_id} has {} of {target} instances after waiting; it keeps trying",
                    instances.len()
                ),
            );
        }
        let mut state = planned.clone();
        for (slot, value) in [
            (&mut state.fleet_id, &prior.fleet_id),
            (&mut state.commit, &prior.commit),
            (&mut state.launch_template_id, &prior.launch_template_id),
        ] {
            *slot = value.clone();
        }
        state.generation = prior.generation.clone();
        state.target_group_arns = prior.target_group_arns.clone();
        state.instance_ids = Val::Known(instances);
        state.healthy_count = Val::Known(healthy);
        Some(state)
    }
}

/// One deploy: the generation to launch, the fleet it replaces, the time limit.
struct Step {
    generation: u64,
    blue: Option<Blue>,
    timeout: Duration,
    /// A create whose plan found a fleet of the app serving: Terraform lost track of
    /// it, and that fleet may run another configuration.
    lost_track: bool,
}

/// Serving instances healthy in every target group (all of them without groups).
async fn healthy_count(clients: &Clients, groups: &[String], instances: &[String]) -> Result<u32, AwsError> {
    let mut count = instances.len();
    for group in groups {
        let health = elb::target_health(&clients.elbv2, group, Some(instances)).await?;
        count = count.min(healthy_among(&health, instances));
    }
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Deregisters and cancels the app's open fleets other than the one `state` names
/// (an app has exactly one), and records those that could not be cancelled.
async fn cancel_strays(clients: &Clients, state: &mut Model, diags: &mut Diagnostics) {
    let (Some(app), Some(keep)) = (state.name.known().cloned(), state.fleet_id.known().cloned()) else {
        return;
    };
    let fleets = match fleet::all_fleets(&clients.ec2).await {
        Ok(fleets) => fleets,
        Err(e) => {
            diags.warning("Cleanup Incomplete", format!("looking for stray fleets of app {app}: {e}"));
            state.stray_fleet_ids = Val::Known(Vec::new());
            return;
        }
    };
    let groups = Model::list(&state.target_group_arns);
    let mut remaining = Vec::new();
    for stray in fleets.iter().filter(|f| f.is_open_of(&app) && f.id != keep) {
        tracing::warn!(app = %app, "cancelling stray fleet {} (generation {:?}), which the state does not name", stray.id, stray.generation());
        let result = async {
            let instances = fleet::fleet_instances(&clients.ec2, &stray.id).await?;
            for group in &groups {
                elb::deregister(&clients.elbv2, group, &instances).await?;
            }
            fleet::cancel_fleet(&clients.ec2, &stray.id).await
        }
        .await;
        if let Err(e) = result {
            diags.warning(
                "Cleanup Incomplete",
                format!("cancelling stray fleet {} of app {app}: {e}", stray.id),
            );
            remaining.push(stray.id.clone());
        }
    }
    state.stray_fleet_ids = Val::Known(remaining);
}

/// [`healthy_count`] from the target health shared by this run's reads.
async fn shared_healthy_count(
    clients: &Clients,
    groups: &[String],
    instances: &[String],
) -> Result<u32, AwsError> {
    let mut count = instances.len();
    for group in groups {
        count = count.min(healthy_among(&clients.reads.target_health(group).await?, instances));
    }
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

fn healthy_among(health: &[machine::TargetHealth], instances: &[String]) -> usize {
    health.iter().filter(|t| t.is_healthy() && instances.contains(&t.instance_id)).count()
}

#[async_trait]
impl Resource for AppResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        app_schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = decode(config, "configuration", diags) else { return };
        if model.subnet_ids.is_known() && model.availability_zones.is_known() {
            diags.error_at(
                "availability_zones",
                "Conflicting Arguments",
                "set subnet_ids or availability_zones, not both",
            );
        }
        if let Some(until) = model.valid_until.known()
            && let Ok(when) =
                aws_smithy_types::DateTime::from_str(until, aws_smithy_types::date_time::Format::DateTime)
            && when.secs() <= aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs()
        {
            diags.error_at(
                "valid_until",
                "Value In The Past",
                format!("valid_until {until} has passed; a fleet valid until then would never launch"),
            );
        }
        if let (Some(on_demand), Some(target)) =
            (model.on_demand_capacity.known(), model.target_capacity.known())
            && on_demand > target
        {
            diags.error_at(
                "on_demand_capacity",
                "Value Out Of Range",
                format!("on_demand_capacity ({on_demand}) cannot exceed target_capacity ({target})"),
            );
        }
        if model.instance_pools_to_use_count.is_known()
            && model.allocation_strategy.known().map(String::as_str) != Some("lowestPrice")
            && !model.allocation_strategy.is_unknown()
        {
            diags.error_at(
                "instance_pools_to_use_count",
                "Argument Needs lowestPrice",
                "instance_pools_to_use_count applies only with allocation_strategy = \"lowestPrice\"",
            );
        }
    }

    async fn plan(&self, _ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        let Some(config) = decode(&plan.config, "configuration", diags) else { return };
        let Some(mut planned) = decode(&plan.planned, "plan", diags) else { return };
        let prior = if plan.prior.is_null() { None } else { decode(&plan.prior, "state", diags) };
        let kind = prior.as_ref().map(|p| change_kind(p, &config));
        if kind == Some(ChangeKind::Settings) {
            // Nothing changes in AWS: keep every computed value, unless stray fleets
            // are to be cancelled.
            if let Some(prior) = &prior {
                copy_computed(prior, &mut planned);
                if prior.stray_fleet_ids.known().is_some_and(|s| !s.is_empty()) {
                    planned.stray_fleet_ids = Val::Unknown;
                }
            }
        } else {
            // Plan-time checks: the AMI and every name must resolve before apply.
            let Some(clients) = self.shared.clients(diags) else { return };
            let resolved = resolve(clients, &config, diags).await;
            if diags.has_errors() {
                return;
            }
            let commit = match (&resolved.image, config.ami_id.is_unknown()) {
                (_, true) => Val::Unknown,
                (Some(image), false) => image.commit.clone().map_or(Val::Null, Val::Known),
                (None, false) => Val::Null,
            };
            let arns = if config.target_groups.is_unknown() {
                Val::Unknown
            } else {
                Val::Known(resolved.target_groups.iter().map(|g| g.arn.clone()).collect())
            };
            planned.id = config.name.clone();
            match (&prior, kind) {
                (None, _) => {
                    // A fleet of this app still serving means Terraform lost track of
                    // it (see fleet::newest_open_generation): the create adopts it
                    // rather than launching a second fleet beside it.
                    let serving = match config.name.known() {
                        Some(app) => match clients.reads.newest_open_generation(app).await {
                            Ok(generation) => generation,
                            Err(e) => {
                                diags.error("AWS Error", e.to_string());
                                return;
                            }
                        },
                        None => None,
                    };
                    // Adopted as it is, or rolled over when it runs another
                    // configuration: only apply can tell which generation results.
                    planned.generation = serving.map_or(Val::Known(1), |_| Val::Unknown);
                    planned.commit = commit;
                    planned.target_group_arns = arns;
                }
                (Some(prior), Some(ChangeKind::Capacity)) => {
                    copy_computed(prior, &mut planned);
                    planned.instance_ids = Val::Unknown;
                    planned.healthy_count = Val::Unknown;
                    if prior.stray_fleet_ids.known().is_some_and(|s| !s.is_empty()) {
                        planned.stray_fleet_ids = Val::Unknown;
                    }
                }
                (Some(prior), _) => {
                    planned.generation = prior.generation.known().map_or(Val::Unknown, |g| Val::Known(g + 1));
                    planned.commit = commit;
                    planned.target_group_arns = arns;
                }
            }
        }
        // Only the computed attributes are the provider's to plan; the arguments stay
        // exactly as Terraform proposed them (partially unknown collections included).
        if let Some(full) = encode(&planned, diags) {
            for name in COMPUTED {
                if let (Some(value), Some(slot)) =
                    (full.attr(name), plan.planned.get_mut(&AttributePath::attr(name)))
                {
                    *slot = value.clone();
                }
            }
        }
    }

    async fn create(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.shared.clients(diags)?;
        let _changing = clients.reads.changing();
        let model = decode(&change.planned, "plan", diags)?;
        let timeout = schema::timeout(&change.config, "create", CREATE_TIMEOUT);
        // A fleet of this app still serving (Terraform lost track of it) is adopted,
        // or rolled over when it runs another configuration (see deploy).
        let found_serving = model.generation.is_unknown();
        let generation = match (model.generation.known(), model.name.known()) {
            (Some(generation), _) => *generation,
            // Planned unknown: a fleet of this app was serving at plan time.
            (None, Some(app)) => match fleet::newest_open_generation(&clients.ec2, app).await {
                Ok(serving) => serving.unwrap_or(1),
                Err(e) => {
                    diags.error("AWS Error", e.to_string());
                    return None;
                }
            },
            (None, None) => 1,
        };
        let mut state = self
            .deploy(
                ctx,
                clients,
                &model,
                Step { generation, blue: None, timeout, lost_track: found_serving },
                diags,
            )
            .await?;
        if found_serving || state.stray_fleet_ids.known().is_some_and(|s| !s.is_empty()) {
            // Terraform had lost track of the app: older fleets of it may still be open.
            cancel_strays(clients, &mut state, diags).await;
        }
        let generation = state.generation.known().copied().unwrap_or(generation);
        if generation > 1 {
            // The previous generation's template went with the state that named it.
            let previous =
                fleet::template_name(&state.id.known().cloned().unwrap_or_default(), generation - 1);
            match fleet::find_launch_template(&clients.ec2, &previous).await {
                Ok(Some(template)) => {
                    if let Err(e) = fleet::delete_launch_template(&clients.ec2, &template).await {
                        diags.warning("Cleanup Incomplete", e.to_string());
                    }
                }
                Ok(None) => {}
                Err(e) => diags.warning("Cleanup Incomplete", e.to_string()),
            }
        }
        Some(State { value: encode(&state, diags)?, private: Vec::new() })
    }

    async fn read(&self, _ctx: &Context, state: &State, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.shared.clients(diags)?;
        let mut model = decode(&state.value, "state", diags)?;
        let fleet_id = model.fleet_id.known()?.clone();
        // Shared with the other apps read in this run (see aws::reads).
        let observed = match clients.reads.fleet(&fleet_id).await {
            Ok(observed) => observed,
            Err(e) => {
                diags.error("AWS Error", e.to_string());
                return None;
            }
        };
        let Some(ObservedFleet { fleet, instances }) = observed.filter(|o| o.fleet.is_open()) else {
            tracing::warn!(fleet = %fleet_id, "fleet is cancelled, failed or gone; removing the app from state");
            return None;
        };
        let groups = Model::list(&model.target_group_arns);
        match shared_healthy_count(clients, &groups, &instances).await {
            Ok(count) => model.healthy_count = Val::Known(count),
            Err(e) => diags.warning("Health Unknown", e.to_string()),
        }
        // Other open fleets of the app, from the same snapshot (no further call).
        if let Some(app) = model.name.known() {
            match clients.reads.open_fleets_of(app).await {
                Ok(open) => {
                    model.stray_fleet_ids =
                        Val::Known(open.into_iter().filter(|id| *id != fleet_id).collect())
                }
                Err(e) => diags.warning("Stray Fleets Unknown", e.to_string()),
            }
        }
        model.instance_ids = Val::Known(instances);
        model.target_capacity = Val::Known(fleet.target_capacity);
        if model.on_demand_capacity.is_known() || fleet.on_demand_capacity > 0 {
            model.on_demand_capacity = Val::Known(fleet.on_demand_capacity);
        }
        Some(State { value: encode(&model, diags)?, private: state.private.clone() })
    }

    async fn update(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let prior_state = State { value: change.prior.clone(), private: change.private.clone() };
        let Some(clients) = self.shared.clients(diags) else { return Some(prior_state) };
        let _changing = clients.reads.changing();
        let (Some(prior), Some(planned)) =
            (decode(&change.prior, "state", diags), decode(&change.planned, "plan", diags))
        else {
            return Some(prior_state);
        };
        let timeout = schema::timeout(&change.config, "update", UPDATE_TIMEOUT);
        let next = match change_kind(&prior, &planned) {
            ChangeKind::Settings => {
                let mut next = planned.clone();
                copy_computed(&prior, &mut next);
                Some(next)
            }
            ChangeKind::Capacity => self.resize(ctx, clients, &prior, &planned, timeout, diags).await,
            ChangeKind::Rollout => {
                let blue_id = prior.fleet_id.known().cloned().unwrap_or_default();
                let blue_instances = fleet::fleet_instances(&clients.ec2, &blue_id)
                    .await
                    .unwrap_or_else(|_| Model::list(&prior.instance_ids));
                let blue = Blue { fleet_id: blue_id, instances: blue_instances };
                let generation = prior.generation.known().copied().unwrap_or(1) + 1;
                let next = self
                    .deploy(
                        ctx,
                        clients,
                        &planned,
                        Step { generation, blue: Some(blue), timeout, lost_track: false },
                        diags,
                    )
                    .await;
                if next.is_some()
                    && let Some(template) = prior.launch_template_id.known()
                    && let Err(e) = fleet::delete_launch_template(&clients.ec2, template).await
                {
                    diags.warning("Cleanup Incomplete", e.to_string());
                }
                next
            }
        };
        match next {
            Some(mut model) => {
                let strays = |m: &Model| m.stray_fleet_ids.known().is_some_and(|s| !s.is_empty());
                if strays(&prior) || strays(&model) {
                    cancel_strays(clients, &mut model, diags).await;
                } else if !model.stray_fleet_ids.is_known() {
                    model.stray_fleet_ids = Val::Known(Vec::new());
                }
                Some(State { value: encode(&model, diags)?, private: Vec::new() })
            }
            // Failure: Terraform keeps recording what still serves.
            None => Some(prior_state),
        }
    }

    async fn delete(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) {
        let Some(clients) = self.shared.clients(diags) else { return };
        let _changing = clients.reads.changing();
        let Some(model) = decode(&change.prior, "state", diags) else { return };
        let Some(fleet_id) = model.fleet_id.known().cloned() else { return };
        let timeout = schema::timeout(&change.config, "delete", DELETE_TIMEOUT);
        let instances = fleet::fleet_instances(&clients.ec2, &fleet_id).await.unwrap_or_default();
        let mut all = Model::list(&model.instance_ids);
        all.extend(instances.iter().cloned());
        all.sort();
        all.dedup();
        for group in Model::list(&model.target_group_arns) {
            if let Err(e) = elb::deregister(&clients.elbv2, &group, &all).await {
                diags.warning("Deregistration Failed", e.to_string());
            }
        }
        tracing::info!(app = ?model.name.known(), "cancelling fleet {fleet_id} and terminating {} instances", all.len());
        if let Err(e) = fleet::cancel_fleet(&clients.ec2, &fleet_id).await {
            diags.error("Delete Failed", e.to_string());
            return;
        }
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new();
        loop {
            tokio::time::sleep(backoff.next_delay()).await;
            match fleet::live_instances(&clients.ec2, &all).await {
                Ok(live) if live.is_empty() => break,
                Ok(live) if Instant::now() >= deadline || ctx.is_stopped() => {
                    diags.error(
                        "Delete Incomplete",
                        format!("instances still terminating: {}", live.join(", ")),
                    );
                    return;
                }
                Ok(live) => tracing::info!("waiting for {} instances to terminate", live.len()),
                Err(e) => {
                    diags.error("AWS Error", e.to_string());
                    return;
                }
            }
        }
        if let Some(template) = model.launch_template_id.known()
            && let Err(e) = fleet::delete_launch_template(&clients.ec2, template).await
        {
            diags.warning("Cleanup Incomplete", e.to_string());
        }
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.shared.clients(diags)?;
        let fleet = match fleet::find_fleet(&clients.ec2, id).await {
            Ok(Some(fleet)) if fleet.is_open() => fleet,
            Ok(_) => {
                diags.error(
                    "Fleet Not Found",
                    format!("no active Spot Fleet request {id:?} in {}", clients.region),
                );
                return None;
            }
            Err(e) => {
                diags.error("AWS Error", e.to_string());
                return None;
            }
        };
        let Some(app) = fleet.tags.get(fleet_tags::APP).cloned() else {
            diags.error(
                "Not An App Fleet",
                format!(
                    "Spot Fleet {id} has no {} tag; tag it with the app name to import it",
                    fleet_tags::APP
                ),
            );
            return None;
        };
        let generation = fleet.generation().unwrap_or(1);
        // The fleet names its template; some emulators do not, so also try the
        // generation's template name.
        let template_id = match &fleet.launch_template_id {
            Some(id) => Some(id.clone()),
            None => fleet::find_launch_template(&clients.ec2, &fleet::template_name(&app, generation))
                .await
                .unwrap_or_default(),
        };
        let template_tags = match &template_id {
            Some(t) => fleet::launch_template_tags(&clients.ec2, t).await.unwrap_or_default(),
            None => BTreeMap::new(),
        };
        let user_data = match &template_id {
            Some(t) => fleet::launch_template_user_data(&clients.ec2, t).await.unwrap_or_default(),
            None => None,
        };
        let args = args_from_tags(&template_tags).unwrap_or_default();
        let opt = |v: Option<String>| v.map_or(Val::Null, Val::Known);
        let rollout = if args.health_timeout.is_some()
            || args.min_healthy_percent.is_some()
            || args.drain_timeout.is_some()
        {
            Val::Known(RolloutSettings {
                health_timeout: opt(args.health_timeout.clone()),
                min_healthy_percent: args.min_healthy_percent.map_or(Val::Null, Val::Known),
                drain_timeout: opt(args.drain_timeout.clone()),
            })
        } else {
            Val::Null
        };
        let model = Model {
            name: Val::Known(app.clone()),
            ami_id: opt(fleet.tags.get(fleet_tags::AMI).cloned()),
            instance_types: Val::Known(
                args.instance_types.clone().unwrap_or_else(|| fleet.instance_types.clone()),
            ),
            target_capacity: Val::Known(fleet.target_capacity),
            on_demand_capacity: args.on_demand_capacity.map_or(Val::Null, Val::Known),
            allocation_strategy: opt(args.allocation_strategy),
            instance_pools_to_use_count: args.instance_pools_to_use_count.map_or(Val::Null, Val::Known),
            max_price: opt(args.max_price),
            interruption_behavior: opt(args.interruption_behavior),
            subnet_ids: args.subnet_ids.map_or(Val::Null, Val::Known),
            availability_zones: args.availability_zones.map_or(Val::Null, Val::Known),
            security_groups: args.security_groups.map_or(Val::Null, Val::Known),
            iam_instance_profile: opt(args.iam_instance_profile),
            iam_fleet_role: opt(args.iam_fleet_role),
            target_groups: args.target_groups.clone().map_or(Val::Null, Val::Known),
            user_data: opt(user_data),
            key_name: opt(args.key_name),
            tags: args.tags.map_or(Val::Null, Val::Known),
            valid_until: opt(args.valid_until),
            rollout,
            timeouts: Val::Null,
            id: Val::Known(app),
            fleet_id: Val::Known(fleet.id.clone()),
            instance_ids: Val::Known(Vec::new()),
            generation: Val::Known(generation),
            healthy_count: Val::Known(0),
            commit: opt(fleet.tags.get(ami_tags::COMMIT).cloned()),
            target_group_arns: Val::Known(if fleet.target_group_arns.is_empty() {
                match args.target_groups {
                    Some(refs) => match elb::resolve_target_groups(&clients.elbv2, &refs).await {
                        Ok(Ok(groups)) => groups.into_iter().map(|g| g.arn).collect(),
                        _ => Vec::new(),
                    },
                    None => Vec::new(),
                }
            } else {
                fleet.target_group_arns.clone()
            }),
            launch_template_id: opt(template_id),
            stray_fleet_ids: Val::Known(Vec::new()),
        };
        Some(State { value: encode(&model, diags)?, private: Vec::new() })
    }
}

/// The attributes only the provider sets.
const COMPUTED: [&str; 9] = [
    "id",
    "fleet_id",
    "instance_ids",
    "generation",
    "healthy_count",
    "commit",
    "target_group_arns",
    "launch_template_id",
    "stray_fleet_ids",
];

fn copy_computed(prior: &Model, planned: &mut Model) {
    planned.id = prior.id.clone();
    planned.fleet_id = prior.fleet_id.clone();
    planned.instance_ids = prior.instance_ids.clone();
    planned.generation = prior.generation.clone();
    planned.healthy_count = prior.healthy_count.clone();
    planned.commit = prior.commit.clone();
    planned.target_group_arns = prior.target_group_arns.clone();
    planned.launch_template_id = prior.launch_template_id.clone();
    planned.stray_fleet_ids = prior.stray_fleet_ids.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            name: Val::Known("web".into()),
            ami_id: Val::Known("ami-1".into()),
            instance_types: Val::Known(vec!["t3.small".into()]),
            target_capacity: Val::Known(2),
            ..Model::default()
        }
    }

    #[test]
    fn changes_are_classified() {
        let prior = model();
        let mut next = model();
        assert_eq!(change_kind(&prior, &next), ChangeKind::Settings);
        next.target_capacity = Val::Known(3);
        assert_eq!(change_kind(&prior, &next), ChangeKind::Capacity);
        next.ami_id = Val::Known("ami-2".into());
        assert_eq!(change_kind(&prior, &next), ChangeKind::Rollout, "rollout wins over capacity");
        let mut unknown = model();
        unknown.ami_id = Val::Unknown;
        assert_eq!(change_kind(&prior, &unknown), ChangeKind::Rollout, "an unknown AMI may differ");
        let mut settings = model();
        settings.rollout =
            Val::Known(RolloutSettings { min_healthy_percent: Val::Known(50), ..Default::default() });
        assert_eq!(change_kind(&prior, &settings), ChangeKind::Settings);
    }

    #[test]
    fn args_round_trip_through_launch_template_tags() {
        let args = Args {
            security_groups: Some(vec!["web-sg".into(); 20]),
            target_groups: Some(vec!["web".into()]),
            tags: Some(BTreeMap::from([("Team".into(), "core".repeat(50))])),
            min_healthy_percent: Some(50),
            ..Args::default()
        };
        let tags = args_tags(&args);
        assert!(tags.len() > 1, "long arguments span several tags");
        assert!(tags.values().all(|v| v.chars().count() <= 256), "each fits a tag value");
        assert_eq!(args_from_tags(&tags), Some(args));
    }

    #[test]
    fn schema_round_trips_a_model() {
        let value = to_value(&model(), &app_schema().value_type()).expect("encode");
        let back: Model = from_value(&value).expect("decode");
        assert_eq!(back.name, Val::Known("web".into()));
        assert_eq!(back.target_capacity, Val::Known(2));
        assert!(back.fleet_id.is_null());
    }
}
