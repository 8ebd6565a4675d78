//! Spot Fleets and their launch templates: request (idempotent), find by tags,
//! describe (batched), modify capacity, cancel, wait for termination.

use super::AwsError;
use aws_sdk_ec2::types::{
    Filter, FleetLaunchTemplateSpecification, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateConfig,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateOverrides,
    LaunchTemplateTagSpecificationRequest, LoadBalancersConfig, RequestLaunchTemplateData, ResourceType,
    SpotFleetRequestConfigData, Tag, TagSpecification, TargetGroup, TargetGroupsConfig, VolumeType,
};
use conventions::fleet_tags;
use std::collections::BTreeMap;

/// Everything a launch of one generation needs, already resolved to ids and ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetSpec {
    pub app: String,
    pub generation: u64,
    pub ami_id: String,
    pub root_device_name: String,
    pub instance_types: Vec<String>,
    pub subnet_ids: Vec<String>,
    pub availability_zones: Vec<String>,
    pub target_capacity: u32,
    pub on_demand_capacity: u32,
    pub allocation_strategy: String,
    pub instance_pools_to_use_count: Option<u32>,
    pub max_price: Option<String>,
    pub interruption_behavior: String,
    pub fleet_role_arn: String,
    pub valid_until: Option<String>,
    pub security_group_ids: Vec<String>,
    pub instance_profile_arn: Option<String>,
    pub user_data: Option<String>,
    pub key_name: Option<String>,
    pub target_group_arns: Vec<String>,
    /// Tags for the fleet, its instances and volumes (user tags, default tags,
    /// `immutable:*`, `Commit`).
    pub tags: BTreeMap<String, String>,
    /// Extra tags for the launch template only (the app's arguments, for import).
    pub template_tags: BTreeMap<String, String>,
}

impl FleetSpec {
    pub fn template_name(&self) -> String {
        template_name(&self.app, self.generation)
    }

    /// Idempotency token: the same app, generation and configuration always give the
    /// same token, so a retried request cannot create a second fleet (max 64 chars).
    pub fn client_token(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = format!("{self:?}");
        let digest = Sha256::digest(canonical.as_bytes());
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        let app: String = self.app.chars().take(30).collect();
        format!("{app}-g{}-{hex}", self.generation)
    }
}

/// The launch template of one generation of an app.
pub fn template_name(app: &str, generation: u64) -> String {
    format!("immutable-{app}-g{generation}")
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
        matches!(self.state.as_str(), "submitted" | "active" | "modifying")
    }

    /// Open and tagged with `app`: one of the app's fleets that serve (or will).
    pub fn is_open_of(&self, app: &str) -> bool {
        self.is_open() && self.tags.get(fleet_tags::APP).map(String::as_str) == Some(app)
    }

    pub fn generation(&self) -> Option<u64> {
        self.tags.get(fleet_tags::GENERATION)?.parse().ok()
    }

    /// Whether the fleet was requested with another configuration than `spec`'s
    /// (fleets from before the configuration tag count as the same).
    pub fn runs_other_config_than(&self, spec: &FleetSpec) -> bool {
        self.tags.get(fleet_tags::CONFIG).is_some_and(|token| *token != spec.client_token())
    }
}

fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// Creates the generation's launch template (IMDSv2 required, encrypted root volume,
/// no SSH key unless set), or returns the one an interrupted run already created.
pub async fn ensure_launch_template(ec2: &aws_sdk_ec2::Client, spec: &FleetSpec) -> Result<String, AwsError> {
    let name = spec.template_name();
    if let Some(id) = find_launch_template(ec2, &name).await? {
        // Left by an interrupted run: reused when it holds this configuration,
        // replaced when it holds another (no fleet uses it: see the runner).
        if launch_template_tags(ec2, &id).await?.get(fleet_tags::CONFIG) == Some(&spec.client_token()) {
            return Ok(id);
        }
        tracing::info!(template = %id, "launch template {name} holds another configuration; replacing it");
        delete_launch_template(ec2, &id).await?;
    }
    let tag_spec = |resource| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(resource)
            .set_tags(Some(tag_list(&spec.tags)))
            .build()
    };
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&spec.ami_id)
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(2)
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&spec.root_device_name)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .encrypted(true)
                        .delete_on_termination(true)
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Instance))
        .tag_specifications(tag_spec(ResourceType::Volume))
        .set_security_group_ids(
            (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.clone()),
        )
        .set_key_name(spec.key_name.clone());
    if let Some(arn) = &spec.instance_profile_arn {
        data = data.iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder().arn(arn).build(),
        );
    }
    if let Some(user_data) = &spec.user_data {
        use base64::Engine as _;
        data = data.user_data(base64::engine::general_purpose::STANDARD.encode(user_data));
    }
    let mut template_tags = spec.tags.clone();
    template_tags.extend(spec.template_tags.clone());
    template_tags.insert(fleet_tags::CONFIG.to_owned(), spec.client_token());
    let out = ec2
        .create_launch_template()
        .launch_template_name(&name)
        .client_token(spec.client_token())
        .launch_template_data(data.build())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(tag_list(&template_tags)))
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::new(format!("creating launch template {name}"), &e))?;
    out.launch_template().and_then(|t| t.launch_template_id()).map(str::to_owned).ok_or_else(|| {
        AwsError::plain(format!("creating launch template {name}"), "no template id in the answer")
    })
}

pub async fn find_launch_template(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<Option<String>, AwsError> {
    let out = ec2
        .describe_launch_templates()
        .filters(Filter::builder().name("launch-template-name").values(name).build())
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.launch_templates().first().and_then(|t| t.launch_template_id()).map(str::to_owned)),
        Err(e) => {
            let err = AwsError::new(format!("looking up launch template {name}"), &e);
            match err.code.as_deref() {
                Some("InvalidLaunchTemplateName.NotFoundException") => Ok(None),
                _ => Err(err),
            }
        }
    }
}

/// The launch template's tags (for import).
pub async fn launch_template_tags(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    let out = ec2
        .describe_launch_templates()
        .launch_template_ids(template_id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing launch template {template_id}"), &e))?;
    Ok(out
        .launch_templates()
        .first()
        .map(|t| t.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect())
        .unwrap_or_default())
}

/// The user data of the template's latest version, decoded.
pub async fn launch_template_user_data(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
) -> Result<Option<String>, AwsError> {
    let out = ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions("$Latest")
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing launch template {template_id}"), &e))?;
    use base64::Engine as _;
    Ok(out
        .launch_template_versions()
        .first()
        .and_then(|v| v.launch_template_data())
        .and_then(|d| d.user_data())
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok()))
}

pub async fn delete_launch_template(ec2: &aws_sdk_ec2::Client, template_id: &str) -> Result<(), AwsError> {
    match ec2.delete_launch_template().launch_template_id(template_id).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = AwsError::new(format!("deleting launch template {template_id}"), &e);
            match err.code.as_deref() {
                Some(code) if code.contains("NotFound") => Ok(()),
                _ => Err(err),
            }
        }
    }
}

/// Requests the fleet for `spec` from `template_id`. Tags go on at creation.
pub async fn request_fleet(
    ec2: &aws_sdk_ec2::Client,
    spec: &FleetSpec,
    template_id: &str,
) -> Result<String, AwsError> {
    let mut overrides = Vec::new();
    for instance_type in &spec.instance_types {
        let base = || LaunchTemplateOverrides::builder().instance_type(instance_type.as_str().into());
        if !spec.subnet_ids.is_empty() {
            overrides.extend(spec.subnet_ids.iter().map(|s| base().subnet_id(s).build()));
        } else if !spec.availability_zones.is_empty() {
            overrides.extend(spec.availability_zones.iter().map(|az| base().availability_zone(az).build()));
        } else {
            overrides.push(base().build());
        }
    }
    let template = LaunchTemplateConfig::builder()
        .launch_template_specification(
            FleetLaunchTemplateSpecification::builder()
                .launch_template_id(template_id)
                .version("$Latest")
                .build(),
        )
        .set_overrides(Some(overrides))
        .build();
    let mut tags = spec.tags.clone();
    tags.insert(fleet_tags::CONFIG.to_owned(), spec.client_token());
    let mut config = SpotFleetRequestConfigData::builder()
        .iam_fleet_role(&spec.fleet_role_arn)
        .target_capacity(i32::try_from(spec.target_capacity).unwrap_or(i32::MAX))
        .on_demand_target_capacity(i32::try_from(spec.on_demand_capacity).unwrap_or(i32::MAX))
        .allocation_strategy(spec.allocation_strategy.as_str().into())
        .instance_interruption_behavior(spec.interruption_behavior.as_str().into())
        .r#type(aws_sdk_ec2::types::FleetType::Maintain)
        .terminate_instances_with_expiration(true)
        .replace_unhealthy_instances(false)
        .client_token(spec.client_token())
        .launch_template_configs(template)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SpotFleetRequest)
                .set_tags(Some(tag_list(&tags)))
                .build(),
        )
        .set_spot_price(spec.max_price.clone())
        .set_instance_pools_to_use_count(
            spec.instance_pools_to_use_count.and_then(|n| i32::try_from(n).ok()),
        );
    if let Some(until) = &spec.valid_until {
        let parsed =
            aws_smithy_types::DateTime::from_str(until, aws_smithy_types::date_time::Format::DateTime)
                .map_err(|e| AwsError::plain("reading valid_until", e.to_string()))?;
        config = config.valid_until(parsed);
    }
    if !spec.target_group_arns.is_empty() {
        config = config.load_balancers_config(
            LoadBalancersConfig::builder()
                .target_groups_config(
                    TargetGroupsConfig::builder()
                        .set_target_groups(Some(
                            spec.target_group_arns
                                .iter()
                                .map(|arn| TargetGroup::builder().arn(arn).build())
                                .collect(),
                        ))
                        .build(),
                )
                .build(),
        );
    }
    let config = config.build();
    let out = ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.map_err(|e| {
        AwsError::new(
            format!("requesting Spot Fleet for app {} (generation {})", spec.app, spec.generation),
            &e,
        )
    })?;
    out.spot_fleet_request_id()
        .map(str::to_owned)
        .ok_or_else(|| AwsError::plain("requesting Spot Fleet", "no fleet id in the answer"))
}

fn fleet_from_sdk(config: &aws_sdk_ec2::types::SpotFleetRequestConfig) -> Option<Fleet> {
    let data = config.spot_fleet_request_config();
    let templates = data.map(|d| d.launch_template_configs()).unwrap_or_default();
    let overrides: Vec<&LaunchTemplateOverrides> = templates.iter().flat_map(|t| t.overrides()).collect();
    let mut instance_types: Vec<String> =
        overrides.iter().filter_map(|o| o.instance_type()).map(|t| t.as_str().to_owned()).collect();
    let mut subnet_ids: Vec<String> =
        overrides.iter().filter_map(|o| o.subnet_id()).map(str::to_owned).collect();
    // Legacy launch specifications (and emulators that flatten templates into them).
    for spec in data.map(|d| d.launch_specifications()).unwrap_or_default() {
        if let Some(t) = spec.instance_type() {
            instance_types.push(t.as_str().to_owned());
        }
        if let Some(s) = spec.subnet_id() {
            subnet_ids.push(s.to_owned());
        }
    }
    dedup(&mut instance_types);
    dedup(&mut subnet_ids);
    Some(Fleet {
        id: config.spot_fleet_request_id()?.to_owned(),
        state: config.spot_fleet_request_state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        activity: config.activity_status().map(|a| a.as_str().to_owned()),
        target_capacity: data
            .and_then(|d| d.target_capacity())
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0),
        on_demand_capacity: data
            .and_then(|d| d.on_demand_target_capacity())
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0),
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

fn dedup(items: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

/// The fleets among `ids` that still exist, in one call.
pub async fn describe_fleets(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<Fleet>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let result =
        ec2.describe_spot_fleet_requests().set_spot_fleet_request_ids(Some(ids.to_vec())).send().await;
    match result {
        Ok(out) => Ok(out.spot_fleet_request_configs().iter().filter_map(fleet_from_sdk).collect()),
        Err(e) => {
            let err = AwsError::new(format!("describing Spot Fleets {ids:?}"), &e);
            match err.code.as_deref() {
                // A batch fails as a whole when one id is gone: that fleet is gone.
                Some("InvalidSpotFleetRequestId.NotFound" | "InvalidSpotFleetRequestId.Malformed")
                    if ids.len() == 1 =>
                {
                    Ok(Vec::new())
                }
                Some("InvalidSpotFleetRequestId.NotFound") => {
                    let mut fleets = Vec::new();
                    for id in ids {
                        fleets.extend(Box::pin(describe_fleets(ec2, std::slice::from_ref(id))).await?);
                    }
                    Ok(fleets)
                }
                _ => Err(err),
            }
        }
    }
}

/// Every Spot Fleet request of the account (AWS keeps cancelled ones for a while).
pub async fn all_fleets(ec2: &aws_sdk_ec2::Client) -> Result<Vec<Fleet>, AwsError> {
    let mut fleets = Vec::new();
    let mut next_token = None;
    loop {
        let out = ec2
            .describe_spot_fleet_requests()
            .max_results(1000)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new("listing Spot Fleet requests", &e))?;
        fleets.extend(out.spot_fleet_request_configs().iter().filter_map(fleet_from_sdk));
        next_token = out.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            return Ok(fleets);
        }
    }
}

/// The tag Spot Fleet puts on every instance it launches.
pub const FLEET_ID_TAG: &str = "aws:ec2spot:fleet-request-id";

/// The running (or starting) instances of every app's Spot Fleet, by fleet id, in one
/// paginated call: DescribeSpotFleetInstances takes one fleet at a time. Only
/// instances tagged with an app are listed (their launch templates tag them), so
/// other fleets of the account cost nothing.
pub async fn all_fleet_instances(
    ec2: &aws_sdk_ec2::Client,
) -> Result<std::collections::HashMap<String, Vec<String>>, AwsError> {
    let mut by_fleet: std::collections::HashMap<String, Vec<String>> = std::collections::HashMap::new();
    let mut next_token = None;
    loop {
        let out = ec2
            .describe_instances()
            .filters(Filter::builder().name("tag-key").values(fleet_tags::APP).build())
            .filters(
                Filter::builder().name("instance-state-name").values("pending").values("running").build(),
            )
            .max_results(1000)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new("listing Spot Fleet instances", &e))?;
        for instance in out.reservations().iter().flat_map(|r| r.instances()) {
            let fleet =
                instance.tags().iter().find(|t| t.key() == Some(FLEET_ID_TAG)).and_then(|t| t.value());
            if let (Some(fleet), Some(id)) = (fleet, instance.instance_id()) {
                by_fleet.entry(fleet.to_owned()).or_default().push(id.to_owned());
            }
        }
        next_token = out.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    for instances in by_fleet.values_mut() {
        instances.sort();
    }
    Ok(by_fleet)
}

pub async fn find_fleet(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<Fleet>, AwsError> {
    Ok(describe_fleets(ec2, &[id.to_owned()]).await?.into_iter().find(|f| f.id == id))
}

/// The newest generation among the open fleets tagged with this app. A create finds
/// one when Terraform lost track of the app: a run killed after it cancelled the
/// old fleet and before Terraform saved the new one leaves a state naming the
/// cancelled fleet, which the refresh then drops.
pub async fn newest_open_generation(ec2: &aws_sdk_ec2::Client, app: &str) -> Result<Option<u64>, AwsError> {
    Ok(all_fleets(ec2).await?.iter().filter(|f| f.is_open_of(app)).filter_map(Fleet::generation).max())
}

/// An open fleet already tagged with this app and generation (left by an interrupted
/// run between request and state save).
pub async fn find_fleet_by_tags(
    ec2: &aws_sdk_ec2::Client,
    app: &str,
    generation: u64,
) -> Result<Option<Fleet>, AwsError> {
    let mut next_token = None;
    loop {
        let out = ec2
            .describe_spot_fleet_requests()
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("looking for Spot Fleets of app {app}"), &e))?;
        let generation = generation.to_string();
        if let Some(fleet) = out
            .spot_fleet_request_configs()
            .iter()
            .filter_map(fleet_from_sdk)
            .find(|f| f.is_open_of(app) && f.tags.get(fleet_tags::GENERATION) == Some(&generation))
        {
            return Ok(Some(fleet));
        }
        next_token = out.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            return Ok(None);
        }
    }
}

/// The fleet's running instances.
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
    let since = aws_smithy_types::DateTime::from_secs(0);
    let out = ec2
        .describe_spot_fleet_request_history()
        .spot_fleet_request_id(&fleet.id)
        .start_time(since)
        .event_type(aws_sdk_ec2::types::EventType::Error)
        .send()
        .await;
    let generic = || Some(format!("Spot Fleet {} reports activity status \"error\"", fleet.id));
    match out {
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
            tracing::debug!("no request history for {}: {}", fleet.id, AwsError::new("history", &e));
            Ok(generic())
        }
    }
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
        .map_err(|e| AwsError::new(format!("changing capacity of Spot Fleet {id} to {target}"), &e))?;
    Ok(())
}

/// Cancels the fleet and terminates its instances; a fleet that is already gone is
/// fine.
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
        .map_err(|e| AwsError::new(format!("cancelling Spot Fleet {id}"), &e))?;
    Ok(())
}

/// Instances among `ids` not yet terminated.
pub async fn live_instances(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<String>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_instances()
        .filters(Filter::builder().name("instance-id").set_values(Some(ids.to_vec())).build())
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing instances {ids:?}"), &e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            !matches!(
                i.state().and_then(|s| s.name()).map(|n| n.as_str()),
                Some("terminated" | "shutting-down")
            )
        })
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}
