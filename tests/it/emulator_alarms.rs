//! CloudWatch alarms in the emulator: served in the Smithy RPC v2 CBOR protocol the
//! Rust SDK speaks (`scripts/emulator/rpcv2.py`), per account, starting in
//! INSUFFICIENT_DATA and keeping their state across an update as AWS does
//! (`scripts/emulator/fixes.py`), counted as `monitoring:<Action>`.

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, StateValue, Statistic};
use tests::{ALARM_NAMESPACE, LocalAws};

/// The alarms `DescribeAlarms(AlarmNames = names)` lists, by name.
async fn described(cloudwatch: &aws_sdk_cloudwatch::Client, names: &[&str]) -> Vec<MetricAlarm> {
    let answer = cloudwatch
        .describe_alarms()
        .set_alarm_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
        .send()
        .await
        .expect("DescribeAlarms");
    let mut alarms = answer.metric_alarms().to_vec();
    alarms.sort_by(|a, b| a.alarm_name().cmp(&b.alarm_name()));
    alarms
}

fn state(alarm: &MetricAlarm) -> &str {
    alarm.state_value().map(StateValue::as_str).unwrap_or_default()
}

#[tokio::test]
async fn an_alarm_is_put_described_by_name_and_set_to_alarm_and_back() {
    let account = LocalAws::shared().account();
    let cloudwatch = account.cloudwatch().await;

    account.put_alarm("web-5xx").expect("put the alarm");
    account.put_alarm("web-latency").expect("put another alarm");
    let alarms = described(&cloudwatch, &["web-5xx", "not-an-alarm"]).await;
    assert_eq!(alarms.len(), 1, "only the alarm asked for, and no unknown name: {alarms:?}");
    let alarm = &alarms[0];
    assert_eq!(alarm.alarm_name(), Some("web-5xx"));
    assert_eq!(state(alarm), "OK");
    assert_eq!(alarm.namespace(), Some(ALARM_NAMESPACE));
    assert_eq!(alarm.metric_name(), Some("web-5xx"));
    assert_eq!(alarm.threshold(), Some(1.0));
    assert_eq!(alarm.evaluation_periods(), Some(1));
    assert!(
        alarm.alarm_arn().is_some_and(|arn| arn.ends_with(&format!(":{}:alarm:web-5xx", account.id))),
        "the alarm belongs to the account: {:?}",
        alarm.alarm_arn()
    );
    assert!(alarm.state_updated_timestamp().is_some(), "a state time stamp: {alarm:?}");

    account.set_alarm("web-5xx", "ALARM", "5xx above 1%").expect("raise the alarm");
    let alarms = described(&cloudwatch, &["web-5xx", "web-latency"]).await;
    let states: Vec<(&str, &str)> =
        alarms.iter().map(|a| (a.alarm_name().unwrap_or_default(), state(a))).collect();
    assert_eq!(states, [("web-5xx", "ALARM"), ("web-latency", "OK")], "only the alarm set changed");
    assert_eq!(alarms[0].state_reason(), Some("5xx above 1%"));
    assert_eq!(account.alarm_state("web-5xx").expect("alarm state").as_deref(), Some("ALARM"));

    account.set_alarm("web-5xx", "INSUFFICIENT_DATA", "no data").expect("no data");
    assert_eq!(account.alarm_state("web-5xx").expect("alarm state").as_deref(), Some("INSUFFICIENT_DATA"));
    account.set_alarm("web-5xx", "OK", "5xx back under 1%").expect("clear the alarm");
    assert_eq!(account.alarm_state("web-5xx").expect("alarm state").as_deref(), Some("OK"));
    assert_eq!(account.alarm_state("not-an-alarm").expect("alarm state"), None);

    // The harness refuses a state AWS does not know before asking.
    assert!(account.set_alarm("web-5xx", "RED", "no such state").is_err());
    // AWS answers ResourceNotFound for an alarm that does not exist.
    let unknown = cloudwatch
        .set_alarm_state()
        .alarm_name("not-an-alarm")
        .state_value(StateValue::Alarm)
        .state_reason("nothing to set")
        .send()
        .await
        .expect_err("SetAlarmState of an unknown alarm");
    assert_eq!(unknown.code(), Some("ResourceNotFound"), "{unknown:?}");

    // Alarms belong to their account.
    let other = LocalAws::shared().account();
    assert_eq!(other.alarm_state("web-5xx").expect("alarm state of another account"), None);
    assert!(described(&other.cloudwatch().await, &["web-5xx"]).await.is_empty());

    // Counted under CloudWatch's signing name, whatever the protocol.
    let requests = account.requests().expect("request counts");
    assert_eq!(requests.get("monitoring:PutMetricAlarm"), Some(&2), "{requests:?}");
    assert_eq!(requests.get("monitoring:SetAlarmState"), Some(&6), "{requests:?}");
    assert_eq!(requests.get("monitoring:DescribeAlarms"), Some(&6), "{requests:?}");
    assert!(requests.keys().all(|k| !k.contains("/service/")), "no request left unclassified: {requests:?}");
}

#[tokio::test]
async fn a_new_alarm_has_insufficient_data_and_an_update_keeps_its_state() {
    let account = LocalAws::shared().account();
    let cloudwatch = account.cloudwatch().await;
    let put = |threshold: f64| {
        cloudwatch
            .put_metric_alarm()
            .alarm_name("queue-depth")
            .namespace("app")
            .metric_name("QueueDepth")
            .statistic(Statistic::Maximum)
            .period(60)
            .evaluation_periods(3)
            .threshold(threshold)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
    };
    put(100.0).await.expect("PutMetricAlarm");
    let alarms = described(&cloudwatch, &["queue-depth"]).await;
    assert_eq!(state(&alarms[0]), "INSUFFICIENT_DATA", "AWS starts a new alarm without data");
    assert_eq!(alarms[0].state_reason(), Some("Unchecked: Initial alarm creation"));
    assert_eq!(alarms[0].evaluation_periods(), Some(3));

    account.set_alarm("queue-depth", "ALARM", "queue backs up").expect("raise the alarm");
    put(250.0).await.expect("PutMetricAlarm again, with a new threshold");
    let alarms = described(&cloudwatch, &["queue-depth"]).await;
    assert_eq!(alarms[0].threshold(), Some(250.0), "the update replaced the configuration");
    assert_eq!(state(&alarms[0]), "ALARM", "the update left the state alone");
    assert_eq!(alarms[0].state_reason(), Some("queue backs up"));
}
