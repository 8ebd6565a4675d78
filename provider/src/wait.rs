//! Waiting on AWS. Every poll loop and pause of the provider goes through here, so that
//! each one ends at its deadline, returns at once when Terraform asks the provider to
//! stop (Ctrl-C), and runs on tokio's clock (tests pause it).
//!
//! [`poll_until`] is the loop of a waiter, in the spirit of the AWS provider's
//! `StateChangeConf`: a status function says whether the awaited state is reached
//! ([`Poll::Ready`]), not yet ([`Poll::Pending`], with what it saw), or can no longer
//! be ([`WaitError::Failed`], with AWS's reason); between calls it backs off.

use crate::aws::AwsError;
use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a wait may last and what interrupts it.
#[derive(Clone, Debug)]
pub struct Limits {
    pub deadline: Instant,
    pub stop: CancellationToken,
}

impl Limits {
    /// `timeout` from now, interrupted by `stop` (Terraform's, from the call's context).
    pub fn new(timeout: Duration, stop: &CancellationToken) -> Self {
        Self { deadline: Instant::now() + timeout, stop: stop.clone() }
    }

    /// No deadline and no stop: for cleanup that must finish even after Ctrl-C (it still
    /// gives up after its own number of attempts).
    pub fn cleanup() -> Self {
        Self { deadline: far_future(), stop: CancellationToken::new() }
    }

    /// The same stop, another deadline.
    #[must_use]
    pub fn until(&self, deadline: Instant) -> Self {
        Self { deadline, stop: self.stop.clone() }
    }

    /// The same stop, no deadline.
    #[must_use]
    pub fn without_deadline(&self) -> Self {
        self.until(far_future())
    }

    /// Whether `doing` may start: not stopped, deadline not passed.
    pub fn check(&self, doing: &str) -> Result<(), WaitError> {
        if self.stop.is_cancelled() {
            return Err(WaitError::Cancelled(doing.to_owned()));
        }
        if Instant::now() >= self.deadline {
            return Err(WaitError::TimedOut(doing.to_owned()));
        }
        Ok(())
    }

    /// Sleeps `delay`, or less when the deadline comes first or Terraform stops the
    /// provider; `doing` names what was waited for in the error.
    pub async fn sleep(&self, delay: Duration, doing: &str) -> Result<(), WaitError> {
        self.check(doing)?;
        tokio::select! {
            () = self.stop.cancelled() => Err(WaitError::Cancelled(doing.to_owned())),
            () = tokio::time::sleep_until(self.deadline) => Err(WaitError::TimedOut(doing.to_owned())),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// Runs `work` to its end, unless the deadline passes or Terraform stops the provider
    /// first (then `work` is dropped).
    pub async fn run<F: Future>(&self, doing: &str, work: F) -> Result<F::Output, WaitError> {
        self.check(doing)?;
        tokio::select! {
            () = self.stop.cancelled() => Err(WaitError::Cancelled(doing.to_owned())),
            () = tokio::time::sleep_until(self.deadline) => Err(WaitError::TimedOut(doing.to_owned())),
            output = work => Ok(output),
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Intervals between polls: `start`, growing by half up to `max`, optionally with an
/// immediate first poll.
#[derive(Clone, Debug)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    next: Duration,
    /// Whether the first poll (and the first after a reset) is at once.
    immediate_first: bool,
    immediate: bool,
    /// When the awaited state is due, if known (see [`Backoff::expecting`]).
    expected: Option<Instant>,
}

/// How long after an expected moment the poll for it is made: AWS's own clock and
/// the request's way there are not exact.
const AFTER_EXPECTED: Duration = Duration::from_millis(100);

impl Backoff {
    /// A rollout: the first poll at once, then 250 ms growing by half up to 3 s. A real
    /// rollout notices health within a few seconds, and one rollout stays well under
    /// EC2's DescribeSpotFleetRequests refill rate (3 per second per account).
    pub fn rollout() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(3), true)
    }

    /// Instances and images, which take minutes on AWS and an instant on an emulator:
    /// 150 ms growing by half up to 5 s.
    pub fn slow() -> Self {
        Self::new(Duration::from_millis(150), Duration::from_secs(5), false)
    }

    pub fn new(start: Duration, max: Duration, immediate: bool) -> Self {
        Self { start, max, next: start, immediate_first: immediate, immediate, expected: None }
    }

    /// The awaited state is due at `at` (the end of a delay AWS announced, such as a
    /// target group's deregistration delay): the poll that would come after it comes
    /// just after it instead, so the state is seen at once rather than up to one
    /// back-off step late. Polls before it keep their pace (AWS may finish early).
    #[must_use]
    pub fn expecting(mut self, at: Instant) -> Self {
        self.expected = Some(at + AFTER_EXPECTED);
        self
    }

    pub fn next_delay(&mut self) -> Duration {
        if std::mem::take(&mut self.immediate) {
            return Duration::ZERO;
        }
        let delay = self.next;
        self.next = (self.next * 3 / 2).min(self.max);
        if let Some(due) = self.expected {
            let now = Instant::now();
            if due <= now {
                self.expected = None;
            } else if now + delay > due {
                self.expected = None;
                return due - now;
            }
        }
        delay
    }

    /// Starts over: the next poll as the first one.
    pub fn reset(&mut self) {
        self.next = self.start;
        self.immediate = self.immediate_first;
    }
}

/// What a status function saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Poll<T> {
    /// The awaited state, with what the waiter returns.
    Ready(T),
    /// Not yet; what was seen (logged when it changes, quoted when the wait times out).
    Pending(String),
}

/// Calls `status` until it is [`Poll::Ready`] or fails, pausing by `backoff` between
/// calls. The first call is made at once. `waiting_for` names the wait in its errors
/// ("waiting for AMI ami-1 to become available"). A call still in flight when the
/// deadline passes or Terraform stops the provider is abandoned: status functions only
/// read.
pub async fn poll_until<T, F, Fut>(
    limits: &Limits,
    mut backoff: Backoff,
    waiting_for: &str,
    mut status: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, WaitError>>,
{
    let mut last_seen = String::new();
    loop {
        match limits.run(&with_last(waiting_for, &last_seen), status()).await?? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(seen) => {
                if seen != last_seen && !seen.is_empty() {
                    tracing::info!("{seen}");
                }
                last_seen = seen;
            }
        }
        limits.sleep(backoff.next_delay(), &with_last(waiting_for, &last_seen)).await?;
    }
}

fn with_last(waiting_for: &str, last_seen: &str) -> String {
    if last_seen.is_empty() { waiting_for.to_owned() } else { format!("{waiting_for} ({last_seen})") }
}

/// Why a wait ended without the awaited state.
#[derive(Debug)]
pub enum WaitError {
    /// Terraform asked the provider to stop (Ctrl-C), while doing this.
    Cancelled(String),
    /// The deadline passed while doing this.
    TimedOut(String),
    /// The object reached a state it cannot leave, with AWS's reason.
    Failed(String),
    Aws(AwsError),
}

impl WaitError {
    pub fn is_cancelled(&self) -> bool {
        matches!(self, WaitError::Cancelled(_))
    }
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Cancelled(what) => write!(f, "stopped by Terraform while {what}"),
            WaitError::TimedOut(what) => write!(f, "timed out while {what}"),
            WaitError::Failed(reason) => f.write_str(reason),
            WaitError::Aws(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<AwsError> for WaitError {
    fn from(e: AwsError) -> Self {
        WaitError::Aws(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_by_half_to_its_cap() {
        let mut slow = Backoff::slow();
        let delays: Vec<Duration> = (0..12).map(|_| slow.next_delay()).collect();
        assert_eq!(delays[0], Duration::from_millis(150));
        assert_eq!(delays[1], Duration::from_millis(225));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[11], Duration::from_secs(5));
        let mut rollout = Backoff::rollout();
        assert_eq!(rollout.next_delay(), Duration::ZERO, "a rollout polls at once");
        assert_eq!(rollout.next_delay(), Duration::from_millis(250));
        assert_eq!(rollout.next_delay(), Duration::from_millis(375));
        rollout.reset();
        assert_eq!(rollout.next_delay(), Duration::ZERO, "after a reset, at once again");
        assert_eq!(rollout.next_delay(), Duration::from_millis(250));
    }

    /// A poll lands just after the expected moment, then the back-off goes on.
    #[tokio::test(start_paused = true)]
    async fn an_expected_moment_gets_a_poll_just_after_it() {
        let started = Instant::now();
        let mut backoff = Backoff::rollout().expecting(started + Duration::from_millis(10_000));
        let mut at = Duration::ZERO;
        let mut polls = Vec::new();
        for _ in 0..12 {
            at += backoff.next_delay();
            tokio::time::advance(at - started.elapsed()).await;
            polls.push(at.as_millis());
        }
        // 0, 250, 625, ... growing by half to 3 s; the poll that would land past 10 s
        // lands at 10.1 s instead, and the pace goes on from there.
        assert!(polls.contains(&10_100), "{polls:?}");
        let before = polls.iter().filter(|&&p| p < 10_100).count();
        assert_eq!(polls[..before], [0, 250, 625, 1187, 2031, 3296, 5195, 8042]);
        assert_eq!(polls[before + 1] - polls[before], 3000, "{polls:?}");
    }

    /// On a paused clock the waits take no real time: the waiter polls until the
    /// status is ready, sleeping its backoff in between.
    #[tokio::test(start_paused = true)]
    async fn poll_until_polls_until_ready() {
        let calls = Arc::new(AtomicU32::new(0));
        let started = Instant::now();
        let limits = Limits::new(Duration::from_secs(60), &CancellationToken::new());
        let counter = calls.clone();
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), false);
        let result = poll_until(&limits, backoff, "waiting for the test", || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(if n == 4 { Poll::Ready(n) } else { Poll::Pending(format!("{n} of 4")) })
            }
        })
        .await;
        assert_eq!(result.ok(), Some(4));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // 100 + 150 + 225 ms between the four calls.
        assert_eq!(started.elapsed(), Duration::from_millis(475));
    }

    #[tokio::test(start_paused = true)]
    async fn poll_until_times_out_with_what_it_last_saw() {
        let limits = Limits::new(Duration::from_secs(10), &CancellationToken::new());
        let started = Instant::now();
        let result = poll_until(&limits, Backoff::slow(), "waiting for AMI ami-1", || async {
            Ok::<_, WaitError>(Poll::<()>::Pending("AMI ami-1 is pending".to_owned()))
        })
        .await;
        match result {
            Err(WaitError::TimedOut(what)) => {
                assert_eq!(what, "waiting for AMI ami-1 (AMI ami-1 is pending)")
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(10),
            "ends at the deadline, not after a full pause"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_wait_at_once_and_a_failure_is_passed_up() {
        let stop = CancellationToken::new();
        let limits = Limits::new(Duration::from_secs(600), &stop);
        let started = Instant::now();
        let canceller = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            canceller.cancel();
        });
        let result = poll_until(
            &limits,
            Backoff::new(Duration::from_secs(30), Duration::from_secs(30), false),
            "waiting",
            || async { Ok::<_, WaitError>(Poll::<()>::Pending(String::new())) },
        )
        .await;
        assert!(matches!(result, Err(WaitError::Cancelled(_))), "{result:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(2));

        let limits = Limits::new(Duration::from_secs(600), &CancellationToken::new());
        let failed = poll_until(&limits, Backoff::slow(), "waiting", || async {
            Err::<Poll<()>, _>(WaitError::Failed("AMI ami-1 is failed: no space".to_owned()))
        })
        .await;
        assert_eq!(failed.map_err(|e| e.to_string()), Err("AMI ami-1 is failed: no space".to_owned()));
    }

    /// A status call that hangs (an endpoint that never answers) ends at the deadline.
    #[tokio::test(start_paused = true)]
    async fn a_hanging_status_call_ends_at_the_deadline() {
        let limits = Limits::new(Duration::from_secs(3), &CancellationToken::new());
        let started = Instant::now();
        let result = poll_until(&limits, Backoff::slow(), "waiting for instances to terminate", || async {
            std::future::pending::<Result<Poll<()>, WaitError>>().await
        })
        .await;
        assert!(matches!(result, Err(WaitError::TimedOut(_))), "{result:?}");
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn run_races_the_work_against_stop_and_deadline() {
        let limits = Limits::new(Duration::from_secs(5), &CancellationToken::new());
        let quick = limits.run("working", async { 7 }).await;
        assert_eq!(quick.ok(), Some(7));
        let slow = limits.run("working", tokio::time::sleep(Duration::from_secs(60))).await;
        assert!(matches!(slow, Err(WaitError::TimedOut(_))));
    }
}
