//! The emulator answers as AWS does about images and Spot Fleet capacity
//! (`scripts/emulator/fixes.py`): images made by CreateImage are EBS-backed,
//! DescribeImages applies owners and filters to the image ids it is given,
//! ModifyImageAttribute changes a description, and a Spot Fleet request reports its
//! On-Demand capacity, down to the provider's plan of an app that has some.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    AttributeValue, DeviceType, Filter, FleetLaunchTemplateSpecification, ImageAttributeName, InstanceType,
    LaunchTemplateConfig, LaunchTemplateOverrides, RequestLaunchTemplateData, SpotFleetRequestConfigData,
};
use tests::{LayerSeed, LocalAws, Workdir, core_infra, register_ami, seed_lineage, web_app_config};

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The ids DescribeImages answers with, or its error code.
async fn described(
    ec2: &aws_sdk_ec2::Client,
    ids: &[&str],
    owners: &[&str],
    filters: &[Filter],
) -> Result<Vec<String>, String> {
    let out = ec2
        .describe_images()
        .set_image_ids(Some(ids.iter().map(|i| i.to_string()).collect()))
        .set_owners((!owners.is_empty()).then(|| owners.iter().map(|o| o.to_string()).collect()))
        .set_filters((!filters.is_empty()).then(|| filters.to_vec()))
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("no error code").to_owned())?;
    let mut found: Vec<String> =
        out.images().iter().filter_map(|i| i.image_id().map(str::to_owned)).collect();
    found.sort();
    Ok(found)
}

async fn image(ec2: &aws_sdk_ec2::Client, id: &str) -> aws_sdk_ec2::types::Image {
    let out = ec2.describe_images().image_ids(id).send().await.expect("DescribeImages");
    out.images().first().cloned().unwrap_or_else(|| panic!("no image {id}"))
}

/// CreateImage makes an EBS-backed image whose block device mapping is the
/// instance's root volume: its device, size, type and DeleteOnTermination, with a
/// snapshot of that volume (Packer's amazon-ebs builder takes no other source AMI).
#[tokio::test]
async fn an_image_made_from_an_instance_is_ebs_backed_by_a_snapshot_of_its_root_volume() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let source = register_ami(&ec2, "create-image-source", &[]).await.expect("register");
    let run = ec2
        .run_instances()
        .image_id(&source)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    let instance = &run.instances()[0];
    let instance_id = instance.instance_id().expect("instance id");
    let root_device = instance.root_device_name().expect("root device name").to_owned();
    let root_mapping = instance
        .block_device_mappings()
        .iter()
        .find(|m| m.device_name() == Some(root_device.as_str()))
        .and_then(|m| m.ebs())
        .expect("the instance's root volume");
    let volume_id = root_mapping.volume_id().expect("volume id").to_owned();
    let volumes = ec2.describe_volumes().volume_ids(&volume_id).send().await.expect("DescribeVolumes");
    let volume = volumes.volumes()[0].clone();
    ec2.stop_instances().instance_ids(instance_id).send().await.expect("StopInstances");

    let made = ec2
        .create_image()
        .instance_id(instance_id)
        .name("create-image-probe")
        .send()
        .await
        .expect("CreateImage")
        .image_id()
        .expect("image id")
        .to_owned();
    let made = image(&ec2, &made).await;
    assert_eq!(made.root_device_type(), Some(&DeviceType::Ebs), "{made:?}");
    assert_eq!(made.root_device_name(), Some(root_device.as_str()), "{made:?}");
    let mappings = made.block_device_mappings();
    assert_eq!(mappings.len(), 1, "one mapping per volume of the instance: {mappings:?}");
    assert_eq!(mappings[0].device_name(), Some(root_device.as_str()));
    let ebs = mappings[0].ebs().expect("an EBS mapping");
    assert_eq!(ebs.volume_size(), volume.size(), "{ebs:?} of {volume:?}");
    assert_eq!(ebs.volume_type(), volume.volume_type(), "{ebs:?} of {volume:?}");
    assert_eq!(ebs.delete_on_termination(), root_mapping.delete_on_termination(), "{ebs:?}");
    assert_eq!(ebs.encrypted(), Some(false), "{ebs:?}");
    let snapshot_id = ebs.snapshot_id().expect("snapshot id");
    let snapshots =
        ec2.describe_snapshots().snapshot_ids(snapshot_id).send().await.expect("DescribeSnapshots");
    let snapshot = &snapshots.snapshots()[0];
    assert_eq!(snapshot.volume_id(), Some(volume_id.as_str()), "{snapshot:?}");
    assert_eq!(snapshot.volume_size(), volume.size(), "{snapshot:?}");
}

/// Image ids, owners and filters all apply at once: an image that exists but does not
/// match is left out of the answer, which is not an error; an id that does not exist
/// fails the whole call with InvalidAMIID.NotFound.
#[tokio::test]
async fn describe_images_applies_owners_and_filters_to_the_ids_it_is_given() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let seeds = [
        LayerSeed::new("base", "Base OS", "1111111111111111111111111111111111111111"),
        LayerSeed::new("web", "Web", "2222222222222222222222222222222222222222").parent(0),
    ];
    let ids = seed_lineage(&ec2, &seeds).await;
    let (base, web) = (ids[0].as_str(), ids[1].as_str());
    let only = |id: &str| Ok(vec![id.to_owned()]);
    let none = Ok(Vec::new());

    assert_eq!(described(&ec2, &[web], &["self"], &[]).await, only(web));
    assert_eq!(described(&ec2, &[web], &[&account.id], &[]).await, only(web));
    assert_eq!(described(&ec2, &[web], &["amazon"], &[]).await, none, "owned by this account");
    assert_eq!(described(&ec2, &[web], &["111122223333"], &[]).await, none, "owned by this account");
    let web_layer = [filter("tag:Layer", "web"), filter("state", "available")];
    assert_eq!(described(&ec2, &[web], &["self"], &web_layer).await, only(web));
    assert_eq!(described(&ec2, &[base, web], &[], &web_layer).await, only(web));
    assert_eq!(described(&ec2, &[base], &["self"], &web_layer).await, none, "base is not a web image");

    // A child's source_ami_filter: the parent layer and its fingerprint.
    let parent_of_web = [
        filter("tag:Layer", "base"),
        filter("tag:Fingerprint", &seeds[0].fingerprint),
        filter("state", "available"),
    ];
    assert_eq!(described(&ec2, &[base], &["self"], &parent_of_web).await, only(base));
    assert_eq!(described(&ec2, &[web], &["self"], &parent_of_web).await, none, "another layer");
    let stale = [filter("tag:Layer", "base"), filter("tag:Fingerprint", &seeds[1].fingerprint)];
    assert_eq!(described(&ec2, &[base], &["self"], &stale).await, none, "another fingerprint");

    let unknown = "ami-0123456789abcdef0";
    let not_found = Err("InvalidAMIID.NotFound".to_owned());
    assert_eq!(described(&ec2, &[unknown], &[], &[]).await, not_found);
    assert_eq!(described(&ec2, &[unknown], &["self"], &web_layer).await, not_found);
    assert_eq!(described(&ec2, &[web, unknown], &[], &[]).await, not_found, "one unknown id fails the call");

    // Recently deregistered: listed no more, but no error either.
    ec2.deregister_image().image_id(base).send().await.expect("DeregisterImage");
    assert_eq!(described(&ec2, &[base], &["self"], &[]).await, none);
}

/// ModifyImageAttribute sets the description, given as Description or as
/// Attribute=description with Value; DescribeImages and DescribeImageAttribute show it.
#[tokio::test]
async fn modify_image_attribute_changes_the_description() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let id = register_ami(&ec2, "description-probe", &[]).await.expect("register");
    let attribute = || async {
        let out = ec2
            .describe_image_attribute()
            .image_id(&id)
            .attribute(ImageAttributeName::Description)
            .send()
            .await
            .expect("DescribeImageAttribute");
        out.description().and_then(|d| d.value()).map(str::to_owned)
    };

    ec2.modify_image_attribute()
        .image_id(&id)
        .description(AttributeValue::builder().value("Rails base").build())
        .send()
        .await
        .expect("ModifyImageAttribute Description");
    assert_eq!(image(&ec2, &id).await.description(), Some("Rails base"));
    assert_eq!(attribute().await.as_deref(), Some("Rails base"));

    ec2.modify_image_attribute()
        .image_id(&id)
        .attribute("description")
        .value("Rails base, again")
        .send()
        .await
        .expect("ModifyImageAttribute Attribute=description");
    assert_eq!(attribute().await.as_deref(), Some("Rails base, again"));

    let err = ec2
        .modify_image_attribute()
        .image_id("ami-0123456789abcdef0")
        .description(AttributeValue::builder().value("x").build())
        .send()
        .await
        .expect_err("an unknown image");
    assert_eq!(err.code(), Some("InvalidAMIID.NotFound"), "{err:?}");
}

/// TargetCapacity is the whole fleet and OnDemandTargetCapacity its On-Demand part;
/// both come back from DescribeSpotFleetRequests with the fulfilled capacities, as
/// the fleet is created and as it is resized either way.
#[tokio::test]
async fn a_spot_fleet_request_reports_its_on_demand_and_fulfilled_capacity() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let ami = register_ami(&ec2, "on-demand-probe", &[]).await.expect("register");
    let template = ec2
        .create_launch_template()
        .launch_template_name("on-demand-probe")
        .launch_template_data(
            RequestLaunchTemplateData::builder().image_id(&ami).instance_type(InstanceType::T3Small).build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate");
    let template_id = template.launch_template().and_then(|t| t.launch_template_id()).expect("template id");
    let config = SpotFleetRequestConfigData::builder()
        .iam_fleet_role(format!("arn:aws:iam::{}:role/fleet", account.id))
        .target_capacity(3)
        .on_demand_target_capacity(1)
        .r#type(aws_sdk_ec2::types::FleetType::Maintain)
        .allocation_strategy(aws_sdk_ec2::types::AllocationStrategy::PriceCapacityOptimized)
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
    let fleet =
        ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.expect("RequestSpotFleet");
    let fleet = fleet.spot_fleet_request_id().expect("fleet id");

    // (target, on-demand target, fulfilled, on-demand fulfilled, instances)
    let capacity = || async {
        let out =
            ec2.describe_spot_fleet_requests().spot_fleet_request_ids(fleet).send().await.expect("describe");
        let data = out.spot_fleet_request_configs()[0].spot_fleet_request_config().expect("config").clone();
        let active =
            ec2.describe_spot_fleet_instances().spot_fleet_request_id(fleet).send().await.expect("instances");
        (
            data.target_capacity(),
            data.on_demand_target_capacity(),
            data.fulfilled_capacity(),
            data.on_demand_fulfilled_capacity(),
            active.active_instances().len(),
        )
    };
    let resize = |target: i32, on_demand: i32| {
        ec2.modify_spot_fleet_request()
            .spot_fleet_request_id(fleet)
            .target_capacity(target)
            .on_demand_target_capacity(on_demand)
            .send()
    };
    assert_eq!(capacity().await, (Some(3), Some(1), Some(3.0), Some(1.0), 3));
    resize(2, 2).await.expect("resize to 2");
    assert_eq!(capacity().await, (Some(2), Some(2), Some(2.0), Some(2.0), 2));
    resize(4, 0).await.expect("resize to 4");
    assert_eq!(capacity().await, (Some(4), Some(0), Some(4.0), Some(0.0), 4));
    resize(1, 1).await.expect("resize to 1");
    assert_eq!(capacity().await, (Some(1), Some(1), Some(1.0), Some(1.0), 1));
}

/// An app with On-Demand capacity reads it back from its fleet: the plan after the
/// apply is empty, and a change of the On-Demand capacity alone resizes the same
/// fleet in place.
#[test]
fn an_app_with_on_demand_capacity_plans_no_change_once_applied() {
    let account = LocalAws::shared().account();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let ami = runtime.block_on(async {
        core_infra(&account).await.expect("core infrastructure");
        register_ami(&account.ec2().await, "web-1700000000", &[("Layer", "web")]).await.expect("register")
    });
    let config = |on_demand: u32| {
        web_app_config(&ami, 2, "5s", &format!("on_demand_capacity   = {on_demand}"))
            + "output \"fleet_id\" { value = immutable_app.web.fleet_id }\n"
    };
    let fleet_on_demand = |fleet: &str| {
        runtime.block_on(async {
            let ec2 = account.ec2().await;
            let out = ec2
                .describe_spot_fleet_requests()
                .spot_fleet_request_ids(fleet)
                .send()
                .await
                .expect("describe");
            let data = out.spot_fleet_request_configs()[0].spot_fleet_request_config().cloned();
            data.map(|d| (d.target_capacity(), d.on_demand_target_capacity()))
        })
    };
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &config(1));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    let fleet = workdir.output("fleet_id").expect("fleet_id").as_str().expect("string").to_owned();
    assert_eq!(fleet_on_demand(&fleet), Some((Some(2), Some(1))));
    let plan = workdir.plan().expect("plan");
    assert!(plan.stdout.contains("No changes."), "on_demand_capacity is read back as applied:\n{plan}");

    workdir.write("main.tf", &config(2));
    let plan = workdir.plan().expect("plan");
    assert!(plan.stdout.contains("~ on_demand_capacity") && plan.stdout.contains("1 to change"), "{plan}");
    workdir.apply().expect("resize");
    assert_eq!(workdir.output("fleet_id").expect("fleet_id").as_str(), Some(fleet.as_str()), "same fleet");
    assert_eq!(fleet_on_demand(&fleet), Some((Some(2), Some(2))));
    assert!(!workdir.plan_has_changes().expect("plan"), "settled at the new On-Demand capacity");
}
