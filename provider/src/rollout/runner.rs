//! Drives a [`Rollout`] with real AWS calls. Polls are quick when AWS is quick and
//! back off when it is slow; every wait also watches Terraform's stop and the deadline.

use super::machine::{Action, Blue, FleetState, Observation, Outcome, Rollout, Settings};
use crate::aws::{AwsError, Clients, elb, fleet};
use std::collections::BTreeMap;
use std::time::Duration;
use tfplugin::provider::Context;
use tokio::time::Instant;

/// Poll intervals: the first poll is immediate, then 250 ms growing by half up to 3 s.
/// A real rollout notices health within a few seconds, and one rollout stays well
/// under EC2's DescribeSpotFleetRequests refill rate (3 per second per account).
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    first: bool,
}

impl Backoff {
    const START: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(3);

    pub fn new() -> Self {
        Self { next: Self::START, first: true }
    }

    pub fn next_delay(&mut self) -> Duration {
        if std::mem::take(&mut self.first) {
            return Duration::ZERO;
        }
        let delay = self.next;
        self.next = (self.next * 3 / 2).min(Self::MAX);
        delay
    }

    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// How many times the runner tries an action whose AWS call failed (after the SDK's
/// own retries) before it gives up on it.
const ACTION_ATTEMPTS: u32 = 5;

enum Woken {
    Elapsed,
    Stopped,
    Deadline,
}

async fn wait(delay: Duration, ctx: &Context, deadline: Instant) -> Woken {
    if ctx.is_stopped() {
        return Woken::Stopped;
    }
    tokio::select! {
        _ = tokio::time::sleep(delay) => Woken::Elapsed,
        _ = ctx.stop.cancelled() => Woken::Stopped,
        _ = tokio::time::sleep_until(deadline) => Woken::Deadline,
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunResult {
    pub outcome: Outcome,
    /// Launch template of the serving fleet's generation.
    pub green_template: Option<String>,
    /// Problems after the outcome was decided (e.g. a fleet that could not be
    /// cancelled), for the user to see.
    pub cleanup_errors: Vec<String>,
}

pub struct Runner<'a> {
    pub clients: &'a Clients,
    pub ctx: &'a Context,
    pub spec: &'a fleet::FleetSpec,
    /// Health deadline (the rollout rolls back when it passes before green is healthy).
    pub deadline: Instant,
}

impl Runner<'_> {
    /// Runs the rollout to its end.
    pub async fn run(&self, settings: Settings, blue: Option<Blue>) -> RunResult {
        let app = &self.spec.app;
        let mut rollout = Rollout::new(settings.clone(), blue.clone());
        let mut backoff = Backoff::new();
        let mut green_template: Option<String> = None;
        let mut cleanup_errors = Vec::new();
        let mut stop_seen = false;
        let mut deadline_seen = false;
        let mut last_progress = String::new();
        let mut attempts = 0u32;
        loop {
            if !stop_seen && self.ctx.is_stopped() {
                stop_seen = true;
                tracing::warn!(app = %app, "stop requested during {}", rollout.phase_name());
                rollout.observe(Observation::StopRequested);
            }
            if !deadline_seen && Instant::now() >= self.deadline && !rollout.green_is_healthy() {
                deadline_seen = true;
                tracing::warn!(app = %app, "health deadline passed during {}", rollout.phase_name());
                rollout.observe(Observation::DeadlinePassed);
            }
            let action = rollout.next_action();
            let result: Result<Option<Observation>, AwsError> = match &action {
                Action::Finish(outcome) => {
                    match outcome {
                        Outcome::Switched { fleet_id, instances } => {
                            tracing::info!(app = %app, "green fleet {fleet_id} serves with {} instances", instances.len());
                        }
                        Outcome::RolledBack { failure } => {
                            tracing::warn!(app = %app, "rolled back: {failure}");
                            if let Some(template) = green_template.take()
                                && let Err(e) =
                                    fleet::delete_launch_template(&self.clients.ec2, &template).await
                            {
                                cleanup_errors.push(e.to_string());
                            }
                        }
                    }
                    return RunResult { outcome: outcome.clone(), green_template, cleanup_errors };
                }
                Action::RequestGreen => self.request_green(&mut green_template).await.map(Some),
                Action::PollGreen { fleet_id } => {
                    match wait(backoff.next_delay(), self.ctx, self.poll_deadline(&rollout)).await {
                        Woken::Elapsed => self.poll_green(fleet_id, &mut last_progress).await.map(Some),
                        _ => Ok(None),
                    }
                }
                Action::Register { instances } => self.register(instances).await.map(|()| {
                    backoff.reset();
                    Some(Observation::Registered)
                }),
                Action::PollHealth { fleet_id } => {
                    match wait(backoff.next_delay(), self.ctx, self.poll_deadline(&rollout)).await {
                        Woken::Elapsed => {
                            self.poll_health(fleet_id, &settings, &mut last_progress).await.map(Some)
                        }
                        _ => Ok(None),
                    }
                }
                Action::Deregister { instances } => {
                    let which = if blue.as_ref().is_some_and(|b| &b.instances == instances) {
                        "blue"
                    } else {
                        "green"
                    };
                    tracing::info!(app = %app, "draining {which}: deregistering {} instances", instances.len());
                    self.deregister(instances).await.map(|()| Some(Observation::Deregistered))
                }
                Action::WaitDrain(limit) => {
                    let instances = blue.as_ref().map(|b| b.instances.clone()).unwrap_or_default();
                    Ok(self.wait_drained(&instances, *limit).await)
                }
                Action::Cancel { fleet_id } => {
                    let which =
                        if blue.as_ref().is_some_and(|b| &b.fleet_id == fleet_id) { "blue" } else { "green" };
                    tracing::info!(app = %app, "cancelling {which} fleet {fleet_id} and terminating its instances");
                    fleet::cancel_fleet(&self.clients.ec2, fleet_id)
                        .await
                        .map(|()| Some(Observation::Cancelled { fleet_id: fleet_id.clone() }))
                }
            };
            match result {
                Ok(Some(observation)) => {
                    attempts = 0;
                    rollout.observe(observation);
                }
                Ok(None) => {}
                Err(error) => {
                    attempts += 1;
                    tracing::warn!(app = %app, "{error} (attempt {attempts})");
                    let cleanup = rollout.green_is_healthy()
                        || matches!(action, Action::Cancel { .. } | Action::Deregister { .. });
                    if attempts < ACTION_ATTEMPTS {
                        // Every action is safe to repeat (polls read, requests carry a
                        // client token), so one that failed even after the SDK's retries
                        // gets a few more tries: a poll lost to a burst of AWS errors
                        // must not roll back a rollout that would succeed. Before green
                        // is healthy the pause still ends at the health deadline.
                        let until = if cleanup { far_future() } else { self.poll_deadline(&rollout) };
                        let _ = wait(Duration::from_millis(500) * attempts, self.ctx, until).await;
                    } else if !cleanup {
                        attempts = 0;
                        rollout.observe(Observation::Failed { reason: error.to_string() });
                    } else {
                        // Cleanup that keeps failing: report it rather than loop forever.
                        cleanup_errors.push(format!("{error}; finish this by hand"));
                        return RunResult {
                            outcome: give_up(&rollout, error),
                            green_template,
                            cleanup_errors,
                        };
                    }
                }
            }
        }
    }

    /// Polls stop at the health deadline until green is healthy; after that only
    /// stop interrupts them.
    fn poll_deadline(&self, rollout: &Rollout) -> Instant {
        if rollout.green_is_healthy() { far_future() } else { self.deadline }
    }

    async fn request_green(&self, template: &mut Option<String>) -> Result<Observation, AwsError> {
        let spec = self.spec;
        let existing = fleet::find_fleet_by_tags(&self.clients.ec2, &spec.app, spec.generation).await?;
        if let Some(stale) = existing.as_ref().filter(|f| f.runs_other_config_than(spec)) {
            // Left by an interrupted rollout to a configuration that is no longer
            // wanted; blue still serves. Take it out before requesting the right one.
            tracing::warn!(app = %spec.app, "fleet {} of generation {} runs another configuration; cancelling it", stale.id, spec.generation);
            let instances = fleet::fleet_instances(&self.clients.ec2, &stale.id).await?;
            for group in &spec.target_group_arns {
                elb::deregister(&self.clients.elbv2, group, &instances).await?;
            }
            fleet::cancel_fleet(&self.clients.ec2, &stale.id).await?;
        } else if let Some(existing) = existing {
            tracing::info!(app = %spec.app, "adopting fleet {} of generation {} left by an interrupted run", existing.id, spec.generation);
            *template = existing.launch_template_id.clone();
            return Ok(Observation::GreenRequested { fleet_id: existing.id });
        }
        let template_id = fleet::ensure_launch_template(&self.clients.ec2, spec).await?;
        *template = Some(template_id.clone());
        match fleet::request_fleet(&self.clients.ec2, spec, &template_id).await {
            Ok(fleet_id) => {
                tracing::info!(app = %spec.app, "requested green fleet {fleet_id} (generation {}, {} x {})",
                    spec.generation, spec.target_capacity, spec.instance_types.join("/"));
                Ok(Observation::GreenRequested { fleet_id })
            }
            Err(e) => Ok(Observation::RequestFailed { reason: e.to_string() }),
        }
    }

    async fn poll_green(&self, fleet_id: &str, last: &mut String) -> Result<Observation, AwsError> {
        let ec2 = &self.clients.ec2;
        let Some(fleet) = fleet::find_fleet(ec2, fleet_id).await? else {
            return Ok(Observation::GreenStatus {
                state: FleetState::Closed,
                instances: vec![],
                fulfilled: false,
                error: None,
            });
        };
        if !fleet.is_open() {
            return Ok(Observation::GreenStatus {
                state: FleetState::Closed,
                instances: vec![],
                fulfilled: false,
                error: None,
            });
        }
        let error = fleet::fleet_error(ec2, &fleet).await?;
        let instances = fleet::fleet_instances(ec2, fleet_id).await?;
        let target = usize::try_from(fleet.target_capacity).unwrap_or(usize::MAX);
        let fulfilled = instances.len() >= target && fleet.activity.as_deref() != Some("pending_fulfillment");
        progress(last, format!("green fleet {fleet_id} fulfilled {}/{target}", instances.len().min(target)));
        Ok(Observation::GreenStatus { state: FleetState::Open, instances, fulfilled, error })
    }

    /// Registers instances the fleet's load balancer config did not register.
    async fn register(&self, instances: &[String]) -> Result<(), AwsError> {
        for group in &self.spec.target_group_arns {
            let registered = elb::target_health(&self.clients.elbv2, group, None).await?;
            let missing: Vec<String> = instances
                .iter()
                .filter(|i| !registered.iter().any(|t| &t.instance_id == *i && t.state != "draining"))
                .cloned()
                .collect();
            if !missing.is_empty() {
                tracing::info!(app = %self.spec.app, "registering {} instances in tg {}", missing.len(), elb::short(group));
                elb::register(&self.clients.elbv2, group, &missing).await?;
            }
        }
        Ok(())
    }

    async fn deregister(&self, instances: &[String]) -> Result<(), AwsError> {
        for group in &self.spec.target_group_arns {
            elb::deregister(&self.clients.elbv2, group, instances).await?;
        }
        Ok(())
    }

    async fn poll_health(
        &self,
        fleet_id: &str,
        settings: &Settings,
        last: &mut String,
    ) -> Result<Observation, AwsError> {
        let ec2 = &self.clients.ec2;
        match fleet::find_fleet(ec2, fleet_id).await? {
            Some(f) if f.is_open() => {}
            _ => {
                return Ok(Observation::GreenStatus {
                    state: FleetState::Closed,
                    instances: vec![],
                    fulfilled: false,
                    error: None,
                });
            }
        }
        let instances = fleet::fleet_instances(ec2, fleet_id).await?;
        let mut by_group = BTreeMap::new();
        let mut summary = Vec::new();
        for group in &settings.target_groups {
            let health = elb::target_health(&self.clients.elbv2, group, Some(&instances)).await?;
            let healthy = health.iter().filter(|t| t.is_healthy()).count();
            summary.push(format!("healthy {healthy}/{} in tg {}", instances.len(), elb::short(group)));
            by_group.insert(group.clone(), health);
        }
        progress(last, summary.join(", "));
        Ok(Observation::Health { instances, by_group })
    }

    /// Waits until no blue target is still draining, or `limit`.
    async fn wait_drained(&self, instances: &[String], limit: Duration) -> Option<Observation> {
        let until = Instant::now() + limit;
        let mut backoff = Backoff::new();
        loop {
            match wait(backoff.next_delay(), self.ctx, until).await {
                Woken::Stopped => return Some(Observation::StopRequested),
                Woken::Deadline => return Some(Observation::DrainDone),
                Woken::Elapsed => {}
            }
            let mut draining = false;
            for group in &self.spec.target_group_arns {
                match elb::target_health(&self.clients.elbv2, group, None).await {
                    Ok(health) => {
                        draining |= health
                            .iter()
                            .any(|t| instances.contains(&t.instance_id) && t.state == "draining");
                    }
                    Err(e) => {
                        tracing::debug!("{e}");
                        draining = true;
                    }
                }
            }
            if !draining {
                return Some(Observation::DrainDone);
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

fn progress(last: &mut String, now: String) {
    if *last != now {
        tracing::info!("{now}");
        *last = now;
    }
}

/// The outcome to report when cleanup cannot finish: say what serves.
fn give_up(rollout: &Rollout, error: AwsError) -> Outcome {
    if rollout.green_is_healthy() {
        Outcome::Switched {
            fleet_id: rollout.green_fleet().unwrap_or_default().to_owned(),
            instances: Vec::new(),
        }
    } else {
        Outcome::RolledBack { failure: super::machine::Failure::Aws(error.to_string()) }
    }
}

/// What the emulator cannot produce: a fleet whose activity turns to `error` with a
/// reason in its request history, and the idempotency token a retried request
/// replays. Driven through SDK-level mocks.
#[cfg(test)]
mod mocked {
    use super::*;
    use crate::rollout::machine::{Failure, Settings};
    use aws_sdk_ec2::operation::cancel_spot_fleet_requests::CancelSpotFleetRequestsOutput;
    use aws_sdk_ec2::operation::create_launch_template::CreateLaunchTemplateOutput;
    use aws_sdk_ec2::operation::delete_launch_template::DeleteLaunchTemplateOutput;
    use aws_sdk_ec2::operation::describe_launch_templates::DescribeLaunchTemplatesOutput;
    use aws_sdk_ec2::operation::describe_spot_fleet_instances::DescribeSpotFleetInstancesOutput;
    use aws_sdk_ec2::operation::describe_spot_fleet_request_history::DescribeSpotFleetRequestHistoryOutput;
    use aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput;
    use aws_sdk_ec2::operation::request_spot_fleet::RequestSpotFleetOutput;
    use aws_sdk_ec2::types::{
        ActivityStatus, BatchState, EventInformation, EventType, HistoryRecord, LaunchTemplate,
        SpotFleetRequestConfig, SpotFleetRequestConfigData,
    };
    use aws_sdk_ec2::{Client as Ec2, types::Tag};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn spec() -> fleet::FleetSpec {
        fleet::FleetSpec {
            app: "web".into(),
            generation: 3,
            ami_id: "ami-1".into(),
            root_device_name: "/dev/xvda".into(),
            instance_types: vec!["t3.small".into()],
            subnet_ids: vec![],
            availability_zones: vec![],
            target_capacity: 2,
            on_demand_capacity: 0,
            allocation_strategy: "priceCapacityOptimized".into(),
            instance_pools_to_use_count: None,
            max_price: None,
            interruption_behavior: "terminate".into(),
            fleet_role_arn: "arn:aws:iam::1:role/fleet".into(),
            valid_until: None,
            security_group_ids: vec![],
            instance_profile_arn: None,
            user_data: None,
            key_name: None,
            target_group_arns: vec!["arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/1".into()],
            tags: BTreeMap::from([("immutable:app".into(), "web".into())]),
            template_tags: BTreeMap::new(),
        }
    }

    fn clients(ec2: Ec2) -> Clients {
        let region = aws_config::Region::new("eu-west-1");
        let behavior = aws_config::BehaviorVersion::latest();
        let elbv2 = aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::Config::builder()
                .behavior_version(behavior)
                .region(region.clone())
                .build(),
        );
        Clients {
            reads: std::sync::Arc::new(crate::aws::reads::Reads::new(ec2.clone(), elbv2.clone())),
            ec2,
            elbv2,
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::Config::builder().behavior_version(behavior).region(region).build(),
            ),
            region: "eu-west-1".into(),
            default_tags: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn fleet_error_fails_fast_with_the_reason_from_history_and_cancels_green() {
        let spec = spec();
        let token = spec.client_token();
        let no_fleets = mock!(Ec2::describe_spot_fleet_requests)
            .match_requests(|r| r.spot_fleet_request_ids().is_empty())
            .then_output(|| DescribeSpotFleetRequestsOutput::builder().build());
        let erroring = mock!(Ec2::describe_spot_fleet_requests).then_output(|| {
            DescribeSpotFleetRequestsOutput::builder()
                .spot_fleet_request_configs(
                    SpotFleetRequestConfig::builder()
                        .spot_fleet_request_id("sfr-green")
                        .spot_fleet_request_state(BatchState::Active)
                        .activity_status(ActivityStatus::Error)
                        .spot_fleet_request_config(
                            SpotFleetRequestConfigData::builder().target_capacity(2).build(),
                        )
                        .tags(Tag::builder().key("immutable:app").value("web").build())
                        .build(),
                )
                .build()
        });
        let no_template = mock!(Ec2::describe_launch_templates)
            .then_output(|| DescribeLaunchTemplatesOutput::builder().build());
        let template = mock!(Ec2::create_launch_template).then_output(|| {
            CreateLaunchTemplateOutput::builder()
                .launch_template(LaunchTemplate::builder().launch_template_id("lt-1").build())
                .build()
        });
        let expected = token.clone();
        let request = mock!(Ec2::request_spot_fleet)
            .match_requests(move |r| {
                r.spot_fleet_request_config().and_then(|c| c.client_token()) == Some(expected.as_str())
            })
            .then_output(|| RequestSpotFleetOutput::builder().spot_fleet_request_id("sfr-green").build());
        let history = mock!(Ec2::describe_spot_fleet_request_history).then_output(|| {
            DescribeSpotFleetRequestHistoryOutput::builder()
                .history_records(
                    HistoryRecord::builder()
                        .event_type(EventType::Error)
                        .event_information(
                            EventInformation::builder()
                                .event_sub_type("iamFleetRoleInvalid")
                                .event_description("Spot Fleet does not have the required permissions")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
        let instances = mock!(Ec2::describe_spot_fleet_instances).then_output(|| {
            DescribeSpotFleetInstancesOutput::builder().spot_fleet_request_id("sfr-green").build()
        });
        let cancel = mock!(Ec2::cancel_spot_fleet_requests)
            .match_requests(|r| {
                r.spot_fleet_request_ids() == ["sfr-green"] && r.terminate_instances() == Some(true)
            })
            .then_output(|| CancelSpotFleetRequestsOutput::builder().build());
        let delete =
            mock!(Ec2::delete_launch_template).then_output(|| DeleteLaunchTemplateOutput::builder().build());
        let ec2 = mock_client!(
            aws_sdk_ec2,
            RuleMode::MatchAny,
            [
                &no_fleets,
                &erroring,
                &no_template,
                &template,
                &request,
                &history,
                &instances,
                &cancel,
                &delete
            ]
        );
        let clients = clients(ec2);
        let ctx = Context::default();
        let runner = Runner {
            clients: &clients,
            ctx: &ctx,
            spec: &spec,
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let settings = Settings {
            target_groups: spec.target_group_arns.clone(),
            required_healthy: 2,
            drain: Duration::from_secs(1),
        };
        let started = Instant::now();
        let result = runner.run(settings, None).await;
        assert!(started.elapsed() < Duration::from_secs(5), "fails fast, not at the deadline");
        match result.outcome {
            Outcome::RolledBack { failure: Failure::FleetError { fleet_id, reason } } => {
                assert_eq!(fleet_id, "sfr-green");
                assert!(reason.contains("iamFleetRoleInvalid"), "{reason}");
                assert!(reason.contains("required permissions"), "{reason}");
            }
            other => panic!("expected a fleet error, got {other:?}"),
        }
        assert_eq!(request.num_calls(), 1, "requested once, with the configuration's idempotency token");
        assert_eq!(cancel.num_calls(), 1, "green cancelled with termination");
        assert_eq!(delete.num_calls(), 1, "green's launch template removed");
    }

    /// A health poll that fails even after the SDK's retries (here: retries off) is
    /// tried again; the rollout switches instead of rolling back.
    #[tokio::test]
    async fn a_failed_poll_is_retried_and_does_not_roll_back() {
        use aws_sdk_ec2::config::retry::RetryConfig;
        use aws_sdk_ec2::types::ActiveInstance;
        use aws_sdk_elasticloadbalancingv2::Client as Elb;
        use aws_sdk_elasticloadbalancingv2::error::ErrorMetadata;
        use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::{
            DescribeTargetHealthError, DescribeTargetHealthOutput,
        };
        use aws_sdk_elasticloadbalancingv2::types::{
            TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
        };
        let spec = spec();
        let no_fleets = mock!(Ec2::describe_spot_fleet_requests)
            .match_requests(|r| r.spot_fleet_request_ids().is_empty())
            .then_output(|| DescribeSpotFleetRequestsOutput::builder().build());
        let active = mock!(Ec2::describe_spot_fleet_requests).then_output(|| {
            DescribeSpotFleetRequestsOutput::builder()
                .spot_fleet_request_configs(
                    SpotFleetRequestConfig::builder()
                        .spot_fleet_request_id("sfr-green")
                        .spot_fleet_request_state(BatchState::Active)
                        .activity_status(ActivityStatus::Fulfilled)
                        .spot_fleet_request_config(
                            SpotFleetRequestConfigData::builder().target_capacity(2).build(),
                        )
                        .build(),
                )
                .build()
        });
        let no_template = mock!(Ec2::describe_launch_templates)
            .then_output(|| DescribeLaunchTemplatesOutput::builder().build());
        let template = mock!(Ec2::create_launch_template).then_output(|| {
            CreateLaunchTemplateOutput::builder()
                .launch_template(LaunchTemplate::builder().launch_template_id("lt-1").build())
                .build()
        });
        let request = mock!(Ec2::request_spot_fleet)
            .then_output(|| RequestSpotFleetOutput::builder().spot_fleet_request_id("sfr-green").build());
        let instances = mock!(Ec2::describe_spot_fleet_instances).then_output(|| {
            DescribeSpotFleetInstancesOutput::builder()
                .spot_fleet_request_id("sfr-green")
                .active_instances(ActiveInstance::builder().instance_id("i-1").build())
                .active_instances(ActiveInstance::builder().instance_id("i-2").build())
                .build()
        });
        let healthy = || {
            let target = |id: &str| {
                TargetHealthDescription::builder()
                    .target(TargetDescription::builder().id(id).build())
                    .target_health(TargetHealth::builder().state(TargetHealthStateEnum::Healthy).build())
                    .build()
            };
            DescribeTargetHealthOutput::builder()
                .target_health_descriptions(target("i-1"))
                .target_health_descriptions(target("i-2"))
                .build()
        };
        let health = mock!(Elb::describe_target_health)
            .sequence()
            .error(|| {
                DescribeTargetHealthError::generic(
                    ErrorMetadata::builder().code("InternalFailure").message("try again").build(),
                )
            })
            .output(healthy)
            .repeatedly()
            .build();
        let no_retries = |c: aws_sdk_ec2::config::Builder| c.retry_config(RetryConfig::disabled());
        let ec2 = mock_client!(
            aws_sdk_ec2,
            RuleMode::MatchAny,
            [&no_fleets, &active, &no_template, &template, &request, &instances],
            no_retries
        );
        // Built by hand: ELBv2 is compiled without the SDK's test defaults.
        let elbv2 = Elb::from_conf(
            aws_sdk_elasticloadbalancingv2::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_elasticloadbalancingv2::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(
                    aws_smithy_mocks::MockResponseInterceptor::new()
                        .rule_mode(RuleMode::MatchAny)
                        .with_rule(&health),
                )
                .retry_config(RetryConfig::disabled())
                .build(),
        );
        let clients = Clients { elbv2, ..clients(ec2) };
        let ctx = Context::default();
        let runner = Runner {
            clients: &clients,
            ctx: &ctx,
            spec: &spec,
            deadline: Instant::now() + Duration::from_secs(60),
        };
        let settings = Settings {
            target_groups: spec.target_group_arns.clone(),
            required_healthy: 2,
            drain: Duration::from_secs(1),
        };
        let result = runner.run(settings, None).await;
        match result.outcome {
            Outcome::Switched { fleet_id, .. } => assert_eq!(fleet_id, "sfr-green"),
            other => panic!("expected the rollout to switch, got {other:?}"),
        }
        assert!(health.num_calls() >= 2, "the failed poll was tried again");
        assert_eq!(request.num_calls(), 1);
    }

    #[test]
    fn client_token_is_stable_per_configuration() {
        let a = spec();
        assert_eq!(a.client_token(), spec().client_token(), "a retry replays the same token");
        assert!(a.client_token().len() <= 64, "EC2 accepts at most 64 characters");
        let mut b = spec();
        b.ami_id = "ami-2".into();
        assert_ne!(a.client_token(), b.client_token(), "another configuration, another fleet");
        let mut c = spec();
        c.generation = 4;
        assert_ne!(a.client_token(), c.client_token(), "another generation, another fleet");
    }
}
