//! The rollout as a pure state machine: it takes observations ("green fleet fulfilled",
//! "i-1 unhealthy in web", "stop requested", "deadline passed") and says what to do
//! next. It performs no I/O and reads no clock, so every path can be tested
//! exhaustively.
//!
//! Guarantees (checked by property tests over random observation sequences):
//! - a finished rollout leaves exactly one serving fleet: green after a switch, blue
//!   after a rollback (none when a first deploy rolls back);
//! - every fleet it requested ends serving or cancelled;
//! - blue is never deregistered or cancelled before green is healthy.

pub use crate::health::{TargetHealth, Unhealthy, required_healthy};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The fleet serving before the rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blue {
    pub fleet_id: String,
    pub instances: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Target group ARNs the app serves from; empty means no health gating.
    pub target_groups: Vec<String>,
    /// Healthy green instances needed in every target group.
    pub required_healthy: usize,
    pub drain: Duration,
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
    /// An instance set was deregistered from every target group.
    Deregistered,
    DrainDone,
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
    /// Adopt a fleet already tagged with this app and generation, else request one.
    RequestGreen,
    PollGreen {
        fleet_id: String,
    },
    Register {
        instances: Vec<String>,
    },
    PollHealth {
        fleet_id: String,
    },
    Deregister {
        instances: Vec<String>,
    },
    WaitDrain(Duration),
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
    TimedOut { unhealthy: Vec<Unhealthy>, phase: &'static str },
    Stopped { unhealthy: Vec<Unhealthy>, phase: &'static str },
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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Green serves; blue (if any) is cancelled.
    Switched { fleet_id: String, instances: Vec<String> },
    /// Blue (if any) still serves untouched; green (if any) is cancelled.
    RolledBack { failure: Failure },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Requesting,
    Fulfilling,
    Registering,
    WaitingHealthy,
    DeregisteringBlue,
    Draining,
    CancellingBlue,
    DeregisteringGreen(Failure),
    CancellingGreen(Failure),
    Done(Outcome),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Requesting => "requesting the new fleet",
            Phase::Fulfilling => "waiting for Spot capacity",
            Phase::Registering => "registering targets",
            Phase::WaitingHealthy => "waiting for healthy targets",
            Phase::DeregisteringBlue | Phase::Draining => "draining the old fleet",
            Phase::CancellingBlue => "cancelling the old fleet",
            Phase::DeregisteringGreen(_) | Phase::CancellingGreen(_) => "rolling back",
            Phase::Done(_) => "done",
        }
    }
}

/// One rollout (or first deploy, when there is no blue).
#[derive(Clone, Debug)]
pub struct Rollout {
    settings: Settings,
    blue: Option<Blue>,
    phase: Phase,
    green: Option<String>,
    green_instances: Vec<String>,
    green_registered: bool,
    green_healthy: bool,
    last_unhealthy: Vec<Unhealthy>,
}

impl Rollout {
    pub fn new(settings: Settings, blue: Option<Blue>) -> Self {
        Self {
            settings,
            blue,
            phase: Phase::Requesting,
            green: None,
            green_instances: Vec::new(),
            green_registered: false,
            green_healthy: false,
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

    /// Whether green has passed its health gate (after which the rollout always
    /// completes the switch).
    pub fn green_is_healthy(&self) -> bool {
        self.green_healthy
    }

    /// What to do now.
    pub fn next_action(&self) -> Action {
        match &self.phase {
            Phase::Requesting => Action::RequestGreen,
            Phase::Fulfilling => Action::PollGreen { fleet_id: self.green_id() },
            Phase::Registering => Action::Register { instances: self.green_instances.clone() },
            Phase::WaitingHealthy => Action::PollHealth { fleet_id: self.green_id() },
            Phase::DeregisteringBlue => Action::Deregister { instances: self.blue_instances() },
            Phase::Draining => Action::WaitDrain(self.settings.drain),
            Phase::CancellingBlue => match &self.blue {
                Some(blue) => Action::Cancel { fleet_id: blue.fleet_id.clone() },
                None => Action::Finish(self.switched()),
            },
            Phase::DeregisteringGreen(_) => Action::Deregister { instances: self.green_instances.clone() },
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

    fn blue_instances(&self) -> Vec<String> {
        self.blue.as_ref().map(|b| b.instances.clone()).unwrap_or_default()
    }

    fn switched(&self) -> Outcome {
        Outcome::Switched { fleet_id: self.green_id(), instances: self.green_instances.clone() }
    }

    fn roll_back(&mut self, failure: Failure) {
        self.phase = if self.green.is_none() {
            Phase::Done(Outcome::RolledBack { failure })
        } else if self.green_registered && !self.settings.target_groups.is_empty() {
            Phase::DeregisteringGreen(failure)
        } else {
            Phase::CancellingGreen(failure)
        };
    }

    fn green_passed(&mut self) {
        self.green_healthy = true;
        self.phase = match &self.blue {
            Some(blue) if !blue.instances.is_empty() && !self.settings.target_groups.is_empty() => {
                Phase::DeregisteringBlue
            }
            Some(_) => Phase::CancellingBlue,
            None => Phase::Done(self.switched()),
        };
    }

    /// Feeds one observation. Observations that do not apply to the current phase
    /// (a late poll answer, a second stop) are ignored.
    pub fn observe(&mut self, observation: Observation) {
        use Observation as O;
        let phase = self.phase.clone();
        match (phase, observation) {
            (Phase::Done(_), _) => {}

            // Stop and deadline: before green is healthy they roll back; after, the
            // switch completes (skipping the rest of the drain on stop).
            (
                Phase::Requesting | Phase::Fulfilling | Phase::Registering | Phase::WaitingHealthy,
                O::StopRequested,
            ) => {
                let unhealthy = std::mem::take(&mut self.last_unhealthy);
                let failure = Failure::Stopped { unhealthy, phase: self.phase.name() };
                self.roll_back(failure);
            }
            (
                Phase::Requesting | Phase::Fulfilling | Phase::Registering | Phase::WaitingHealthy,
                O::DeadlinePassed,
            ) => {
                let unhealthy = std::mem::take(&mut self.last_unhealthy);
                let failure = Failure::TimedOut { unhealthy, phase: self.phase.name() };
                self.roll_back(failure);
            }
            (
                Phase::Requesting | Phase::Fulfilling | Phase::Registering | Phase::WaitingHealthy,
                O::Failed { reason },
            ) => {
                self.roll_back(Failure::Aws(reason));
            }
            (Phase::Draining, O::StopRequested) => self.phase = Phase::CancellingBlue,

            (Phase::Requesting, O::GreenRequested { fleet_id }) => {
                self.green = Some(fleet_id);
                self.phase = Phase::Fulfilling;
            }
            (Phase::Requesting, O::RequestFailed { reason }) => {
                self.phase = Phase::Done(Outcome::RolledBack { failure: Failure::RequestFailed(reason) });
            }

            (Phase::Fulfilling, O::GreenStatus { state, instances, fulfilled, error }) => {
                let fleet_id = self.green_id();
                if state == FleetState::Closed {
                    // Nothing left to cancel.
                    self.green = None;
                    self.roll_back(Failure::FleetClosed { fleet_id });
                } else if let Some(reason) = error {
                    self.roll_back(Failure::FleetError { fleet_id, reason });
                } else if fulfilled && !instances.is_empty() {
                    self.green_instances = instances;
                    if self.settings.target_groups.is_empty() {
                        self.green_passed();
                    } else {
                        self.phase = Phase::Registering;
                    }
                }
            }

            (Phase::Registering, O::Registered) => {
                self.green_registered = true;
                self.phase = Phase::WaitingHealthy;
            }

            (Phase::WaitingHealthy, O::GreenStatus { state: FleetState::Closed, .. }) => {
                let fleet_id = self.green_id();
                self.green = None;
                self.roll_back(Failure::FleetClosed { fleet_id });
            }
            (Phase::WaitingHealthy, O::Health { instances, by_group }) => {
                if instances.len() < self.green_instances.len()
                    || instances.iter().any(|i| !self.green_instances.contains(i))
                {
                    // Spot reclaimed an instance: not the app's fault. Wait for the
                    // fleet to replace it and register the newcomer.
                    self.green_instances.retain(|i| instances.contains(i));
                    self.phase = Phase::Fulfilling;
                    return;
                }
                self.evaluate_health(&by_group);
            }

            (Phase::DeregisteringBlue, O::Deregistered) => self.phase = Phase::Draining,
            (Phase::Draining, O::DrainDone) => self.phase = Phase::CancellingBlue,
            (Phase::CancellingBlue, O::Cancelled { fleet_id })
                if self.blue.as_ref().is_some_and(|b| b.fleet_id == fleet_id) =>
            {
                self.phase = Phase::Done(self.switched());
            }

            (Phase::DeregisteringGreen(failure), O::Deregistered) => {
                self.green_registered = false;
                self.phase = Phase::CancellingGreen(failure);
            }
            (Phase::CancellingGreen(failure), O::Cancelled { fleet_id })
                if self.green.as_deref() == Some(fleet_id.as_str()) =>
            {
                self.green = None;
                self.phase = Phase::Done(Outcome::RolledBack { failure });
            }

            _ => {}
        }
    }

    fn evaluate_health(&mut self, by_group: &BTreeMap<String, Vec<TargetHealth>>) {
        let groups = self
            .settings
            .target_groups
            .iter()
            .map(|g| (g.as_str(), by_group.get(g).map(Vec::as_slice).unwrap_or_default()));
        let assessment = crate::health::assess(&self.green_instances, groups);
        self.last_unhealthy = assessment.unhealthy;
        if assessment.healthy >= self.settings.required_healthy {
            self.green_passed();
        }
    }
}

#[cfg(test)]
mod tests;
