//! Spot Fleet requests: request (idempotent), describe (batched), list, find an app's
//! by tags, their instances, AWS's reason for an error, modify capacity, cancel.

use super::{AwsError, OrNotFound, instances, sdk_tags};
use aws_sdk_ec2::operation::describe_spot_fleet_requests::paginator::DescribeSpotFleetRequestsPaginatorItems;
use aws_sdk_ec2::types::{
    Filter, FleetLaunchTemplateSpecification, LaunchTemplateConfig, LaunchTemplateOverrides,
    LoadBalancersConfig, ResourceType, SpotFleetRequestConfig, SpotFleetRequestConfigData, TagSpecification,
    TargetGroup, TargetGroupsConfig,
};
use conventions::fleet_tags;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// AWS's answers for a Spot Fleet request id that names no request.
pub const NOT_FOUND: &[&str] = &["InvalidSpotFleetRequestId.NotFound", "InvalidSpotFleetRequestId.Malformed"];

/// The tag Spot Fleet puts on every instance it launches.
pub const FLEET_ID_TAG: &str = "aws:ec2spot:fleet-request-id";

/// Submitted, active or being modified: the request serves (or will).
pub fn is_open_state(state: &str) -> bool {
    matches!(state, "submitted" | "active" | "modifying")
}

/// A Spot Fleet request as the provider sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fleet {
    pub id: String,
    /// submitted | active | modifying | cancelled_running | cancelled_terminating | cancelled | failed | expired
    pub state: String,
    /// error | pending_fulfillment | pending_termination | fulfilled (absent on some emulators)
    pub activity: Option<String>,
    pub target_capacity: u32,
    pub on_demand_capacity: u32,
    pub fulfilled_capacity: f64,
    pub tags: BTreeMap<String, String>,
    pub launch_template_id: Option<String>,
    pub instance_types: Vec<String>,
    pub subnet_ids: Vec<String>,
    pub allocation_strategy: Option<String>,
    pub fleet_role: Option<String>,
    pub target_group_arns: Vec<String>,
}

impl Fleet {
    /// Submitted, active or being modified: it serves (or will).
    pub fn is_open(&self) -> bool {
        is_open_state(&self.state)
    }

    /// Open and tagged with `app`: one of the app's fleets that serve (or will).
    pub fn is_open_of(&self, app: &str) -> bool {
        self.is_open() && self.tags.get(fleet_tags::APP).map(String::as_str) == Some(app)
    }

    pub fn generation(&self) -> Option<u64> {
        self.tags.get(fleet_tags::GENERATION)?.parse().ok()
    }

    /// The token of the configuration it was requested with (none on fleets from before
    /// the configuration tag).
    pub fn config_token(&self) -> Option<&str> {
        self.tags.get(fleet_tags::CONFIG).map(String::as_str)
    }

    /// The Terraform object that owns it (none on fleets from before ownership).
    pub fn owner(&self) -> Option<&str> {
        self.tags.get(fleet_tags::OWNER).map(String::as_str)
    }

    /// Whether the apply that made it serve finished (see [`fleet_tags::COMMITTED`]).
    pub fn is_committed(&self) -> bool {
        self.tags.contains_key(fleet_tags::COMMITTED)
    }

    fn from_sdk(config: &SpotFleetRequestConfig) -> Option<Fleet> {
        let data = config.spot_fleet_request_config();
        let templates = data.map(|d| d.launch_template_configs()).unwrap_or_default();
        let overrides: Vec<&LaunchTemplateOverrides> = templates.iter().flat_map(|t| t.overrides()).collect();
        let mut instance_types: Vec<String> =
            overrides.iter().filter_map(|o| o.instance_type()).map(|t| t.as_str().to_owned()).collect();
        let mut subnet_ids: Vec<String> =
            overrides.iter().filter_map(|o| o.subnet_id()).map(str::to_owned).collect();
        // Legacy launch specifications (and emulators that turn templates into them).
        for spec in data.map(|d| d.launch_specifications()).unwrap_or_default() {
            instance_types.extend(spec.instance_type().map(|t| t.as_str().to_owned()));
            subnet_ids.extend(spec.subnet_id().map(str::to_owned));
        }
        dedup(&mut instance_types);
        dedup(&mut subnet_ids);
        let count = |n: Option<i32>| n.and_then(|c| u32::try_from(c).ok()).unwrap_or(0);
        Some(Fleet {
            id: config.spot_fleet_request_id()?.to_owned(),
            state: config.spot_fleet_request_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            activity: config.activity_status().map(|a| a.as_str().to_owned()),
            target_capacity: count(data.and_then(|d| d.target_capacity())),
            on_demand_capacity: count(data.and_then(|d| d.on_demand_target_capacity())),
            fulfilled_capacity: data.and_then(|d| d.fulfilled_capacity()).unwrap_or(0.0),
            tags: config
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            launch_template_id: templates
                .iter()
                .find_map(|t| t.launch_template_specification()?.launch_template_id())
                .map(str::to_owned),
            instance_types,
            subnet_ids,
            allocation_strategy: data.and_then(|d| d.allocation_strategy()).map(|a| a.as_str().to_owned()),
            fleet_role: data.and_then(|d| d.iam_fleet_role()).map(str::to_owned),
            target_group_arns: data
                .and_then(|d| d.load_balancers_config())
                .and_then(|l| l.target_groups_config())
                .map(|t| t.target_groups().iter().filter_map(|g| g.arn()).map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    }
}

fn dedup(items: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

/// How Spot capacity is bought, in Spot Fleet's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpotOptions {
    /// `lowestPrice`, `diversified`, `capacityOptimized` or `priceCapacityOptimized`.
    pub allocation_strategy: String,
    pub instance_pools_to_use_count: Option<u32>,
    /// USD per instance-hour; none: the On-Demand price.
    pub max_price: Option<String>,
    /// `terminate`, `stop` or `hibernate`.
    pub interruption_behavior: String,
    /// Capacity rebalancing: `launch` or `launch-before-terminate`, with the
    /// termination delay in seconds for the latter.
    pub capacity_rebalance: Option<(String, Option<u32>)>,
}

/// One Spot Fleet request, tagged at creation.
#[derive(Clone, Debug)]
pub struct FleetRequest<'a> {
    /// What failed, in errors: "requesting Spot Fleet for app web (generation 2)".
    pub action: String,
    pub template_id: &'a str,
    pub fleet_role_arn: &'a str,
    /// The request's idempotency token: a retry with it gets the same fleet.
    pub client_token: &'a str,
    pub instance_types: &'a [String],
    pub subnet_ids: &'a [String],
    pub availability_zones: &'a [String],
    pub target_capacity: u32,
    pub on_demand_capacity: u32,
    pub spot: &'a SpotOptions,
    /// RFC 3339; the request expires then (its instances are terminated).
    pub valid_until: Option<&'a str>,
    pub target_group_arns: &'a [String],
    pub tags: &'a BTreeMap<String, String>,
}

/// Requests a fleet; returns its id.
pub async fn request(ec2: &aws_sdk_ec2::Client, request: &FleetRequest<'_>) -> Result<String, AwsError> {
    let mut overrides = Vec::new();
    for instance_type in request.instance_types {
        let base = || LaunchTemplateOverrides::builder().instance_type(instance_type.as_str().into());
        if !request.subnet_ids.is_empty() {
            overrides.extend(request.subnet_ids.iter().map(|s| base().subnet_id(s).build()));
        } else if !request.availability_zones.is_empty() {
            overrides
                .extend(request.availability_zones.iter().map(|az| base().availability_zone(az).build()));
        } else {
            overrides.push(base().build());
        }
    }
    let template = LaunchTemplateConfig::builder()
        .launch_template_specification(
            FleetLaunchTemplateSpecification::builder()
                .launch_template_id(request.template_id)
                .version("$Latest")
                .build(),
        )
        .set_overrides(Some(overrides))
        .build();
    let spot = request.spot;
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    let mut config = SpotFleetRequestConfigData::builder()
        .iam_fleet_role(request.fleet_role_arn)
        .target_capacity(count(request.target_capacity))
        .on_demand_target_capacity(count(request.on_demand_capacity))
        .allocation_strategy(spot.allocation_strategy.as_str().into())
        .instance_interruption_behavior(spot.interruption_behavior.as_str().into())
        .r#type(aws_sdk_ec2::types::FleetType::Maintain)
        .terminate_instances_with_expiration(true)
        .replace_unhealthy_instances(false)
        .client_token(request.client_token)
        .launch_template_configs(template)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SpotFleetRequest)
                .set_tags(Some(sdk_tags(request.tags)))
                .build(),
        )
        .set_spot_price(spot.max_price.clone())
        .set_instance_pools_to_use_count(
            spot.instance_pools_to_use_count.and_then(|n| i32::try_from(n).ok()),
        );
    if let Some((strategy, delay)) = &spot.capacity_rebalance {
        use aws_sdk_ec2::types::{ReplacementStrategy, SpotCapacityRebalance, SpotMaintenanceStrategies};
        let rebalance = SpotCapacityRebalance::builder()
            .replacement_strategy(ReplacementStrategy::from(strategy.as_str()))
            .set_termination_delay(delay.and_then(|d| i32::try_from(d).ok()))
            .build();
        config = config.spot_maintenance_strategies(
            SpotMaintenanceStrategies::builder().capacity_rebalance(rebalance).build(),
        );
    }
    if let Some(until) = request.valid_until {
        let parsed =
            aws_smithy_types::DateTime::from_str(until, aws_smithy_types::date_time::Format::DateTime)
                .map_err(|e| AwsError::plain(request.action.clone(), format!("reading valid_until: {e}")))?;
        config = config.valid_until(parsed);
    }
    if !request.target_group_arns.is_empty() {
        let groups =
            request.target_group_arns.iter().map(|arn| TargetGroup::builder().arn(arn).build()).collect();
        config = config.load_balancers_config(
            LoadBalancersConfig::builder()
                .target_groups_config(TargetGroupsConfig::builder().set_target_groups(Some(groups)).build())
                .build(),
        );
    }
    let out = ec2
        .request_spot_fleet()
        .spot_fleet_request_config(config.build())
        .send()
        .await
        .map_err(|e| AwsError::new(request.action.clone(), &e))?;
    out.spot_fleet_request_id()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::plain(request.action.clone(), "no fleet id in the answer"))
}

/// The fleets among `ids` that still exist, in one call.
pub async fn describe_fleets(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<Fleet>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result = ec2
        .describe_spot_fleet_requests()
        .set_spot_fleet_request_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing Spot Fleets {}", ids.join(", ")), &e));
    match result {
        Ok(out) => Ok(out.spot_fleet_request_configs().iter().filter_map(Fleet::from_sdk).collect()),
        // A batch fails as a whole when one id is gone: that fleet is gone.
        Err(e) if e.is(NOT_FOUND) && ids.len() == 1 => Ok(Vec::new()),
        Err(e) if e.is(NOT_FOUND) => {
            let mut fleets = Vec::new();
            for id in ids {
                fleets.extend(Box::pin(describe_fleets(ec2, std::slice::from_ref(id))).await?);
            }
            Ok(fleets)
        }
        Err(e) => Err(e),
    }
}

pub async fn find_fleet(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<Fleet>, AwsError> {
    Ok(describe_fleets(ec2, &[id.to_owned()]).await?.into_iter().find(|f| f.id == id))
}

/// Every Spot Fleet request of the account, page by page (AWS keeps cancelled ones
/// for a while).
fn every_fleet(ec2: &aws_sdk_ec2::Client) -> DescribeSpotFleetRequestsPaginatorItems {
    ec2.describe_spot_fleet_requests().into_paginator().page_size(1000).items()
}

/// Every Spot Fleet request of the account as EC2 describes it.
pub async fn all_fleet_configs(ec2: &aws_sdk_ec2::Client) -> Result<Vec<SpotFleetRequestConfig>, AwsError> {
    every_fleet(ec2).send().try_collect().await.map_err(|e| AwsError::new("listing Spot Fleet requests", &e))
}

/// The open fleets of `app` in the account, asked now.
pub async fn open_fleets(ec2: &aws_sdk_ec2::Client, app: &str) -> Result<Vec<Fleet>, AwsError> {
    Ok(all_fleets(ec2).await?.into_iter().filter(|f| f.is_open_of(app)).collect())
}

/// Every Spot Fleet request of the account.
pub async fn all_fleets(ec2: &aws_sdk_ec2::Client) -> Result<Vec<Fleet>, AwsError> {
    Ok(all_fleet_configs(ec2).await?.iter().filter_map(Fleet::from_sdk).collect())
}

/// An open fleet of `app` tagged with `generation` (left by an interrupted run between
/// request and state save). Stops listing at the first page that has it.
pub async fn find_open_fleet(
    ec2: &aws_sdk_ec2::Client,
    app: &str,
    generation: u64,
) -> Result<Option<Fleet>, AwsError> {
    let generation = generation.to_string();
    let mut pages = every_fleet(ec2).send();
    while let Some(config) = pages.next().await {
        let config =
            config.map_err(|e| AwsError::new(format!("looking for Spot Fleets of app {app}"), &e))?;
        if let Some(fleet) = Fleet::from_sdk(&config)
            && fleet.is_open_of(app)
            && fleet.tags.get(fleet_tags::GENERATION) == Some(&generation)
        {
            return Ok(Some(fleet));
        }
    }
    Ok(None)
}

/// The running (or starting) instances of every app's Spot Fleet, by fleet id, with
/// what the call says of each (type, zone, Spot or On-Demand, platform), in one
/// paginated call: DescribeSpotFleetInstances takes one fleet at a time. Only
/// instances tagged with an app are listed (their launch templates tag them), so
/// other fleets of the account cost nothing.
pub async fn all_fleet_instances(
    ec2: &aws_sdk_ec2::Client,
) -> Result<HashMap<String, Vec<instances::RunningInstance>>, AwsError> {
    let filters = vec![
        Filter::builder().name("tag-key").values(fleet_tags::APP).build(),
        instances::in_states(&["pending", "running"]),
    ];
    let found = instances::describe(ec2, filters, || "listing Spot Fleet instances".to_owned()).await?;
    let mut by_fleet: HashMap<String, Vec<instances::RunningInstance>> = HashMap::new();
    for instance in &found {
        let fleet = instance.tags().iter().find(|t| t.key() == Some(FLEET_ID_TAG)).and_then(|t| t.value());
        if let (Some(fleet), Some(running)) = (fleet, instances::RunningInstance::of(instance)) {
            by_fleet.entry(fleet.to_owned()).or_default().push(running);
        }
    }
    for instances in by_fleet.values_mut() {
        instances.sort_by(|a, b| a.id.cmp(&b.id));
    }
    Ok(by_fleet)
}

/// The fleet's running instances. (DescribeSpotFleetInstances has no paginator in the
/// SDK: its pages are followed here.)
pub async fn fleet_instances(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<String>, AwsError> {
    let mut instances = Vec::new();
    let mut next_token = None;
    loop {
        let out = ec2
            .describe_spot_fleet_instances()
            .spot_fleet_request_id(id)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("listing instances of Spot Fleet {id}"), &e))?;
        instances.extend(out.active_instances().iter().filter_map(|i| i.instance_id()).map(str::to_owned));
        next_token = out.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    instances.sort();
    Ok(instances)
}

/// AWS's reason when the fleet reports an error: the latest `error` history event.
/// Emulators without request history answer with nothing.
pub async fn fleet_error(ec2: &aws_sdk_ec2::Client, fleet: &Fleet) -> Result<Option<String>, AwsError> {
    if fleet.activity.as_deref() != Some("error") {
        return Ok(None);
    }
    let generic = || Some(format!("Spot Fleet {} reports activity status \"error\"", fleet.id));
    let history = ec2
        .describe_spot_fleet_request_history()
        .spot_fleet_request_id(&fleet.id)
        .start_time(aws_smithy_types::DateTime::from_secs(0))
        .event_type(aws_sdk_ec2::types::EventType::Error)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("reading the history of Spot Fleet {}", fleet.id), &e));
    match history {
        Ok(out) => Ok(out
            .history_records()
            .iter()
            .filter_map(|r| r.event_information())
            .map(|i| {
                let sub = i.event_sub_type().unwrap_or("error");
                let text = i.event_description().unwrap_or_default();
                if text.is_empty() { sub.to_owned() } else { format!("{sub}: {text}") }
            })
            .next_back()
            .or_else(generic)),
        Err(e) => {
            tracing::debug!("no request history, reporting the activity status alone: {e}");
            Ok(generic())
        }
    }
}

/// Adds (or overwrites) tags of a Spot Fleet request.
pub async fn tag_fleet(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    super::tag(ec2, &[id.to_owned()], tags).await
}

pub async fn modify_capacity(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    target: u32,
    on_demand: u32,
) -> Result<(), AwsError> {
    ec2.modify_spot_fleet_request()
        .spot_fleet_request_id(id)
        .target_capacity(i32::try_from(target).unwrap_or(i32::MAX))
        .on_demand_target_capacity(i32::try_from(on_demand).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("changing the capacity of Spot Fleet {id} to {target}"), &e))?;
    Ok(())
}

/// Lowers the fleet's capacity to `target` without letting it choose what to
/// terminate (`noTermination`), then terminates exactly `instances`: the fleet is at its
/// target once they are gone, so a `maintain` fleet does not replace them.
pub async fn shrink(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    target: u32,
    on_demand: u32,
    instances: &[String],
) -> Result<(), AwsError> {
    use aws_sdk_ec2::types::ExcessCapacityTerminationPolicy;
    ec2.modify_spot_fleet_request()
        .spot_fleet_request_id(id)
        .target_capacity(i32::try_from(target).unwrap_or(i32::MAX))
        .on_demand_target_capacity(i32::try_from(on_demand).unwrap_or(i32::MAX))
        .excess_capacity_termination_policy(ExcessCapacityTerminationPolicy::NoTermination)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("shrinking Spot Fleet {id} to {target}"), &e))?;
    if instances.is_empty() {
        return Ok(());
    }
    ec2.terminate_instances()
        .set_instance_ids(Some(instances.to_vec()))
        .send()
        .await
        .map_err(|e| {
            AwsError::new(format!("terminating {} instances of Spot Fleet {id}", instances.len()), &e)
        })
        .or_not_found(super::instances::NOT_FOUND)?;
    Ok(())
}

/// Cancels the fleet and terminates its instances; a fleet that is already gone (or
/// cancelled with its instances terminating) is fine.
pub async fn cancel_fleet(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    match find_fleet(ec2, id).await? {
        Some(fleet) if fleet.is_open() || fleet.state == "cancelled_running" => {}
        _ => return Ok(()),
    }
    ec2.cancel_spot_fleet_requests()
        .spot_fleet_request_ids(id)
        .terminate_instances(true)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("cancelling Spot Fleet {id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(())
}
