//! CloudWatch alarms that gate a rollout: their state by name.

use super::AwsError;
use std::collections::BTreeMap;

/// DescribeAlarms takes at most 100 names per request.
const NAMES_PER_REQUEST: usize = 100;

/// The state (`OK`, `ALARM`, `INSUFFICIENT_DATA`) of each alarm of `names` that exists,
/// metric and composite alike; a name that is not there is absent from the answer.
pub async fn states(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<BTreeMap<String, String>, AwsError> {
    use aws_sdk_cloudwatch::types::AlarmType;
    let mut found = BTreeMap::new();
    for chunk in names.chunks(NAMES_PER_REQUEST) {
        let mut pages = cloudwatch
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page
                .map_err(|e| AwsError::new(format!("reading CloudWatch alarms {}", chunk.join(", ")), &e))?;
            for alarm in page.metric_alarms() {
                if let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) {
                    found.insert(name.to_owned(), state.as_str().to_owned());
                }
            }
            for alarm in page.composite_alarms() {
                if let (Some(name), Some(state)) = (alarm.alarm_name(), alarm.state_value()) {
                    found.insert(name.to_owned(), state.as_str().to_owned());
                }
            }
        }
    }
    Ok(found)
}

/// The alarms of `names` in ALARM now, in the order given.
pub async fn firing(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<Vec<String>, AwsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let states = states(cloudwatch, names).await?;
    Ok(names.iter().filter(|n| states.get(*n).is_some_and(|s| s == "ALARM")).cloned().collect())
}
