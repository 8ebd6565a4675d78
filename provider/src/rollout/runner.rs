//! Drives a [`Rollout`] with real AWS calls: the app's capacity through a [`Capacity`]
//! backend, its launch template, its target groups. Polls are quick when AWS is quick
//! and back off when it is slow; every wait ends at the health deadline or at once when
//! Terraform stops the provider ([`crate::wait`]).
//!
//! [`resize`] changes the size of a serving group in place with the same registration
//! and health gate as a rollout, and says which targets were still unhealthy when its
//! time ran out.

use super::machine::{Action, Blue, FleetState, Observation, Outcome, Rollout, Settings};
use super::record::Record;
use crate::aws::{AwsError, Clients, alarms, launch_templates, target_groups};
use crate::capacity::{Capacity, GroupSpec};
use crate::health::{self, TargetHealth};
use crate::wait::{Backoff, Limits, Poll, WaitError, poll_until};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How many times the runner tries an action whose AWS call failed (after the SDK's
/// own retries) before it gives up on it.
const ACTION_ATTEMPTS: u32 = 5;

/// What a finished run produced.
#[derive(Debug)]
pub struct RunResult {
    pub outcome: Outcome,
    /// Launch template of the serving group's generation.
    pub green_template: Option<String>,
    /// Problems after the outcome was decided (e.g. a group that could not be
    /// cancelled), for the user to see.
    pub cleanup_errors: Vec<String>,
    /// The steps as they went.
    pub record: Record,
}

pub struct Runner<'a> {
    pub clients: &'a Clients,
    pub capacity: &'a dyn Capacity,
    pub spec: &'a GroupSpec,
    /// The whole rollout's deadline (Terraform's timeout for the operation) and
    /// Terraform's stop.
    pub limits: Limits,
    /// How long green has to get healthy at each step (afresh after a Spot
    /// replacement); the rollout rolls back when it passes.
    pub health_timeout: Duration,
    /// CloudWatch alarms that roll the rollout back when in ALARM during a step or its
    /// bake.
    pub alarms: &'a [String],
    /// The longest deregistration delay of the target groups, read once before the
    /// rollout (`None`: unknown; a drain is then polled at the usual pace).
    pub drain_delay: Option<Duration>,
}

impl Runner<'_> {
    /// Runs the rollout to its end.
    pub async fn run(&self, settings: Settings, blue: Option<Blue>) -> RunResult {
        let app = &self.spec.app;
        let mut rollout = Rollout::new(settings.clone(), blue.clone());
        let mut backoff = Backoff::rollout();
        let mut green_template: Option<String> = None;
        let mut cleanup_errors = Vec::new();
        let mut record = Record::start();
        let mut stop_seen = false;
        let mut epoch = rollout.health_epoch();
        let mut health_deadline = Instant::now() + self.health_timeout;
        let mut deadline_seen = false;
        let mut last_progress = String::new();
        let mut attempts = 0u32;
        let steps = settings.steps.len();
        loop {
            if rollout.health_epoch() != epoch {
                epoch = rollout.health_epoch();
                health_deadline = Instant::now() + self.health_timeout;
                deadline_seen = false;
                backoff.reset();
            }
            let advancing = !rollout.green_is_healthy() && !rollout.is_rolling_back() && !rollout.is_done();
            if advancing {
                let (index, size) = rollout.step();
                if index >= record.steps.len() && steps > 1 {
                    tracing::info!(app = %app, "step {} of {steps}: {size} of {} instances on the new fleet", index + 1, settings.target());
                }
                record.step(index, size, settings.target());
                if !rollout.awaits_health() {
                    record.healthy();
                }
            } else if rollout.green_is_healthy() {
                // The last step's health passed (with no bake after it, the rollout
                // commits right away).
                record.healthy();
            }
            // A rollback under way finishes whatever Terraform asks: only an advancing
            // rollout (which rolls back) and a committed one (which skips the rest of
            // the drain) hear the stop.
            if !stop_seen && self.limits.stop.is_cancelled() && (advancing || rollout.green_is_healthy()) {
                stop_seen = true;
                tracing::warn!(app = %app, "stop requested during {}", rollout.phase_name());
                rollout.observe(Observation::StopRequested);
            }
            let now = Instant::now();
            let late = (rollout.awaits_health() && now >= health_deadline) || now >= self.limits.deadline;
            if !deadline_seen && late && advancing {
                deadline_seen = true;
                tracing::warn!(app = %app, "deadline passed during {}", rollout.phase_name());
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
                                && let Err(e) = launch_templates::delete(&self.clients.ec2, &template).await
                            {
                                cleanup_errors.push(e.to_string());
                            }
                        }
                    }
                    if let Some(problem) = rollout.restore_problem() {
                        cleanup_errors.push(format!("the previous fleet was not fully restored: {problem}"));
                    }
                    record.finish(matches!(outcome, Outcome::Switched { .. }));
                    return RunResult { outcome: outcome.clone(), green_template, cleanup_errors, record };
                }
                Action::RequestGreen { capacity, on_demand } => {
                    self.request_green(&mut green_template, *capacity, *on_demand).await.map(Some)
                }
                Action::GrowGreen { fleet_id, capacity, on_demand } => {
                    self.grow_green(fleet_id, *capacity, *on_demand).await.map(|()| Some(Observation::Grown))
                }
                Action::PollGreen { fleet_id } => {
                    match self.pause(&rollout, health_deadline, backoff.next_delay()).await {
                        Ok(()) => self.poll_green(fleet_id, &mut last_progress).await.map(Some),
                        Err(_) => Ok(None),
                    }
                }
                Action::Register { instances } => {
                    register(&self.clients.elbv2, app, &self.spec.target_group_arns, instances).await.map(
                        |()| {
                            backoff.reset();
                            Some(Observation::Registered)
                        },
                    )
                }
                Action::PollHealth { fleet_id } => match self
                    .pause(&rollout, health_deadline, backoff.next_delay())
                    .await
                {
                    Ok(()) => match self.firing().await {
                        Ok(Some(alarms)) => Ok(Some(alarms)),
                        Ok(None) => self.poll_health(fleet_id, &settings, &mut last_progress).await.map(Some),
                        Err(e) => Err(e),
                    },
                    Err(_) => Ok(None),
                },
                Action::Bake { fleet_id, duration } => {
                    self.bake(&rollout, fleet_id, *duration).await.map(Some)
                }
                Action::ListBlue { fleet_id } => self
                    .capacity
                    .instances(fleet_id)
                    .await
                    .map(|instances| Some(Observation::BlueInstances { instances })),
                Action::Deregister { instances } => {
                    let which = if rollout.is_rolling_back() { "green" } else { "blue" };
                    tracing::info!(app = %app, "draining {which}: deregistering {} instances", instances.len());
                    self.deregister(instances).await.map(|()| Some(Observation::Deregistered))
                }
                Action::WaitDrain { instances, limit } => {
                    let drained = self.wait_drained(instances, *limit).await;
                    // A rollback's drain of green ends early on stop, without undoing it.
                    if rollout.is_rolling_back() && drained == Observation::StopRequested {
                        Ok(Some(Observation::DrainDone))
                    } else {
                        Ok(Some(drained))
                    }
                }
                Action::Retire { fleet_id, instances, capacity, on_demand } => {
                    tracing::info!(app = %app, "blue fleet {fleet_id} down to {capacity} instances: terminating {}", instances.join(", "));
                    self.capacity
                        .retire(fleet_id, instances, *capacity, *on_demand)
                        .await
                        .map(|()| Some(Observation::Retired))
                }
                Action::RestoreBlue { fleet_id, capacity, on_demand } => {
                    tracing::warn!(app = %app, "restoring blue fleet {fleet_id} to {capacity} instances");
                    self.restore_blue(fleet_id, *capacity, *on_demand, &settings).await.map(Some)
                }
                Action::Cancel { fleet_id } => {
                    let which =
                        if blue.as_ref().is_some_and(|b| &b.fleet_id == fleet_id) { "blue" } else { "green" };
                    tracing::info!(app = %app, "cancelling {which} fleet {fleet_id} and terminating its instances");
                    self.capacity
                        .cancel(fleet_id)
                        .await
                        .map(|()| Some(Observation::Cancelled { fleet_id: fleet_id.clone() }))
                }
            };
            match result {
                Ok(Some(observation)) => {
                    attempts = 0;
                    if let Observation::GreenStatus { instances, .. }
                    | Observation::Health { instances, .. } = &observation
                    {
                        record.running(instances.len());
                    }
                    rollout.observe(observation);
                }
                Ok(None) => {}
                Err(error) => {
                    attempts += 1;
                    tracing::warn!(app = %app, "{error} (attempt {attempts} of {ACTION_ATTEMPTS})");
                    let cleanup = rollout.green_is_healthy()
                        || rollout.is_rolling_back()
                        || matches!(action, Action::Cancel { .. });
                    if attempts < ACTION_ATTEMPTS {
                        // Every action is safe to repeat (polls read, requests carry a
                        // client token, resizes set an absolute size), so one that failed
                        // even after the SDK's retries gets a few more tries: a poll lost
                        // to a burst of AWS errors must not roll back a rollout that would
                        // succeed. Before the switch the pause still ends at the deadline.
                        let limits = if cleanup {
                            self.limits.without_deadline()
                        } else {
                            self.poll_limits(&rollout, health_deadline)
                        };
                        let _ = limits.sleep(Duration::from_millis(500) * attempts, "retrying").await;
                    } else if !cleanup {
                        attempts = 0;
                        rollout.observe(Observation::Failed { reason: error.to_string() });
                    } else {
                        // Cleanup that keeps failing: report it rather than loop forever.
                        cleanup_errors.push(format!("{error}; finish this by hand"));
                        let outcome = give_up(&rollout, error);
                        record.finish(matches!(outcome, Outcome::Switched { .. }));
                        return RunResult { outcome, green_template, cleanup_errors, record };
                    }
                }
            }
        }
    }

    /// Polls stop at the step's health deadline (or the rollout's) until the switch;
    /// after that only stop interrupts them.
    fn poll_limits(&self, rollout: &Rollout, health_deadline: Instant) -> Limits {
        if rollout.green_is_healthy() || rollout.is_rolling_back() {
            self.limits.without_deadline()
        } else if rollout.awaits_health() {
            self.limits.until(health_deadline.min(self.limits.deadline))
        } else {
            self.limits.clone()
        }
    }

    /// The pause before a poll; an error means stop or deadline came first (the loop
    /// then observes which).
    async fn pause(
        &self,
        rollout: &Rollout,
        health_deadline: Instant,
        delay: Duration,
    ) -> Result<(), WaitError> {
        self.poll_limits(rollout, health_deadline).sleep(delay, rollout.phase_name()).await
    }

    /// Raises green's capacity to the step's size; a fleet already that large (adopted
    /// from an interrupted run that got further) is left as it is, never shrunk.
    async fn grow_green(&self, fleet_id: &str, capacity: u32, on_demand: u32) -> Result<(), AwsError> {
        let status = self.capacity.status(fleet_id).await?;
        if status.target_capacity >= capacity {
            return Ok(());
        }
        tracing::info!(app = %self.spec.app, "growing green fleet {fleet_id} to {capacity} instances");
        self.capacity.resize(fleet_id, capacity, on_demand).await
    }

    /// The gating alarms in ALARM, as an observation; none when all are clear.
    async fn firing(&self) -> Result<Option<Observation>, AwsError> {
        let firing = alarms::firing(&self.clients.cloudwatch, self.alarms).await?;
        if firing.is_empty() {
            return Ok(None);
        }
        tracing::warn!(app = %self.spec.app, "alarm in ALARM: {}", firing.join(", "));
        Ok(Some(Observation::Alarms { firing }))
    }

    /// Holds the step for `duration`: green must stay healthy and the alarms clear.
    async fn bake(
        &self,
        rollout: &Rollout,
        fleet_id: &str,
        duration: Duration,
    ) -> Result<Observation, AwsError> {
        let until = Instant::now() + duration;
        tracing::info!(app = %self.spec.app, "baking for {}", tfplugin::duration::format(duration));
        let mut backoff = Backoff::rollout();
        loop {
            if let Some(alarms) = self.firing().await? {
                return Ok(alarms);
            }
            let status = self.capacity.status(fleet_id).await?;
            if !status.open {
                return Ok(closed());
            }
            let by_group =
                group_health(&self.clients.elbv2, &rollout.settings().target_groups, &status.instances)
                    .await?;
            if !rollout.holds(&status.instances, &by_group) {
                tracing::warn!(app = %self.spec.app, "green no longer holds while baking: {}", health_line(&status.instances, &by_group));
                return Ok(Observation::Health { instances: status.instances, by_group });
            }
            let now = Instant::now();
            if now >= until {
                return Ok(Observation::Baked);
            }
            let pause = backoff.next_delay().min(until - now);
            match self.limits.sleep(pause, "baking").await {
                Ok(()) => {}
                Err(WaitError::Cancelled(_)) => return Ok(Observation::StopRequested),
                Err(_) => return Ok(Observation::DeadlinePassed),
            }
        }
    }

    /// Brings blue back to `capacity`, registered and healthy, within the health
    /// timeout; Terraform's stop does not cut it short (blue must serve in full before
    /// green goes).
    async fn restore_blue(
        &self,
        fleet_id: &str,
        capacity: u32,
        on_demand: u32,
        settings: &Settings,
    ) -> Result<Observation, AwsError> {
        let request = Resize {
            app: &self.spec.app,
            group_id: fleet_id,
            target_capacity: capacity,
            on_demand_capacity: on_demand,
            target_groups: &settings.target_groups,
            required_healthy: health::required_healthy(capacity, settings.min_healthy_percent),
        };
        let limits = Limits::cleanup().until(Instant::now() + self.health_timeout);
        let restored = resize(self.clients, self.capacity, &request, &limits).await?;
        Ok(Observation::BlueRestored { incomplete: restored.incomplete })
    }

    async fn request_green(
        &self,
        template: &mut Option<String>,
        capacity: u32,
        on_demand: u32,
    ) -> Result<Observation, AwsError> {
        let spec = self.spec;
        let token = self.capacity.token(spec);
        match self.capacity.find(&spec.app, spec.generation).await? {
            // Never adopted, rolled over or cancelled: another Terraform object's.
            Some(foreign) if !foreign.belongs_to(spec.owner()) => {
                return Err(AwsError::plain(
                    format!("requesting the fleet of app {} (generation {})", spec.app, spec.generation),
                    format!(
                        "fleet {} of this generation belongs to another Terraform object (owner {}); \
                         nothing of it was touched",
                        foreign.id,
                        foreign.owner.as_deref().unwrap_or_default()
                    ),
                ));
            }
            Some(stale) if stale.runs_other_config_than(&token) => {
                // Left by an interrupted rollout to a configuration that is no longer
                // wanted; blue still serves. Take it out before requesting the right one.
                tracing::warn!(app = %spec.app, "fleet {} of generation {} runs another configuration; cancelling it", stale.id, spec.generation);
                let instances = self.capacity.instances(&stale.id).await?;
                self.deregister(&instances).await?;
                self.capacity.cancel(&stale.id).await?;
            }
            Some(existing) => {
                tracing::info!(app = %spec.app, "adopting fleet {} of generation {} left by an interrupted run", existing.id, spec.generation);
                *template = existing.launch_template_id.clone();
                return Ok(Observation::GreenRequested { fleet_id: existing.id });
            }
            None => {}
        }
        let ec2 = &self.clients.ec2;
        let template_id = launch_templates::ensure(
            ec2,
            &spec.template_name(),
            &spec.template,
            &spec.tags,
            &spec.template_tags,
            &token,
        )
        .await?;
        *template = Some(template_id.clone());
        // The first step's size; the token stays the configuration's.
        let sized = GroupSpec { target_capacity: capacity, on_demand_capacity: on_demand, ..spec.clone() };
        match self.capacity.request(&sized, &template_id, &token).await {
            Ok(fleet_id) => {
                tracing::info!(app = %spec.app, "requested green fleet {fleet_id} (generation {}, {} x {})",
                    spec.generation, capacity, spec.instance_types.join("/"));
                Ok(Observation::GreenRequested { fleet_id })
            }
            Err(e) => Ok(Observation::RequestFailed { reason: e.to_string() }),
        }
    }

    async fn poll_green(&self, fleet_id: &str, last: &mut String) -> Result<Observation, AwsError> {
        let status = self.capacity.status(fleet_id).await?;
        if !status.open {
            return Ok(closed());
        }
        let target = usize::try_from(status.target_capacity).unwrap_or(usize::MAX);
        progress(
            last,
            format!("green fleet {fleet_id} fulfilled {}/{target}", status.instances.len().min(target)),
        );
        Ok(Observation::GreenStatus {
            state: FleetState::Open,
            instances: status.instances,
            fulfilled: status.fulfilled,
            error: status.error,
        })
    }

    async fn deregister(&self, instances: &[String]) -> Result<(), AwsError> {
        for group in &self.spec.target_group_arns {
            target_groups::deregister(&self.clients.elbv2, group, instances).await?;
        }
        Ok(())
    }

    async fn poll_health(
        &self,
        fleet_id: &str,
        settings: &Settings,
        last: &mut String,
    ) -> Result<Observation, AwsError> {
        let status = self.capacity.status(fleet_id).await?;
        if !status.open {
            return Ok(closed());
        }
        let by_group = group_health(&self.clients.elbv2, &settings.target_groups, &status.instances).await?;
        progress(last, health_line(&status.instances, &by_group));
        Ok(Observation::Health { instances: status.instances, by_group })
    }

    /// Waits until no blue target is still draining, or `limit`. AWS ends a drain at the
    /// latest when the group's deregistration delay has passed (sooner when the target
    /// has no connection left), so a poll is made just after that moment.
    async fn wait_drained(&self, instances: &[String], limit: Duration) -> Observation {
        let started = Instant::now();
        let limits = self.limits.until(started + limit);
        let delay = self.drain_delay.unwrap_or_default();
        let backoff = Backoff::rollout().expecting(started + delay.min(limit));
        let drained = poll_until(&limits, backoff, "draining the old fleet", || async {
            let mut draining = 0;
            for group in &self.spec.target_group_arns {
                match target_groups::health(&self.clients.elbv2, group, None).await {
                    Ok(health) => {
                        draining += health
                            .iter()
                            .filter(|t| instances.contains(&t.instance_id) && t.is_draining())
                            .count()
                    }
                    // Unknown: treat as still draining until the limit.
                    Err(e) => {
                        tracing::debug!("{e}");
                        draining += 1;
                    }
                }
            }
            Ok(if draining == 0 { Poll::Ready(()) } else { Poll::Pending(String::new()) })
        })
        .await;
        match drained {
            Err(WaitError::Cancelled(_)) => Observation::StopRequested,
            // Drained, or the drain limit passed: either way blue goes now.
            _ => Observation::DrainDone,
        }
    }
}

/// Registers the instances the group's load balancer configuration did not register
/// (or that are draining, deregistered by someone else) in every target group.
async fn register(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    app: &str,
    groups: &[String],
    instances: &[String],
) -> Result<(), AwsError> {
    for group in groups {
        let registered = target_groups::health(elbv2, group, None).await?;
        let missing: Vec<String> = instances
            .iter()
            .filter(|i| !registered.iter().any(|t| &t.instance_id == *i && !t.is_draining()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            tracing::info!(app = %app, "registering {} instances in tg {}", missing.len(), target_groups::short(group));
            target_groups::register(elbv2, group, &missing).await?;
        }
    }
    Ok(())
}

/// The health of `instances` in each of `groups`.
async fn group_health(
    elbv2: &aws_sdk_elasticloadbalancingv2::Client,
    groups: &[String],
    instances: &[String],
) -> Result<BTreeMap<String, Vec<TargetHealth>>, AwsError> {
    let mut by_group = BTreeMap::new();
    for group in groups {
        by_group.insert(group.clone(), target_groups::health(elbv2, group, Some(instances)).await?);
    }
    Ok(by_group)
}

/// "healthy 2/2 in tg web, healthy 1/2 in tg api"
fn health_line(instances: &[String], by_group: &BTreeMap<String, Vec<TargetHealth>>) -> String {
    by_group
        .iter()
        .map(|(group, health)| {
            let healthy =
                health.iter().filter(|t| t.is_healthy() && instances.contains(&t.instance_id)).count();
            format!("healthy {healthy}/{} in tg {}", instances.len(), target_groups::short(group))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Green is cancelled, failed or gone.
fn closed() -> Observation {
    Observation::GreenStatus { state: FleetState::Closed, instances: vec![], fulfilled: false, error: None }
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

/// A serving group to resize in place.
#[derive(Clone, Debug)]
pub struct Resize<'a> {
    pub app: &'a str,
    pub group_id: &'a str,
    pub target_capacity: u32,
    pub on_demand_capacity: u32,
    pub target_groups: &'a [String],
    /// Healthy instances needed in every target group.
    pub required_healthy: usize,
}

/// Where a resize ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resized {
    /// The group's instances when the wait ended.
    pub instances: Vec<String>,
    /// The fewest of them healthy in any one target group.
    pub healthy: usize,
    /// Why the wait ended before the group was full and healthy (its time ran out, or
    /// Terraform stopped it), naming the targets still unhealthy.
    pub incomplete: Option<String>,
}

/// Changes the size of a serving group, then waits until it has its instances, each
/// registered in every target group and enough of them healthy, as a rollout's green.
/// A resize that does not get there in time is not undone: the group keeps working
/// towards its new size.
pub async fn resize(
    clients: &Clients,
    capacity: &dyn Capacity,
    request: &Resize<'_>,
    limits: &Limits,
) -> Result<Resized, AwsError> {
    let Resize { app, group_id, target_capacity: target, .. } = *request;
    tracing::info!(app = %app, "resizing fleet {group_id} to {target} instances");
    capacity.resize(group_id, target, request.on_demand_capacity).await?;
    let seen = Mutex::new(Resized::default());
    let seen_ref = &seen;
    let waited =
        poll_until(limits, Backoff::rollout(), &format!("resizing fleet {group_id}"), move || async move {
            let status = capacity.status(group_id).await?;
            if !status.open {
                return Err(WaitError::Failed(format!(
                    "fleet {group_id} was cancelled or failed outside Terraform"
                )));
            }
            let instances = status.instances;
            let mut now = Resized { instances: instances.clone(), ..Resized::default() };
            if instances.len() != target as usize {
                let line = format!("fleet {group_id} has {} of {target} instances", instances.len());
                *seen_ref.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
                return Ok(Poll::Pending(line));
            }
            register(&clients.elbv2, app, request.target_groups, &instances).await?;
            let by_group = group_health(&clients.elbv2, request.target_groups, &instances).await?;
            let assessment = health::assess(
                &instances,
                by_group.iter().map(|(g, h)| (target_groups::short(g), h.as_slice())),
            );
            now.healthy = assessment.healthy;
            let done = assessment.healthy >= request.required_healthy || request.target_groups.is_empty();
            now.incomplete = (!assessment.unhealthy.is_empty()).then(|| {
                let names: Vec<String> = assessment
                    .unhealthy
                    .iter()
                    .map(|u| format!("{} {} in {}: {}", u.instance_id, u.state, u.target_group, u.reason))
                    .collect();
                format!("still unhealthy: {}", names.join("; "))
            });
            *seen_ref.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = now;
            Ok(if done { Poll::Ready(()) } else { Poll::Pending(health_line(&instances, &by_group)) })
        })
        .await;
    let mut resized = seen.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    match waited {
        Ok(()) => resized.incomplete = None,
        Err(WaitError::Aws(e)) => return Err(e),
        Err(e) => {
            let mut why = e.to_string();
            if let Some(unhealthy) = resized.incomplete.take() {
                why = format!("{why}; {unhealthy}");
            }
            resized.incomplete = Some(why);
        }
    }
    Ok(resized)
}

/// What the emulator cannot produce: a fleet whose activity turns to `error` with a
/// reason in its request history, and the idempotency token a retried request
/// replays. Driven through SDK-level mocks.
#[cfg(test)]
mod mocked {
    use super::*;
    use crate::capacity::SpotOptions;
    use crate::capacity::spot_fleet::SpotFleet;
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
    use tokio_util::sync::CancellationToken;

    fn spec() -> GroupSpec {
        GroupSpec {
            app: "web".into(),
            generation: 3,
            template: launch_templates::TemplateData {
                ami_id: "ami-1".into(),
                root_device_name: "/dev/xvda".into(),
                security_group_ids: vec![],
                instance_profile_arn: None,
                user_data: None,
                key_name: None,
                instance_tags: BTreeMap::new(),
                metadata_tags: true,
            },
            template_tags: BTreeMap::new(),
            instance_types: vec!["t3.small".into()],
            subnet_ids: vec![],
            availability_zones: vec![],
            target_capacity: 2,
            on_demand_capacity: 0,
            spot: SpotOptions {
                allocation_strategy: "priceCapacityOptimized".into(),
                instance_pools_to_use_count: None,
                max_price: None,
                interruption_behavior: "terminate".into(),
                capacity_rebalance: None,
            },
            target_group_arns: vec!["arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/1".into()],
            tags: BTreeMap::from([("immutable:app".into(), "web".into())]),
        }
    }

    fn backend(ec2: &Ec2) -> SpotFleet {
        SpotFleet::new(ec2.clone(), Some("arn:aws:iam::1:role/fleet".into()), None)
    }

    fn limits() -> Limits {
        Limits::new(Duration::from_secs(60), &CancellationToken::new())
    }

    /// A runner with a minute to go, no alarm gates.
    fn runner<'a>(clients: &'a Clients, capacity: &'a SpotFleet, spec: &'a GroupSpec) -> Runner<'a> {
        Runner {
            clients,
            capacity,
            spec,
            limits: limits(),
            health_timeout: Duration::from_secs(60),
            alarms: &[],
            drain_delay: None,
        }
    }

    /// The account lists no fleet (nothing to adopt).
    fn no_fleets() -> aws_smithy_mocks::Rule {
        mock!(Ec2::describe_spot_fleet_requests)
            .match_requests(|r| r.spot_fleet_request_ids().is_empty())
            .then_output(|| DescribeSpotFleetRequestsOutput::builder().build())
    }

    /// Green, described by id: active, with this activity status, for 2 instances.
    fn green(activity: ActivityStatus) -> aws_smithy_mocks::Rule {
        mock!(Ec2::describe_spot_fleet_requests).then_output(move || {
            let green = SpotFleetRequestConfig::builder()
                .spot_fleet_request_id("sfr-green")
                .spot_fleet_request_state(BatchState::Active)
                .activity_status(activity.clone())
                .spot_fleet_request_config(SpotFleetRequestConfigData::builder().target_capacity(2).build())
                .tags(Tag::builder().key("immutable:app").value("web").build())
                .build();
            DescribeSpotFleetRequestsOutput::builder().spot_fleet_request_configs(green).build()
        })
    }

    /// No launch template yet, and creating one gives `lt-1`.
    fn templates() -> [aws_smithy_mocks::Rule; 2] {
        let none = mock!(Ec2::describe_launch_templates)
            .then_output(|| DescribeLaunchTemplatesOutput::builder().build());
        let created = mock!(Ec2::create_launch_template).then_output(|| {
            CreateLaunchTemplateOutput::builder()
                .launch_template(LaunchTemplate::builder().launch_template_id("lt-1").build())
                .build()
        });
        [none, created]
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
        let iam = aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::Config::builder().behavior_version(behavior).region(region).build(),
        );
        Clients::from_parts(ec2, elbv2, iam, "eu-west-1")
    }

    #[tokio::test]
    async fn fleet_error_fails_fast_with_the_reason_from_history_and_cancels_green() {
        let spec = spec();
        let token = backend(&aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder().behavior_version(aws_config::BehaviorVersion::latest()).build(),
        ))
        .token(&spec);
        let no_fleets = no_fleets();
        let erroring = green(ActivityStatus::Error);
        let [no_template, template] = templates();
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
        let capacity = backend(&ec2);
        let clients = clients(ec2);
        let runner = runner(&clients, &capacity, &spec);
        let settings =
            Settings::all_at_once(spec.target_group_arns.clone(), 2, 0, 100, Duration::from_secs(1));
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
        let no_fleets = no_fleets();
        let active = green(ActivityStatus::Fulfilled);
        let [no_template, template] = templates();
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
        let elbv2 = mocked_elbv2(&[&health]);
        let capacity = backend(&ec2);
        let clients = Clients { elbv2, ..clients(ec2) };
        let runner = runner(&clients, &capacity, &spec);
        let settings =
            Settings::all_at_once(spec.target_group_arns.clone(), 2, 0, 100, Duration::from_secs(1));
        let result = runner.run(settings, None).await;
        match result.outcome {
            Outcome::Switched { fleet_id, .. } => assert_eq!(fleet_id, "sfr-green"),
            other => panic!("expected the rollout to switch, got {other:?}"),
        }
        assert!(health.num_calls() >= 2, "the failed poll was tried again");
        assert_eq!(request.num_calls(), 1);
    }

    /// An ELBv2 client answering with `rules`, without retries. Built by hand: ELBv2 is
    /// compiled without the SDK's test defaults.
    fn mocked_elbv2(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_elasticloadbalancingv2::Client {
        let mut interceptor = aws_smithy_mocks::MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .credentials_provider(aws_sdk_elasticloadbalancingv2::config::Credentials::new(
                    "AKIDTEST", "secret", None, None, "test",
                ))
                .http_client(aws_smithy_mocks::create_mock_http_client())
                .interceptor(interceptor)
                .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
                .build(),
        )
    }

    /// A resize whose new instance never gets healthy ends at its deadline, keeps what
    /// it reached, and names the target with the load balancer's reason.
    #[tokio::test]
    async fn a_resize_names_the_targets_still_unhealthy_at_its_deadline() {
        use aws_sdk_ec2::operation::modify_spot_fleet_request::ModifySpotFleetRequestOutput;
        use aws_sdk_ec2::types::ActiveInstance;
        use aws_sdk_elasticloadbalancingv2::Client as Elb;
        use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
        use aws_sdk_elasticloadbalancingv2::operation::register_targets::RegisterTargetsOutput;
        use aws_sdk_elasticloadbalancingv2::types::{
            TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthReasonEnum,
            TargetHealthStateEnum,
        };
        let modify = mock!(Ec2::modify_spot_fleet_request)
            .match_requests(|r| r.target_capacity() == Some(2))
            .then_output(|| ModifySpotFleetRequestOutput::builder().r#return(true).build());
        let fleet = green(ActivityStatus::Fulfilled);
        let instances = mock!(Ec2::describe_spot_fleet_instances).then_output(|| {
            DescribeSpotFleetInstancesOutput::builder()
                .active_instances(ActiveInstance::builder().instance_id("i-1").build())
                .active_instances(ActiveInstance::builder().instance_id("i-2").build())
                .build()
        });
        let health = mock!(Elb::describe_target_health).then_output(|| {
            let target = |id: &str, state: TargetHealthStateEnum| {
                let unhealthy = state == TargetHealthStateEnum::Unhealthy;
                TargetHealthDescription::builder()
                    .target(TargetDescription::builder().id(id).build())
                    .target_health(
                        TargetHealth::builder()
                            .state(state)
                            .set_reason(unhealthy.then_some(TargetHealthReasonEnum::ResponseCodeMismatch))
                            .build(),
                    )
                    .build()
            };
            DescribeTargetHealthOutput::builder()
                .target_health_descriptions(target("i-1", TargetHealthStateEnum::Healthy))
                .target_health_descriptions(target("i-2", TargetHealthStateEnum::Unhealthy))
                .build()
        });
        let register = mock!(Elb::register_targets).then_output(|| RegisterTargetsOutput::builder().build());
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&modify, &fleet, &instances]);
        let clients = Clients { elbv2: mocked_elbv2(&[&health, &register]), ..clients(ec2.clone()) };
        let groups = spec().target_group_arns;
        let request = Resize {
            app: "web",
            group_id: "sfr-green",
            target_capacity: 2,
            on_demand_capacity: 0,
            target_groups: &groups,
            required_healthy: 2,
        };
        let limits = Limits::new(Duration::from_secs(1), &CancellationToken::new());
        let resized = resize(&clients, &backend(&ec2), &request, &limits).await.expect("resized");
        assert_eq!(modify.num_calls(), 1);
        assert_eq!(resized.instances, ["i-1", "i-2"]);
        assert_eq!(resized.healthy, 1);
        let why = resized.incomplete.expect("incomplete");
        assert!(why.starts_with("timed out while resizing fleet sfr-green"), "{why}");
        assert!(why.contains("i-2 unhealthy in web: Target.ResponseCodeMismatch"), "{why}");
        assert_eq!(register.num_calls(), 0, "both targets were registered already");
    }

    #[test]
    fn client_token_is_stable_per_configuration() {
        let ec2 = aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder().behavior_version(aws_config::BehaviorVersion::latest()).build(),
        );
        let fleets = backend(&ec2);
        let token = |spec: &GroupSpec| fleets.token(spec);
        let a = spec();
        assert_eq!(token(&a), token(&spec()), "a retry replays the same token");
        assert!(token(&a).len() <= 64, "EC2 accepts at most 64 characters");
        let mut b = spec();
        b.template.ami_id = "ami-2".into();
        assert_ne!(token(&a), token(&b), "another configuration, another fleet");
        let mut c = spec();
        c.generation = 4;
        assert_ne!(token(&a), token(&c), "another generation, another fleet");
        let other_role = SpotFleet::new(ec2.clone(), Some("arn:aws:iam::1:role/other".into()), None);
        assert_ne!(token(&a), other_role.token(&a), "another fleet role, another fleet");
    }
}
