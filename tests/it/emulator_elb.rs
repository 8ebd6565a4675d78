//! The emulator's target groups on AWS's time (`scripts/emulator/elb.py`): a target
//! turns healthy after HealthyThresholdCount passing checks HealthCheckIntervalSeconds
//! apart, fails after UnhealthyThresholdCount, and drains for the deregistration delay.

use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetGroupAttribute, TargetHealthDescription, TargetHealthStateEnum,
};
use std::time::Instant;
use tests::{Account, LocalAws, TEST_CLOCK_SCALE, realistic_health, register_ami, scaled};

struct Group {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ec2: aws_sdk_ec2::Client,
    arn: String,
    ami: String,
}

/// A target group with the given health-check interval, thresholds and
/// deregistration delay (AWS seconds), on the test clock.
async fn group(account: &Account, interval: i32, healthy: i32, unhealthy: i32, delay: u32) -> Group {
    account.behave(realistic_health()).expect("switch timed target health on");
    let config = account.sdk_config().await;
    let (ec2, elb) =
        (aws_sdk_ec2::Client::new(&config), aws_sdk_elasticloadbalancingv2::Client::new(&config));
    let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    let vpc = vpcs.vpcs()[0].vpc_id().expect("vpc id").to_owned();
    let created = elb
        .create_target_group()
        .name("timed")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .health_check_interval_seconds(interval)
        .healthy_threshold_count(healthy)
        .unhealthy_threshold_count(unhealthy)
        .send()
        .await
        .expect("CreateTargetGroup");
    let arn = created.target_groups()[0].target_group_arn().expect("arn").to_owned();
    elb.modify_target_group_attributes()
        .target_group_arn(&arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(delay.to_string())
                .build(),
        )
        .send()
        .await
        .expect("ModifyTargetGroupAttributes");
    let ami = register_ami(&ec2, "timed-health", &[]).await.expect("register AMI");
    Group { elb, ec2, arn, ami }
}

impl Group {
    /// A running instance whose boot takes `boot` AWS seconds (0: booted at once), or
    /// that never passes a check when `broken`.
    async fn instance(&self, boot: f64, broken: bool) -> String {
        let mut tags = vec![("immutable-test:boot-seconds", boot.to_string())];
        if broken {
            tags.push(("immutable-test:health", "unhealthy".to_owned()));
        }
        let spec = tags.iter().fold(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Instance),
            |spec, (k, v)| spec.tags(aws_sdk_ec2::types::Tag::builder().key(*k).value(v).build()),
        );
        let run = self
            .ec2
            .run_instances()
            .image_id(&self.ami)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
            .min_count(1)
            .max_count(1)
            .tag_specifications(spec.build())
            .send()
            .await
            .expect("RunInstances");
        run.instances()[0].instance_id().expect("instance id").to_owned()
    }

    async fn register(&self, instance: &str) {
        self.elb
            .register_targets()
            .target_group_arn(&self.arn)
            .targets(TargetDescription::builder().id(instance).build())
            .send()
            .await
            .expect("RegisterTargets");
    }

    async fn health(&self) -> Vec<TargetHealthDescription> {
        let answer = self
            .elb
            .describe_target_health()
            .target_group_arn(&self.arn)
            .send()
            .await
            .expect("DescribeTargetHealth");
        answer.target_health_descriptions().to_vec()
    }

    /// The state of `instance` (None when the group no longer lists it).
    async fn state(&self, instance: &str) -> Option<(TargetHealthStateEnum, Option<String>)> {
        self.health().await.into_iter().find(|d| d.target().and_then(|t| t.id()) == Some(instance)).map(|d| {
            let health = d.target_health().expect("target health");
            (health.state().expect("state").clone(), health.reason().map(|r| r.as_str().to_owned()))
        })
    }

    /// Polls every AWS second until `instance`'s state is not `state`; returns the
    /// new state and when it changed: after the last poll that still saw `state` and
    /// by the first that did not, in AWS seconds since `since`.
    async fn until_not(
        &self,
        instance: &str,
        state: Option<TargetHealthStateEnum>,
        since: Instant,
    ) -> (Option<TargetHealthStateEnum>, Changed) {
        let mut last_seen = 0.0;
        loop {
            let asked = since.elapsed().as_secs_f64() / TEST_CLOCK_SCALE;
            let now = self.state(instance).await.map(|(s, _)| s);
            if now != state {
                let seen = since.elapsed().as_secs_f64() / TEST_CLOCK_SCALE;
                return (now, Changed { after: last_seen, by: seen });
            }
            last_seen = asked;
            assert!(since.elapsed() < scaled(1200.0), "{instance} still {state:?} after 1200 AWS seconds");
            tokio::time::sleep(scaled(1.0)).await;
        }
    }
}

/// When a state changed, as the test's polls bracket it (AWS seconds).
#[derive(Debug, Clone, Copy)]
struct Changed {
    /// The last poll that still saw the old state was asked then.
    after: f64,
    /// The first poll that saw the new state had its answer then.
    by: f64,
}

impl Changed {
    /// Whether the change can have happened at `expected`: not seen before it, and
    /// not still absent from a poll asked later than `expected` plus the time a
    /// request takes to reach the emulator (the registration that started the clock
    /// was one, too). A slow poll after the change widens the bracket; it cannot fail
    /// the check.
    fn at(self, expected: f64) -> bool {
        self.by >= expected && self.after < expected + SLACK
    }
}

/// Allowance for a request's way to the emulator, in AWS seconds (40 ms on the test
/// clock, on a loaded machine): below the 10 s interval of the check schedules here,
/// so a change one check late still fails.
const SLACK: f64 = 4.0;

#[tokio::test]
async fn a_target_turns_healthy_after_threshold_times_interval() {
    let account = LocalAws::shared().account();
    let g = group(&account, 30, 5, 2, 300).await;
    let booted = g.instance(0.0, false).await;
    let registered = Instant::now();
    g.register(&booted).await;

    let (first, reason) = g.state(&booted).await.expect("listed once registered");
    assert_eq!(first, TargetHealthStateEnum::Initial);
    assert_eq!(reason.as_deref(), Some("Elb.RegistrationInProgress"));
    // Five passing checks, 30 AWS seconds apart, the first one interval after registration.
    let (state, changed) = g.until_not(&booted, Some(TargetHealthStateEnum::Initial), registered).await;
    assert_eq!(state, Some(TargetHealthStateEnum::Healthy));
    assert!(changed.at(150.0), "healthy {changed:?} AWS seconds after registration, expected 150");
}

#[tokio::test]
async fn a_booting_target_fails_checks_until_it_has_booted() {
    let account = LocalAws::shared().account();
    let g = group(&account, 10, 3, 2, 0).await;
    // Boots 45 AWS seconds after launch: checks at 10..40 time out (unhealthy after the
    // second), 50, 60 and 70 pass (healthy after the third).
    let booting = g.instance(45.0, false).await;
    let since = Instant::now();
    g.register(&booting).await;
    let (state, changed) = g.until_not(&booting, Some(TargetHealthStateEnum::Initial), since).await;
    assert_eq!(state, Some(TargetHealthStateEnum::Unhealthy));
    assert!(changed.at(20.0), "unhealthy {changed:?}, expected 20");
    assert_eq!(g.state(&booting).await.and_then(|(_, r)| r).as_deref(), Some("Target.Timeout"));
    let (state, changed) = g.until_not(&booting, Some(TargetHealthStateEnum::Unhealthy), since).await;
    assert_eq!(state, Some(TargetHealthStateEnum::Healthy));
    assert!(changed.at(70.0), "healthy {changed:?}, expected 70");

    // A broken instance never passes: unhealthy after the second failed check, and stays.
    let broken = g.instance(0.0, true).await;
    let since = Instant::now();
    g.register(&broken).await;
    let (state, changed) = g.until_not(&broken, Some(TargetHealthStateEnum::Initial), since).await;
    assert_eq!(state, Some(TargetHealthStateEnum::Unhealthy));
    assert!(changed.at(20.0), "unhealthy {changed:?}, expected 20");
    tokio::time::sleep(scaled(60.0)).await;
    let (state, reason) = g.state(&broken).await.expect("still registered");
    assert_eq!(state, TargetHealthStateEnum::Unhealthy);
    assert_eq!(reason.as_deref(), Some("Target.ResponseCodeMismatch"));
}

#[tokio::test]
async fn a_deregistered_target_drains_for_the_deregistration_delay() {
    let account = LocalAws::shared().account();
    let g = group(&account, 5, 2, 2, 120).await;
    let instance = g.instance(0.0, false).await;
    let since = Instant::now();
    g.register(&instance).await;
    let (state, _) = g.until_not(&instance, Some(TargetHealthStateEnum::Initial), since).await;
    assert_eq!(state, Some(TargetHealthStateEnum::Healthy));

    let since = Instant::now();
    g.elb
        .deregister_targets()
        .target_group_arn(&g.arn)
        .targets(TargetDescription::builder().id(&instance).build())
        .send()
        .await
        .expect("DeregisterTargets");
    let (state, reason) = g.state(&instance).await.expect("listed while draining");
    assert_eq!(state, TargetHealthStateEnum::Draining);
    assert_eq!(reason.as_deref(), Some("Target.DeregistrationInProgress"));
    let (state, changed) = g.until_not(&instance, Some(TargetHealthStateEnum::Draining), since).await;
    assert_eq!(state, None, "gone from the group once drained");
    assert!(changed.at(120.0), "drained {changed:?} AWS seconds after deregistration, expected 120");
    // Asked for by id, it is unused: no longer registered.
    let by_id = g
        .elb
        .describe_target_health()
        .target_group_arn(&g.arn)
        .targets(TargetDescription::builder().id(&instance).build())
        .send()
        .await
        .expect("DescribeTargetHealth by id");
    let health = by_id.target_health_descriptions()[0].target_health().expect("health");
    assert_eq!(health.state(), Some(&TargetHealthStateEnum::Unused));
    assert_eq!(health.reason().map(|r| r.as_str()), Some("Target.NotRegistered"));
}

#[tokio::test]
async fn without_the_switch_targets_are_healthy_at_once() {
    let account = LocalAws::shared().account();
    let g = group(&account, 30, 5, 2, 300).await;
    account.behave(serde_json::json!({ "target_health": "instant" })).expect("switch back");
    let instance = g.instance(0.0, false).await;
    g.register(&instance).await;
    assert_eq!(g.state(&instance).await.map(|(s, _)| s), Some(TargetHealthStateEnum::Healthy));
    let refused = account.behave(serde_json::json!({ "target_health": "eventually" }));
    assert!(refused.is_err_and(|e| format!("{e:#}").contains("target_health")), "a bad value is refused");
}
