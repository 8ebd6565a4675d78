//! CloudWatch alarms of an account, for rollouts gated on them.
//!
//! The emulator serves CloudWatch in the protocol the Rust SDK speaks (Smithy RPC v2
//! CBOR, `scripts/emulator/rpcv2.py`). A new alarm starts in `INSUFFICIENT_DATA`, as on
//! AWS, and no metric is ever evaluated: an alarm changes state only through
//! `SetAlarmState`, which is how a test raises and clears it.
//!
//! The calls here block (each runs on a thread of its own with its own runtime), so
//! that a test can use them from synchronous code, from a thread running alongside
//! Terraform, and from async code alike.

use crate::Account;
use anyhow::Context as _;
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use std::future::Future;

/// Namespace of the metric every alarm of [`Account::put_alarm`] watches.
pub const ALARM_NAMESPACE: &str = "immutable-test";

/// The alarm states `SetAlarmState` accepts.
pub const ALARM_STATES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

impl Account {
    /// A CloudWatch client for this account.
    pub async fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.sdk_config().await)
    }

    /// Creates (or reconfigures) the metric alarm `name`, watching the metric `name` of
    /// [`ALARM_NAMESPACE`], and sets it to `OK`.
    pub fn put_alarm(&self, name: &str) -> anyhow::Result<()> {
        let account = self.clone();
        let name = name.to_owned();
        blocking(async move {
            let cloudwatch = account.cloudwatch().await;
            cloudwatch
                .put_metric_alarm()
                .alarm_name(&name)
                .namespace(ALARM_NAMESPACE)
                .metric_name(&name)
                .statistic(Statistic::Average)
                .period(60)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
                .send()
                .await
                .with_context(|| format!("PutMetricAlarm {name}"))?;
            set(&cloudwatch, &name, "OK", "the test put the alarm in OK").await
        })
    }

    /// Sets the alarm `name` to `state` (`"OK"`, `"ALARM"` or `"INSUFFICIENT_DATA"`)
    /// with `reason` as its state reason. An unknown alarm is an error (AWS answers
    /// `ResourceNotFound`).
    pub fn set_alarm(&self, name: &str, state: &str, reason: &str) -> anyhow::Result<()> {
        anyhow::ensure!(ALARM_STATES.contains(&state), "alarm state {state:?} is none of {ALARM_STATES:?}");
        let account = self.clone();
        let (name, state, reason) = (name.to_owned(), state.to_owned(), reason.to_owned());
        blocking(async move { set(&account.cloudwatch().await, &name, &state, &reason).await })
    }

    /// The state of the alarm `name` as `DescribeAlarms` reports it, or `None` when
    /// there is no such alarm.
    pub fn alarm_state(&self, name: &str) -> anyhow::Result<Option<String>> {
        let account = self.clone();
        let name = name.to_owned();
        blocking(async move {
            let described = account
                .cloudwatch()
                .await
                .describe_alarms()
                .alarm_names(&name)
                .send()
                .await
                .with_context(|| format!("DescribeAlarms {name}"))?;
            Ok(described
                .metric_alarms()
                .iter()
                .find(|a| a.alarm_name() == Some(name.as_str()))
                .and_then(|a| a.state_value())
                .map(|s| s.as_str().to_owned()))
        })
    }
}

async fn set(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    name: &str,
    state: &str,
    reason: &str,
) -> anyhow::Result<()> {
    cloudwatch
        .set_alarm_state()
        .alarm_name(name)
        .state_value(StateValue::from(state))
        .state_reason(reason)
        .send()
        .await
        .with_context(|| format!("SetAlarmState {name} {state}"))?;
    Ok(())
}

/// Runs `future` to completion on a thread of its own, with a runtime of its own.
fn blocking<T: Send + 'static>(
    future: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("a tokio runtime for CloudWatch calls")?
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the CloudWatch call panicked")))
    })
}
