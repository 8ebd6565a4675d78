//! `immutable_app` end to end: real Terraform, real provider, emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tests::{Account, CoreInfra, LocalAws, Workdir, core_infra, register_ami, web_app_config};

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

pub(super) struct Setup {
    pub account: Account,
    pub infra: CoreInfra,
    /// Two builds of the app's AMI, older first.
    pub amis: [String; 2],
    pub commits: [String; 2],
}

pub(super) fn setup() -> Setup {
    let account = LocalAws::shared().account();
    let commits = ["1".repeat(40), "2".repeat(40)];
    // Targets take AWS's time to turn healthy and to drain, on the test clock.
    account.behave(tests::realistic_health()).expect("realistic target health");
    let (infra, amis) = runtime().block_on(async {
        let infra = core_infra(&account).await.expect("core infrastructure");
        let ec2 = account.ec2().await;
        let mut amis = Vec::new();
        for (i, commit) in commits.iter().enumerate() {
            let name = format!("web-170000000{i}");
            amis.push(
                register_ami(&ec2, &name, &[("Layer", "web"), ("Commit", commit)])
                    .await
                    .expect("register AMI"),
            );
        }
        (infra, amis)
    });
    Setup { account, infra, amis: [amis[0].clone(), amis[1].clone()], commits }
}

pub(super) fn config(ami: &str, capacity: u32, extra: &str) -> String {
    let extra = format!("user_data            = \"#!/bin/sh\\necho hello\\n\"\n  {extra}");
    web_app_config(ami, capacity, "5s", &extra)
        + r##"
output "fleet_id" {
  value = immutable_app.web.fleet_id
}
output "instance_ids" {
  value = immutable_app.web.instance_ids
}
output "generation" {
  value = immutable_app.web.generation
}
output "commit" {
  value = immutable_app.web.commit
}
output "healthy_count" {
  value = immutable_app.web.healthy_count
}
"##
}

pub(super) fn out_str(workdir: &Workdir, name: &str) -> String {
    workdir.output(name).expect("output").as_str().expect("string output").to_owned()
}

pub(super) fn out_list(workdir: &Workdir, name: &str) -> Vec<String> {
    let value = workdir.output(name).expect("output");
    value.as_array().expect("list output").iter().map(|v| v.as_str().expect("string").to_owned()).collect()
}

/// Open fleets tagged with the app, and running instances tagged with it.
pub(super) fn app_footprint(account: &Account, app: &str) -> (Vec<String>, Vec<String>) {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let fleets = ec2.describe_spot_fleet_requests().send().await.expect("describe fleets");
        let open: Vec<String> = fleets
            .spot_fleet_request_configs()
            .iter()
            .filter(|f| {
                matches!(
                    f.spot_fleet_request_state().map(|s| s.as_str()),
                    Some("active" | "submitted" | "modifying")
                ) && f.tags().iter().any(|t| t.key() == Some("immutable:app") && t.value() == Some(app))
            })
            .filter_map(|f| f.spot_fleet_request_id().map(str::to_owned))
            .collect();
        let instances = ec2
            .describe_instances()
            .filters(aws_sdk_ec2::types::Filter::builder().name("tag:immutable:app").values(app).build())
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("instance-state-name")
                    .values("running")
                    .values("pending")
                    .build(),
            )
            .send()
            .await
            .expect("describe instances");
        let running = instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        (open, running)
    })
}

/// Healthy targets in the target group, by instance.
pub(super) fn healthy_targets(account: &Account, target_group_arn: &str) -> Vec<String> {
    runtime().block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
        let health =
            elb.describe_target_health().target_group_arn(target_group_arn).send().await.expect("health");
        health
            .target_health_descriptions()
            .iter()
            .filter(|d| d.target_health().and_then(|h| h.state()).map(|s| s.as_str()) == Some("healthy"))
            .filter_map(|d| d.target()?.id().map(str::to_owned))
            .collect()
    })
}

/// Polls the target group until stopped; returns the fewest healthy targets seen
/// and how many samples were taken.
pub(super) fn watch_target_group(
    account: Account,
    arn: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let rt = runtime();
        rt.block_on(async {
            let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
            let (mut fewest, mut samples) = (usize::MAX, 0);
            while !stop.load(Ordering::SeqCst) {
                if let Ok(health) = elb.describe_target_health().target_group_arn(&arn).send().await {
                    let healthy = health
                        .target_health_descriptions()
                        .iter()
                        .filter(|d| {
                            d.target_health().and_then(|h| h.state()).map(|s| s.as_str()) == Some("healthy")
                        })
                        .count();
                    fewest = fewest.min(healthy);
                    samples += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (fewest, samples)
        })
    })
}

#[test]
fn create_rollout_resize_and_destroy() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 2, ""));
    workdir.init().expect("init");

    // Create: fleet active, every instance registered and healthy.
    workdir.apply().expect("create");
    let blue = out_str(&workdir, "fleet_id");
    let blue_instances = out_list(&workdir, "instance_ids");
    assert!(blue.starts_with("sfr-"), "{blue}");
    assert_eq!(blue_instances.len(), 2);
    assert_eq!(workdir.output("generation").expect("output"), serde_json::json!(1));
    assert_eq!(out_str(&workdir, "commit"), s.commits[0]);
    assert_eq!(workdir.output("healthy_count").expect("output"), serde_json::json!(2));
    let mut healthy = healthy_targets(&s.account, &s.infra.target_group_arn);
    healthy.sort();
    assert_eq!(healthy, blue_instances, "every instance registered and healthy in tg web");
    assert!(!workdir.plan_has_changes().expect("plan"), "a second plan has no changes");

    // Launch settings: IMDSv2 required, encrypted root volume, no SSH key.
    runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let versions = ec2
            .describe_launch_template_versions()
            .launch_template_name("immutable-web-g1")
            .send()
            .await
            .expect("launch template");
        let data = versions.launch_template_versions()[0].launch_template_data().expect("template data");
        assert_eq!(
            data.metadata_options().and_then(|m| m.http_tokens()).map(|t| t.as_str()),
            Some("required")
        );
        let root = &data.block_device_mappings()[0];
        assert_eq!(root.ebs().and_then(|e| e.encrypted()), Some(true));
        assert_eq!(data.key_name(), None, "no SSH key unless set");
        assert_eq!(
            data.security_group_ids(),
            std::slice::from_ref(&s.infra.security_group_id),
            "name resolved to id"
        );
    });

    // Rollout: a new fleet serves, the old one is cancelled; zero healthy never seen.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_target_group(s.account.clone(), s.infra.target_group_arn.clone(), stop.clone());
    workdir.write("main.tf", &config(&s.amis[1], 2, ""));
    let rollout = workdir.apply().expect("rollout");
    stop.store(true, Ordering::SeqCst);
    let (fewest, samples) = watcher.join().expect("watcher");
    assert!(samples >= 5, "watcher sampled the target group during the rollout ({samples} samples)");
    assert!(fewest >= 2, "the target group never dropped below full capacity; fewest healthy: {fewest}");
    assert!(rollout.stdout.contains("1 changed"), "an in-place update, not a replacement:\n{rollout}");
    let green = out_str(&workdir, "fleet_id");
    assert_ne!(green, blue);
    assert_eq!(workdir.output("generation").expect("output"), serde_json::json!(2));
    assert_eq!(out_str(&workdir, "commit"), s.commits[1]);
    let (open, running) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![green.clone()], "only the new fleet is active");
    let green_instances = out_list(&workdir, "instance_ids");
    let mut sorted_running = running.clone();
    sorted_running.sort();
    assert_eq!(sorted_running, green_instances, "blue's instances terminated");
    let mut healthy = healthy_targets(&s.account, &s.infra.target_group_arn);
    healthy.sort();
    assert_eq!(healthy, green_instances);

    // Capacity change: same fleet, modified in place.
    workdir.write("main.tf", &config(&s.amis[1], 3, ""));
    workdir.apply().expect("resize");
    assert_eq!(out_str(&workdir, "fleet_id"), green, "same fleet");
    assert_eq!(out_list(&workdir, "instance_ids").len(), 3);
    assert_eq!(healthy_targets(&s.account, &s.infra.target_group_arn).len(), 3, "the new instance serves");
    assert!(!workdir.plan_has_changes().expect("plan"));

    // Destroy: nothing of the app remains.
    workdir.destroy().expect("destroy");
    let (open, running) = app_footprint(&s.account, "web");
    assert!(open.is_empty(), "no active fleet: {open:?}");
    assert!(running.is_empty(), "no running instance: {running:?}");
}

#[test]
fn failed_rollout_rolls_back_and_keeps_the_old_fleet() {
    let s = setup();
    let workdir = deployed(&s);
    let blue = out_str(&workdir, "fleet_id");
    let blue_instances = out_list(&workdir, "instance_ids");

    // The new instances fail their health checks (the emulator reads this tag).
    let failing = config(&s.amis[1], 2, r#"tags = { "immutable-test:health" = "unhealthy" }"#);
    workdir.write("main.tf", &failing);
    let started = Instant::now();
    let apply = workdir.terraform(&["apply", "-auto-approve", "-no-color"]);
    let took = started.elapsed();
    assert!(!apply.success(), "the rollout must fail:\n{apply}");
    assert!(took < Duration::from_secs(5 + 25), "failed within health_timeout + margin, took {took:?}");
    assert!(apply.stderr.contains("Rollout Failed"), "{apply}");
    let flat = apply.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let unhealthy_lines = flat.matches("unhealthy in web: Target.ResponseCodeMismatch").count();
    assert_eq!(unhealthy_lines, 2, "each unhealthy instance is named with its reason:\n{}", apply.stderr);
    assert!(flat.contains(&format!("the previous fleet {blue} keeps serving")), "{apply}");

    // The old fleet is still active and healthy, and state still names it.
    let (open, _) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![blue.clone()], "only blue is active; green was cancelled");
    let mut healthy = healthy_targets(&s.account, &s.infra.target_group_arn);
    healthy.sort();
    assert_eq!(healthy, blue_instances, "blue still serves, alone");
    let show = workdir.run_ok(&["show", "-json", "-no-color"]).expect("terraform show");
    let state: serde_json::Value = serde_json::from_str(&show.stdout).expect("state JSON");
    let app = &state["values"]["root_module"]["resources"][0]["values"];
    assert_eq!(app["fleet_id"], serde_json::json!(blue), "state still names the old fleet");
    assert_eq!(app["generation"], serde_json::json!(1), "state keeps the old generation");
    assert_eq!(app["ami_id"], serde_json::json!(s.amis[0]), "state keeps the old AMI");
    // Outputs say what runs, not what the failed plan wanted.
    assert_eq!(workdir.output("generation").expect("output"), serde_json::json!(1), "output generation");
    assert_eq!(out_str(&workdir, "commit"), s.commits[0], "output commit");
    assert_eq!(out_str(&workdir, "fleet_id"), blue, "output fleet_id");

    // The next plan proposes the rollout again.
    let plan = workdir.plan().expect("plan");
    assert!(plan.stdout.contains("~ ami_id"), "rollout proposed again:\n{plan}");
}

/// `terraform import` by fleet id into another state: the plan shows the takeover,
/// the apply moves the app's owner to the importing object, and the state that had it
/// lets go at its next refresh without touching it. A fleet cancelled outside
/// Terraform is created again.
#[test]
fn drift_and_import() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 1, ""));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    let fleet = out_str(&workdir, "fleet_id");
    let instances = out_list(&workdir, "instance_ids");
    let first_owner = fleet_owner(&s.account, &fleet);

    let other = Workdir::new(&s.account);
    other.write("main.tf", &config(&s.amis[0], 1, ""));
    other.init().expect("init");
    let import = other.terraform(&["import", "-no-color", "immutable_app.web", &fleet]);
    assert!(import.success(), "{import}");
    let plan = other.run_ok(&["plan", "-no-color", "-input=false"]).expect("plan");
    assert!(
        plan.stderr.contains("App Taken Over On Apply") || plan.stdout.contains("App Taken Over On Apply"),
        "{plan}"
    );
    assert!(plan.stdout.contains("~ owner") && plan.stdout.contains("1 to change"), "{plan}");
    other.apply().expect("take over");
    let second_owner = fleet_owner(&s.account, &fleet);
    assert_ne!(second_owner, first_owner, "the importing object owns the app now");
    assert_eq!(out_str(&other, "fleet_id"), fleet, "the same fleet serves");
    assert_eq!(out_list(&other, "instance_ids"), instances, "the same instances serve");
    assert!(!other.plan_has_changes().expect("plan"), "taken over: nothing left to change");

    // The first state lets go: its refresh drops the app, and its plan to create it
    // again fails without touching the fleet.
    let plan = workdir.terraform(&["plan", "-no-color", "-input=false"]);
    assert!(!plan.success(), "{plan}");
    assert!(plan.stderr.contains("App Name In Use") && plan.stderr.contains(&second_owner), "{plan}");
    assert_eq!(fleet_owner(&s.account, &fleet), second_owner);
    let (open, _) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![fleet.clone()], "{open:?}");

    // Cancelled outside Terraform: the next plan creates it again.
    runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        ec2.cancel_spot_fleet_requests()
            .spot_fleet_request_ids(&fleet)
            .terminate_instances(true)
            .send()
            .await
            .expect("cancel fleet");
    });
    let plan = other.plan().expect("plan");
    assert!(plan.stdout.contains("immutable_app.web will be created"), "{plan}");
}

/// Each bad argument gets its diagnostic at plan time, and nothing is created.
#[test]
fn bad_arguments_fail_at_plan_time_without_mutation() {
    let s = setup();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown security group",
            config(&s.amis[0], 1, "").replace(r#"["web-sg"]"#, r#"["nope-sg"]"#),
            "Unknown Security Group",
            r#"security_groups      = ["nope-sg"]"#,
        ),
        (
            "unknown target group",
            config(&s.amis[0], 1, "").replace(r#"["web"]"#, r#"["nope"]"#),
            "Unknown Target Group",
            r#"target_groups        = ["nope"]"#,
        ),
        (
            "nonexistent AMI",
            config("ami-0123456789abcdef0", 1, ""),
            "AMI Not Found",
            r#"ami_id               = "ami-0123456789abcdef0""#,
        ),
        ("capacity 0", config(&s.amis[0], 0, ""), "Value Out Of Range", "target_capacity      = 0"),
        (
            "bad enum",
            config(&s.amis[0], 1, r#"allocation_strategy = "cheapest""#),
            "Invalid Value",
            r#"allocation_strategy = "cheapest""#,
        ),
        (
            "unknown instance profile",
            config(&s.amis[0], 1, "").replace(r#""web-profile""#, r#""nope-profile""#),
            "Unknown Instance Profile",
            r#"iam_instance_profile = "nope-profile""#,
        ),
        (
            "both subnets and zones",
            config(&s.amis[0], 1, "subnet_ids = [\"subnet-1\"]\n  availability_zones = [\"eu-west-1a\"]"),
            "Conflicting Arguments",
            "availability_zones = [\"eu-west-1a\"]",
        ),
    ];
    for (what, text, summary, line) in cases {
        let workdir = Workdir::new(&s.account);
        workdir.write("main.tf", &text);
        workdir.init().expect("init");
        let plan = workdir.terraform(&["plan", "-no-color"]);
        assert!(!plan.success(), "{what}: plan must fail\n{plan}");
        assert!(
            plan.has_error_at(summary, line),
            "{what}: expected {summary:?} pointing at `{line}`:\n{plan}"
        );
    }
    // No mutation: no fleet, no launch template.
    let (open, running) = app_footprint(&s.account, "web");
    assert!(open.is_empty() && running.is_empty(), "nothing launched: {open:?} {running:?}");
    runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let templates = ec2.describe_launch_templates().send().await.expect("templates");
        assert!(templates.launch_templates().is_empty(), "no launch template created");
    });
}

/// A previous apply that died after requesting the fleet but before saving state
/// left a tagged fleet behind: the next apply adopts it rather than requesting a
/// second one.
#[test]
fn an_interrupted_create_is_adopted_not_duplicated() {
    let s = setup();
    let orphan = tagged_fleet(&s, &s.amis[0], 1, None, None);

    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 2, ""));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    assert_eq!(out_str(&workdir, "fleet_id"), orphan, "the interrupted run's fleet is adopted");
    let (open, _) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![orphan], "no second fleet");
    assert_eq!(healthy_targets(&s.account, &s.infra.target_group_arn).len(), 2, "its instances serve");
}

/// Arguments that only apply can know (a tag from another resource) plan and apply.
#[test]
fn arguments_known_only_at_apply_are_planned_as_unknown() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    let extra = "tags = { Build = terraform_data.build.output }";
    let text = format!(
        "{}\nresource \"terraform_data\" \"build\" {{\n  input = \"42\"\n}}\n",
        config(&s.amis[0], 1, extra)
    );
    workdir.write("main.tf", &text);
    workdir.init().expect("init");
    let plan = workdir.plan().expect("plan with a partially unknown map");
    assert!(plan.stdout.contains("(known after apply)"), "{plan}");
    workdir.apply().expect("apply");
    let instance = out_list(&workdir, "instance_ids").remove(0);
    let tags = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let out = ec2.describe_instances().instance_ids(&instance).send().await.expect("describe instance");
        out.reservations()[0].instances()[0]
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect::<std::collections::BTreeMap<_, _>>()
    });
    assert_eq!(tags.get("Build").map(String::as_str), Some("42"), "{tags:?}");
    assert!(!workdir.plan_has_changes().expect("plan"), "settled after apply");
}

/// A fleet of the app from before ownership (no owner tag) serves while no state
/// names it, and the configuration differs from what it runs: the apply rolls the
/// configuration out over it instead of adopting it as it is (which would leave a
/// state claiming the new AMI over instances running the old one).
#[test]
fn an_unowned_fleet_with_another_configuration_is_rolled_over() {
    let s = setup();
    // The configuration tag of another configuration than the one applied below.
    let first = tagged_fleet(&s, &s.amis[0], 1, Some("web-g1-0123456789abcdef01234567"), None);
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[1], 2, ""));
    workdir.init().expect("init");
    workdir.apply().expect("apply over the unowned fleet");
    let fleet = out_str(&workdir, "fleet_id");
    assert_ne!(fleet, first, "a new fleet runs the new configuration");
    assert_eq!(workdir.output("generation").expect("output"), serde_json::json!(2));
    assert_eq!(out_str(&workdir, "commit"), s.commits[1]);
    let (open, running) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![fleet], "the old fleet is cancelled, the new one alone serves");
    let images = images_of(&s.account, &running);
    assert_eq!(images.len(), 2, "{running:?}");
    assert!(images.iter().all(|i| *i == s.amis[1]), "every running instance has the new AMI: {images:?}");
    let mut serving = healthy_targets(&s.account, &s.infra.target_group_arn);
    serving.sort();
    let mut expected = running;
    expected.sort();
    assert_eq!(serving, expected, "the new instances serve");
    assert!(!workdir.plan_has_changes().expect("plan"), "converged: nothing left to change");
}

/// A workdir with the app deployed from the older AMI at capacity 2.
pub(super) fn deployed(s: &Setup) -> Workdir {
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 2, ""));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    workdir
}

/// A fleet of app `web` at `generation` running `ami`, requested the way an
/// interrupted run would have left it (with `config` as its configuration tag, and
/// `owner` as its owner; none for a fleet from before ownership).
fn tagged_fleet(s: &Setup, ami: &str, generation: u64, config: Option<&str>, owner: Option<&str>) -> String {
    use aws_sdk_ec2::types::{
        FleetLaunchTemplateSpecification, LaunchTemplateConfig, LaunchTemplateOverrides,
        RequestLaunchTemplateData, ResourceType, SpotFleetRequestConfigData, Tag, TagSpecification,
    };
    runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let template = ec2
            .create_launch_template()
            .launch_template_name(format!("immutable-web-g{generation}"))
            .launch_template_data(RequestLaunchTemplateData::builder().image_id(ami).build())
            .send()
            .await
            .expect("launch template");
        let template_id =
            template.launch_template().and_then(|t| t.launch_template_id()).expect("id").to_owned();
        let mut tags = TagSpecification::builder()
            .resource_type(ResourceType::SpotFleetRequest)
            .tags(Tag::builder().key("immutable:app").value("web").build())
            .tags(Tag::builder().key("immutable:generation").value(generation.to_string()).build());
        if let Some(config) = config {
            tags = tags.tags(Tag::builder().key("immutable:config").value(config).build());
        }
        if let Some(owner) = owner {
            tags = tags.tags(Tag::builder().key("immutable:owner").value(owner).build());
        }
        let fleet = ec2
            .request_spot_fleet()
            .spot_fleet_request_config(
                SpotFleetRequestConfigData::builder()
                    .iam_fleet_role(format!("arn:aws:iam::{}:role/{}", s.account.id, s.infra.fleet_role))
                    .target_capacity(2)
                    .allocation_strategy(aws_sdk_ec2::types::AllocationStrategy::PriceCapacityOptimized)
                    .launch_template_configs(
                        LaunchTemplateConfig::builder()
                            .launch_template_specification(
                                FleetLaunchTemplateSpecification::builder()
                                    .launch_template_id(&template_id)
                                    .version("$Latest")
                                    .build(),
                            )
                            .overrides(
                                LaunchTemplateOverrides::builder().instance_type("t3.small".into()).build(),
                            )
                            .build(),
                    )
                    .tag_specifications(tags.build())
                    .build(),
            )
            .send()
            .await
            .expect("request fleet");
        fleet.spot_fleet_request_id().expect("fleet id").to_owned()
    })
}

/// The `immutable:owner` tag of fleet `id`.
pub(super) fn fleet_owner(account: &Account, id: &str) -> String {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2.describe_spot_fleet_requests().spot_fleet_request_ids(id).send().await.expect("fleet");
        let tags = out.spot_fleet_request_configs()[0].tags();
        let owner = tags.iter().find(|t| t.key() == Some("immutable:owner")).and_then(|t| t.value());
        owner.expect("the fleet has an owner").to_owned()
    })
}

/// The AMIs the running instances `ids` were launched from.
fn images_of(account: &Account, ids: &[String]) -> Vec<String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out =
            ec2.describe_instances().set_instance_ids(Some(ids.to_vec())).send().await.expect("instances");
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.image_id().map(str::to_owned))
            .collect()
    })
}

/// A rollout interrupted after requesting green, then a new configuration: the
/// interrupted green (same generation, other configuration) is cancelled, not adopted.
#[test]
fn an_interrupted_rollout_to_another_configuration_is_not_adopted() {
    let s = setup();
    let workdir = deployed(&s);
    let blue = out_str(&workdir, "fleet_id");
    // Generation 2 left by a rollout to a configuration no longer wanted.
    let owner = fleet_owner(&s.account, &blue);
    let stale = tagged_fleet(&s, &s.amis[0], 2, Some("web-g2-0123456789abcdef01234567"), Some(&owner));

    workdir.write("main.tf", &config(&s.amis[1], 2, ""));
    workdir.apply().expect("rollout");
    let green = out_str(&workdir, "fleet_id");
    assert!(green != blue && green != stale, "a new fleet: blue {blue}, stale {stale}, green {green}");
    let (open, running) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![green], "blue and the stale fleet are cancelled");
    let images = images_of(&s.account, &running);
    assert_eq!(images.len(), 2, "{running:?}");
    assert!(images.iter().all(|i| *i == s.amis[1]), "every running instance has the new AMI: {images:?}");
    assert!(!workdir.plan_has_changes().expect("plan"), "converged");
}

/// An open fleet of the app that the state does not name (an interrupted run, a
/// cancellation that kept failing) shows in the plan as a stray, and the apply
/// cancels it; the serving fleet is untouched.
#[test]
fn a_stray_fleet_of_the_app_shows_in_the_plan_and_the_apply_cancels_it() {
    let s = setup();
    let workdir = deployed(&s);
    let serving = out_str(&workdir, "fleet_id");
    let instances = out_list(&workdir, "instance_ids");
    assert!(!workdir.plan_has_changes().expect("plan"), "nothing to do yet");

    let stray = tagged_fleet(&s, &s.amis[0], 7, None, Some(&fleet_owner(&s.account, &serving)));
    let plan = workdir.run_ok(&["plan", "-input=false", "-no-color"]).expect("plan");
    assert!(plan.stdout.contains("stray_fleet_ids") && plan.stdout.contains(&stray), "{}", plan.stdout);
    assert!(plan.stdout.contains("1 to change"), "{}", plan.stdout);

    workdir.apply().expect("apply");
    let (open, _) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![serving.clone()], "the stray is cancelled, the serving fleet stays");
    assert_eq!(out_str(&workdir, "fleet_id"), serving);
    assert_eq!(out_list(&workdir, "instance_ids"), instances, "the app's instances are untouched");
    assert!(!workdir.plan_has_changes().expect("plan"), "converged");
}

/// Regression (restructuring issue): Terraform sends no configuration with a destroy,
/// and the delete used to read its timeout from that null configuration, so a user's
/// `timeouts { delete }` was ignored for the 15-minute default. The emulator holds the
/// termination check; the delete must give up at the user's 3 seconds.
#[test]
fn a_short_delete_timeout_is_honoured() {
    use tests::Hold;
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 1, "timeouts {\n    delete = \"3s\"\n  }"));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    // Only the delete's wait for termination asks DescribeInstances (no refresh).
    s.account.hold("ec2:DescribeInstances", Hold::Before).expect("hold");
    let started = Instant::now();
    let destroy = workdir.terraform(&["destroy", "-auto-approve", "-refresh=false", "-no-color"]);
    let took = started.elapsed();
    s.account.release(true).expect("release");
    assert!(!destroy.success(), "the delete could not see the instances terminate:\n{destroy}");
    assert!(destroy.stderr.contains("Delete Incomplete"), "{destroy}");
    assert!(destroy.stderr.contains("timed out"), "{destroy}");
    assert!(took < Duration::from_secs(60), "gave up at the user's timeout, not the default: {took:?}");
    // Nothing is lost: the app stays in state, and the next destroy finishes the job.
    workdir.destroy().expect("second destroy");
    let (open, running) = app_footprint(&s.account, "web");
    assert!(open.is_empty() && running.is_empty(), "{open:?} {running:?}");
}
