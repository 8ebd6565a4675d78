//! What a rollout did, step by step, for the `last_rollout` attribute: when each step
//! started, when green's new instances of the step were first seen running, how long
//! green took to get healthy, how long the step took, and its verdict. Kept by the
//! runner as the state machine moves; [`Record::overlap_instance_seconds`] derives the
//! extra instance-seconds the two fleets ran from it.

use std::time::{Duration, SystemTime};

/// One step of a rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// Green's size at the step, and its share of the target capacity.
    pub instances: u32,
    pub percent: u32,
    pub started: SystemTime,
    /// From the start of the step until the runner first saw the step's new green
    /// instances running (more of them than the previous step's size).
    pub launched_after: Option<Duration>,
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
            launched_after: None,
            healthy_after: None,
            duration: None,
            verdict: "in progress".into(),
        });
    }

    /// Green runs `instances` instances: the first time that is more than the previous
    /// step's size, the current step's new instances are running.
    pub fn running(&mut self, instances: usize) {
        let before = match self.steps.len() {
            0 => return,
            n if n >= 2 => self.steps[n - 2].instances,
            _ => 0,
        };
        if let Some(step) = self.steps.last_mut()
            && step.launched_after.is_none()
            && instances > before as usize
        {
            step.launched_after = Some(step.started.elapsed().unwrap_or_default());
        }
    }

    /// The extra instance-seconds of the rollout: how long green's and blue's instances
    /// together outnumbered the larger of the app's capacity before and after it
    /// (`blue_capacity`, none for a first deploy: no overlap; `target`), in whole
    /// seconds, rounded down.
    ///
    /// At step `i` green has `g[i]` instances (the step's size) and blue `b[i]`: its full
    /// capacity at the first step, then what the previous step left it,
    /// `min(blue_capacity, target - g[i-1])`. The extra instances are
    /// `max(0, g[i] + b[i] - max(target, blue_capacity))` (with an unchanged capacity:
    /// the step's growth, `g[i] - g[i-1]`), counted from the step's first new instance
    /// running (`launched_after`) to the step's end (blue's share terminated, or blue
    /// cancelled with termination at the last step). A step whose new instances never
    /// ran adds nothing.
    pub fn overlap_instance_seconds(&self, target: u32, blue_capacity: Option<u32>) -> u64 {
        let Some(blue_capacity) = blue_capacity else { return 0 };
        let ceiling = u64::from(target.max(blue_capacity));
        let mut previous: Option<u32> = None;
        let mut millis: u128 = 0;
        for step in &self.steps {
            let blue = match previous {
                None => blue_capacity,
                Some(green_before) => blue_capacity.min(target.saturating_sub(green_before)),
            };
            previous = Some(step.instances);
            let extra = (u64::from(step.instances) + u64::from(blue)).saturating_sub(ceiling);
            let (Some(launched), Some(duration)) = (step.launched_after, step.duration) else { continue };
            let overlapping = duration.saturating_sub(launched);
            millis += u128::from(extra) * overlapping.as_millis();
        }
        u64::try_from(millis / 1000).unwrap_or(u64::MAX)
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

    #[test]
    fn new_instances_are_noted_once_more_than_the_previous_step_runs() {
        let mut record = Record::start();
        record.running(3);
        assert!(record.steps.is_empty(), "no step, nothing to note");
        record.step(0, 2, 4);
        record.running(0);
        assert!(record.steps[0].launched_after.is_none());
        record.running(1);
        assert!(record.steps[0].launched_after.is_some(), "the first instance of the first step");
        record.step(1, 4, 4);
        record.running(2);
        assert!(record.steps[1].launched_after.is_none(), "only the previous step's instances");
        record.running(3);
        assert!(record.steps[1].launched_after.is_some());
    }

    /// A record of steps `(size, launched_after, duration)` in seconds.
    fn record(steps: &[(u32, Option<u64>, Option<u64>)]) -> Record {
        let started = SystemTime::UNIX_EPOCH;
        Record {
            started,
            finished: Some(started),
            steps: steps
                .iter()
                .map(|&(instances, launched, duration)| StepRecord {
                    instances,
                    percent: 0,
                    started,
                    launched_after: launched.map(Duration::from_secs),
                    healthy_after: None,
                    duration: duration.map(Duration::from_secs),
                    verdict: "passed".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_overlap_is_each_steps_extra_instances_from_their_launch_to_the_steps_end() {
        // One step of 2 over a blue of 2: 2 extra instances from 5 s to 65 s.
        assert_eq!(record(&[(2, Some(5), Some(65))]).overlap_instance_seconds(2, Some(2)), 120);
        // [10, 50, 100] of 10: 1, 4 and 5 extra instances.
        let steps = record(&[(1, Some(2), Some(12)), (5, Some(1), Some(21)), (10, Some(0), Some(30))]);
        assert_eq!(steps.overlap_instance_seconds(10, Some(10)), 10 + 4 * 20 + 5 * 30);
        // A first deploy runs one fleet: no overlap.
        assert_eq!(steps.overlap_instance_seconds(10, None), 0);
        // Growing from 2 to 4 in one step: 4 + 2 run where 4 are wanted, 2 extra; shrinking
        // from 4 to 2: 2 + 4 where 4 ran before, 2 extra.
        assert_eq!(record(&[(4, Some(0), Some(10))]).overlap_instance_seconds(4, Some(2)), 20);
        assert_eq!(record(&[(2, Some(0), Some(10))]).overlap_instance_seconds(2, Some(4)), 20);
        // New instances that never ran, and a step still open, add nothing.
        assert_eq!(record(&[(2, None, Some(30))]).overlap_instance_seconds(2, Some(2)), 0);
        assert_eq!(
            record(&[(1, Some(0), Some(10)), (2, Some(0), None)]).overlap_instance_seconds(2, Some(2)),
            10
        );
        // Rounded down to whole instance-seconds.
        let mut fractional = record(&[(3, Some(0), Some(0))]);
        fractional.steps[0].duration = Some(Duration::from_millis(1_999));
        assert_eq!(fractional.overlap_instance_seconds(3, Some(3)), 5);
    }
}
