//! Convergence under faults: the provider reaches the emulator through a
//! [`FaultProxy`] that gives a fifth of the requests a fault (HTTP 500, throttling,
//! a connection dropped before or after the emulator acted, latency), and every
//! apply must still end with AWS as Terraform's state says: nothing missing, nothing
//! extra. Checks talk to the emulator directly, without faults.
//!
//! Every test prints its seed; `IMMUTABLE_FAULT_SEED=<seed>` replays it, and
//! `IMMUTABLE_FAULT_RATE` (0 to 1) changes the share of faulty requests.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use tests::{
    Account, BUILDER_TAG, BuilderPlayer, CoreInfra, FAULT_SEED_ENV, FaultCounts, FaultKind, FaultPlan,
    FaultProxy, LocalAws, TfOutput, Workdir, core_infra, fault_seed, register_ami, web_app_config,
};

/// Share of requests that get a fault: 20%, or `IMMUTABLE_FAULT_RATE` (0 to 1).
fn rate() -> f64 {
    match std::env::var("IMMUTABLE_FAULT_RATE") {
        Ok(text) if !text.trim().is_empty() => text.trim().parse().expect("IMMUTABLE_FAULT_RATE is a number"),
        _ => 0.2,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// A proxy for this test, its seed printed for replay.
fn proxy(test: &str, plan: impl FnOnce(u64) -> FaultPlan) -> FaultProxy {
    let seed = fault_seed();
    let plan = plan(seed);
    eprintln!("{test}: fault seed {seed} (replay with {FAULT_SEED_ENV}={seed}), fault rate {}", plan.rate);
    FaultProxy::start(&LocalAws::shared().endpoint(), plan).expect("fault proxy")
}

/// Prints what was injected and checks that faults did happen: a run without
/// failed attempts would prove nothing.
fn report(test: &str, proxy: &FaultProxy) -> FaultCounts {
    let counts = proxy.counts();
    eprintln!("{test}: seed {}: {counts}", proxy.plan().seed);
    assert!(counts.requests >= 50, "the provider went through the proxy: {counts}");
    assert!(counts.failures() >= 5, "attempts failed under faults: {counts}");
    counts
}

/// `terraform ARGS` with the provider's warnings in stderr (its retries show there).
fn terraform(workdir: &Workdir, args: &[&str]) -> TfOutput {
    workdir.terraform_with_env(args, &[("TF_LOG_PROVIDER", "WARN")])
}

/// `terraform apply` with the provider's log from `level` up in stderr.
fn apply_logged(workdir: &Workdir, what: &str, level: &str) -> TfOutput {
    let out = workdir.terraform_with_env(
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        &[("TF_LOG_PROVIDER", level)],
    );
    must(out, what)
}

fn must(out: TfOutput, what: &str) -> TfOutput {
    assert!(out.success(), "{what} failed under faults:\n{out}");
    out
}

fn apply(workdir: &Workdir, what: &str) -> TfOutput {
    apply_logged(workdir, what, "WARN")
}

fn destroy(workdir: &Workdir) -> TfOutput {
    must(terraform(workdir, &["destroy", "-auto-approve", "-no-color", "-input=false"]), "destroy")
}

fn settled(workdir: &Workdir) {
    let plan = terraform(workdir, &["plan", "-no-color", "-input=false", "-detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "a plan after the apply has no changes:\n{plan}");
}

fn out_str(workdir: &Workdir, name: &str) -> String {
    workdir.output(name).expect("output").as_str().expect("string output").to_owned()
}

fn out_list(workdir: &Workdir, name: &str) -> Vec<String> {
    let value = workdir.output(name).expect("output");
    let mut list: Vec<String> = value
        .as_array()
        .expect("list output")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    list.sort();
    list
}

fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect()
}

// ---------------------------------------------------------------------------------
// The proxy itself
// ---------------------------------------------------------------------------------

/// Each kind of fault reaches an SDK client as AWS's would: the services' own error
/// codes, broken connections, and a request that took effect although its answer
/// was lost.
#[test]
fn the_proxy_injects_what_aws_clients_meet() {
    use aws_sdk_ec2::config::retry::RetryConfig;
    let account = LocalAws::shared().account();
    let proxy = proxy("the_proxy_injects_what_aws_clients_meet", |seed| {
        FaultPlan::new(seed, 0.0)
            .script("ec2:DescribeVpcs", FaultKind::ServerError)
            .script("ec2:DescribeVpcs", FaultKind::Throttling)
            .script("ec2:DescribeVpcs", FaultKind::DropBeforeForward)
            .script("elbv2:DescribeTargetGroups", FaultKind::ServerError)
            .script("elbv2:DescribeTargetGroups", FaultKind::Throttling)
            .script("iam:ListRoles", FaultKind::ServerError)
            .script("iam:ListRoles", FaultKind::Throttling)
            .script("ec2:CreateSecurityGroup", FaultKind::DropAfterForward)
            .script("ec2:DescribeSubnets", FaultKind::Latency)
    });
    let through = proxy.account(&account);
    runtime().block_on(async {
        let config = through.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::config::Builder::from(&config).retry_config(RetryConfig::disabled()).build(),
        );
        let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&config)
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&config).retry_config(RetryConfig::disabled()).build(),
        );
        use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

        let code = |e: &dyn ProvideErrorMetadata| e.code().map(str::to_owned);
        let err = ec2.describe_vpcs().send().await.expect_err("server error");
        assert_eq!(code(&err), Some("InternalError".into()), "{err:?}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
        let err = ec2.describe_vpcs().send().await.expect_err("throttled");
        assert_eq!(code(&err), Some("RequestLimitExceeded".into()), "{err:?}");
        assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
        let err = ec2.describe_vpcs().send().await.expect_err("dropped");
        assert!(matches!(err, SdkError::DispatchFailure(_)), "a broken connection, not an answer: {err:?}");
        ec2.describe_vpcs().send().await.expect("the fourth request is forwarded");

        let err = elb.describe_target_groups().send().await.expect_err("server error");
        assert_eq!(code(&err), Some("InternalFailure".into()), "{err:?}");
        let err = elb.describe_target_groups().send().await.expect_err("throttled");
        assert_eq!(code(&err), Some("Throttling".into()), "{err:?}");
        elb.describe_target_groups().send().await.expect("forwarded");

        let err = iam.list_roles().send().await.expect_err("server error");
        assert_eq!(code(&err), Some("ServiceFailure".into()), "{err:?}");
        let err = iam.list_roles().send().await.expect_err("throttled");
        assert_eq!(code(&err), Some("Throttling".into()), "{err:?}");
        iam.list_roles().send().await.expect("forwarded");

        let err = ec2
            .create_security_group()
            .group_name("lost-answer")
            .description("created, answer lost")
            .send()
            .await
            .expect_err("the answer is lost");
        assert!(matches!(err, SdkError::DispatchFailure(_) | SdkError::ResponseError(_)), "{err:?}");
        let direct = account.ec2().await;
        let groups = direct
            .describe_security_groups()
            .filters(Filter::builder().name("group-name").values("lost-answer").build())
            .send()
            .await
            .expect("describe security groups");
        assert_eq!(groups.security_groups().len(), 1, "the emulator carried the request out");

        let started = Instant::now();
        ec2.describe_subnets().send().await.expect("late but answered");
        assert!(started.elapsed() >= Duration::from_millis(20), "latency added: {:?}", started.elapsed());
    });
    let counts = proxy.counts();
    eprintln!("{counts}");
    let expected = [
        (FaultKind::ServerError, 3),
        (FaultKind::Throttling, 3),
        (FaultKind::DropBeforeForward, 1),
        (FaultKind::DropAfterForward, 1),
        (FaultKind::Latency, 1),
    ];
    for (kind, n) in expected {
        assert_eq!(counts.of(kind), n, "{kind}: {counts}");
    }
    assert_eq!(counts.requests, 12, "{counts}");
}

// ---------------------------------------------------------------------------------
// immutable_app
// ---------------------------------------------------------------------------------

struct App {
    account: Account,
    infra: CoreInfra,
    /// Two builds of the app's AMI, older first.
    amis: [String; 2],
}

fn app_setup() -> App {
    let account = LocalAws::shared().account();
    // Targets take AWS's time to turn healthy and to drain, on the test clock.
    account.behave(tests::realistic_health()).expect("realistic target health");
    let (infra, amis) = runtime().block_on(async {
        let infra = core_infra(&account).await.expect("core infrastructure");
        let ec2 = account.ec2().await;
        let mut amis = Vec::new();
        for (i, commit) in ["3".repeat(40), "4".repeat(40)].iter().enumerate() {
            let name = format!("web-170000001{i}");
            amis.push(
                register_ami(&ec2, &name, &[("Layer", "web"), ("Commit", commit)])
                    .await
                    .expect("register AMI"),
            );
        }
        (infra, amis)
    });
    App { account, infra, amis: [amis[0].clone(), amis[1].clone()] }
}

fn app_config(ami: &str, health_timeout: &str, extra: &str) -> String {
    web_app_config(ami, 2, health_timeout, extra)
        + r##"
output "fleet_id" {
  value = immutable_app.web.fleet_id
}
output "instance_ids" {
  value = immutable_app.web.instance_ids
}
"##
}

/// What the emulator holds for an account.
#[derive(Debug)]
struct Footprint {
    /// Open (submitted, active, modifying) Spot Fleet requests, any tags.
    open_fleets: Vec<String>,
    /// Pending or running instances, any tags.
    running: Vec<String>,
    /// Every instance ever launched (also terminated ones), with its tags.
    launched: Vec<(String, String, BTreeMap<String, String>)>,
    /// Healthy targets of the app's target group.
    healthy: Vec<String>,
    /// Launch template names.
    templates: Vec<String>,
}

impl Footprint {
    /// Instances ever launched for `generation` of the app.
    fn launched_for(&self, generation: u64) -> Vec<&(String, String, BTreeMap<String, String>)> {
        let generation = generation.to_string();
        self.launched
            .iter()
            .filter(|(_, _, tags)| tags.get("immutable:generation") == Some(&generation))
            .collect()
    }
}

fn footprint(account: &Account, infra: &CoreInfra) -> Footprint {
    runtime().block_on(async {
        let config = account.sdk_config().await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        let fleets = ec2.describe_spot_fleet_requests().send().await.expect("describe fleets");
        let mut open_fleets: Vec<String> = fleets
            .spot_fleet_request_configs()
            .iter()
            .filter(|f| {
                matches!(
                    f.spot_fleet_request_state().map(|s| s.as_str()),
                    Some("submitted" | "active" | "modifying")
                )
            })
            .filter_map(|f| f.spot_fleet_request_id().map(str::to_owned))
            .collect();
        open_fleets.sort();
        let instances = ec2.describe_instances().send().await.expect("describe instances");
        let mut launched: Vec<(String, String, BTreeMap<String, String>)> = instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| {
                Some((
                    i.instance_id()?.to_owned(),
                    i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
                    tags_of(i.tags()),
                ))
            })
            .collect();
        launched.sort();
        let running = launched
            .iter()
            .filter(|(_, state, _)| matches!(state.as_str(), "pending" | "running"))
            .map(|(id, _, _)| id.clone())
            .collect();
        let health = elb
            .describe_target_health()
            .target_group_arn(&infra.target_group_arn)
            .send()
            .await
            .expect("target health");
        let mut healthy: Vec<String> = health
            .target_health_descriptions()
            .iter()
            .filter(|d| d.target_health().and_then(|h| h.state()).map(|s| s.as_str()) == Some("healthy"))
            .filter_map(|d| d.target()?.id().map(str::to_owned))
            .collect();
        healthy.sort();
        let templates = ec2.describe_launch_templates().send().await.expect("launch templates");
        let mut templates: Vec<String> = templates
            .launch_templates()
            .iter()
            .filter_map(|t| t.launch_template_name().map(str::to_owned))
            .collect();
        templates.sort();
        Footprint { open_fleets, running, launched, healthy, templates }
    })
}

/// The app's attributes in Terraform's state (not its outputs: after a failed apply
/// Terraform may record outputs from the plan).
fn app_state(workdir: &Workdir) -> serde_json::Value {
    let path = workdir.path().join("terraform.tfstate");
    let text = std::fs::read_to_string(&path).expect("terraform.tfstate");
    let state: serde_json::Value = serde_json::from_str(&text).expect("state JSON");
    let resources = state["resources"].as_array().expect("resources in state");
    let app = resources.iter().find(|r| r["type"] == "immutable_app").expect("immutable_app in state");
    app["instances"][0]["attributes"].clone()
}

/// AWS holds exactly what the state names: its fleet is the only open one, its
/// instances are the only running ones and serve alone, its generation's template is
/// the only one, and its generation launched no more instances than its capacity (a
/// duplicate fleet would have launched more).
fn assert_app_converged(app: &App, workdir: &Workdir, generation: u64, capacity: usize) -> Footprint {
    let state = app_state(workdir);
    let fleet = state["fleet_id"].as_str().expect("fleet_id in state").to_owned();
    let mut instances: Vec<String> = state["instance_ids"]
        .as_array()
        .expect("instance_ids in state")
        .iter()
        .map(|v| v.as_str().expect("instance id").to_owned())
        .collect();
    instances.sort();
    assert_eq!(state["generation"], serde_json::json!(generation), "generation in state");
    let seen = footprint(&app.account, &app.infra);
    assert_eq!(seen.open_fleets, vec![fleet.clone()], "the state's fleet is the only open fleet: {seen:#?}");
    assert_eq!(instances.len(), capacity, "{seen:#?}");
    assert_eq!(seen.running, instances, "the state's instances are the only running ones: {seen:#?}");
    assert_eq!(seen.healthy, instances, "they alone serve: {seen:#?}");
    assert_eq!(seen.templates, vec![format!("immutable-web-g{generation}")], "{seen:#?}");
    assert_eq!(
        seen.launched_for(generation).len(),
        capacity,
        "generation {generation} launched its capacity once, no duplicate fleet: {seen:#?}"
    );
    seen
}

fn assert_app_gone(app: &App) {
    let seen = footprint(&app.account, &app.infra);
    assert!(seen.open_fleets.is_empty(), "no open fleet after destroy: {seen:#?}");
    assert!(seen.running.is_empty(), "no running instance after destroy: {seen:#?}");
    assert!(seen.healthy.is_empty(), "no healthy target after destroy: {seen:#?}");
    assert!(seen.templates.is_empty(), "no launch template after destroy: {seen:#?}");
}

/// Create, a rollout to a new AMI, and destroy, each at a 20% fault rate; the first
/// RequestSpotFleet and CreateLaunchTemplate of the run always lose their answer
/// after the emulator carried them out.
#[test]
fn app_create_rollout_and_destroy_converge_under_faults() {
    const TEST: &str = "app_create_rollout_and_destroy_converge_under_faults";
    let started = Instant::now();
    let app = app_setup();
    let proxy = proxy(TEST, |seed| {
        FaultPlan::new(seed, rate())
            .script("ec2:RequestSpotFleet", FaultKind::DropAfterForward)
            .script("ec2:CreateLaunchTemplate", FaultKind::DropAfterForward)
    });
    let workdir = Workdir::new(&proxy.account(&app.account));
    workdir.write("main.tf", &app_config(&app.amis[0], "60s", ""));
    workdir.init().expect("init");

    apply(&workdir, "create");
    let blue = out_str(&workdir, "fleet_id");
    assert_app_converged(&app, &workdir, 1, 2);
    settled(&workdir);

    workdir.write("main.tf", &app_config(&app.amis[1], "60s", ""));
    let rollout = apply(&workdir, "rollout");
    assert!(rollout.stdout.contains("1 changed"), "an in-place rollout:\n{rollout}");
    let green = out_str(&workdir, "fleet_id");
    assert_ne!(green, blue, "a new fleet serves");
    let seen = assert_app_converged(&app, &workdir, 2, 2);
    assert!(
        seen.launched_for(1).iter().all(|(_, state, _)| state == "terminated"),
        "blue's instances are terminated: {seen:#?}"
    );
    settled(&workdir);

    destroy(&workdir);
    assert_app_gone(&app);

    let counts = report(TEST, &proxy);
    assert!(counts.of_action("ec2:RequestSpotFleet", FaultKind::DropAfterForward) >= 1, "{counts}");
    assert!(counts.of_action("ec2:CreateLaunchTemplate", FaultKind::DropAfterForward) >= 1, "{counts}");
    eprintln!("{TEST}: took {:?}", started.elapsed());
}

/// A rollout whose instances fail their health checks rolls back under faults too:
/// the old fleet keeps serving alone, the new one is gone, and state is unchanged.
#[test]
fn failed_rollout_rolls_back_under_faults() {
    const TEST: &str = "failed_rollout_rolls_back_under_faults";
    let started = Instant::now();
    let app = app_setup();
    let proxy = proxy(TEST, |seed| {
        FaultPlan::new(seed, rate())
            .script("ec2:RequestSpotFleet", FaultKind::DropAfterForward)
            .script("ec2:CancelSpotFleetRequests", FaultKind::DropAfterForward)
    });
    let workdir = Workdir::new(&proxy.account(&app.account));
    workdir.write("main.tf", &app_config(&app.amis[0], "60s", ""));
    workdir.init().expect("init");
    apply(&workdir, "create");
    let blue = out_str(&workdir, "fleet_id");
    let blue_instances = out_list(&workdir, "instance_ids");
    assert_app_converged(&app, &workdir, 1, 2);

    // The new instances fail their health checks (the emulator reads this tag).
    let failing = app_config(&app.amis[1], "8s", r#"tags = { "immutable-test:health" = "unhealthy" }"#);
    workdir.write("main.tf", &failing);
    let failing_since = Instant::now();
    let out = terraform(&workdir, &["apply", "-auto-approve", "-no-color", "-input=false"]);
    let took = failing_since.elapsed();
    assert!(!out.success(), "the rollout must fail:\n{out}");
    // Rolling back (cancelling green, also when a cancel's answer is lost) stays
    // quick under faults.
    assert!(took < Duration::from_secs(8 + 30), "failed within health_timeout + margin, took {took:?}");
    let flat = out.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Rollout Failed"), "it fails as a rollout, not on an AWS error:\n{out}");
    assert!(
        flat.contains("unhealthy in web: Target.ResponseCodeMismatch"),
        "the health checks decided:\n{out}"
    );
    assert!(flat.contains(&format!("the previous fleet {blue} keeps serving")), "{out}");

    // State still names blue, and AWS agrees.
    let state = app_state(&workdir);
    assert_eq!(state["fleet_id"], serde_json::json!(blue), "state keeps the old fleet");
    assert_eq!(state["ami_id"], serde_json::json!(app.amis[0]), "state keeps the old AMI");
    let mut kept: Vec<String> = state["instance_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    kept.sort();
    assert_eq!(kept, blue_instances);
    let seen = assert_app_converged(&app, &workdir, 1, 2);
    let green = seen.launched_for(2);
    assert_eq!(green.len(), 2, "green launched once, no duplicate fleet: {seen:#?}");
    assert!(green.iter().all(|(_, state, _)| state == "terminated"), "green is terminated: {seen:#?}");

    // Back to the configuration in state: nothing to change.
    workdir.write("main.tf", &app_config(&app.amis[0], "60s", ""));
    settled(&workdir);
    destroy(&workdir);
    assert_app_gone(&app);

    report(TEST, &proxy);
    eprintln!("{TEST}: took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------
// immutable_layered_ami
// ---------------------------------------------------------------------------------

const LAYERS: &str = r##"
terraform {
  required_providers {
    immutable = { source = "terraform.local/immutable/immutable" }
  }
}

resource "immutable_layered_ami" "base" {
  layer  = "base"
  commit = "5555555555555555555555555555555555555555"
  source {
    owners = ["self"]
    name   = "upstream-os-*"
  }
  build {
    native {
      user_data = "#!/bin/sh\napt-get -y upgrade\nshutdown -h now\n"
    }
  }
}

resource "immutable_layered_ami" "role" {
  layer  = "role"
  commit = "6666666666666666666666666666666666666666"
  parent = immutable_layered_ami.base.ami_id
  build {
    native {
      user_data = "#!/bin/sh\napt-get -y install ruby\nshutdown -h now\n"
    }
  }
}

resource "immutable_layered_ami" "app" {
  layer  = "app"
  commit = "6666666666666666666666666666666666666666"
  parent = immutable_layered_ami.role.ami_id
  build {
    native {
      user_data = "#!/bin/sh\ncp -r /tmp/app /srv/app\nshutdown -h now\n"
    }
  }
}

output "base" { value = immutable_layered_ami.base.ami_id }
output "role" { value = immutable_layered_ami.role.ami_id }
output "app" { value = immutable_layered_ami.app.ami_id }
"##;

/// A chain of three native layer builds and its destroy at a 20% fault rate; the
/// first RunInstances and CreateImage always lose their answer after the emulator
/// carried them out. Each layer's AMI exists once and is the one in state; each
/// builder instance ran once and is terminated; destroy leaves the upstream AMI alone.
#[test]
fn layer_build_and_destroy_converge_under_faults() {
    const TEST: &str = "layer_build_and_destroy_converge_under_faults";
    let started = Instant::now();
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let upstream = rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    // Plays the builders' user data, directly against the emulator.
    let _player = BuilderPlayer::start(&account);
    let proxy = proxy(TEST, |seed| {
        FaultPlan::new(seed, rate())
            .script("ec2:RunInstances", FaultKind::DropAfterForward)
            .script("ec2:CreateImage", FaultKind::DropAfterForward)
    });
    let workdir = Workdir::new(&proxy.account(&account));
    workdir.write("main.tf", LAYERS);
    workdir.init().expect("init");
    let built = apply_logged(&workdir, "layer builds", "INFO");
    assert!(
        built.stderr.contains("CreateImage was retried after a lost answer; using its image"),
        "the retried CreateImage found the image its lost attempt made:\n{}",
        built.stderr
    );
    let layers = ["base", "role", "app"].map(|layer| (layer, out_str(&workdir, layer)));

    rt.block_on(async {
        let images = ec2.describe_images().owners("self").send().await.expect("describe images");
        let mut own: Vec<(String, String)> = images
            .images()
            .iter()
            .filter_map(|i| Some((i.image_id()?.to_owned(), i.state()?.as_str().to_owned())))
            .collect();
        own.sort();
        let mut expected: Vec<(String, String)> = layers
            .iter()
            .map(|(_, ami)| ami.clone())
            .chain([upstream.clone()])
            .map(|ami| (ami, "available".to_owned()))
            .collect();
        expected.sort();
        assert_eq!(
            own, expected,
            "each layer's AMI exists, once (no second image from a retried CreateImage)"
        );
        let mut parent = upstream.clone();
        for (layer, ami) in &layers {
            let image =
                images.images().iter().find(|i| i.image_id() == Some(ami.as_str())).expect("layer AMI");
            let tags = tags_of(image.tags());
            assert_eq!(tags.get("Layer").map(String::as_str), Some(*layer), "{tags:?}");
            assert_eq!(tags.get("ParentAMI"), Some(&parent), "{tags:?}");
            parent = ami.clone();
        }

        let builders = ec2
            .describe_instances()
            .filters(Filter::builder().name("tag-key").values(BUILDER_TAG).build())
            .send()
            .await
            .expect("describe instances");
        let states: Vec<String> = builders
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()))
            .collect();
        assert_eq!(
            states,
            vec!["terminated".to_owned(); 3],
            "one builder instance per layer (none from a retried RunInstances), all terminated"
        );
    });
    settled(&workdir);

    destroy(&workdir);
    rt.block_on(async {
        let images = ec2.describe_images().owners("self").send().await.expect("describe images");
        let own: Vec<&str> = images.images().iter().filter_map(|i| i.image_id()).collect();
        assert_eq!(own, vec![upstream.as_str()], "the layers' AMIs are deregistered, the upstream one stays");
        let left = tests::builder_instances(&ec2, &["pending", "running", "stopping", "stopped"])
            .await
            .expect("builder instances");
        assert!(left.is_empty(), "no builder instance left: {left:?}");
    });

    let counts = report(TEST, &proxy);
    assert!(counts.of_action("ec2:RunInstances", FaultKind::DropAfterForward) >= 1, "{counts}");
    assert!(counts.of_action("ec2:CreateImage", FaultKind::DropAfterForward) >= 1, "{counts}");
    eprintln!("{TEST}: took {:?}", started.elapsed());
}
