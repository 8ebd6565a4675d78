//! Watching an app while it rolls out: how many targets of its target group are
//! healthy, and how many of its instances run, sampled on a thread of its own.
//!
//! A rollout that shrinks blue as green grows must keep serving: the healthy targets
//! never drop below what the rollout promises once the app served at all, and the
//! instances never exceed what the steps allow. [`Watch`] samples both every
//! [`DEFAULT_INTERVAL`] (two AWS seconds on the [`crate::TEST_CLOCK_SCALE`] clock) and
//! [`Watch::stop`] hands back what it saw.
//!
//! Each sample costs two requests of the watched account (DescribeTargetHealth and a
//! filtered DescribeInstances), counted by the emulator's accounting like any other;
//! tests that count an account's requests watch another account or none. Under
//! throttling on a slow clock, pick a longer interval ([`Watch::every`]).

use crate::Account;
use anyhow::Context as _;
use aws_sdk_ec2::types::Filter;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthStateEnum;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between two samples: 2 AWS seconds on the test clock.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(20);

/// The tag the provider puts on an app's instances (value: the app's name).
const APP_TAG: &str = "immutable:app";

/// One look at the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When, since the watch started.
    pub at: Duration,
    /// Targets of the group that were healthy, sorted.
    pub healthy: Vec<String>,
    /// The app's pending and running instances, sorted.
    pub instances: Vec<String>,
}

/// What a [`Watch`] saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    /// The fewest healthy targets of any sample from the first with a healthy target
    /// on; `None` when no sample had one.
    pub min_healthy: Option<usize>,
    /// The most pending and running instances of the app in any sample.
    pub peak_instances: usize,
    /// Every sample, oldest first.
    pub samples: Vec<Sample>,
    /// Samples that failed (the request's error), not in `samples`.
    pub errors: Vec<String>,
}

impl Watched {
    fn add(&mut self, sample: Sample) {
        let healthy = sample.healthy.len();
        self.min_healthy = match self.min_healthy {
            Some(least) => Some(least.min(healthy)),
            None if healthy > 0 => Some(healthy),
            None => None,
        };
        self.peak_instances = self.peak_instances.max(sample.instances.len());
        self.samples.push(sample);
    }
}

/// Samples an app's target group and instances until stopped (or dropped).
#[derive(Debug)]
pub struct Watch {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<Watched>>,
}

impl Watch {
    /// Watches the targets of `target_group_arn` and the instances tagged
    /// `immutable:app=<app_name>` in `account`, every [`DEFAULT_INTERVAL`].
    pub fn start(account: &Account, target_group_arn: &str, app_name: &str) -> Watch {
        Watch::every(account, target_group_arn, app_name, DEFAULT_INTERVAL)
    }

    /// As [`Watch::start`], one sample every `interval`.
    pub fn every(account: &Account, target_group_arn: &str, app_name: &str, interval: Duration) -> Watch {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let (account, group, app) = (account.clone(), target_group_arn.to_owned(), app_name.to_owned());
        let thread = std::thread::Builder::new()
            .name(format!("watch-{app}"))
            .spawn(move || {
                let mut watched = Watched::default();
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        watched.errors.push(format!("no tokio runtime: {err}"));
                        return watched;
                    }
                };
                runtime.block_on(async {
                    let config = account.sdk_config().await;
                    let ec2 = aws_sdk_ec2::Client::new(&config);
                    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
                    let started = Instant::now();
                    let mut next = started;
                    // One last sample after the stop, so that the end state is seen.
                    let mut last = false;
                    loop {
                        last |= flag.load(Ordering::Relaxed);
                        let at = started.elapsed();
                        let (healthy, instances) =
                            tokio::join!(healthy_targets(&elb, &group), app_instances(&ec2, &app));
                        match (healthy, instances) {
                            (Ok(healthy), Ok(instances)) => watched.add(Sample { at, healthy, instances }),
                            (Err(err), _) | (_, Err(err)) => watched.errors.push(format!("{err:#}")),
                        }
                        if last {
                            break;
                        }
                        next += interval;
                        let now = Instant::now();
                        if next < now {
                            next = now;
                        }
                        // Wake early when stopped.
                        while Instant::now() < next && !flag.load(Ordering::Relaxed) {
                            let left = next.saturating_duration_since(Instant::now());
                            tokio::time::sleep(left.min(Duration::from_millis(5))).await;
                        }
                    }
                });
                watched
            })
            .expect("spawning the watch thread");
        Watch { done, thread: Some(thread) }
    }

    /// Stops watching; what was seen, with one last sample taken now.
    pub fn stop(mut self) -> Watched {
        self.finish()
    }

    fn finish(&mut self) -> Watched {
        self.done.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(watched)) => watched,
            Some(Err(_)) => {
                Watched { errors: vec!["the watch thread panicked".to_owned()], ..Watched::default() }
            }
            None => Watched::default(),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

/// Ids of the group's healthy targets, sorted.
async fn healthy_targets(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    group: &str,
) -> anyhow::Result<Vec<String>> {
    let health = elb
        .describe_target_health()
        .target_group_arn(group)
        .send()
        .await
        .with_context(|| format!("DescribeTargetHealth {group}"))?;
    let mut healthy: Vec<String> = health
        .target_health_descriptions()
        .iter()
        .filter(|d| d.target_health().and_then(|h| h.state()) == Some(&TargetHealthStateEnum::Healthy))
        .filter_map(|d| d.target().and_then(|t| t.id()))
        .map(str::to_owned)
        .collect();
    healthy.sort();
    Ok(healthy)
}

/// Ids of the app's pending and running instances, sorted.
async fn app_instances(ec2: &aws_sdk_ec2::Client, app: &str) -> anyhow::Result<Vec<String>> {
    let mut instances = Vec::new();
    let mut next_token = None;
    loop {
        let page = ec2
            .describe_instances()
            .filters(Filter::builder().name(format!("tag:{APP_TAG}")).values(app).build())
            .filters(
                Filter::builder().name("instance-state-name").values("pending").values("running").build(),
            )
            .set_next_token(next_token)
            .send()
            .await
            .with_context(|| format!("DescribeInstances of app {app}"))?;
        instances.extend(
            page.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_id())
                .map(str::to_owned),
        );
        next_token = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    instances.sort();
    Ok(instances)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn sample(healthy: usize, instances: usize) -> Sample {
        Sample {
            at: Duration::ZERO,
            healthy: (0..healthy).map(|i| format!("i-h{i}")).collect(),
            instances: (0..instances).map(|i| format!("i-{i}")).collect(),
        }
    }

    #[test]
    fn the_least_healthy_counts_from_the_first_healthy_sample() {
        let mut watched = Watched::default();
        watched.add(sample(0, 2));
        assert_eq!(watched.min_healthy, None, "nothing healthy yet");
        watched.add(sample(2, 4));
        watched.add(sample(1, 5));
        watched.add(sample(3, 3));
        assert_eq!(watched.min_healthy, Some(1));
        assert_eq!(watched.peak_instances, 5);
        watched.add(sample(0, 0));
        assert_eq!(watched.min_healthy, Some(0), "a drop to none after serving counts");
        assert_eq!(watched.samples.len(), 5);
    }
}
