//! What a rollout did, step by step, for the `last_rollout` attribute: when each step
//! started, how long green took to get healthy, how long the step took, and its
//! verdict. Kept by the runner as the state machine moves.

use std::time::{Duration, SystemTime};

/// One step of a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// Green's size at the step, and its share of the target capacity.
    pub instances: u32,
    pub percent: u32,
    pub started: SystemTime,
    /// From the start of the step until green was healthy in every target group.
    pub healthy_after: Option<Duration>,
    /// From the start of the step until it ended.
    pub duration: Option<Duration>,
    /// `passed`, `rolled back` or `in progress`.
    pub verdict: String,
}

/// A rollout from its first request to its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub started: SystemTime,
    pub finished: Option<SystemTime>,
    pub steps: Vec<StepRecord>,
}

impl Record {
    pub fn start() -> Self {
        Record { started: SystemTime::now(), finished: None, steps: Vec::new() }
    }

    /// Step `index` of `target` is under way (opened once).
    pub fn step(&mut self, index: usize, instances: u32, target: u32) {
        if index < self.steps.len() {
            return;
        }
        if let Some(previous) = self.steps.last_mut() {
            previous.end("passed");
        }
        let percent = if target == 0 {
            100
        } else {
            u32::try_from(u64::from(instances) * 100 / u64::from(target)).unwrap_or(100)
        };
        self.steps.push(StepRecord {
            instances,
            percent,
            started: SystemTime::now(),
            healthy_after: None,
            duration: None,
            verdict: "in progress".into(),
        });
    }

    /// Green is healthy at the current step.
    pub fn healthy(&mut self) {
        if let Some(step) = self.steps.last_mut()
            && step.healthy_after.is_none()
        {
            step.healthy_after = Some(step.started.elapsed().unwrap_or_default());
        }
    }

    /// The rollout ended: the open step passed (a switch) or failed.
    pub fn finish(&mut self, switched: bool) {
        if let Some(step) = self.steps.last_mut()
            && step.duration.is_none()
        {
            step.end(if switched { "passed" } else { "rolled back" });
        }
        self.finished = Some(SystemTime::now());
    }
}

impl StepRecord {
    fn end(&mut self, verdict: &str) {
        if self.duration.is_none() {
            self.duration = Some(self.started.elapsed().unwrap_or_default());
            verdict.clone_into(&mut self.verdict);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_open_once_and_close_with_a_verdict() {
        let mut record = Record::start();
        record.step(0, 1, 10);
        record.healthy();
        record.step(0, 1, 10);
        record.step(1, 5, 10);
        record.finish(false);
        assert_eq!(record.steps.len(), 2);
        assert_eq!((record.steps[0].percent, record.steps[0].verdict.as_str()), (10, "passed"));
        assert!(record.steps[0].healthy_after.is_some());
        assert_eq!((record.steps[1].percent, record.steps[1].verdict.as_str()), (50, "rolled back"));
        assert!(record.steps[1].healthy_after.is_none(), "never healthy");
        assert!(record.finished.is_some());
    }
}
