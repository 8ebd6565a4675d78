//! The rollout as a pure state machine: it takes observations ("green fleet fulfilled",
//! "i-1 unhealthy in web", "alarm in ALARM", "stop requested", "deadline passed") and
//! says what to do next. It performs no I/O and reads no clock, so every path can be
//! tested exhaustively.
//!
//! A rollout goes in steps ([`Settings::steps`], green's size at each; one step of the
//! full capacity by default). At each step green grows to the step's size, its
//! instances are registered and awaited healthy in every target group, the step bakes
//! (alarms watched) and only then does blue shrink by the share green took over: its
//! retiring instances are deregistered, drained and terminated. The last step retires
//! what is left of blue and cancels it.
//!
//! Guarantees (checked by property tests over random observation sequences):
//! - a finished rollout leaves exactly one serving fleet: green after a switch, blue
//!   after a rollback (none when a first deploy rolls back);
//! - every fleet it requested ends serving or cancelled;
//! - blue never shrinks before the matching green share is healthy: serving capacity
//!   (healthy green plus registered blue) never drops below the target capacity minus
//!   the blue instances AWS reclaimed;
//! - a rollback restores blue to its full capacity before green goes.

mod steps;

pub use crate::health::{TargetHealth, Unhealthy, required_healthy};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;
pub use steps::{StepPlan, plan_steps};

/// The fleet serving before the rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blue {
    pub fleet_id: String,
    pub instances: Vec<String>,
    /// Its target capacity and On-Demand part when the rollout began: what a rollback
    /// restores after blue was shrunk.
    pub capacity: u32,
    pub on_demand: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Target group ARNs the app serves from; empty means no health gating.
    pub target_groups: Vec<String>,
    /// Share of green's instances at each step that must be healthy in every group.
    pub min_healthy_percent: u32,
    /// How long retired instances may drain.
    pub drain: Duration,
    /// Green's size at each step, increasing; the last is the app's target capacity.
    pub steps: Vec<u32>,
    /// The On-Demand part of the full capacity (green's part at a step is at most its
    /// size).
    pub on_demand: u32,
    /// How long each step holds, healthy and with its alarms watched, before blue
    /// shrinks.
    pub bake: Duration,
}

impl Settings {
    /// One step of the full capacity, no bake: green in full, then blue goes.
    pub fn all_at_once(
        target_groups: Vec<String>,
        capacity: u32,
        on_demand: u32,
        min_healthy_percent: u32,
        drain: Duration,
    ) -> Self {
        Settings {
            target_groups,
            min_healthy_percent,
            drain,
            steps: vec![capacity],
            on_demand,
            bake: Duration::ZERO,
        }
    }

    /// The app's target capacity.
    pub fn target(&self) -> u32 {
        self.steps.last().copied().unwrap_or(0)
    }

    fn on_demand_of(&self, size: u32) -> u32 {
        self.on_demand.min(size)
    }
}

/// Lifecycle of a Spot Fleet request as EC2 reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetState {
    /// submitted, active, modifying
    Open,
    /// cancelled*, failed, expired, or gone
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// The green fleet exists (requested now, or adopted after an interrupted run).
    GreenRequested {
        fleet_id: String,
    },
    /// Requesting green failed; nothing was created.
    RequestFailed {
        reason: String,
    },
    /// Green's target capacity was raised to the step's size.
    Grown,
    /// The green fleet's state. `error` carries AWS's reason when fulfilment cannot
    /// succeed (error activity status, an unresolvable history event).
    GreenStatus {
        state: FleetState,
        instances: Vec<String>,
        fulfilled: bool,
        error: Option<String>,
    },
    /// Every green instance is registered in every target group.
    Registered,
    /// Green's current instances and their health in each target group.
    Health {
        instances: Vec<String>,
        by_group: BTreeMap<String, Vec<TargetHealth>>,
    },
    /// The alarms gating the rollout that are in ALARM (none: all clear).
    Alarms {
        firing: Vec<String>,
    },
    /// The step held for its bake time, healthy, with no alarm.
    Baked,
    /// Blue's running instances now.
    BlueInstances {
        instances: Vec<String>,
    },
    /// An instance set was deregistered from every target group.
    Deregistered,
    DrainDone,
    /// Blue's retiring instances were terminated and its capacity lowered.
    Retired,
    /// Blue is back at its full capacity, registered; `incomplete` says what was still
    /// missing when the restore's time ran out.
    BlueRestored {
        incomplete: Option<String>,
    },
    Cancelled {
        fleet_id: String,
    },
    /// An AWS call failed (after the SDK's own retries) while acting on green.
    Failed {
        reason: String,
    },
    StopRequested,
    DeadlinePassed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Adopt a fleet already tagged with this app and generation, else request one of
    /// `capacity` instances (the first step's size).
    RequestGreen {
        capacity: u32,
        on_demand: u32,
    },
    /// Raise green's target capacity to the step's size.
    GrowGreen {
        fleet_id: String,
        capacity: u32,
        on_demand: u32,
    },
    PollGreen {
        fleet_id: String,
    },
    Register {
        instances: Vec<String>,
    },
    /// Read green's health (and the alarms).
    PollHealth {
        fleet_id: String,
    },
    /// Hold the step for `duration`, watching green's health and the alarms; answer
    /// `Baked`, or what went wrong (`Health`, `Alarms`).
    Bake {
        fleet_id: String,
        duration: Duration,
    },
    /// Read blue's running instances before shrinking it.
    ListBlue {
        fleet_id: String,
    },
    Deregister {
        instances: Vec<String>,
    },
    /// Wait until `instances` no longer drain, at most `limit`.
    WaitDrain {
        instances: Vec<String>,
        limit: Duration,
    },
    /// Lower blue's capacity to `capacity` without terminating anything, then terminate
    /// exactly `instances`.
    Retire {
        fleet_id: String,
        instances: Vec<String>,
        capacity: u32,
        on_demand: u32,
    },
    /// Bring blue back to `capacity`, its instances registered and healthy.
    RestoreBlue {
        fleet_id: String,
        capacity: u32,
        on_demand: u32,
    },
    Cancel {
        fleet_id: String,
    },
    Finish(Outcome),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    RequestFailed(String),
    Aws(String),
    FleetError { fleet_id: String, reason: String },
    FleetClosed { fleet_id: String },
    TimedOut { unhealthy: Vec<Unhealthy>, phase: String },
    Stopped { unhealthy: Vec<Unhealthy>, phase: String },
    Alarm { alarms: Vec<String>, phase: String },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, unhealthy: &[Unhealthy]| {
            for u in unhealthy {
                write!(f, "; {} {} in {}: {}", u.instance_id, u.state, u.target_group, u.reason)?;
            }
            Ok(())
        };
        match self {
            Failure::RequestFailed(reason) => write!(f, "requesting the new Spot Fleet failed: {reason}"),
            Failure::Aws(reason) => write!(f, "{reason}"),
            Failure::FleetError { fleet_id, reason } => {
                write!(f, "Spot Fleet {fleet_id} cannot be fulfilled: {reason}")
            }
            Failure::FleetClosed { fleet_id } => {
                write!(f, "Spot Fleet {fleet_id} was cancelled or failed outside this rollout")
            }
            Failure::TimedOut { unhealthy, phase } => {
                write!(f, "the new fleet was not healthy in time ({phase})")?;
                list(f, unhealthy)
            }
            Failure::Stopped { unhealthy, phase } => {
                write!(f, "stopped by Terraform ({phase})")?;
                list(f, unhealthy)
            }
            Failure::Alarm { alarms, phase } => {
                let s = if alarms.len() == 1 { "" } else { "s" };
                write!(f, "CloudWatch alarm{s} {} in ALARM ({phase})", alarms.join(", "))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Green serves; blue (if any) is cancelled.
    Switched { fleet_id: String, instances: Vec<String> },
    /// Blue (if any) serves at its full capacity; green (if any) is cancelled.
    RolledBack { failure: Failure },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Requesting,
    Growing,
    Fulfilling,
    Registering,
    WaitingHealthy,
    Baking,
    ListingBlue,
    DeregisteringBlue(Vec<String>),
    DrainingBlue(Vec<String>),
    RetiringBlue(Vec<String>),
    CancellingBlue,
    RestoringBlue(Failure),
    DeregisteringGreen(Failure),
    DrainingGreen(Failure),
    CancellingGreen(Failure),
    Done(Outcome),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Requesting => "requesting the new fleet",
            Phase::Growing => "growing the new fleet",
            Phase::Fulfilling => "waiting for Spot capacity",
            Phase::Registering => "registering targets",
            Phase::WaitingHealthy => "waiting for healthy targets",
            Phase::Baking => "baking",
            Phase::ListingBlue | Phase::DeregisteringBlue(_) | Phase::DrainingBlue(_) => {
                "draining the old fleet"
            }
            Phase::RetiringBlue(_) => "shrinking the old fleet",
            Phase::CancellingBlue => "cancelling the old fleet",
            Phase::RestoringBlue(_)
            | Phase::DeregisteringGreen(_)
            | Phase::DrainingGreen(_)
            | Phase::CancellingGreen(_) => "rolling back",
            Phase::Done(_) => "done",
        }
    }

    fn is_rolling_back(&self) -> bool {
        matches!(
            self,
            Phase::RestoringBlue(_)
                | Phase::DeregisteringGreen(_)
                | Phase::DrainingGreen(_)
                | Phase::CancellingGreen(_)
        )
    }

    /// Phases in which green must get healthy within the health timeout.
    fn awaits_health(&self) -> bool {
        matches!(
            self,
            Phase::Requesting
                | Phase::Growing
                | Phase::Fulfilling
                | Phase::Registering
                | Phase::WaitingHealthy
        )
    }
}

/// One rollout (or first deploy, when there is no blue).
#[derive(Clone, Debug)]
pub struct Rollout {
    settings: Settings,
    blue: Option<Blue>,
    phase: Phase,
    /// Index into `settings.steps`.
    step: usize,
    /// Whether the last step passed: the switch always completes from there.
    committed: bool,
    /// Bumped when a health wait starts afresh (a new step, a Spot replacement).
    epoch: u64,
    green: Option<String>,
    green_instances: Vec<String>,
    green_registered: bool,
    /// Green took traffic for a step that passed (a rollback then drains it).
    green_served: bool,
    /// Blue's running instances as last seen, without those retired.
    blue_live: Vec<String>,
    /// Some of blue was deregistered before the switch: a rollback restores it.
    blue_shrunk: bool,
    restore_problem: Option<String>,
    last_unhealthy: Vec<Unhealthy>,
}

impl Rollout {
    pub fn new(settings: Settings, blue: Option<Blue>) -> Self {
        let blue_live = blue.as_ref().map(|b| b.instances.clone()).unwrap_or_default();
        Self {
            settings,
            blue,
            phase: Phase::Requesting,
            step: 0,
            committed: false,
            epoch: 0,
            green: None,
            green_instances: Vec::new(),
            green_registered: false,
            green_served: false,
            blue_live,
            blue_shrunk: false,
            restore_problem: None,
            last_unhealthy: Vec::new(),
        }
    }

    pub fn phase_name(&self) -> &'static str {
        self.phase.name()
    }

    pub fn green_fleet(&self) -> Option<&str> {
        self.green.as_deref()
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done(_))
    }

    /// Whether the last step passed (after which the rollout always completes the
    /// switch).
    pub fn green_is_healthy(&self) -> bool {
        self.committed
    }

    pub fn is_rolling_back(&self) -> bool {
        self.phase.is_rolling_back()
    }

    /// Whether green is waiting to get healthy (the health timeout applies).
    pub fn awaits_health(&self) -> bool {
        self.phase.awaits_health()
    }

    /// Changes whenever a health wait starts afresh: a new step, or a Spot replacement.
    pub fn health_epoch(&self) -> u64 {
        self.epoch
    }

    /// The current step (0-based) and green's size at it.
    pub fn step(&self) -> (usize, u32) {
        (self.step, self.step_size())
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What a restore of blue could not finish, for the user to see.
    pub fn restore_problem(&self) -> Option<&str> {
        self.restore_problem.as_deref()
    }

    /// Whether `instances` (green's now) still hold the current step: the same ones,
    /// healthy enough in every target group.
    pub fn holds(&self, instances: &[String], by_group: &BTreeMap<String, Vec<TargetHealth>>) -> bool {
        !self.lost_instances(instances) && self.assess(by_group).healthy >= self.required_healthy()
    }

    fn step_size(&self) -> u32 {
        self.settings.steps.get(self.step).copied().unwrap_or_else(|| self.settings.target())
    }

    fn is_last_step(&self) -> bool {
        self.step + 1 >= self.settings.steps.len()
    }

    fn required_healthy(&self) -> usize {
        required_healthy(self.step_size(), self.settings.min_healthy_percent)
    }

    /// "step 2 of 3 at 5 of 10 instances, baking"
    fn where_(&self) -> String {
        let of = self.settings.steps.len();
        if of <= 1 {
            return self.phase.name().to_owned();
        }
        format!(
            "step {} of {of} at {} of {} instances, {}",
            self.step + 1,
            self.step_size(),
            self.settings.target(),
            self.phase.name()
        )
    }

    /// What to do now.
    pub fn next_action(&self) -> Action {
        let green = || self.green_id();
        let size = self.step_size();
        match &self.phase {
            Phase::Requesting => {
                Action::RequestGreen { capacity: size, on_demand: self.settings.on_demand_of(size) }
            }
            Phase::Growing => Action::GrowGreen {
                fleet_id: green(),
                capacity: size,
                on_demand: self.settings.on_demand_of(size),
            },
            Phase::Fulfilling => Action::PollGreen { fleet_id: green() },
            Phase::Registering => Action::Register { instances: self.green_instances.clone() },
            Phase::WaitingHealthy => Action::PollHealth { fleet_id: green() },
            Phase::Baking => Action::Bake { fleet_id: green(), duration: self.settings.bake },
            Phase::ListingBlue => Action::ListBlue { fleet_id: self.blue_id() },
            Phase::DeregisteringBlue(instances) => Action::Deregister { instances: instances.clone() },
            Phase::DrainingBlue(instances) => {
                Action::WaitDrain { instances: instances.clone(), limit: self.settings.drain }
            }
            Phase::RetiringBlue(instances) => {
                let capacity = self.blue_keeps();
                let on_demand = self.blue.as_ref().map_or(0, |b| b.on_demand.min(capacity));
                Action::Retire { fleet_id: self.blue_id(), instances: instances.clone(), capacity, on_demand }
            }
            Phase::CancellingBlue => match &self.blue {
                Some(blue) => Action::Cancel { fleet_id: blue.fleet_id.clone() },
                None => Action::Finish(self.switched()),
            },
            Phase::RestoringBlue(_) => {
                let blue = self.blue.as_ref();
                Action::RestoreBlue {
                    fleet_id: self.blue_id(),
                    capacity: blue.map_or(0, |b| b.capacity),
                    on_demand: blue.map_or(0, |b| b.on_demand),
                }
            }
            Phase::DeregisteringGreen(_) => Action::Deregister { instances: self.green_instances.clone() },
            Phase::DrainingGreen(_) => {
                Action::WaitDrain { instances: self.green_instances.clone(), limit: self.settings.drain }
            }
            Phase::CancellingGreen(failure) => match &self.green {
                Some(green) => Action::Cancel { fleet_id: green.clone() },
                None => Action::Finish(Outcome::RolledBack { failure: failure.clone() }),
            },
            Phase::Done(outcome) => Action::Finish(outcome.clone()),
        }
    }

    fn green_id(&self) -> String {
        self.green.clone().unwrap_or_default()
    }

    fn blue_id(&self) -> String {
        self.blue.as_ref().map(|b| b.fleet_id.clone()).unwrap_or_default()
    }

    /// How many instances blue keeps serving at the current step.
    fn blue_keeps(&self) -> u32 {
        self.settings.target().saturating_sub(self.step_size())
    }

    fn switched(&self) -> Outcome {
        Outcome::Switched { fleet_id: self.green_id(), instances: self.green_instances.clone() }
    }

    fn roll_back(&mut self, failure: Failure) {
        if self.blue_shrunk && self.blue.is_some() {
            self.phase = Phase::RestoringBlue(failure);
        } else {
            self.remove_green(failure);
        }
    }

    /// The rollback's second half: green goes, blue serves in full.
    fn remove_green(&mut self, failure: Failure) {
        self.phase = if self.green.is_none() {
            Phase::Done(Outcome::RolledBack { failure })
        } else if self.green_registered && !self.settings.target_groups.is_empty() {
            Phase::DeregisteringGreen(failure)
        } else {
            Phase::CancellingGreen(failure)
        };
    }

    fn new_step(&mut self) {
        self.epoch += 1;
        self.phase = Phase::Growing;
    }

    fn health_passed(&mut self) {
        if self.settings.bake > Duration::ZERO {
            self.phase = Phase::Baking;
        } else {
            self.step_passed();
        }
    }

    fn step_passed(&mut self) {
        self.green_served = true;
        let groups = !self.settings.target_groups.is_empty();
        if self.is_last_step() {
            self.committed = true;
            self.phase = match &self.blue {
                Some(_) if !self.blue_live.is_empty() && groups => {
                    Phase::DeregisteringBlue(self.blue_live.clone())
                }
                Some(_) => Phase::CancellingBlue,
                None => Phase::Done(self.switched()),
            };
        } else if self.blue.is_some() {
            self.phase = Phase::ListingBlue;
        } else {
            self.step += 1;
            self.new_step();
        }
    }

    /// Whether green's instances now differ from those the step registered: Spot
    /// reclaimed one (not the app's fault).
    fn lost_instances(&self, instances: &[String]) -> bool {
        instances.len() < self.green_instances.len()
            || instances.iter().any(|i| !self.green_instances.contains(i))
    }

    fn await_replacement(&mut self, instances: &[String]) {
        self.green_instances.retain(|i| instances.contains(i));
        self.epoch += 1;
        self.phase = Phase::Fulfilling;
    }

    fn assess(&self, by_group: &BTreeMap<String, Vec<TargetHealth>>) -> crate::health::Assessment {
        let groups = self
            .settings
            .target_groups
            .iter()
            .map(|g| (g.as_str(), by_group.get(g).map(Vec::as_slice).unwrap_or_default()));
        crate::health::assess(&self.green_instances, groups)
    }

    /// Feeds one observation. Observations that do not apply to the current phase
    /// (a late poll answer, a second stop) are ignored.
    pub fn observe(&mut self, observation: Observation) {
        use Observation as O;
        let phase = self.phase.clone();
        let advancing = !self.committed && !phase.is_rolling_back() && !matches!(phase, Phase::Done(_));
        match (phase, observation) {
            (Phase::Done(_), _) => {}

            // Stop, deadline, failures and alarms: before the last step passed they roll
            // back; after, the switch completes (skipping the rest of the drain on stop).
            (_, O::StopRequested) if advancing => {
                let unhealthy = std::mem::take(&mut self.last_unhealthy);
                let failure = Failure::Stopped { unhealthy, phase: self.where_() };
                self.roll_back(failure);
            }
            (_, O::DeadlinePassed) if advancing => {
                let unhealthy = std::mem::take(&mut self.last_unhealthy);
                let failure = Failure::TimedOut { unhealthy, phase: self.where_() };
                self.roll_back(failure);
            }
            (_, O::Failed { reason }) if advancing => self.roll_back(Failure::Aws(reason)),
            (_, O::Alarms { firing }) if advancing && !firing.is_empty() => {
                let failure = Failure::Alarm { alarms: firing, phase: self.where_() };
                self.roll_back(failure);
            }
            (Phase::DrainingBlue(_), O::StopRequested) if self.committed => {
                self.phase = Phase::CancellingBlue
            }

            (Phase::Requesting, O::GreenRequested { fleet_id }) => {
                self.green = Some(fleet_id);
                self.phase = Phase::Fulfilling;
            }
            (Phase::Requesting, O::RequestFailed { reason }) => {
                self.phase = Phase::Done(Outcome::RolledBack { failure: Failure::RequestFailed(reason) });
            }
            (Phase::Growing, O::Grown) => self.phase = Phase::Fulfilling,

            (Phase::Fulfilling, O::GreenStatus { state, instances, fulfilled, error }) => {
                let fleet_id = self.green_id();
                if state == FleetState::Closed {
                    // Nothing left to cancel.
                    self.green = None;
                    self.roll_back(Failure::FleetClosed { fleet_id });
                } else if let Some(reason) = error {
                    self.roll_back(Failure::FleetError { fleet_id, reason });
                } else if fulfilled && !instances.is_empty() && instances.len() >= self.step_size() as usize {
                    self.green_instances = instances;
                    if self.settings.target_groups.is_empty() {
                        self.health_passed();
                    } else {
                        self.phase = Phase::Registering;
                    }
                }
            }

            (Phase::Registering, O::Registered) => {
                self.green_registered = true;
                self.phase = Phase::WaitingHealthy;
            }

            (Phase::WaitingHealthy | Phase::Baking, O::GreenStatus { state: FleetState::Closed, .. }) => {
                let fleet_id = self.green_id();
                self.green = None;
                self.roll_back(Failure::FleetClosed { fleet_id });
            }
            (phase @ (Phase::WaitingHealthy | Phase::Baking), O::Health { instances, by_group }) => {
                if self.lost_instances(&instances) {
                    // Spot reclaimed an instance: wait for the fleet to replace it and
                    // register the newcomer (with a fresh health timeout).
                    self.await_replacement(&instances);
                    return;
                }
                let assessment = self.assess(&by_group);
                let passes = assessment.healthy >= self.required_healthy();
                self.last_unhealthy = assessment.unhealthy;
                match (phase, passes) {
                    (Phase::WaitingHealthy, true) => self.health_passed(),
                    (Phase::Baking, false) => self.phase = Phase::WaitingHealthy,
                    _ => {}
                }
            }
            (Phase::Baking, O::Baked) => self.step_passed(),

            (Phase::ListingBlue, O::BlueInstances { instances }) => {
                self.blue_live = instances;
                let keep = self.blue_keeps() as usize;
                let retire_count = self.blue_live.len().saturating_sub(keep);
                let mut sorted = self.blue_live.clone();
                sorted.sort();
                let retiring: Vec<String> = sorted.split_off(sorted.len() - retire_count);
                self.phase = if retiring.is_empty() {
                    self.step += 1;
                    self.epoch += 1;
                    Phase::Growing
                } else if self.settings.target_groups.is_empty() {
                    Phase::RetiringBlue(retiring)
                } else {
                    Phase::DeregisteringBlue(retiring)
                };
            }
            (Phase::DeregisteringBlue(instances), O::Deregistered) => {
                self.blue_shrunk = true;
                self.phase = Phase::DrainingBlue(instances);
            }
            (Phase::DrainingBlue(instances), O::DrainDone) => {
                self.phase =
                    if self.committed { Phase::CancellingBlue } else { Phase::RetiringBlue(instances) };
            }
            (Phase::RetiringBlue(instances), O::Retired) => {
                self.blue_shrunk = true;
                self.blue_live.retain(|i| !instances.contains(i));
                self.step += 1;
                self.new_step();
            }
            (Phase::CancellingBlue, O::Cancelled { fleet_id })
                if self.blue.as_ref().is_some_and(|b| b.fleet_id == fleet_id) =>
            {
                self.phase = Phase::Done(self.switched());
            }

            (Phase::RestoringBlue(failure), O::BlueRestored { incomplete }) => {
                self.restore_problem = incomplete;
                self.blue_shrunk = false;
                self.remove_green(failure);
            }
            (Phase::DeregisteringGreen(failure), O::Deregistered) => {
                self.green_registered = false;
                self.phase = if self.green_served {
                    Phase::DrainingGreen(failure)
                } else {
                    Phase::CancellingGreen(failure)
                };
            }
            (Phase::DrainingGreen(failure), O::DrainDone) => self.phase = Phase::CancellingGreen(failure),
            (Phase::CancellingGreen(failure), O::Cancelled { fleet_id })
                if self.green.as_deref() == Some(fleet_id.as_str()) =>
            {
                self.green = None;
                self.phase = Phase::Done(Outcome::RolledBack { failure });
            }

            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
