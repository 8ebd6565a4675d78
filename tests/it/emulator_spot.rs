//! The emulator's Spot Instances (`scripts/emulator/spot.py`): an interruption notice
//! in the instance metadata two minutes before AWS terminates the instance, a Spot
//! Fleet of type maintain replacing it, IMDSv2 sessions, and Spot pools without
//! capacity as the fleet history records them; and its Spot Fleets' capacity
//! (`scripts/emulator/fixes.py`): a target lowered with or without terminating the
//! excess, a target raised, and Capacity Rebalancing.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ec2::types::builders::SpotFleetRequestConfigDataBuilder;
use aws_sdk_ec2::types::{
    AllocationStrategy, EventType, ExcessCapacityTerminationPolicy, FleetLaunchTemplateSpecification,
    FleetType, InstanceType, LaunchTemplateConfig, LaunchTemplateOverrides, ReplacementStrategy,
    RequestLaunchTemplateData, ResourceType, SpotCapacityRebalance, SpotFleetRequestConfigData,
    SpotMaintenanceStrategies, Tag, TagSpecification,
};
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tests::{Account, LocalAws, TEST_CLOCK_SCALE, Watch, register_ami, scaled};

/// Allowance for the test's own polling and a loaded machine, in AWS seconds.
pub(crate) const SLACK: f64 = 30.0;

const NO_CAPACITY: &str = "There is no Spot capacity available that matches your request.";

/// One HTTP/1.1 request to the emulator with extra headers; the status and body, or
/// None when the connection closed without an answer.
pub(crate) fn http(
    account: &Account,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String)> {
    let authority = account.endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).expect("connect to the emulator");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send the request");
    let mut response = Vec::new();
    if stream.read_to_end(&mut response).is_err() || response.is_empty() {
        return None;
    }
    let response = String::from_utf8(response).expect("UTF-8 answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("header end");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status code");
    Some((status, body.to_owned()))
}

/// The instance metadata service of one instance, as the instance would call it.
pub(crate) struct Imds<'a> {
    pub(crate) account: &'a Account,
    pub(crate) instance: String,
}

impl Imds<'_> {
    pub(crate) fn call(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let target = format!("/_immutable/imds/{}/{path}", self.instance);
        http(self.account, method, &target, headers).expect("an answer from the instance metadata service")
    }

    /// A session token (IMDSv2) lasting six hours.
    pub(crate) fn token(&self) -> String {
        let (status, token) =
            self.call("PUT", "latest/api/token", &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")]);
        assert_eq!(status, 200, "PUT latest/api/token: {token}");
        token
    }

    /// GET latest/meta-data/`item` with a session token.
    pub(crate) fn get(&self, token: &str, item: &str) -> (u16, String) {
        self.call("GET", &format!("latest/meta-data/{item}"), &[("X-aws-ec2-metadata-token", token)])
    }
}

/// A Spot Fleet of type maintain over `types` in two subnets of the default VPC, with
/// `target` instances of an AMI of its own; its id.
async fn fleet(ec2: &aws_sdk_ec2::Client, types: &[&str], target: i32) -> String {
    let config = fleet_config(ec2, types, target).await.build();
    let requested =
        ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.expect("RequestSpotFleet");
    requested.spot_fleet_request_id().expect("fleet id").to_owned()
}

/// The configuration of a [`fleet`], whose launch template and AMI are made here (once
/// per account).
async fn fleet_config(
    ec2: &aws_sdk_ec2::Client,
    types: &[&str],
    target: i32,
) -> SpotFleetRequestConfigDataBuilder {
    let ami = register_ami(ec2, "spot-image", &[]).await.expect("register AMI");
    let template = ec2
        .create_launch_template()
        .launch_template_name("spot-web")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(&ami)
                .tag_specifications(
                    aws_sdk_ec2::types::LaunchTemplateTagSpecificationRequest::builder()
                        .resource_type(ResourceType::Instance)
                        .tags(Tag::builder().key("app").value("web").build())
                        .tags(Tag::builder().key("immutable:app").value("web").build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let template_id =
        template.launch_template().and_then(|t| t.launch_template_id()).expect("template id").to_owned();
    let subnets = ec2.describe_subnets().send().await.expect("DescribeSubnets");
    let mut subnets: Vec<(String, String)> = subnets
        .subnets()
        .iter()
        .filter_map(|s| Some((s.availability_zone()?.to_owned(), s.subnet_id()?.to_owned())))
        .collect();
    subnets.sort();
    let overrides = types
        .iter()
        .flat_map(|t| {
            subnets.iter().take(2).map(move |(_, subnet)| {
                LaunchTemplateOverrides::builder()
                    .instance_type(InstanceType::from(*t))
                    .subnet_id(subnet)
                    .build()
            })
        })
        .collect();
    SpotFleetRequestConfigData::builder()
        .iam_fleet_role("arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role")
        .target_capacity(target)
        .allocation_strategy(AllocationStrategy::PriceCapacityOptimized)
        .r#type(FleetType::Maintain)
        .launch_template_configs(
            LaunchTemplateConfig::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecification::builder()
                        .launch_template_id(template_id)
                        .version("$Latest")
                        .build(),
                )
                .set_overrides(Some(overrides))
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SpotFleetRequest)
                .tags(Tag::builder().key("app").value("web").build())
                .build(),
        )
}

pub(crate) async fn fleet_instances(ec2: &aws_sdk_ec2::Client, fleet: &str) -> Vec<String> {
    let answer = ec2
        .describe_spot_fleet_instances()
        .spot_fleet_request_id(fleet)
        .send()
        .await
        .expect("DescribeSpotFleetInstances");
    let mut ids: Vec<String> =
        answer.active_instances().iter().filter_map(|i| i.instance_id()).map(str::to_owned).collect();
    ids.sort();
    ids
}

/// The instance as DescribeInstances shows it.
pub(crate) async fn instance(ec2: &aws_sdk_ec2::Client, id: &str) -> aws_sdk_ec2::types::Instance {
    let answer = ec2.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
    answer.reservations()[0].instances()[0].clone()
}

pub(crate) fn state_of(instance: &aws_sdk_ec2::types::Instance) -> String {
    instance.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default()
}

/// The fleet's activity status, as DescribeSpotFleetRequests reports it.
async fn activity(ec2: &aws_sdk_ec2::Client, fleet: &str) -> String {
    let answer = ec2
        .describe_spot_fleet_requests()
        .spot_fleet_request_ids(fleet)
        .send()
        .await
        .expect("DescribeSpotFleetRequests");
    let config = &answer.spot_fleet_request_configs()[0];
    config.activity_status().map(|a| a.as_str().to_owned()).unwrap_or_default()
}

/// The fleet's history events of `kind`: (sub-type, description, instance id).
async fn history(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
    kind: EventType,
) -> Vec<(String, String, Option<String>)> {
    let answer = ec2
        .describe_spot_fleet_request_history()
        .spot_fleet_request_id(fleet)
        .start_time(DateTime::from_secs(0))
        .event_type(kind)
        .send()
        .await
        .expect("DescribeSpotFleetRequestHistory");
    answer
        .history_records()
        .iter()
        .filter_map(|r| r.event_information())
        .map(|i| {
            (
                i.event_sub_type().unwrap_or_default().to_owned(),
                i.event_description().unwrap_or_default().to_owned(),
                i.instance_id().map(str::to_owned),
            )
        })
        .collect()
}

pub(crate) fn epoch_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

#[tokio::test]
async fn an_interruption_notice_appears_in_instance_metadata_two_minutes_before_termination() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    let ec2 = account.ec2().await;
    let fleet = fleet(&ec2, &["t3.small"], 2).await;
    let before = fleet_instances(&ec2, &fleet).await;
    assert_eq!(before.len(), 2, "the fleet launched its target: {before:?}");
    let victim = Imds { account: &account, instance: before[0].clone() };
    let token = victim.token();
    assert_eq!(victim.get(&token, "instance-life-cycle"), (200, "spot".to_owned()));
    assert_eq!(victim.get(&token, "spot/instance-action").0, 404, "no notice before the interruption");

    let asked = Instant::now();
    let asked_epoch = epoch_now();
    account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={}", victim.instance), None)
        .expect("interrupt");
    let (status, notice) = victim.get(&token, "spot/instance-action");
    assert_eq!(status, 200, "the notice is posted at once: {notice}");
    let notice: Value = serde_json::from_str(&notice).expect("the notice is JSON");
    assert_eq!(notice["action"], "terminate");
    let at = notice["time"].as_str().expect("the notice has a time");
    let at = DateTime::from_str(at, DateTimeFormat::DateTime).expect("an RFC 3339 time").as_secs_f64();
    // Whole seconds, as AWS writes them: the termination time, 120 AWS seconds on.
    let expected = asked_epoch + 120.0 * TEST_CLOCK_SCALE;
    assert!((expected - 1.5..expected + 0.5).contains(&at), "notice time {at}, expected about {expected}");

    let listed: Value =
        serde_json::from_str(&account.control("GET", "/_immutable/spot", None).expect("list"))
            .expect("listing is JSON");
    let scheduled = &listed["interruptions"][0];
    let lead = scheduled["termination_epoch"].as_f64().expect("termination")
        - scheduled["notice_epoch"].as_f64().expect("notice");
    assert!((lead / TEST_CLOCK_SCALE - 120.0).abs() < 0.5, "notice {lead} s before termination: {listed}");

    // Running through the two minutes, terminated at their end.
    let (terminated, waited) = loop {
        let seen = instance(&ec2, &victim.instance).await;
        if state_of(&seen) != "running" {
            break (seen, asked.elapsed().as_secs_f64() / TEST_CLOCK_SCALE);
        }
        assert!(asked.elapsed() < scaled(600.0), "{} still running after 600 AWS seconds", victim.instance);
        tokio::time::sleep(scaled(2.0)).await;
    };
    assert_eq!(state_of(&terminated), "terminated");
    assert!(
        (120.0..120.0 + SLACK).contains(&waited),
        "terminated after {waited:.0} AWS seconds, expected 120"
    );
    let reason = terminated.state_reason().and_then(|r| r.code()).unwrap_or_default();
    assert_eq!(reason, "Server.SpotInstanceTermination");
    let (status, _) = victim.get(&token, "instance-id");
    assert_eq!(status, 503, "a terminated instance's metadata service does not answer");

    // The maintain fleet replaces it, tagged as the first instances were.
    let after = fleet_instances(&ec2, &fleet).await;
    assert_eq!(after.len(), 2, "the fleet is back at its target: {after:?}");
    assert!(!after.contains(&victim.instance), "the interrupted instance left the fleet: {after:?}");
    let replacement = after.iter().find(|i| !before.contains(i)).expect("a replacement");
    let tags = instance(&ec2, replacement).await;
    let tag = |key: &str| {
        tags.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_owned)
    };
    assert_eq!(tag("aws:ec2spot:fleet-request-id").as_deref(), Some(fleet.as_str()));
    assert_eq!(tag("app").as_deref(), Some("web"));
    assert_eq!(activity(&ec2, &fleet).await, "fulfilled");

    let changes = history(&ec2, &fleet, EventType::InstanceChange).await;
    let terminated_event = changes
        .iter()
        .position(|(sub, _, id)| sub == "terminated" && id.as_deref() == Some(victim.instance.as_str()));
    let launched_event = changes
        .iter()
        .position(|(sub, _, id)| sub == "launched" && id.as_deref() == Some(replacement.as_str()));
    assert!(
        matches!((terminated_event, launched_event), (Some(t), Some(l)) if t < l),
        "history shows the termination, then the replacement: {changes:?}"
    );
}

#[tokio::test]
async fn a_rebalance_recommendation_comes_its_lead_before_the_notice() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    let ec2 = account.ec2().await;
    let fleet = fleet(&ec2, &["t3.small"], 1).await;
    let imds = Imds { account: &account, instance: fleet_instances(&ec2, &fleet).await[0].clone() };
    let token = imds.token();
    assert_eq!(imds.get(&token, "events/recommendations/rebalance").0, 404);

    let asked = Instant::now();
    account
        .control(
            "POST",
            &format!("/_immutable/spot/interrupt?instance={}&rebalance_lead=60", imds.instance),
            None,
        )
        .expect("interrupt");
    let (status, rebalance) = imds.get(&token, "events/recommendations/rebalance");
    assert_eq!(status, 200, "the recommendation is posted at once");
    assert!(
        serde_json::from_str::<Value>(&rebalance).expect("JSON")["noticeTime"].is_string(),
        "{rebalance}"
    );
    let noticed = loop {
        if imds.get(&token, "spot/instance-action").0 == 200 {
            break asked.elapsed().as_secs_f64() / TEST_CLOCK_SCALE;
        }
        assert!(asked.elapsed() < scaled(600.0), "no notice after 600 AWS seconds");
        tokio::time::sleep(scaled(2.0)).await;
    };
    assert!((60.0..60.0 + SLACK).contains(&noticed), "notice after {noticed:.0} AWS seconds, expected 60");
}

#[tokio::test]
async fn instance_metadata_refuses_requests_without_a_session_token() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let ami = register_ami(&ec2, "imds-image", &[]).await.expect("register AMI");
    let run = ec2
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::T3Small)
        .min_count(2)
        .max_count(2)
        .send()
        .await
        .expect("RunInstances");
    let ids: Vec<String> =
        run.instances().iter().filter_map(|i| i.instance_id()).map(str::to_owned).collect();
    let first = Imds { account: &account, instance: ids[0].clone() };
    let second = Imds { account: &account, instance: ids[1].clone() };

    // IMDSv1: no token, no answer.
    assert_eq!(first.call("GET", "latest/meta-data/instance-id", &[]).0, 401);
    // A session needs its time to live, within six hours.
    assert_eq!(first.call("PUT", "latest/api/token", &[]).0, 400);
    assert_eq!(
        first.call("PUT", "latest/api/token", &[("X-aws-ec2-metadata-token-ttl-seconds", "21601")]).0,
        400
    );
    let token = first.token();
    assert_eq!(first.get(&token, "instance-id"), (200, first.instance.clone()));
    assert_eq!(first.get(&token, "instance-life-cycle"), (200, "on-demand".to_owned()));
    assert_eq!(first.get(&token, "placement/region"), (200, account.region.clone()));
    // A token belongs to the instance that made it.
    assert_eq!(second.get(&token, "instance-id").0, 401);
    assert_eq!(second.get("not-a-token", "instance-id").0, 401);

    let (status, document) = first.call(
        "GET",
        "latest/dynamic/instance-identity/document",
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&document).expect("the identity document is JSON");
    assert_eq!(document["instanceId"], first.instance.as_str());
    assert_eq!(document["accountId"], account.id.as_str());
    assert_eq!(document["region"], account.region.as_str());

    // An outage: unavailable for its AWS seconds, then back.
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    let target = format!("/_immutable/imds/{}/outage?seconds=60", first.instance);
    http(&account, "POST", &target, &[]).expect("switch the outage on");
    assert_eq!(first.get(&token, "instance-id").0, 503);
    tokio::time::sleep(scaled(60.0 + SLACK)).await;
    assert_eq!(first.get(&token, "instance-id").0, 200);
    let target = format!("/_immutable/imds/{}/outage?seconds=60&mode=drop", first.instance);
    http(&account, "POST", &target, &[]).expect("switch the outage on");
    let dropped = http(
        &account,
        "GET",
        &format!("/_immutable/imds/{}/latest/meta-data/instance-id", first.instance),
        &[("X-aws-ec2-metadata-token", &token)],
    );
    assert_eq!(dropped, None, "the connection closes without an answer");
}

#[tokio::test]
async fn a_spot_pool_without_capacity_is_skipped_and_recorded_in_the_fleet_history() {
    let account = LocalAws::shared().account();
    account
        .behave(json!({
            "clock_scale": TEST_CLOCK_SCALE,
            "spot": { "no_capacity": [{ "instance_type": "t3.small" }] },
        }))
        .expect("no t3.small capacity");
    let ec2 = account.ec2().await;
    let fleet = fleet(&ec2, &["t3.small", "t3.micro"], 2).await;
    let ids = fleet_instances(&ec2, &fleet).await;
    assert_eq!(ids.len(), 2, "the fleet is fulfilled from the other pools: {ids:?}");
    for id in &ids {
        let launched = instance(&ec2, id).await;
        assert_eq!(launched.instance_type().map(|t| t.as_str()), Some("t3.micro"), "{id} is t3.micro");
    }
    assert_eq!(activity(&ec2, &fleet).await, "fulfilled");
    let errors = history(&ec2, &fleet, EventType::Error).await;
    let (sub_type, description, _) = errors.first().expect("an error event for the pool without capacity");
    assert_eq!(sub_type, "spotFleetRequestConfigurationInvalid");
    assert!(description.starts_with("t3.small, ami-"), "{description}");
    assert!(description.ends_with(&format!("Linux/UNIX: {NO_CAPACITY}")), "{description}");
}

#[tokio::test]
async fn a_fleet_without_any_capacity_reports_an_error_until_capacity_returns() {
    let account = LocalAws::shared().account();
    account
        .behave(json!({
            "clock_scale": TEST_CLOCK_SCALE,
            "spot": { "no_capacity": [{ "instance_type": "t3.small" }, { "instance_type": "t3.micro" }] },
        }))
        .expect("no capacity at all");
    let ec2 = account.ec2().await;
    let fleet = fleet(&ec2, &["t3.small", "t3.micro"], 2).await;
    assert_eq!(fleet_instances(&ec2, &fleet).await, Vec::<String>::new(), "nothing launched");
    assert_eq!(activity(&ec2, &fleet).await, "error");
    let errors = history(&ec2, &fleet, EventType::Error).await;
    assert!(
        errors.iter().any(|(sub, text, _)| sub == "spotFleetRequestConfigurationInvalid" && text.contains(NO_CAPACITY)),
        "{errors:?}"
    );

    account.behave(json!({ "spot": {} })).expect("capacity is back");
    let ids = fleet_instances(&ec2, &fleet).await;
    assert_eq!(ids.len(), 2, "the fleet launched once capacity returned: {ids:?}");
    assert_eq!(activity(&ec2, &fleet).await, "fulfilled");
}

/// The fleet's configuration and figures, as DescribeSpotFleetRequests reports them.
async fn described(ec2: &aws_sdk_ec2::Client, fleet: &str) -> SpotFleetRequestConfigData {
    let answer = ec2
        .describe_spot_fleet_requests()
        .spot_fleet_request_ids(fleet)
        .send()
        .await
        .expect("DescribeSpotFleetRequests");
    answer.spot_fleet_request_configs()[0]
        .spot_fleet_request_config()
        .expect("the fleet's configuration")
        .clone()
}

/// (target capacity, On-Demand target capacity, fulfilled capacity) of the fleet.
async fn capacity(ec2: &aws_sdk_ec2::Client, fleet: &str) -> (i32, i32, f64) {
    let config = described(ec2, fleet).await;
    (
        config.target_capacity().unwrap_or(-1),
        config.on_demand_target_capacity().unwrap_or(-1),
        config.fulfilled_capacity().unwrap_or(-1.0),
    )
}

async fn modify(
    ec2: &aws_sdk_ec2::Client,
    fleet: &str,
    target: i32,
    on_demand: i32,
    policy: Option<ExcessCapacityTerminationPolicy>,
) {
    ec2.modify_spot_fleet_request()
        .spot_fleet_request_id(fleet)
        .target_capacity(target)
        .on_demand_target_capacity(on_demand)
        .set_excess_capacity_termination_policy(policy)
        .send()
        .await
        .expect("ModifySpotFleetRequest");
}

async fn terminate(ec2: &aws_sdk_ec2::Client, ids: &[String]) {
    ec2.terminate_instances().set_instance_ids(Some(ids.to_vec())).send().await.expect("TerminateInstances");
}

/// Instances the fleet's history records as launched.
async fn launched(ec2: &aws_sdk_ec2::Client, fleet: &str) -> Vec<String> {
    history(ec2, fleet, EventType::InstanceChange)
        .await
        .into_iter()
        .filter(|(sub, _, _)| sub == "launched")
        .filter_map(|(_, _, id)| id)
        .collect()
}

/// A target group `name` (HTTP, port 80) in the account's first VPC; its ARN.
async fn target_group(
    ec2: &aws_sdk_ec2::Client,
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
) -> String {
    let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    let group = elb
        .create_target_group()
        .name(name)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpcs.vpcs()[0].vpc_id().expect("vpc id"))
        .send()
        .await
        .expect("CreateTargetGroup");
    group.target_groups()[0].target_group_arn().expect("group arn").to_owned()
}

/// A maintain fleet with its replacement of lost instances switched on (the account's
/// Spot behaviour, without random interruptions) and the scaled clock.
fn replacing_account() -> Account {
    let account = LocalAws::shared().account();
    account
        .behave(json!({ "clock_scale": TEST_CLOCK_SCALE, "spot": { "interruptions_per_minute": 0 } }))
        .expect("Spot behaviour on");
    account
}

#[tokio::test]
async fn a_target_lowered_without_termination_keeps_the_excess_until_it_is_terminated() {
    let account = replacing_account();
    let ec2 = account.ec2().await;
    let fleet = fleet(&ec2, &["t3.small"], 4).await;
    let all = fleet_instances(&ec2, &fleet).await;
    assert_eq!(all.len(), 4, "{all:?}");

    modify(&ec2, &fleet, 2, 1, Some(ExcessCapacityTerminationPolicy::NoTermination)).await;
    tokio::time::sleep(scaled(10.0)).await;
    assert_eq!(fleet_instances(&ec2, &fleet).await, all, "noTermination keeps every instance");
    assert_eq!(capacity(&ec2, &fleet).await, (2, 1, 4.0), "target 2, four units still fulfilled");
    assert_eq!(activity(&ec2, &fleet).await, "fulfilled");

    // The caller terminates exactly the instances it drained.
    let (kept, chosen) = all.split_at(2);
    terminate(&ec2, chosen).await;
    for _ in 0..5 {
        // Every request runs the fleet's due replacements first.
        tokio::time::sleep(scaled(5.0)).await;
        assert_eq!(fleet_instances(&ec2, &fleet).await, kept, "no replacement for the excess");
    }
    assert_eq!(capacity(&ec2, &fleet).await, (2, 1, 2.0), "fulfilled down to the target");
    for id in chosen {
        assert_eq!(state_of(&instance(&ec2, id).await), "terminated", "{id}");
    }
    // Terminating them again changes nothing (TerminateInstances is idempotent).
    terminate(&ec2, chosen).await;
    assert_eq!(capacity(&ec2, &fleet).await, (2, 1, 2.0));
    assert_eq!(launched(&ec2, &fleet).await.len(), 4, "nothing launched after the first four");

    // Below the target, the maintain fleet replaces what it loses.
    terminate(&ec2, &kept[..1]).await;
    let after = fleet_instances(&ec2, &fleet).await;
    assert_eq!(after.len(), 2, "a replacement once below the target: {after:?}");
    assert!(after.contains(&kept[1]) && !after.contains(&kept[0]), "{after:?}");
    assert_eq!(capacity(&ec2, &fleet).await, (2, 1, 2.0));

    // A raised target launches the difference from what the fleet really has.
    modify(&ec2, &fleet, 3, 1, None).await;
    let grown = fleet_instances(&ec2, &fleet).await;
    assert_eq!(grown.len(), 3, "{grown:?}");
    assert!(after.iter().all(|id| grown.contains(id)), "nothing terminated to grow: {after:?} -> {grown:?}");
    assert_eq!(capacity(&ec2, &fleet).await, (3, 1, 3.0));
}

#[tokio::test]
async fn the_default_policy_terminates_the_excess_and_a_raised_target_launches_more() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let fleet = fleet(&ec2, &["t3.small", "t3.micro"], 1).await;
    let first = fleet_instances(&ec2, &fleet).await;
    assert_eq!(capacity(&ec2, &fleet).await, (1, 0, 1.0));

    // Green grows step by step.
    modify(&ec2, &fleet, 2, 1, None).await;
    assert_eq!(capacity(&ec2, &fleet).await, (2, 1, 2.0));
    modify(&ec2, &fleet, 4, 2, Some(ExcessCapacityTerminationPolicy::Default)).await;
    let grown = fleet_instances(&ec2, &fleet).await;
    assert_eq!(grown.len(), 4, "{grown:?}");
    assert!(grown.contains(&first[0]), "the first instance stays: {grown:?}");
    assert_eq!(capacity(&ec2, &fleet).await, (4, 2, 4.0));
    assert_eq!(activity(&ec2, &fleet).await, "fulfilled");
    for id in &grown {
        let tags = instance(&ec2, id).await;
        let fleet_tag = tags
            .tags()
            .iter()
            .find(|t| t.key() == Some("aws:ec2spot:fleet-request-id"))
            .and_then(|t| t.value());
        assert_eq!(fleet_tag, Some(fleet.as_str()), "{id} carries its fleet's id");
    }
    let mut recorded = launched(&ec2, &fleet).await;
    recorded.sort();
    assert_eq!(recorded, grown, "the history records each launch");

    // "default", as AWS spells it: the fleet terminates the excess itself.
    modify(&ec2, &fleet, 1, 0, Some(ExcessCapacityTerminationPolicy::Default)).await;
    let shrunk = fleet_instances(&ec2, &fleet).await;
    assert_eq!(shrunk.len(), 1, "{shrunk:?}");
    assert_eq!(capacity(&ec2, &fleet).await, (1, 0, 1.0));
    let gone: Vec<&String> = grown.iter().filter(|id| !shrunk.contains(id)).collect();
    assert_eq!(gone.len(), 3);
    for id in gone {
        assert_eq!(state_of(&instance(&ec2, id).await), "terminated", "{id}");
    }
}

#[tokio::test]
async fn capacity_rebalancing_is_kept_returned_and_checked() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let base = fleet_config(&ec2, &["t3.small"], 1).await;
    let rebalance = |strategy: Option<ReplacementStrategy>, delay: Option<i32>| {
        SpotMaintenanceStrategies::builder()
            .capacity_rebalance(
                SpotCapacityRebalance::builder()
                    .set_replacement_strategy(strategy)
                    .set_termination_delay(delay)
                    .build(),
            )
            .build()
    };
    let request = |strategies: SpotMaintenanceStrategies, kind: FleetType| {
        let config = base.clone().r#type(kind).spot_maintenance_strategies(strategies).build();
        ec2.request_spot_fleet().spot_fleet_request_config(config).send()
    };

    let before_terminate =
        request(rebalance(Some(ReplacementStrategy::LaunchBeforeTerminate), Some(300)), FleetType::Maintain)
            .await
            .expect("RequestSpotFleet with launch-before-terminate");
    let fleet = before_terminate.spot_fleet_request_id().expect("fleet id");
    let kept = described(&ec2, fleet).await;
    let kept =
        kept.spot_maintenance_strategies().and_then(|s| s.capacity_rebalance()).expect("CapacityRebalance");
    assert_eq!(kept.replacement_strategy(), Some(&ReplacementStrategy::LaunchBeforeTerminate));
    assert_eq!(kept.termination_delay(), Some(300));

    let launch = request(rebalance(Some(ReplacementStrategy::Launch), None), FleetType::Maintain)
        .await
        .expect("RequestSpotFleet with launch");
    let fleet = launch.spot_fleet_request_id().expect("fleet id");
    let kept = described(&ec2, fleet).await;
    let kept =
        kept.spot_maintenance_strategies().and_then(|s| s.capacity_rebalance()).expect("CapacityRebalance");
    assert_eq!(kept.replacement_strategy(), Some(&ReplacementStrategy::Launch));
    assert_eq!(kept.termination_delay(), None);

    let plain = described(&ec2, &fleet_with_no_strategies(&ec2, &base).await).await;
    assert_eq!(plain.spot_maintenance_strategies(), None, "none asked for, none reported");

    let fleets_before =
        ec2.describe_spot_fleet_requests().send().await.expect("fleets").spot_fleet_request_configs().len();
    for (strategy, delay, kind) in [
        (ReplacementStrategy::LaunchBeforeTerminate, None, FleetType::Maintain),
        (ReplacementStrategy::LaunchBeforeTerminate, Some(119), FleetType::Maintain),
        (ReplacementStrategy::LaunchBeforeTerminate, Some(7201), FleetType::Maintain),
        (ReplacementStrategy::Launch, Some(300), FleetType::Maintain),
        (ReplacementStrategy::Launch, None, FleetType::Request),
    ] {
        let refused = request(rebalance(Some(strategy.clone()), delay), kind.clone())
            .await
            .expect_err("an invalid CapacityRebalance is refused");
        assert_eq!(
            refused.code(),
            Some("InvalidSpotFleetRequestConfig"),
            "{strategy:?} {delay:?} {kind:?}: {refused:?}"
        );
    }
    let fleets_after =
        ec2.describe_spot_fleet_requests().send().await.expect("fleets").spot_fleet_request_configs().len();
    assert_eq!(fleets_after, fleets_before, "a refused request creates no fleet");
}

async fn fleet_with_no_strategies(
    ec2: &aws_sdk_ec2::Client,
    base: &SpotFleetRequestConfigDataBuilder,
) -> String {
    let requested = ec2
        .request_spot_fleet()
        .spot_fleet_request_config(base.clone().build())
        .send()
        .await
        .expect("RequestSpotFleet");
    requested.spot_fleet_request_id().expect("fleet id").to_owned()
}

#[tokio::test]
async fn a_rebalancing_fleet_replaces_an_instance_at_risk_before_it_goes() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    let ec2 = account.ec2().await;
    let strategies = SpotMaintenanceStrategies::builder()
        .capacity_rebalance(
            SpotCapacityRebalance::builder()
                .replacement_strategy(ReplacementStrategy::LaunchBeforeTerminate)
                .termination_delay(120)
                .build(),
        )
        .build();
    let config = fleet_config(&ec2, &["t3.small"], 2).await.spot_maintenance_strategies(strategies).build();
    let requested =
        ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.expect("RequestSpotFleet");
    let fleet = requested.spot_fleet_request_id().expect("fleet id").to_owned();
    let before = fleet_instances(&ec2, &fleet).await;
    let at_risk = before[0].clone();

    // The recommendation comes 600 AWS seconds before the interruption notice.
    let asked = Instant::now();
    let answer = account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={at_risk}&rebalance_lead=600"), None)
        .expect("interrupt");
    let interruption: Value = serde_json::from_str(&answer).expect("JSON");
    let replacement = interruption["replacement"].as_str().expect("a replacement launched").to_owned();
    let during = fleet_instances(&ec2, &fleet).await;
    assert_eq!(during.len(), 3, "the replacement runs alongside the instance at risk: {during:?}");
    assert!(during.contains(&replacement) && during.contains(&at_risk), "{during:?}");

    // TerminationDelay after the replacement's launch, the fleet terminates the old one.
    let waited = loop {
        if state_of(&instance(&ec2, &at_risk).await) != "running" {
            break asked.elapsed().as_secs_f64() / TEST_CLOCK_SCALE;
        }
        assert!(asked.elapsed() < scaled(600.0), "{at_risk} still running after 600 AWS seconds");
        tokio::time::sleep(scaled(2.0)).await;
    };
    assert!(
        (120.0..120.0 + SLACK).contains(&waited),
        "terminated after {waited:.0} AWS seconds, expected 120"
    );
    let listed: Value =
        serde_json::from_str(&account.control("GET", "/_immutable/spot", None).expect("list")).expect("JSON");
    assert_eq!(listed["interruptions"][0]["state"], "rebalanced", "{listed}");
    let after = fleet_instances(&ec2, &fleet).await;
    assert_eq!(after.len(), 2, "back at the target, with the replacement: {after:?}");
    assert!(after.contains(&replacement) && !after.contains(&at_risk), "{after:?}");
    assert_eq!(launched(&ec2, &fleet).await.len(), 3, "one replacement, nothing more");
    assert_eq!(capacity(&ec2, &fleet).await.2, 2.0);
}

#[tokio::test]
async fn a_watch_sees_a_drained_shrink_keep_the_remaining_targets_healthy() {
    let account = replacing_account();
    let config = account.sdk_config().await;
    let (ec2, elb) =
        (aws_sdk_ec2::Client::new(&config), aws_sdk_elasticloadbalancingv2::Client::new(&config));
    let group = target_group(&ec2, &elb, "web").await;
    let targets = |ids: &[String]| {
        ids.iter().map(|id| TargetDescription::builder().id(id).port(80).build()).collect::<Vec<_>>()
    };
    let fleet = fleet(&ec2, &["t3.small"], 4).await;
    let all = fleet_instances(&ec2, &fleet).await;
    elb.register_targets()
        .target_group_arn(&group)
        .set_targets(Some(targets(&all)))
        .send()
        .await
        .expect("register");

    let watch = Watch::start(&account, &group, "web");
    tokio::time::sleep(scaled(10.0)).await;
    let (kept, chosen) = all.split_at(2);
    elb.deregister_targets()
        .target_group_arn(&group)
        .set_targets(Some(targets(chosen)))
        .send()
        .await
        .expect("drain");
    modify(&ec2, &fleet, 2, 0, Some(ExcessCapacityTerminationPolicy::NoTermination)).await;
    terminate(&ec2, chosen).await;
    tokio::time::sleep(scaled(10.0)).await;
    let watched = watch.stop();

    assert!(watched.errors.is_empty(), "{:?}", watched.errors);
    assert!(watched.samples.len() >= 5, "samples every 2 AWS seconds: {}", watched.samples.len());
    let first = &watched.samples[0];
    assert_eq!((first.healthy.as_slice(), first.instances.as_slice()), (all.as_slice(), all.as_slice()));
    let last = watched.samples.last().expect("a last sample");
    assert_eq!((last.healthy.as_slice(), last.instances.as_slice()), (kept, kept));
    assert_eq!(watched.min_healthy, Some(2), "never fewer than the two kept");
    assert_eq!(watched.peak_instances, 4);
    assert!(watched.samples.windows(2).all(|w| w[0].at < w[1].at), "samples in time order");
    assert!(
        watched.samples.iter().all(|s| kept.iter().all(|id| s.healthy.contains(id))),
        "the kept instances stayed healthy throughout"
    );
}

/// A fleet with a load balancer configuration registers what it launches in its target
/// groups, its first instances and every replacement, as AWS does.
#[tokio::test]
async fn a_fleet_registers_its_instances_and_their_replacements_in_its_target_groups() {
    use aws_sdk_ec2::types::{LoadBalancersConfig, TargetGroup as FleetTargetGroup, TargetGroupsConfig};
    let account = replacing_account();
    let config = account.sdk_config().await;
    let (ec2, elb) =
        (aws_sdk_ec2::Client::new(&config), aws_sdk_elasticloadbalancingv2::Client::new(&config));
    let group = target_group(&ec2, &elb, "fleet-registered").await;
    let registered = || async {
        let health = elb.describe_target_health().target_group_arn(&group).send().await.expect("health");
        let mut ids: Vec<String> = health
            .target_health_descriptions()
            .iter()
            .filter(|t| t.target_health().and_then(|h| h.state()).is_some_and(|s| s.as_str() != "draining"))
            .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_owned))
            .collect();
        ids.sort();
        ids
    };
    let config = fleet_config(&ec2, &["t3.small"], 2)
        .await
        .load_balancers_config(
            LoadBalancersConfig::builder()
                .target_groups_config(
                    TargetGroupsConfig::builder()
                        .target_groups(FleetTargetGroup::builder().arn(&group).build())
                        .build(),
                )
                .build(),
        )
        .build();
    let fleet = ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.expect("fleet");
    let fleet = fleet.spot_fleet_request_id().expect("fleet id").to_owned();
    let mut first = fleet_instances(&ec2, &fleet).await;
    first.sort();
    assert_eq!(first.len(), 2);
    assert_eq!(registered().await, first, "registered at launch, without a RegisterTargets call");

    let victim = first[0].clone();
    account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={victim}"), None)
        .expect("interrupt");
    let mut replaced = Vec::new();
    for _ in 0..200 {
        tokio::time::sleep(scaled(5.0)).await;
        let now = fleet_instances(&ec2, &fleet).await;
        if now.len() == 2 && !now.contains(&victim) {
            replaced = now;
            break;
        }
    }
    replaced.sort();
    assert_eq!(replaced.len(), 2, "the fleet replaced the reclaimed instance");
    assert_eq!(registered().await, replaced, "the replacement joined the group, the victim left it");
}
