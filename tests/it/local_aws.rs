//! The harness itself: emulator accounts, seeding, and the Terraform runner.

use aws_sdk_ec2::types::Filter;
use tests::{LayerSeed, LocalAws, Workdir, register_ami, seed_lineage};

fn tag<'a>(image: &'a aws_sdk_ec2::types::Image, key: &str) -> Option<&'a str> {
    image.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value())
}

async fn own_images(ec2: &aws_sdk_ec2::Client) -> Vec<aws_sdk_ec2::types::Image> {
    ec2.describe_images().owners("self").send().await.expect("DescribeImages").images().to_vec()
}

#[tokio::test]
async fn accounts_are_isolated() {
    let aws = LocalAws::shared();
    let (a, b) = (aws.account(), aws.account());
    assert_ne!(a.id, b.id);
    let (ec2_a, ec2_b) = (a.ec2().await, b.ec2().await);

    let id = register_ami(&ec2_a, "isolation-probe", &[("Probe", "yes")]).await.expect("register");

    let seen_by_a = own_images(&ec2_a).await;
    assert_eq!(seen_by_a.len(), 1, "{seen_by_a:?}");
    assert_eq!(seen_by_a[0].image_id(), Some(id.as_str()));
    assert_eq!(seen_by_a[0].owner_id(), Some(a.id.as_str()), "the access key selects the account");
    assert_eq!(tag(&seen_by_a[0], "Probe"), Some("yes"));

    let seen_by_b = own_images(&ec2_b).await;
    assert!(seen_by_b.is_empty(), "account {} sees {seen_by_b:?}", b.id);
    let by_id = ec2_b
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("image-id").values(&id).build())
        .send()
        .await
        .expect("DescribeImages by id");
    assert!(by_id.images().is_empty());
}

#[tokio::test]
async fn lineage_is_tagged_with_parents() {
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let seeds = [
        LayerSeed::new("base", "Base OS", "1111111111111111111111111111111111111111"),
        LayerSeed::new("runtime", "Runtime", "2222222222222222222222222222222222222222").parent(0),
        LayerSeed::new("app", "Application", "3333333333333333333333333333333333333333").parent(1),
    ];
    let ids = seed_lineage(&ec2, &seeds).await;
    assert_eq!(ids.len(), 3);

    let images = own_images(&ec2).await;
    assert_eq!(images.len(), 3);
    for (index, (seed, id)) in seeds.iter().zip(&ids).enumerate() {
        let image = images.iter().find(|i| i.image_id() == Some(id.as_str())).expect("seeded image");
        assert_eq!(image.name(), Some(seed.ami_name().as_str()));
        assert_eq!(tag(image, "Name"), Some(seed.name.as_str()));
        assert_eq!(tag(image, "Layer"), Some(seed.layer.as_str()));
        assert_eq!(tag(image, "Commit"), Some(seed.commit.as_str()));
        assert_eq!(tag(image, "Fingerprint"), Some(seed.fingerprint.as_str()));
        assert_eq!(tag(image, "Project"), Some(seed.project.as_str()));
        assert_eq!(tag(image, "ManagedBy"), Some("immutable"));
        match index {
            0 => {
                assert_eq!(tag(image, "ParentAMI"), None);
                assert_eq!(tag(image, "ParentLayer"), None);
            }
            _ => {
                assert_eq!(tag(image, "ParentAMI"), Some(ids[index - 1].as_str()));
                assert_eq!(tag(image, "ParentLayer"), Some(seeds[index - 1].layer.as_str()));
            }
        }
    }

    let children = ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("tag:ParentAMI").values(&ids[0]).build())
        .send()
        .await
        .expect("DescribeImages by tag");
    let child_ids: Vec<_> = children.images().iter().filter_map(|i| i.image_id()).collect();
    assert_eq!(child_ids, [ids[1].as_str()]);
}

#[test]
fn terraform_runs_offline_in_a_workdir() {
    let account = LocalAws::shared().account();
    let dir = Workdir::new(&account);
    dir.write(
        "main.tf",
        r#"
resource "terraform_data" "x" {
  input = "hi"
}

output "x" {
  value = terraform_data.x.output
}
"#,
    );
    dir.init().expect("init");
    let applied = dir.apply().expect("apply");
    assert!(applied.stdout.contains("1 added"), "{applied}");
    let outputs = dir.output_json().expect("outputs");
    assert_eq!(outputs["x"]["value"], "hi", "{outputs}");
    assert_eq!(dir.output("x").expect("output x"), "hi");
    assert!(!dir.plan_has_changes().expect("plan"), "a second plan is empty");
}

/// Tags set on a Spot Fleet request after its creation show in
/// DescribeSpotFleetRequests, and deleted ones go, as in AWS.
#[tokio::test]
async fn tags_of_a_spot_fleet_request_change_after_its_creation() {
    use aws_sdk_ec2::types::{
        RequestLaunchTemplateData, ResourceType, SpotFleetRequestConfigData, Tag, TagSpecification,
    };
    let account = LocalAws::shared().account();
    let infra = tests::core_infra(&account).await.expect("core infrastructure");
    let ec2 = account.ec2().await;
    let ami = register_ami(&ec2, "tag-probe", &[]).await.expect("register");
    let template = ec2
        .create_launch_template()
        .launch_template_name("tag-probe")
        .launch_template_data(
            RequestLaunchTemplateData::builder().image_id(&ami).instance_type("t3.small".into()).build(),
        )
        .send()
        .await
        .expect("launch template");
    let template_id = template.launch_template().and_then(|t| t.launch_template_id()).expect("id");
    let config = SpotFleetRequestConfigData::builder()
        .iam_fleet_role(format!("arn:aws:iam::{}:role/{}", account.id, infra.fleet_role))
        .target_capacity(1)
        .launch_template_configs(
            aws_sdk_ec2::types::LaunchTemplateConfig::builder()
                .launch_template_specification(
                    aws_sdk_ec2::types::FleetLaunchTemplateSpecification::builder()
                        .launch_template_id(template_id)
                        .version("$Latest")
                        .build(),
                )
                .overrides(
                    aws_sdk_ec2::types::LaunchTemplateOverrides::builder()
                        .instance_type("t3.small".into())
                        .build(),
                )
                .build(),
        )
        .allocation_strategy(aws_sdk_ec2::types::AllocationStrategy::PriceCapacityOptimized)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::SpotFleetRequest)
                .tags(Tag::builder().key("Created").value("with-the-request").build())
                .build(),
        )
        .build();
    let fleet =
        ec2.request_spot_fleet().spot_fleet_request_config(config).send().await.expect("request fleet");
    let fleet = fleet.spot_fleet_request_id().expect("fleet id");
    let tags = || async {
        let out =
            ec2.describe_spot_fleet_requests().spot_fleet_request_ids(fleet).send().await.expect("describe");
        let mut tags: Vec<(String, String)> = out.spot_fleet_request_configs()[0]
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        tags.sort();
        tags
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(tags().await, vec![pair("Created", "with-the-request")]);

    ec2.create_tags()
        .resources(fleet)
        .tags(Tag::builder().key("Added").value("later").build())
        .tags(Tag::builder().key("Created").value("overwritten").build())
        .send()
        .await
        .expect("create tags");
    assert_eq!(tags().await, vec![pair("Added", "later"), pair("Created", "overwritten")]);

    ec2.delete_tags()
        .resources(fleet)
        .tags(Tag::builder().key("Added").build())
        .send()
        .await
        .expect("delete");
    // A value that does not match leaves the tag (DeleteTags deletes a key with a given
    // value only when the value matches).
    ec2.delete_tags()
        .resources(fleet)
        .tags(Tag::builder().key("Created").value("something-else").build())
        .send()
        .await
        .expect("delete");
    assert_eq!(tags().await, vec![pair("Created", "overwritten")]);
}

/// A launch template version made from a source version keeps the source's launch
/// parameters but for those given, as in AWS.
#[tokio::test]
async fn a_launch_template_version_inherits_from_its_source_version() {
    use aws_sdk_ec2::types::{
        LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData, ResourceType, Tag,
    };
    let account = LocalAws::shared().account();
    let ec2 = account.ec2().await;
    let ami = register_ami(&ec2, "source-version-probe", &[]).await.expect("register");
    let tagged = |value: &str| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key("Team").value(value).build())
            .build()
    };
    let template = ec2
        .create_launch_template()
        .launch_template_name("source-version-probe")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(&ami)
                .key_name("probe-key")
                .tag_specifications(tagged("before"))
                .build(),
        )
        .send()
        .await
        .expect("launch template");
    let id = template.launch_template().and_then(|t| t.launch_template_id()).expect("id");
    ec2.create_launch_template_version()
        .launch_template_id(id)
        .source_version("1")
        .launch_template_data(
            RequestLaunchTemplateData::builder().tag_specifications(tagged("after")).build(),
        )
        .send()
        .await
        .expect("version 2");
    let latest = ec2
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions("$Latest")
        .send()
        .await
        .expect("describe");
    let version = &latest.launch_template_versions()[0];
    assert_eq!(version.version_number(), Some(2));
    let data = version.launch_template_data().expect("data");
    assert_eq!(data.image_id(), Some(ami.as_str()), "inherited from version 1");
    assert_eq!(data.key_name(), Some("probe-key"), "inherited from version 1");
    let team = data.tag_specifications()[0].tags()[0].value();
    assert_eq!(team, Some("after"), "the given parameter replaces the source's");
}
