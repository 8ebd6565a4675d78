//! Rollouts in steps on AWS's health timing (scaled clock): the serving floor and the
//! surge bound seen from outside, alarm gates, Spot interruptions during a step, the
//! plan's preview and the recorded timeline, capacity rebalancing.

use super::app::{config, out_str, runtime, setup};
use std::time::Duration;
use tests::{RunningTerraform, Watch, Workdir, register_ami, wait_until};

/// A 10-instance app in steps of 10, 50 and 100 percent with a bake of `bake`.
fn waves(ami: &str, capacity: u32, rollout: &str, extra: &str) -> String {
    let app = config(ami, capacity, extra);
    let app = app.replacen(
        "    drain_timeout  = \"1s\"\n",
        &format!("    drain_timeout  = \"1s\"\n{rollout}\n"),
        1,
    );
    assert!(app.contains(rollout), "the rollout settings went in: {app}");
    app.replace("health_timeout = \"5s\"", "health_timeout = \"30s\"")
        + r##"
output "last_rollout" {
  value = immutable_app.web.last_rollout
}
output "rollout_plan" {
  value = immutable_app.web.rollout_plan
}
"##
}

const STEPS: &str = "    steps          = [10, 50, 100]\n    bake_time      = \"1s\"";

/// The green fleet of `generation` (open), if requested yet: its id, target capacity
/// and instances.
fn green_fleet(account: &tests::Account, generation: u64) -> Option<(String, i32, Vec<String>)> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let fleets = ec2.describe_spot_fleet_requests().send().await.ok()?;
        let fleet = fleets.spot_fleet_request_configs().iter().find(|f| {
            f.tags().iter().any(|t| {
                t.key() == Some("immutable:generation") && t.value() == Some(&generation.to_string())
            }) && f
                .spot_fleet_request_state()
                .is_some_and(|s| s.as_str() == "active" || s.as_str() == "modifying")
        })?;
        let id = fleet.spot_fleet_request_id()?.to_owned();
        let target = fleet.spot_fleet_request_config().and_then(|c| c.target_capacity()).unwrap_or(0);
        let instances = ec2.describe_spot_fleet_instances().spot_fleet_request_id(&id).send().await.ok()?;
        let ids =
            instances.active_instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect();
        Some((id, target, ids))
    })
}

/// Healthy targets of the app's target group now.
pub(super) fn healthy(account: &tests::Account, group: &str) -> Vec<String> {
    runtime().block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
        let health =
            elb.describe_target_health().target_group_arn(group).send().await.expect("target health");
        health
            .target_health_descriptions()
            .iter()
            .filter(|t| t.target_health().and_then(|h| h.state()).is_some_and(|s| s.as_str() == "healthy"))
            .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_owned))
            .collect()
    })
}

/// The app's `last_rollout` as the state holds it (after a failed apply Terraform
/// keeps the resource's new state but not the outputs that depend on it).
fn last_rollout(workdir: &Workdir) -> serde_json::Value {
    let shown = workdir.run_ok(&["show", "-json", "-no-color"]).expect("show");
    let state: serde_json::Value = serde_json::from_str(&shown.stdout).expect("state JSON");
    let app = state["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["address"] == "immutable_app.web"))
        .cloned()
        .expect("the app in state");
    app["values"]["last_rollout"].clone()
}

fn steps_of(workdir: &Workdir) -> Vec<serde_json::Value> {
    last_rollout(workdir)["steps"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_rollout_in_steps_keeps_every_target_serving_and_bounds_the_surge() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &waves(&s.amis[0], 10, STEPS, ""));
    workdir.init().expect("init");
    workdir.apply().expect("first deploy in steps");
    let first = steps_of(&workdir);
    assert_eq!(first.len(), 3, "a create goes in steps too: {first:?}");
    let plan = workdir.output("rollout_plan").expect("rollout_plan");
    assert_eq!(plan["steps"], serde_json::json!([1, 5, 10]));
    assert_eq!(plan["max_surge"], 5);
    // The group's health check (30 s interval, 5 checks) and the bake (1 s), three
    // times; a create has no old fleet to drain.
    assert_eq!(plan["estimated_duration"], "7m33s", "{plan}");
    assert_eq!(healthy(&s.account, &s.infra.target_group_arn).len(), 10);

    let watch = Watch::start(&s.account, &s.infra.target_group_arn, "web");
    workdir.write("main.tf", &waves(&s.amis[1], 10, STEPS, ""));
    let applied = workdir.apply().expect("rollout in steps");
    let watched = watch.stop();
    assert!(watched.errors.is_empty(), "{:?}", watched.errors);
    assert!(watched.samples.len() > 50, "the watch sampled the whole rollout: {}", watched.samples.len());
    assert_eq!(
        watched.min_healthy,
        Some(10),
        "never fewer than 10 healthy targets; lowest samples: {:?}",
        watched.samples.iter().filter(|s| s.healthy.len() < 10).take(3).collect::<Vec<_>>()
    );
    assert!(watched.peak_instances <= 15, "at most 10 + 5 instances, saw {}", watched.peak_instances);
    assert!(watched.peak_instances > 10, "the steps did run side by side: {}", watched.peak_instances);
    let steps = steps_of(&workdir);
    assert_eq!(steps.len(), 3, "{steps:?}");
    let sizes: Vec<u64> = steps.iter().map(|s| s["instances"].as_u64().unwrap_or(0)).collect();
    assert_eq!(sizes, [1, 5, 10]);
    assert!(steps.iter().all(|s| s["verdict"] == "passed"), "{steps:?}");
    assert!(steps.iter().all(|s| s["healthy_after"].is_string()), "{steps:?}");
    let record = workdir.output("last_rollout").expect("last_rollout");
    assert_eq!(record["outcome"], "switched");
    assert_eq!(record["generation"], 2);
    // A rollout also drains each step's share of the old fleet (drain_timeout 1 s,
    // shorter than the group's 300 s delay).
    let plan = workdir.output("rollout_plan").expect("rollout_plan");
    assert_eq!(plan["estimated_duration"], "7m36s", "{plan}");
    assert!(applied.stderr.is_empty() || !applied.stderr.contains("Error"), "{}", applied.stderr);
    assert!(!workdir.plan_has_changes().expect("plan"), "converged");
    workdir.destroy().expect("destroy");
}

#[test]
fn an_alarm_during_the_second_step_rolls_back_to_the_full_old_fleet() {
    let s = setup();
    s.account.put_alarm("web-5xx").expect("alarm");
    let gated = format!("{STEPS}\n    alarms         = [\"web-5xx\"]");
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &waves(&s.amis[0], 10, &gated, ""));
    workdir.init().expect("init");
    workdir.apply().expect("first deploy");
    let blue = out_str(&workdir, "fleet_id");

    let watch = Watch::start(&s.account, &s.infra.target_group_arn, "web");
    workdir.write("main.tf", &waves(&s.amis[1], 10, &gated.replace("1s", "6s"), ""));
    let apply =
        RunningTerraform::start(&workdir, &["apply", "-auto-approve", "-no-color", "-input=false"], &[])
            .expect("apply");
    // The second step: green asked for 5 instances, all of them healthy.
    wait_until(Duration::from_secs(60), "the second step to be healthy", || {
        green_fleet(&s.account, 2).is_some_and(|(_, target, instances)| {
            target == 5 && instances.len() == 5 && {
                let healthy = healthy(&s.account, &s.infra.target_group_arn);
                instances.iter().all(|i| healthy.contains(i))
            }
        })
    })
    .expect("second step");
    // The provider sees the step healthy within one poll (at most 3 s apart) and bakes
    // it for 6 s: the alarm fires in the middle of the bake.
    std::thread::sleep(Duration::from_millis(3500));
    s.account.set_alarm("web-5xx", "ALARM", "5xx above threshold").expect("alarm fires");
    let failed = apply.wait(Duration::from_secs(120)).expect("apply ends");
    let watched = watch.stop();
    assert_eq!(
        watched.min_healthy,
        Some(10),
        "blue was restored before green went: never fewer than 10 healthy targets; lowest samples: {:?}",
        watched.samples.iter().filter(|s| s.healthy.len() < 10).take(3).collect::<Vec<_>>()
    );
    assert!(!failed.success(), "the rollout failed");
    // Terraform wraps diagnostics: compare with the lines joined.
    let error = failed.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(error.contains("Rollout Failed"), "{error}");
    assert!(error.contains("CloudWatch alarm web-5xx in ALARM"), "names the alarm: {error}");
    assert!(error.contains("step 2 of 3 at 5 of 10 instances, baking"), "names the step: {error}");

    assert_eq!(out_str(&workdir, "fleet_id"), blue, "blue still serves");
    assert!(green_fleet(&s.account, 2).is_none(), "green is gone");
    let blue_instances = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let out =
            ec2.describe_spot_fleet_instances().spot_fleet_request_id(&blue).send().await.expect("blue");
        out.active_instances().iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect::<Vec<_>>()
    });
    assert_eq!(blue_instances.len(), 10, "blue back at full capacity");
    wait_until(Duration::from_secs(30), "blue healthy in full", || {
        let healthy = healthy(&s.account, &s.infra.target_group_arn);
        blue_instances.iter().all(|i| healthy.contains(i))
    })
    .expect("blue healthy");
    let record = last_rollout(&workdir);
    assert_eq!(record["outcome"], "rolled back", "{record}");
    assert!(record["reason"].as_str().is_some_and(|r| r.contains("web-5xx")), "{record}");
    let verdicts: Vec<String> =
        steps_of(&workdir).iter().map(|s| s["verdict"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(verdicts, ["passed", "rolled back"], "{record}");

    s.account.set_alarm("web-5xx", "OK", "recovered").expect("alarm clears");
    assert!(workdir.plan_has_changes().expect("plan"), "the next plan proposes the rollout again");
    workdir.destroy().expect("destroy");
}

/// Starts a rollout in two steps with a bake, and interrupts one green instance of the
/// first step once it is registered; returns the apply's result.
fn interrupted_rollout(s: &super::app::Setup, ami: &str, workdir: &Workdir) -> (tests::TfOutput, String) {
    let two_steps = "    steps          = [50, 100]\n    bake_time      = \"2s\"";
    workdir.write("main.tf", &waves(&s.amis[0], 4, two_steps, ""));
    workdir.init().expect("init");
    workdir.apply().expect("first deploy");
    workdir.write("main.tf", &waves(ami, 4, two_steps, ""));
    let apply =
        RunningTerraform::start(workdir, &["apply", "-auto-approve", "-no-color", "-input=false"], &[])
            .expect("apply");
    let mut victim = String::new();
    wait_until(Duration::from_secs(60), "green's first step", || match green_fleet(&s.account, 2) {
        Some((_, 2, instances)) if instances.len() == 2 => {
            victim = instances[0].clone();
            true
        }
        _ => false,
    })
    .expect("first step");
    s.account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={victim}"), None)
        .expect("interrupt");
    let done = apply.wait(Duration::from_secs(180)).expect("apply ends");
    // The reclaimed instance was terminated and the fleet replaced it.
    let state = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let out = ec2.describe_instances().instance_ids(&victim).send().await.expect("victim");
        out.reservations()[0].instances()[0].state().and_then(|s| s.name()).map(|n| n.as_str().to_owned())
    });
    assert!(matches!(state.as_deref(), Some("terminated" | "shutting-down")), "{victim}: {state:?}");
    (done, victim)
}

#[test]
fn a_green_instance_reclaimed_during_a_step_is_replaced_and_the_rollout_completes() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    let (done, victim) = interrupted_rollout(&s, &s.amis[1], &workdir);
    assert!(done.success(), "{}", done.stderr);
    let record = workdir.output("last_rollout").expect("last_rollout");
    assert_eq!(record["outcome"], "switched", "{record}");
    let instances = super::app::out_list(&workdir, "instance_ids");
    assert_eq!(instances.len(), 4);
    assert!(!instances.contains(&victim), "the reclaimed instance was replaced: {instances:?}");
    let healthy = healthy(&s.account, &s.infra.target_group_arn);
    assert!(instances.iter().all(|i| healthy.contains(i)), "every serving instance healthy");
    workdir.destroy().expect("destroy");
}

#[test]
fn a_broken_build_still_rolls_back_when_an_instance_is_also_reclaimed() {
    let s = setup();
    let broken = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        register_ami(
            &ec2,
            "web-1700000009",
            &[("Layer", "web"), ("Commit", &"9".repeat(40)), ("immutable-test:health", "unhealthy")],
        )
        .await
        .expect("broken AMI")
    });
    let workdir = Workdir::new(&s.account);
    let (done, _) = interrupted_rollout(&s, &broken, &workdir);
    assert!(!done.success(), "a broken build does not pass");
    assert!(done.stderr.contains("Rollout Failed"), "{}", done.stderr);
    assert!(done.stderr.contains("Target."), "names the load balancer's reason: {}", done.stderr);
    assert!(green_fleet(&s.account, 2).is_none(), "green is gone");
    let blue = out_str(&workdir, "fleet_id");
    assert_eq!(
        runtime().block_on(async {
            let ec2 = s.account.ec2().await;
            let out =
                ec2.describe_spot_fleet_instances().spot_fleet_request_id(&blue).send().await.expect("blue");
            out.active_instances().len()
        }),
        4,
        "blue serves in full"
    );
    workdir.destroy().expect("destroy");
}

#[test]
fn capacity_rebalance_is_set_on_the_fleet_and_a_long_drain_is_warned_about() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    let rebalance =
        "capacity_rebalance = \"launch-before-terminate\"\n  capacity_rebalance_termination_delay = 300";
    workdir.write("main.tf", &waves(&s.amis[0], 1, "", rebalance));
    workdir.init().expect("init");
    let plan = workdir.plan().expect("plan");
    assert!(
        plan.stdout.contains("Drain Longer Than Spot Notice")
            || plan.stderr.contains("Drain Longer Than Spot Notice"),
        "the group's 300 s deregistration delay is longer than the Spot notice: {}{}",
        plan.stdout,
        plan.stderr
    );
    workdir.apply().expect("apply");
    let fleet = out_str(&workdir, "fleet_id");
    let (strategy, delay) = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let out =
            ec2.describe_spot_fleet_requests().spot_fleet_request_ids(&fleet).send().await.expect("fleet");
        let config =
            out.spot_fleet_request_configs()[0].spot_fleet_request_config().cloned().expect("config");
        let rebalance = config.spot_maintenance_strategies().and_then(|m| m.capacity_rebalance()).cloned();
        (
            rebalance.as_ref().and_then(|r| r.replacement_strategy()).map(|s| s.as_str().to_owned()),
            rebalance.and_then(|r| r.termination_delay()),
        )
    });
    assert_eq!(strategy.as_deref(), Some("launch-before-terminate"));
    assert_eq!(delay, Some(300));

    // A group that drains within the notice: no warning.
    runtime().block_on(async {
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&s.account.sdk_config().await);
        elb.modify_target_group_attributes()
            .target_group_arn(&s.infra.target_group_arn)
            .attributes(
                aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value("90")
                    .build(),
            )
            .send()
            .await
            .expect("shorter drain")
    });
    workdir.write("main.tf", &waves(&s.amis[1], 1, "", rebalance));
    let plan = workdir.plan().expect("plan");
    assert!(
        !plan.stdout.contains("Drain Longer") && !plan.stderr.contains("Drain Longer"),
        "{}",
        plan.stdout
    );
    workdir.destroy().expect("destroy");
}

#[test]
fn an_unknown_alarm_is_a_plan_error_on_its_attribute() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    let gated = "    alarms         = [\"no-such-alarm\"]";
    workdir.write("main.tf", &waves(&s.amis[0], 1, gated, ""));
    workdir.init().expect("init");
    let plan = workdir.plan();
    let failed = plan.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(failed.contains("Alarm Not Found"), "{failed}");
    assert!(failed.contains("no-such-alarm"), "{failed}");
    assert!(
        s.account.requests().expect("requests").keys().all(|k| !k.contains("RequestSpotFleet")),
        "nothing created"
    );
}
