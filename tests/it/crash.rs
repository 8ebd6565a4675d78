//! Crash tests: `kill -9` of the provider or of Terraform at chosen points of an
//! `immutable_app` rollout and of an `immutable_layered_ami` build, then `terraform
//! apply` again. Whatever the point, the next apply converges: one open fleet per
//! app, the one in state, serving alone; no orphan fleet, instance, builder or
//! launch template; the layer's AMI built once; state intact; then nothing to plan.
//!
//! Each point is reached deterministically: the emulator holds the request that
//! marks it (see `Account::hold`), or the app's new instances stay in `initial`
//! health until the test lets them pass, so the kill lands where the test says.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::Filter;
use tests::{
    Account, BuilderPlayer, CoreInfra, Hold, LocalAws, RunningTerraform, Workdir, core_infra, is_alive,
    register_ami, repo_root, stand_in_packer, wait_until, web_app_config,
};

const APPLY: [&str; 4] = ["apply", "-auto-approve", "-no-color", "-input=false"];
const TF_EXIT: Duration = Duration::from_secs(60);
const MARKER: Duration = Duration::from_secs(60);
const HEALTH_TAG: &str = "immutable-test:health";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// Starts `terraform apply` in the background with the provider's log in `tf.log`.
fn start_apply(workdir: &Workdir) -> RunningTerraform {
    let log = workdir.root().join("tf.log");
    let log = log.to_string_lossy().into_owned();
    let env = [("TF_LOG_PROVIDER", "info"), ("TF_LOG_PATH", log.as_str())];
    RunningTerraform::start(workdir, &APPLY, &env).expect("start terraform apply")
}

/// The provider's log lines (from Terraform's log file), for failure messages.
fn provider_log(workdir: &Workdir) -> String {
    let text = std::fs::read_to_string(workdir.root().join("tf.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("terraform-provider-immutable")).collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn state_json(workdir: &Workdir) -> serde_json::Value {
    let show = workdir.run_ok(&["show", "-json", "-no-color"]).expect("terraform show -json");
    serde_json::from_str(&show.stdout).expect("terraform show -json parses")
}

/// The attribute values of resource `address` in `terraform show -json`.
fn resource_values(state: &serde_json::Value, address: &str) -> Option<serde_json::Value> {
    state["values"]["root_module"]["resources"]
        .as_array()?
        .iter()
        .find(|r| r["address"] == address)
        .map(|r| r["values"].clone())
}

fn state_list(workdir: &Workdir) -> Vec<String> {
    let out = workdir.run_ok(&["state", "list"]).expect("terraform state list");
    out.stdout.lines().map(str::to_owned).collect()
}

fn lock_info_exists(workdir: &Workdir) -> bool {
    workdir.path().join(".terraform.tfstate.lock.info").exists()
}

// ---------------------------------------------------------------------------------
// immutable_app
// ---------------------------------------------------------------------------------

struct AppSetup {
    account: Account,
    infra: CoreInfra,
    amis: [String; 2],
    workdir: Workdir,
}

fn app_config(ami: &str, extra: &str) -> String {
    web_app_config(ami, 2, "60s", extra)
}

/// An account with the core infrastructure, two AMIs, and the app deployed from
/// the first (blue, generation 1). Returns blue's fleet id too.
fn deployed_app() -> (AppSetup, String) {
    let account = LocalAws::shared().account();
    // Targets take AWS's time to turn healthy and to drain, on the test clock.
    account.behave(tests::realistic_health()).expect("realistic target health");
    let (infra, amis) = runtime().block_on(async {
        let infra = core_infra(&account).await.expect("core infrastructure");
        let ec2 = account.ec2().await;
        let mut amis = Vec::new();
        for (i, commit) in ["1".repeat(40), "2".repeat(40)].iter().enumerate() {
            let name = format!("web-170000000{i}");
            let tags = [("Layer", "web"), ("Commit", commit.as_str())];
            amis.push(register_ami(&ec2, &name, &tags).await.expect("register AMI"));
        }
        (infra, amis)
    });
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &app_config(&amis[0], ""));
    workdir.init().expect("init");
    workdir.apply().expect("create blue");
    let blue = resource_values(&state_json(&workdir), "immutable_app.web").expect("app in state")["fleet_id"]
        .as_str()
        .expect("fleet_id")
        .to_owned();
    let setup = AppSetup { account, infra, amis: [amis[0].clone(), amis[1].clone()], workdir };
    (setup, blue)
}

/// What the account holds for app `web`.
#[derive(Debug)]
struct AppFootprint {
    /// Open (submitted, active, modifying) fleets of the whole account.
    open_fleets: Vec<String>,
    /// Running or pending instances tagged with the app.
    running: Vec<String>,
    /// Launch templates named for the app.
    templates: Vec<String>,
}

fn app_footprint(account: &Account) -> AppFootprint {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let fleets = ec2.describe_spot_fleet_requests().send().await.expect("describe fleets");
        let mut open_fleets: Vec<String> = fleets
            .spot_fleet_request_configs()
            .iter()
            .filter(|f| {
                matches!(
                    f.spot_fleet_request_state().map(|s| s.as_str()),
                    Some("active" | "submitted" | "modifying")
                )
            })
            .filter_map(|f| f.spot_fleet_request_id().map(str::to_owned))
            .collect();
        open_fleets.sort();
        let mut running = app_instances(&ec2, None).await;
        running.sort();
        let templates = ec2.describe_launch_templates().send().await.expect("describe launch templates");
        let mut templates: Vec<String> = templates
            .launch_templates()
            .iter()
            .filter_map(|t| t.launch_template_name())
            .filter(|n| n.starts_with("immutable-web-"))
            .map(str::to_owned)
            .collect();
        templates.sort();
        AppFootprint { open_fleets, running, templates }
    })
}

/// Running or pending instances of app `web`, optionally only those with the
/// health tag set to `health`.
async fn app_instances(ec2: &aws_sdk_ec2::Client, health: Option<&str>) -> Vec<String> {
    let mut request = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:immutable:app").values("web").build())
        .filters(Filter::builder().name("instance-state-name").values("running").values("pending").build());
    if let Some(health) = health {
        request = request.filters(Filter::builder().name(format!("tag:{HEALTH_TAG}")).values(health).build());
    }
    let out = request.send().await.expect("describe instances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// Lets the app's new instances pass their health checks.
fn make_new_instances_healthy(account: &Account) {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let waiting = app_instances(&ec2, Some("initial")).await;
        if waiting.is_empty() {
            return;
        }
        ec2.create_tags()
            .set_resources(Some(waiting))
            .tags(aws_sdk_ec2::types::Tag::builder().key(HEALTH_TAG).value("healthy").build())
            .send()
            .await
            .expect("tag instances healthy");
    });
}

fn fleet_state(account: &Account, fleet: &str) -> String {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2.describe_spot_fleet_requests().spot_fleet_request_ids(fleet).send().await;
        out.ok()
            .and_then(|o| {
                o.spot_fleet_request_configs()
                    .first()
                    .and_then(|c| c.spot_fleet_request_state())
                    .map(|s| s.as_str().to_owned())
            })
            .unwrap_or_else(|| "gone".to_owned())
    })
}

fn fleet_instances(account: &Account, fleet: &str) -> Vec<String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2
            .describe_spot_fleet_instances()
            .spot_fleet_request_id(fleet)
            .send()
            .await
            .expect("describe fleet instances");
        let mut ids: Vec<String> =
            out.active_instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect();
        ids.sort();
        ids
    })
}

fn healthy_targets(account: &Account, target_group_arn: &str) -> Vec<String> {
    runtime().block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
        let health =
            elb.describe_target_health().target_group_arn(target_group_arn).send().await.expect("health");
        let mut ids: Vec<String> = health
            .target_health_descriptions()
            .iter()
            .filter(|d| d.target_health().and_then(|h| h.state()).map(|s| s.as_str()) == Some("healthy"))
            .filter_map(|d| d.target()?.id().map(str::to_owned))
            .collect();
        ids.sort();
        ids
    })
}

/// Applies again and checks that the app converged on `ami`.
fn reapply_and_assert_app_converged(s: &AppSetup, ami: &str) {
    let apply = s.workdir.terraform(&APPLY);
    assert!(apply.success(), "the apply after the crash must succeed:\n{apply}");
    assert_app_converged(s, ami);
}

fn assert_app_converged(s: &AppSetup, ami: &str) {
    assert!(state_list(&s.workdir).contains(&"immutable_app.web".to_owned()), "the app is in state");
    let state = state_json(&s.workdir);
    let app = resource_values(&state, "immutable_app.web").expect("the app in terraform show -json");
    let fleet = app["fleet_id"].as_str().expect("fleet_id in state").to_owned();
    assert_eq!(app["ami_id"], serde_json::json!(ami), "state runs the configured AMI");
    let footprint = app_footprint(&s.account);
    assert_eq!(footprint.open_fleets, vec![fleet.clone()], "exactly one open fleet, the one in state");
    let serving = fleet_instances(&s.account, &fleet);
    assert_eq!(serving.len(), 2, "the fleet runs its capacity: {serving:?}");
    assert_eq!(footprint.running, serving, "the app's running instances are exactly the fleet's");
    let mut in_state: Vec<String> = app["instance_ids"]
        .as_array()
        .expect("instance_ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    in_state.sort();
    assert_eq!(in_state, serving, "state lists the serving instances");
    assert_eq!(healthy_targets(&s.account, &s.infra.target_group_arn), serving, "they serve, alone");
    let generation = app["generation"].as_u64().expect("generation");
    assert_eq!(
        footprint.templates,
        vec![format!("immutable-web-g{generation}")],
        "only the serving generation's launch template is left"
    );
    assert!(!s.workdir.plan_has_changes().expect("plan"), "nothing left to change");
}

/// Counts of the actions that mark a rollout's progress.
fn progress(account: &Account) -> BTreeMap<&'static str, u64> {
    let counts = account.requests().expect("request counts");
    [
        "ec2:RequestSpotFleet",
        "elbv2:RegisterTargets",
        "elbv2:DeregisterTargets",
        "ec2:CancelSpotFleetRequests",
        "elbv2:DescribeTargetHealth",
    ]
    .into_iter()
    .map(|k| (k, counts.get(k).copied().unwrap_or(0)))
    .collect()
}

/// Rolls out the second AMI and `kill -9`s the provider once the emulator holds
/// `action`; returns the progress counts at the kill.
fn kill_provider_at_hold(s: &AppSetup, extra: &str, action: &str, when: Hold) -> BTreeMap<&'static str, u64> {
    s.workdir.write("main.tf", &app_config(&s.amis[1], extra));
    s.account.reset_requests().expect("reset");
    s.account.hold(action, when).expect("hold");
    let mut apply = start_apply(&s.workdir);
    wait_until(MARKER, action, || s.account.held(action).unwrap_or(0) > 0)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&s.workdir)));
    let pid = apply.kill_provider().expect("kill the provider");
    wait_until(Duration::from_secs(5), "the provider to die", || !is_alive(pid)).expect("provider died");
    let at_kill = progress(&s.account);
    s.account.release(true).expect("release");
    let out = apply.wait(TF_EXIT).expect("terraform exits");
    assert!(!out.success(), "the apply whose provider died must fail:\n{out}");
    at_kill
}

#[test]
fn provider_killed_right_after_requesting_green() {
    let (s, blue) = deployed_app();
    let at_kill = kill_provider_at_hold(&s, "", "ec2:RequestSpotFleet", Hold::After);
    assert_eq!(at_kill["ec2:RequestSpotFleet"], 1, "{at_kill:?}");
    assert_eq!(
        at_kill["elbv2:RegisterTargets"], 0,
        "killed before the runner registered anything: {at_kill:?}"
    );
    assert_eq!(app_footprint(&s.account).open_fleets.len(), 2, "green was requested before the kill");
    assert_eq!(fleet_state(&s.account, &blue), "active", "blue untouched");

    reapply_and_assert_app_converged(&s, &s.amis[1]);
    assert_eq!(s.account.count("ec2:RequestSpotFleet"), 1, "green adopted, not requested again");
}

#[test]
fn provider_killed_while_waiting_for_green_health() {
    let (s, blue) = deployed_app();
    let extra = format!(r#"tags = {{ "{HEALTH_TAG}" = "initial" }}"#);
    s.workdir.write("main.tf", &app_config(&s.amis[1], &extra));
    s.account.reset_requests().expect("reset");
    let mut apply = start_apply(&s.workdir);
    // Green is registered and polled for health at least twice.
    let mut health_at_request = None;
    wait_until(MARKER, "health polls of green", || {
        let p = progress(&s.account);
        if p["ec2:RequestSpotFleet"] == 0 {
            return false;
        }
        let base = *health_at_request.get_or_insert(p["elbv2:DescribeTargetHealth"]);
        // Green is registered (by its fleet, as AWS does, or by the runner) before
        // its health is polled.
        p["elbv2:DescribeTargetHealth"] >= base + 3
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&s.workdir)));
    let pid = apply.kill_provider().expect("kill the provider");
    wait_until(Duration::from_secs(5), "the provider to die", || !is_alive(pid)).expect("provider died");
    let at_kill = progress(&s.account);
    let out = apply.wait(TF_EXIT).expect("terraform exits");
    assert!(!out.success(), "{out}");
    assert_eq!(at_kill["elbv2:DeregisterTargets"], 0, "killed before blue was drained: {at_kill:?}");
    assert_eq!(at_kill["ec2:CancelSpotFleetRequests"], 0, "{at_kill:?}");
    assert_eq!(fleet_state(&s.account, &blue), "active");

    make_new_instances_healthy(&s.account);
    reapply_and_assert_app_converged(&s, &s.amis[1]);
    assert_eq!(s.account.count("ec2:RequestSpotFleet"), 1, "green adopted, not requested again");
}

#[test]
fn provider_killed_after_draining_blue_before_cancelling_it() {
    let (s, blue) = deployed_app();
    let at_kill = kill_provider_at_hold(&s, "", "ec2:CancelSpotFleetRequests", Hold::Before);
    assert!(at_kill["elbv2:DeregisterTargets"] >= 1, "blue was deregistered: {at_kill:?}");
    assert_eq!(fleet_state(&s.account, &blue), "active", "blue not cancelled (its request was dropped)");
    assert_eq!(app_footprint(&s.account).open_fleets.len(), 2);

    reapply_and_assert_app_converged(&s, &s.amis[1]);
    assert_ne!(fleet_state(&s.account, &blue), "active", "blue cancelled by the second apply");
    assert_eq!(s.account.count("ec2:RequestSpotFleet"), 1, "green adopted, not requested again");
}

/// The narrowest window: blue is cancelled, Terraform never hears of green. The
/// refresh then finds the state's fleet gone, and the create that follows must
/// adopt green instead of requesting a fleet next to it.
#[test]
fn provider_killed_after_cancelling_blue_before_saving_state() {
    let (s, blue) = deployed_app();
    let at_kill = kill_provider_at_hold(&s, "", "ec2:CancelSpotFleetRequests", Hold::After);
    assert_eq!(at_kill["ec2:CancelSpotFleetRequests"], 1, "{at_kill:?}");
    assert_ne!(fleet_state(&s.account, &blue), "active", "blue was cancelled before the kill");
    let state = state_json(&s.workdir);
    let recorded = resource_values(&state, "immutable_app.web").expect("app still in state");
    assert_eq!(recorded["fleet_id"], serde_json::json!(blue), "state still names blue");

    reapply_and_assert_app_converged(&s, &s.amis[1]);
    assert_eq!(s.account.count("ec2:RequestSpotFleet"), 1, "green adopted, not requested again");
}

/// Terraform dies while the provider waits for green's health. The provider must
/// not carry on alone: when green then turns healthy, a provider still rolling out
/// would cancel blue, which the state still names.
#[test]
fn terraform_killed_while_waiting_for_green_health() {
    let (s, blue) = deployed_app();
    let extra = format!(r#"tags = {{ "{HEALTH_TAG}" = "initial" }}"#);
    s.workdir.write("main.tf", &app_config(&s.amis[1], &extra));
    s.account.reset_requests().expect("reset");
    let mut apply = start_apply(&s.workdir);
    let mut health_at_request = None;
    wait_until(MARKER, "health polls of green", || {
        let p = progress(&s.account);
        if p["ec2:RequestSpotFleet"] == 0 {
            return false;
        }
        let base = *health_at_request.get_or_insert(p["elbv2:DescribeTargetHealth"]);
        // Green is registered (by its fleet, as AWS does, or by the runner) before
        // its health is polled.
        p["elbv2:DescribeTargetHealth"] >= base + 3
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&s.workdir)));
    let provider = apply.provider_pid().expect("provider process");
    apply.kill_terraform().expect("kill terraform");
    make_new_instances_healthy(&s.account);
    let killed = Instant::now();
    let exited = wait_until(Duration::from_secs(30), "the provider to exit", || !is_alive(provider)).is_ok();
    eprintln!("provider {provider} exited {:?} after Terraform died: {exited}", killed.elapsed());
    let lock_left = lock_info_exists(&s.workdir);
    let _ = apply.wait(TF_EXIT);
    let after = progress(&s.account);
    eprintln!("after Terraform died: {after:?}, blue {}", fleet_state(&s.account, &blue));
    assert!(exited, "the provider exits when Terraform is gone");
    assert_eq!(after["elbv2:DeregisterTargets"], 0, "blue was not drained after Terraform died: {after:?}");
    assert_eq!(fleet_state(&s.account, &blue), "active", "blue still serves, as the state says");
    eprintln!("lock info file left by the killed terraform: {lock_left}");

    reapply_and_assert_app_converged(&s, &s.amis[1]);
}

/// Terraform dies after blue was drained, while the provider cancels it: the
/// provider finishes the switch on its own, so state names a cancelled blue; the
/// next apply must find green rather than launch a second fleet.
#[test]
fn terraform_killed_after_draining_blue_before_cancelling_it() {
    let (s, blue) = deployed_app();
    s.workdir.write("main.tf", &app_config(&s.amis[1], ""));
    s.account.reset_requests().expect("reset");
    let action = "ec2:CancelSpotFleetRequests";
    s.account.hold(action, Hold::Before).expect("hold");
    let mut apply = start_apply(&s.workdir);
    wait_until(MARKER, action, || s.account.held(action).unwrap_or(0) > 0)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&s.workdir)));
    let provider = apply.provider_pid().expect("provider process");
    apply.kill_terraform().expect("kill terraform");
    // Whatever the provider does next happens without Terraform.
    s.account.release(false).expect("release");
    let exited = wait_until(Duration::from_secs(30), "the provider to exit", || !is_alive(provider)).is_ok();
    let _ = apply.wait(TF_EXIT);
    assert!(exited, "the provider exits when Terraform is gone\n{}", provider_log(&s.workdir));
    eprintln!("blue after Terraform died: {}", fleet_state(&s.account, &blue));

    reapply_and_assert_app_converged(&s, &s.amis[1]);
    assert_eq!(s.account.count("ec2:RequestSpotFleet"), 1, "green adopted, not requested again");
}

// ---------------------------------------------------------------------------------
// immutable_layered_ami
// ---------------------------------------------------------------------------------

const LAYER: &str = "crash-base";

fn commit() -> String {
    "c".repeat(40)
}

fn layer_header() -> &'static str {
    r#"terraform {
  required_providers {
    immutable = { source = "terraform.local/immutable/immutable" }
  }
}
"#
}

fn native_layer() -> String {
    format!(
        r##"{}
resource "immutable_layered_ami" "base" {{
  layer  = "{LAYER}"
  commit = "{commit}"
  source {{
    owners = ["self"]
    name   = "upstream-os-*"
  }}
  build {{
    native {{ user_data = "#!/bin/sh\nshutdown -h now\n" }}
  }}
}}
"##,
        layer_header(),
        commit = commit()
    )
}

fn layer_workdir(config: &str) -> (Account, Workdir) {
    let account = LocalAws::shared().account();
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        register_ami(&ec2, "upstream-os-1700000000", &[]).await.expect("upstream AMI");
    });
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", config);
    workdir.init().expect("init");
    (account, workdir)
}

/// Builder instances of the account not yet terminated (or terminating).
fn live_builders(account: &Account) -> Vec<String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        tests::builder_instances(&ec2, &["pending", "running", "stopping", "stopped"])
            .await
            .expect("builders")
    })
}

/// Available AMIs tagged with the layer and commit.
fn layer_images(account: &Account, layer: &str) -> Vec<String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2
            .describe_images()
            .owners("self")
            .filters(Filter::builder().name("tag:Layer").values(layer).build())
            .filters(Filter::builder().name("tag:Commit").values(commit()).build())
            .send()
            .await
            .expect("describe images");
        out.images().iter().filter_map(|i| i.image_id().map(str::to_owned)).collect()
    })
}

fn reapply_and_assert_layer_converged(account: &Account, workdir: &Workdir, layer: &str) {
    let apply = workdir.terraform(&APPLY);
    assert!(apply.success(), "the apply after the crash must succeed:\n{apply}");
    assert!(state_list(workdir).contains(&"immutable_layered_ami.base".to_owned()), "the layer is in state");
    let state = state_json(workdir);
    let values = resource_values(&state, "immutable_layered_ami.base").expect("layer in show -json");
    let ami = values["ami_id"].as_str().expect("ami_id").to_owned();
    assert_eq!(
        layer_images(account, layer),
        vec![ami.clone()],
        "one AMI for the layer and commit: the state's"
    );
    assert!(live_builders(account).is_empty(), "no builder instance left: {:?}", live_builders(account));
    assert!(!workdir.plan_has_changes().expect("plan"), "nothing left to change");
}

#[test]
fn provider_killed_while_the_native_builder_runs() {
    let (account, workdir) = layer_workdir(&native_layer());
    account.reset_requests().expect("reset");
    // No builder player yet: the builder instance runs until the test lets it stop.
    let mut apply = start_apply(&workdir);
    wait_until(MARKER, "the builder to be awaited", || {
        account.count("ec2:RunInstances") > 0 && !live_builders(&account).is_empty()
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&workdir)));
    std::thread::sleep(Duration::from_millis(300));
    let pid = apply.kill_provider().expect("kill the provider");
    wait_until(Duration::from_secs(5), "the provider to die", || !is_alive(pid)).expect("provider died");
    assert_eq!(account.count("ec2:CreateImage"), 0, "killed before the image was created");
    assert_eq!(live_builders(&account).len(), 1, "the builder instance outlives the killed provider");
    let out = apply.wait(TF_EXIT).expect("terraform exits");
    assert!(!out.success(), "{out}");

    let _player = BuilderPlayer::start(&account);
    reapply_and_assert_layer_converged(&account, &workdir, LAYER);
}

#[test]
fn provider_killed_after_create_image_before_saving_state() {
    let (account, workdir) = layer_workdir(&native_layer());
    let _player = BuilderPlayer::start(&account);
    account.reset_requests().expect("reset");
    let action = "ec2:CreateImage";
    account.hold(action, Hold::After).expect("hold");
    let mut apply = start_apply(&workdir);
    wait_until(MARKER, action, || account.held(action).unwrap_or(0) > 0)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&workdir)));
    let pid = apply.kill_provider().expect("kill the provider");
    wait_until(Duration::from_secs(5), "the provider to die", || !is_alive(pid)).expect("provider died");
    account.release(true).expect("release");
    assert_eq!(layer_images(&account, LAYER).len(), 1, "the image exists, unknown to Terraform");
    let out = apply.wait(TF_EXIT).expect("terraform exits");
    assert!(!out.success(), "{out}");
    assert!(!state_list(&workdir).contains(&"immutable_layered_ami.base".to_owned()), "not recorded yet");

    reapply_and_assert_layer_converged(&account, &workdir, LAYER);
    assert_eq!(account.count("ec2:CreateImage"), 1, "the image was adopted, not built again");
}

/// A stand-in `packer` that announces itself, then builds only once the file
/// `go` exists in the working directory, printing progress as Packer does.
fn blocking_packer(workdir: &Workdir) -> String {
    // The stand-in launches its builder instance, then waits for `go` (Packer waiting
    // for SSH); interrupted, it terminates the instance as Packer does.
    stand_in_packer(workdir, r#"export FAKE_PACKER_WAIT_FOR="$PWD/go""#)
}

/// An account with an upstream AMI, and a workdir (initialised) whose layer
/// `packer-base` builds with [`blocking_packer`]; returns the stand-in's pid file too.
fn packer_layer_workdir() -> (Account, Workdir, std::path::PathBuf) {
    let account = LocalAws::shared().account();
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        register_ami(&ec2, "upstream-os-1700000000", &[]).await.expect("upstream AMI");
    });
    let workdir = Workdir::new(&account);
    let packer = blocking_packer(&workdir);
    let template = std::fs::read_to_string(repo_root().join("tests/fixtures/layered-ami/base.json"))
        .expect("template fixture");
    workdir.write("images/base.json", &template);
    let config = format!(
        r#"{}
resource "immutable_layered_ami" "base" {{
  layer  = "packer-base"
  commit = "{commit}"
  source {{
    owners = ["self"]
    name   = "upstream-os-*"
  }}
  build {{
    packer_template = "images/base.json"
    command         = "{packer} build"
  }}
}}
"#,
        layer_header(),
        commit = commit()
    );
    workdir.write("main.tf", &config);
    workdir.init().expect("init");
    let pids = workdir.path().join("bin/pids");
    (account, workdir, pids)
}

#[test]
fn provider_killed_while_packer_runs() {
    let (account, workdir, pids) = packer_layer_workdir();
    let mut apply = start_apply(&workdir);
    wait_until(MARKER, "the stand-in packer to launch its builder", || {
        pids.exists() && !live_builders(&account).is_empty()
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&workdir)));
    let packer_pid: u32 = std::fs::read_to_string(&pids)
        .expect("pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("stand-in pid");
    std::thread::sleep(Duration::from_millis(300));
    let pid = apply.kill_provider().expect("kill the provider");
    wait_until(Duration::from_secs(5), "the provider to die", || !is_alive(pid)).expect("provider died");
    // Like Packer, the stand-in dies writing its next line into the dead provider's pipe.
    let packer_gone = wait_until(Duration::from_secs(5), "packer to exit", || !is_alive(packer_pid)).is_ok();
    let out = apply.wait(TF_EXIT).expect("terraform exits");
    assert!(!out.success(), "{out}");
    assert!(packer_gone, "packer outlived the killed provider");
    // Packer died without its cleanup: its builder instance is left running, tagged
    // with the layer and commit (run_tags), for the next apply to terminate.
    assert_eq!(live_builders(&account).len(), 1, "the killed Packer left its builder instance");
    assert!(layer_images(&account, "packer-base").is_empty(), "nothing was built by the killed run");

    workdir.write("go", "");
    reapply_and_assert_layer_converged(&account, &workdir, "packer-base");
    let runs = std::fs::read_to_string(&pids).expect("pids").lines().count();
    assert_eq!(runs, 2, "packer ran once more after the crash");
}

/// Terraform dies while Packer runs: the provider interrupts Packer as Ctrl-C would
/// (so that Packer terminates its own builder instance), waits for it, and exits.
#[test]
fn terraform_killed_while_packer_runs() {
    let (account, workdir, pids) = packer_layer_workdir();
    let mut apply = start_apply(&workdir);
    wait_until(MARKER, "the stand-in packer to launch its builder", || {
        pids.exists() && !live_builders(&account).is_empty()
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&workdir)));
    std::thread::sleep(Duration::from_millis(300));
    let provider = apply.provider_pid().expect("provider process");
    apply.kill_terraform().expect("kill terraform");
    let exited = wait_until(Duration::from_secs(30), "the provider to exit", || !is_alive(provider)).is_ok();
    let _ = apply.wait(TF_EXIT);
    assert!(exited, "the provider exits when Terraform is gone\n{}", provider_log(&workdir));
    assert!(
        live_builders(&account).is_empty(),
        "Packer was interrupted, not killed, and terminated its builder instance before the provider exited\n{}",
        provider_log(&workdir)
    );
    assert!(layer_images(&account, "packer-base").is_empty(), "nothing was built for a dead Terraform");

    workdir.write("go", "");
    reapply_and_assert_layer_converged(&account, &workdir, "packer-base");
}

/// Terraform dies while the native builder runs: the provider stops the build as on
/// Ctrl-C (terminating its builder instance) and exits.
#[test]
fn terraform_killed_while_the_native_builder_runs() {
    let (account, workdir) = layer_workdir(&native_layer());
    account.reset_requests().expect("reset");
    let mut apply = start_apply(&workdir);
    wait_until(MARKER, "the builder to be awaited", || {
        account.count("ec2:RunInstances") > 0 && !live_builders(&account).is_empty()
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", provider_log(&workdir)));
    std::thread::sleep(Duration::from_millis(300));
    let provider = apply.provider_pid().expect("provider process");
    apply.kill_terraform().expect("kill terraform");
    let exited = wait_until(Duration::from_secs(30), "the provider to exit", || !is_alive(provider)).is_ok();
    let _ = apply.wait(TF_EXIT);
    assert!(exited, "the provider exits when Terraform is gone\n{}", provider_log(&workdir));
    assert_eq!(account.count("ec2:CreateImage"), 0, "no image made for a dead Terraform");
    assert!(live_builders(&account).is_empty(), "the provider terminated its builder before exiting");

    let _player = BuilderPlayer::start(&account);
    reapply_and_assert_layer_converged(&account, &workdir, LAYER);
}
