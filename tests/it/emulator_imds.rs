//! What an instance reads from the emulator's instance metadata service
//! (`scripts/emulator/imds.py`), as immutable-agent reads it: its tags when its
//! metadata options allow them (set by RunInstances or by the launch template a Spot
//! Fleet launches from, replacements included), the credentials of its instance
//! profile, which sign requests as the instance's account, and its identity and
//! purchasing option (`scripts/emulator/fixes.py`: a fleet's On-Demand part).

use crate::emulator_spot::{Imds, SLACK, epoch_now, fleet_instances, instance, state_of};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::primitives::{DateTime, DateTimeFormat};
use aws_sdk_ec2::types::{
    AllocationStrategy, FleetLaunchTemplateSpecification, FleetType, IamInstanceProfileSpecification,
    InstanceMetadataOptionsRequest, InstanceMetadataTagsState, InstanceType, LaunchTemplateConfig,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceMetadataTagsState,
    LaunchTemplateOverrides, LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType,
    SpotFleetRequestConfigData, Tag,
};
use serde_json::{Value, json};
use std::time::Instant;
use tests::{Account, LocalAws, TEST_CLOCK_SCALE, core_infra, register_ami, scaled};

/// What a launch template of the fleets here holds besides the AMI and the tags.
#[derive(Clone, Copy)]
struct Launch {
    /// MetadataOptions InstanceMetadataTags = enabled.
    tags_in_metadata: bool,
    /// The instance profile (its ARN), or none.
    profile: Option<&'static str>,
}

/// The ARN of instance profile `name` of `account`.
fn profile_arn(account: &Account, name: &str) -> String {
    format!("arn:aws:iam::{}:instance-profile/{name}", account.id)
}

/// A maintain Spot Fleet of `target` t3.small instances (`on_demand` of them
/// On-Demand) from a launch template made here as `launch` says, with the instance
/// tags app=web, immutable:app=web and team/owner=ops; its id.
async fn fleet(
    account: &Account,
    ec2: &aws_sdk_ec2::Client,
    launch: Launch,
    target: i32,
    on_demand: i32,
) -> String {
    let ami = register_ami(ec2, "imds-fleet-image", &[]).await.expect("register AMI");
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    let mut data = RequestLaunchTemplateData::builder().image_id(&ami).tag_specifications(
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(ResourceType::Instance)
            .tags(tag("app", "web"))
            .tags(tag("immutable:app", "web"))
            .tags(tag("team/owner", "ops"))
            .build(),
    );
    let mut options = LaunchTemplateInstanceMetadataOptionsRequest::builder()
        .http_tokens(LaunchTemplateHttpTokensState::Required);
    if launch.tags_in_metadata {
        options = options.instance_metadata_tags(LaunchTemplateInstanceMetadataTagsState::Enabled);
    }
    data = data.metadata_options(options.build());
    if let Some(profile) = launch.profile {
        data = data.iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .arn(profile_arn(account, profile))
                .build(),
        );
    }
    let template = ec2
        .create_launch_template()
        .launch_template_name("imds-web")
        .launch_template_data(data.build())
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let template_id =
        template.launch_template().and_then(|t| t.launch_template_id()).expect("template id").to_owned();
    let config = SpotFleetRequestConfigData::builder()
        .iam_fleet_role(format!("arn:aws:iam::{}:role/aws-ec2-spot-fleet-tagging-role", account.id))
        .target_capacity(target)
        .on_demand_target_capacity(on_demand)
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
                .overrides(LaunchTemplateOverrides::builder().instance_type(InstanceType::T3Small).build())
                .build(),
        )
        .build();
    let requested =
        ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.expect("RequestSpotFleet");
    requested.spot_fleet_request_id().expect("fleet id").to_owned()
}

/// One instance of `ami`, launched by RunInstances with `profile` (a name) and
/// `options`; its id.
async fn run_instance(
    ec2: &aws_sdk_ec2::Client,
    ami: &str,
    profile: Option<&str>,
    options: Option<InstanceMetadataOptionsRequest>,
) -> String {
    let run = ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .set_iam_instance_profile(profile.map(|p| IamInstanceProfileSpecification::builder().name(p).build()))
        .set_metadata_options(options)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("runner").build())
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    run.instances()[0].instance_id().expect("instance id").to_owned()
}

/// The lines of a listing, sorted.
fn lines(listing: &str) -> Vec<String> {
    let mut lines: Vec<String> = listing.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// A time stamp of the metadata ("2026-01-02T03:04:05Z"), as epoch seconds.
fn epoch_of(stamp: &Value) -> f64 {
    let text = stamp.as_str().unwrap_or_else(|| panic!("a time stamp: {stamp}"));
    assert!(text.ends_with('Z') && !text.contains('.'), "whole UTC seconds: {text}");
    DateTime::from_str(text, DateTimeFormat::DateTime).expect("an RFC 3339 time").as_secs_f64()
}

#[tokio::test]
async fn tags_allowed_by_the_launch_template_are_in_the_metadata_of_fleet_instances_and_replacements() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    let ec2 = account.ec2().await;
    let launch = Launch { tags_in_metadata: true, profile: None };
    let fleet = fleet(&account, &ec2, launch, 2, 0).await;
    let ids = fleet_instances(&ec2, &fleet).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    let imds = Imds { account: &account, instance: ids[0].clone() };
    let token = imds.token();

    assert_eq!(imds.get(&token, "instance-id"), (200, imds.instance.clone()));
    assert_eq!(imds.get(&token, "placement/region"), (200, account.region.clone()));
    assert_eq!(imds.get(&token, "instance-life-cycle"), (200, "spot".to_owned()));
    let (status, top) = imds.get(&token, "");
    assert_eq!(status, 200);
    assert!(lines(&top).contains(&"tags/".to_owned()), "meta-data/ lists tags/: {top}");
    assert_eq!(
        imds.get(&token, "tags/"),
        (200, "instance/".to_owned()),
        "a directory, as iam/ lists its own"
    );

    // Every tag but the one whose key has a "/", which instance metadata cannot hold.
    let (status, listing) = imds.get(&token, "tags/instance");
    assert_eq!(status, 200, "{listing}");
    assert_eq!(lines(&listing), ["app", "aws:ec2spot:fleet-request-id", "immutable:app"], "{listing}");
    assert_eq!(imds.get(&token, "tags/instance/"), (200, listing.clone()), "with or without the slash");
    assert_eq!(imds.get(&token, "tags/instance/app"), (200, "web".to_owned()));
    assert_eq!(imds.get(&token, "tags/instance/immutable:app"), (200, "web".to_owned()));
    assert_eq!(imds.get(&token, "tags/instance/aws:ec2spot:fleet-request-id"), (200, fleet.clone()));
    assert_eq!(imds.get(&token, "tags/instance/team/owner").0, 404);
    assert_eq!(imds.get(&token, "tags/instance/missing").0, 404);

    // Tags changed later are what the metadata shows.
    ec2.create_tags()
        .resources(&imds.instance)
        .tags(Tag::builder().key("stage").value("canary").build())
        .tags(Tag::builder().key("app").value("web-2").build())
        .send()
        .await
        .expect("CreateTags");
    ec2.delete_tags()
        .resources(&imds.instance)
        .tags(Tag::builder().key("immutable:app").build())
        .send()
        .await
        .expect("DeleteTags");
    let (_, listing) = imds.get(&token, "tags/instance");
    assert_eq!(lines(&listing), ["app", "aws:ec2spot:fleet-request-id", "stage"], "{listing}");
    assert_eq!(imds.get(&token, "tags/instance/stage"), (200, "canary".to_owned()));
    assert_eq!(imds.get(&token, "tags/instance/app"), (200, "web-2".to_owned()));
    assert_eq!(imds.get(&token, "tags/instance/immutable:app").0, 404);

    // The fleet's replacement of an interrupted instance comes from the same template.
    let asked = Instant::now();
    account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={}", imds.instance), None)
        .expect("interrupt");
    while state_of(&instance(&ec2, &imds.instance).await) == "running" {
        assert!(asked.elapsed() < scaled(120.0 + 10.0 * SLACK), "{} still running", imds.instance);
        tokio::time::sleep(scaled(2.0)).await;
    }
    let after = fleet_instances(&ec2, &fleet).await;
    let replacement = after.iter().find(|i| !ids.contains(i)).expect("a replacement");
    let replaced = Imds { account: &account, instance: replacement.clone() };
    let token = replaced.token();
    let (status, listing) = replaced.get(&token, "tags/instance");
    assert_eq!(status, 200, "{listing}");
    assert_eq!(lines(&listing), ["app", "aws:ec2spot:fleet-request-id", "immutable:app"], "{listing}");
    assert_eq!(replaced.get(&token, "tags/instance/app"), (200, "web".to_owned()));
    assert_eq!(replaced.get(&token, "tags/instance/aws:ec2spot:fleet-request-id"), (200, fleet));
}

#[tokio::test]
async fn tags_are_not_in_the_metadata_unless_the_instance_allows_them() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let launch = Launch { tags_in_metadata: false, profile: None };
    let fleet = fleet(&account, &ec2, launch, 1, 0).await;
    let imds = Imds { account: &account, instance: fleet_instances(&ec2, &fleet).await[0].clone() };
    let token = imds.token();
    assert_eq!(imds.get(&token, "instance-id"), (200, imds.instance.clone()), "the service answers");
    for item in ["tags", "tags/", "tags/instance", "tags/instance/", "tags/instance/app"] {
        assert_eq!(imds.get(&token, item).0, 404, "{item} without InstanceMetadataTags");
    }
    let (_, top) = imds.get(&token, "");
    assert!(!lines(&top).contains(&"tags/".to_owned()), "meta-data/ has no tags/: {top}");

    // RunInstances' own metadata options allow them, and ModifyInstanceMetadataOptions.
    let ami = register_ami(&ec2, "imds-run-image", &[]).await.expect("register AMI");
    let allowed = InstanceMetadataOptionsRequest::builder()
        .instance_metadata_tags(InstanceMetadataTagsState::Enabled)
        .build();
    let run = Imds { account: &account, instance: run_instance(&ec2, &ami, None, Some(allowed)).await };
    let token = run.token();
    assert_eq!(run.get(&token, "tags/instance"), (200, "Name".to_owned()));
    assert_eq!(run.get(&token, "tags/instance/Name"), (200, "runner".to_owned()));
    assert_eq!(run.get(&token, "instance-life-cycle"), (200, "on-demand".to_owned()));

    let token = imds.token();
    ec2.modify_instance_metadata_options()
        .instance_id(&imds.instance)
        .instance_metadata_tags(InstanceMetadataTagsState::Enabled)
        .send()
        .await
        .expect("ModifyInstanceMetadataOptions");
    assert_eq!(imds.get(&token, "tags/instance/app"), (200, "web".to_owned()));
}

#[tokio::test]
async fn instance_profile_credentials_sign_requests_as_the_instance_account() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    let infra = core_infra(&account).await.expect("core infrastructure");
    let ec2 = account.ec2().await;
    let ami = register_ami(&ec2, "imds-profile-image", &[]).await.expect("register AMI");
    let with = Imds {
        account: &account,
        instance: run_instance(&ec2, &ami, Some(&infra.instance_profile), None).await,
    };
    let without = Imds { account: &account, instance: run_instance(&ec2, &ami, None, None).await };

    let token = with.token();
    let (status, top) = with.get(&token, "");
    assert_eq!(status, 200);
    assert!(lines(&top).contains(&"iam/".to_owned()), "meta-data/ lists iam/: {top}");
    assert_eq!(with.get(&token, "iam/"), (200, "info\nsecurity-credentials/".to_owned()));
    // The role of the profile (core_infra's web-profile holds web-instance).
    assert_eq!(with.get(&token, "iam/security-credentials/"), (200, "web-instance".to_owned()));

    let asked_epoch = epoch_now();
    let (status, info) = with.get(&token, "iam/info");
    assert_eq!(status, 200, "{info}");
    let info: Value = serde_json::from_str(&info).expect("iam/info is JSON");
    assert_eq!(info["Code"], "Success");
    assert_eq!(info["InstanceProfileArn"], profile_arn(&account, &infra.instance_profile).as_str());
    assert!(info["InstanceProfileId"].as_str().is_some_and(|id| !id.is_empty()), "{info}");

    let (status, document) = with.get(&token, "iam/security-credentials/web-instance");
    assert_eq!(status, 200, "{document}");
    let document: Value = serde_json::from_str(&document).expect("the credentials are JSON");
    assert_eq!(document["Code"], "Success");
    assert_eq!(document["Type"], "AWS-HMAC");
    let key = document["AccessKeyId"].as_str().expect("AccessKeyId").to_owned();
    let secret = document["SecretAccessKey"].as_str().expect("SecretAccessKey").to_owned();
    let session = document["Token"].as_str().expect("Token").to_owned();
    assert!(key.starts_with("ASIA") && key.len() == 20, "temporary credentials' key id: {key}");
    assert!(!secret.is_empty() && !session.is_empty(), "{document}");
    let updated = epoch_of(&document["LastUpdated"]);
    assert_eq!(document["LastUpdated"], info["LastUpdated"], "one update: {info} {document}");
    assert!(
        (asked_epoch - 1.5..asked_epoch + 1.0).contains(&updated),
        "issued at {updated}, asked {asked_epoch}"
    );
    // Six AWS hours on the account's scaled clock.
    let lasts = epoch_of(&document["Expiration"]) - updated;
    let expected = 6.0 * 3600.0 * TEST_CLOCK_SCALE;
    assert!((expected - 1.5..expected + 1.5).contains(&lasts), "valid for {lasts} s, expected {expected}");
    let (_, again) = with.get(&token, "iam/security-credentials/web-instance");
    assert_eq!(
        serde_json::from_str::<Value>(&again).expect("JSON")["AccessKeyId"],
        key.as_str(),
        "the same credentials until they are renewed"
    );
    assert_eq!(with.get(&token, "iam/security-credentials/other-role").0, 404);

    // Without an instance profile there is no iam/ category.
    let token = without.token();
    for item in
        ["iam", "iam/", "iam/info", "iam/security-credentials/", "iam/security-credentials/web-instance"]
    {
        assert_eq!(without.get(&token, item).0, 404, "{item} without an instance profile");
    }
    let (_, top) = without.get(&token, "");
    assert!(!lines(&top).contains(&"iam/".to_owned()), "meta-data/ has no iam/: {top}");

    // A request signed with the credentials is the instance's account's.
    let config = account.sdk_config().await;
    let signed = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config)
            .credentials_provider(Credentials::new(key, secret, Some(session), None, "instance-metadata"))
            .build(),
    );
    let before = account.requests().expect("request counts");
    let described = signed.describe_instances().send().await.expect("DescribeInstances as the instance");
    let after = account.requests().expect("request counts");
    let count = |counts: &tests::RequestCounts| counts.get("ec2:DescribeInstances").copied().unwrap_or(0);
    assert_eq!(count(&after), count(&before) + 1, "counted under the instance's account: {after:?}");
    let seen: Vec<&str> =
        described.reservations().iter().flat_map(|r| r.instances()).filter_map(|i| i.instance_id()).collect();
    assert!(
        seen.contains(&with.instance.as_str()) && seen.contains(&without.instance.as_str()),
        "the account's instances: {seen:?}"
    );
}

#[tokio::test]
async fn fleet_instances_get_the_template_profile_and_the_on_demand_part_is_on_demand() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": TEST_CLOCK_SCALE })).expect("scaled clock");
    core_infra(&account).await.expect("core infrastructure");
    let ec2 = account.ec2().await;
    let launch = Launch { tags_in_metadata: true, profile: Some("web-profile") };
    let fleet = fleet(&account, &ec2, launch, 3, 1).await;
    let ids = fleet_instances(&ec2, &fleet).await;
    assert_eq!(ids.len(), 3, "{ids:?}");

    let mut life_cycles = Vec::new();
    for id in &ids {
        let imds = Imds { account: &account, instance: id.clone() };
        let token = imds.token();
        assert_eq!(imds.get(&token, "iam/security-credentials/"), (200, "web-instance".to_owned()), "{id}");
        let (status, info) = imds.get(&token, "iam/info");
        assert_eq!(status, 200, "{info}");
        let info: Value = serde_json::from_str(&info).expect("iam/info is JSON");
        assert_eq!(info["InstanceProfileArn"], profile_arn(&account, "web-profile").as_str());
        let (_, life_cycle) = imds.get(&token, "instance-life-cycle");
        let described = instance(&ec2, id).await;
        let lifecycle = described.instance_lifecycle().map(|l| l.as_str().to_owned());
        match life_cycle.as_str() {
            "spot" => assert_eq!(lifecycle.as_deref(), Some("spot"), "{id}"),
            "on-demand" => {
                assert_eq!(lifecycle, None, "an On-Demand instance has no InstanceLifecycle: {id}")
            }
            other => panic!("{id}: instance-life-cycle {other}"),
        }
        let profile = described.iam_instance_profile().and_then(|p| p.arn()).map(str::to_owned);
        assert_eq!(
            profile,
            Some(profile_arn(&account, "web-profile")),
            "DescribeInstances shows the profile"
        );
        life_cycles.push((life_cycle, id.clone()));
    }
    life_cycles.sort();
    let kinds: Vec<&str> = life_cycles.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["on-demand", "spot", "spot"], "one On-Demand unit of three");

    // Only Spot Instances are interrupted.
    let (_, on_demand) = &life_cycles[0];
    let refused = account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={on_demand}"), None)
        .expect_err("an On-Demand instance is not interrupted");
    assert!(format!("{refused:#}").contains("400"), "{refused:#}");
}

#[tokio::test]
async fn instance_profile_credentials_are_renewed_before_they_expire() {
    // 1 AWS hour lasts 0.72 s: the credentials' six hours 4.32 s.
    let scale = 0.0002;
    let hours = |h: f64| std::time::Duration::from_secs_f64(h * 3600.0 * scale);
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": scale })).expect("scaled clock");
    let infra = core_infra(&account).await.expect("core infrastructure");
    let ec2 = account.ec2().await;
    let ami = register_ami(&ec2, "imds-renewal-image", &[]).await.expect("register AMI");
    let imds = Imds {
        account: &account,
        instance: run_instance(&ec2, &ami, Some(&infra.instance_profile), None).await,
    };
    let read = || {
        // A token lasts six AWS hours too: a new one for every read.
        let token = imds.token();
        let (status, document) = imds.get(&token, "iam/security-credentials/web-instance");
        assert_eq!(status, 200, "{document}");
        serde_json::from_str::<Value>(&document).expect("the credentials are JSON")
    };
    let issued = Instant::now();
    let first = read();
    tokio::time::sleep(hours(2.5).saturating_sub(issued.elapsed())).await;
    let later = read();
    assert_eq!(later["AccessKeyId"], first["AccessKeyId"], "2.5 hours on: the same credentials");
    assert_eq!(later["Expiration"], first["Expiration"]);

    // An hour before they expire, new ones are there while the old ones still last.
    tokio::time::sleep(hours(5.5).saturating_sub(issued.elapsed())).await;
    let renewed = read();
    assert!(issued.elapsed() < hours(6.0), "read before the first credentials expired");
    assert_ne!(renewed["AccessKeyId"], first["AccessKeyId"], "5.5 hours on: new credentials");
    assert_ne!(renewed["Token"], first["Token"]);
    assert!(
        epoch_of(&renewed["Expiration"]) > epoch_of(&first["Expiration"]),
        "the new credentials outlast the old: {first} {renewed}"
    );
    assert!(epoch_of(&renewed["LastUpdated"]) >= epoch_of(&first["LastUpdated"]));
}
