//! Interruption notices: deregistration, the hook, the drain, and what does not
//! happen twice.

use std::fs;
use std::time::{Duration, Instant};

use agent::Outcome;
use agent::sigv4::{Signer, Unsigned};

use crate::standin::*;

const SECOND: Duration = Duration::from_secs(1);

fn hook_into(file: &std::path::Path) -> String {
    format!(
        "echo \"$IMMUTABLE_INSTANCE_ACTION|$IMMUTABLE_TERMINATION_TIME|$IMMUTABLE_INSTANCE_ID\" >> '{}'",
        file.display()
    )
}

fn hook_lines(file: &std::path::Path) -> Vec<String> {
    fs::read_to_string(file).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// The request is signed for ELB in the stand-ins' region with the test credentials,
/// and its signature is the one its own headers and body give.
fn assert_signed(request: &Req, access_key: &str, secret_key: &str, token: &str) {
    let authorization = request.header("Authorization").expect("an Authorization header");
    let date = request.header("X-Amz-Date").expect("an X-Amz-Date header");
    assert_eq!(date.len(), 16, "{date}");
    let scope = format!("{access_key}/{}/{REGION}/elasticloadbalancing/aws4_request", &date[..8]);
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={scope}, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
    );
    let signature = authorization.strip_prefix(&prefix).unwrap_or_else(|| panic!("{authorization}"));
    assert!(signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit()), "{signature}");
    assert_eq!(request.header("X-Amz-Security-Token"), Some(token));

    let host = request.header("Host").expect("Host");
    let content_type = request.header("Content-Type").expect("Content-Type");
    assert_eq!(content_type, "application/x-www-form-urlencoded; charset=utf-8");
    let signer = Signer {
        access_key_id: access_key,
        secret_access_key: secret_key,
        session_token: Some(token),
        region: REGION,
        service: "elasticloadbalancing",
    };
    let time = agent::clock::parse_rfc3339(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[0..4],
        &date[4..6],
        &date[6..8],
        &date[9..11],
        &date[11..13],
        &date[13..15]
    ))
    .expect("X-Amz-Date is a time");
    let unsigned = Unsigned {
        method: &request.method,
        path: &request.path,
        query: "",
        headers: &[("Host", host), ("Content-Type", content_type)],
        body: &request.body,
    };
    assert_eq!(signer.sign(&unsigned, time).authorization(), authorization);
}

#[test]
fn a_notice_deregisters_from_every_target_group_once_runs_the_hook_once_and_drains() {
    let imds = FakeImds::spot("1");
    let elb = FakeElb::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let hook_file = dir.path().join("hook.log");
    let mut run = Running::start(config(&imds, &elb, &["--drain-hook", &hook_into(&hook_file)]));
    run.expect("polling", 5 * SECOND);
    let target_groups = run.log.line("target-groups").expect("target groups logged");
    assert_eq!(target_groups["target_groups"], serde_json::json!([TG_WEB, TG_API]));
    assert_eq!(target_groups["drain_seconds"], 1);

    let time = imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("done", 10 * SECOND);

    // One DeregisterTargets per target group, in tag order, each correctly formed and signed.
    let requests = elb.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for (request, group) in requests.iter().zip([TG_WEB, TG_API]) {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/"));
        let body = request.body_text();
        assert_eq!(form_value(&body, "Action").as_deref(), Some("DeregisterTargets"));
        assert_eq!(form_value(&body, "Version").as_deref(), Some("2015-12-01"));
        assert_eq!(form_value(&body, "TargetGroupArn").as_deref(), Some(group));
        assert_eq!(form_value(&body, "Targets.member.1.Id").as_deref(), Some(INSTANCE));
        assert_signed(request, ACCESS_KEY, SECRET_KEY, SESSION_TOKEN);
    }

    // Within one poll interval: the poll that saw the notice was the last one, and the
    // deregistrations followed it at once.
    let seen = imds.seen();
    let notice_polls: Vec<&Seen> =
        seen.iter().filter(|s| s.path == "latest/meta-data/spot/instance-action").collect();
    let answered = notice_polls.iter().filter(|s| s.status == 200).count();
    assert_eq!(answered, 1, "the notice was acted on when first seen");
    let saw = notice_polls.last().expect("polled").at;
    assert!(requests.iter().all(|r| r.at > saw));
    assert!(requests[0].at - saw < SECOND, "deregistered {:?} after seeing the notice", requests[0].at - saw);

    // The hook ran once, with the notice in its environment.
    assert_eq!(hook_lines(&hook_file), [format!("terminate|{time}|{INSTANCE}")]);

    let events = run.log.events();
    let order = [
        "notice",
        "deregistering",
        "deregistered",
        "hook-started",
        "hook-finished",
        "draining",
        "drained",
        "done",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|e| events.iter().position(|x| x == e).unwrap_or_else(|| panic!("no {e}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{events:?}");
    assert_eq!(run.log.count("deregistered"), 2);
    let draining = run.log.line("draining").expect("draining");
    assert!(
        draining["wait_ms"].as_u64().is_some_and(|ms| ms <= 1000),
        "min(drain-seconds, time left): {draining}"
    );
    let drained = run.log.line("drained").expect("drained");
    assert!(drained["waited_ms"].as_u64().is_some_and(|ms| ms >= 990), "{drained}");
    let done = run.log.line("done").expect("done");
    assert_eq!(done["level"], "info");
    assert_eq!(done["deregistered"], serde_json::json!([TG_WEB, TG_API]));

    // Idle afterwards: no more polls, no second deregistration or hook run.
    let polls = seen.len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(elb.requests().len(), 2);
    assert_eq!(hook_lines(&hook_file).len(), 1);
    assert_eq!(imds.seen().len(), polls, "no IMDS request once done");
    assert!(!run.finished());
    assert_eq!(run.stop(SECOND).expect("stops cleanly"), Outcome::Stopped);
    assert_eq!(run.log.events().last().map(String::as_str), Some("stopped"));
}

#[test]
fn no_notice_means_nothing_deregistered() {
    let imds = FakeImds::spot("1");
    let elb = FakeElb::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let hook_file = dir.path().join("hook.log");
    let mut run = Running::start(config(&imds, &elb, &["--drain-hook", &hook_into(&hook_file)]));
    assert!(wait_until(5 * SECOND, || imds.gets_of("spot/instance-action") >= 10), "polls");
    assert!(imds.gets_of("events/recommendations/rebalance") >= 9);
    assert!(elb.requests().is_empty());
    assert!(!hook_file.exists());
    assert_eq!(run.log.count("notice"), 0);
    assert!(imds.seen().iter().filter(|s| s.method == "GET").all(|s| s.token.is_some() && s.status != 401));
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn transient_elb_failures_are_retried_and_refusals_are_not() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    elb.fail(
        TG_WEB,
        &[
            ElbFailure::Error(400, "Throttling"),
            ElbFailure::Error(503, "ServiceUnavailable"),
            ElbFailure::Drop,
        ],
    );
    elb.fail(TG_API, &[ElbFailure::Error(403, "AccessDenied")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let hook_file = dir.path().join("hook.log");
    let mut run = Running::start(config(&imds, &elb, &["--drain-hook", &hook_into(&hook_file)]));
    run.expect("polling", 5 * SECOND);
    imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("done", 10 * SECOND);

    let bodies: Vec<String> = elb.requests().iter().map(Req::body_text).collect();
    let to = |group: &str| {
        bodies.iter().filter(|b| form_value(b, "TargetGroupArn").as_deref() == Some(group)).count()
    };
    assert_eq!(to(TG_WEB), 4, "throttled, 503, dropped, then deregistered");
    assert_eq!(to(TG_API), 1, "AccessDenied is not retried");
    assert_eq!(run.log.count("deregister-retry"), 3);
    let failed = run.log.line("deregister-failed").expect("the refusal logged");
    assert_eq!((failed["level"].as_str(), failed["code"].as_str()), (Some("error"), Some("AccessDenied")));
    let deregistered = run.log.line("deregistered").expect("deregistered");
    assert_eq!(
        (deregistered["target_group"].as_str(), deregistered["attempt"].as_u64()),
        (Some(TG_WEB), Some(4))
    );
    let done = run.log.line("done").expect("done");
    assert_eq!(done["level"], "error");
    assert_eq!(done["failed"], serde_json::json!([TG_API]));
    assert_eq!(hook_lines(&hook_file).len(), 1, "the hook runs even so");
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn retries_end_at_the_termination_time() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    elb.fail(TG_WEB, &[ElbFailure::Error(500, "InternalFailure"); 100]);
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);
    let posted = Instant::now();
    imds.post_notice("terminate", Duration::from_secs(2));
    run.expect("done", 10 * SECOND);
    assert!(posted.elapsed() < Duration::from_secs(4), "gave up at the termination time");
    let gave_up = run.log.line("deregister-gave-up").expect("gave up");
    assert_eq!(gave_up["target_groups"], serde_json::json!([TG_WEB]));
    assert_eq!(run.log.line("done").expect("done")["deregistered"], serde_json::json!([TG_API]));
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn a_rebalance_recommendation_is_logged_and_drains_only_when_asked() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);
    imds.state().rebalance = Some(r#"{"noticeTime": "2026-05-01T12:00:00Z"}"#.into());
    run.expect("rebalance", 5 * SECOND);
    let polls = imds.gets_of("events/recommendations/rebalance");
    assert!(wait_until(5 * SECOND, || imds.gets_of("events/recommendations/rebalance") >= polls + 5));
    assert_eq!(run.log.count("rebalance"), 1, "logged once per recommendation");
    let line = run.log.line("rebalance").expect("rebalance");
    assert_eq!(
        (line["notice_time"].as_str(), line["on_rebalance"].as_str()),
        (Some("2026-05-01T12:00:00Z"), Some("log"))
    );
    assert!(elb.requests().is_empty());
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);

    let dir = tempfile::tempdir().expect("temp dir");
    let hook_file = dir.path().join("hook.log");
    let hook = hook_into(&hook_file);
    let mut run = Running::start(config(&imds, &elb, &["--on-rebalance", "drain", "--drain-hook", &hook]));
    run.expect("done", 5 * SECOND);
    assert_eq!(elb.requests().len(), 2);
    assert_eq!(hook_lines(&hook_file), [format!("rebalance||{INSTANCE}")]);
    // A notice after the drain changes nothing.
    imds.post_notice("terminate", Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(elb.requests().len(), 2);
    assert_eq!(run.log.count("notice"), 0);
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn without_instance_tags_the_target_group_options_apply() {
    let imds = FakeImds::start(None);
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &["--target-group", TG_API, "--drain-seconds", "0"]));
    run.expect("polling", 5 * SECOND);
    assert_eq!(run.log.line("tags-unavailable").expect("tags missing")["level"], "warn");
    let groups = run.log.line("target-groups").expect("target groups");
    assert_eq!(groups["target_groups"], serde_json::json!([TG_API]));
    assert_eq!(
        (groups["drain_seconds"].as_u64(), groups["drain_seconds_from"].as_str()),
        (Some(0), Some("option"))
    );
    imds.post_notice("stop", Duration::from_secs(120));
    run.expect("done", 5 * SECOND);
    let requests = elb.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(form_value(&requests[0].body_text(), "TargetGroupArn").as_deref(), Some(TG_API));
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn tags_and_options_together_are_deduplicated() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let extra = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/extra/0000000000000000";
    let mut run = Running::start(config(&imds, &elb, &["--target-group", TG_WEB, "--target-group", extra]));
    run.expect("polling", 5 * SECOND);
    let groups = run.log.line("target-groups").expect("target groups");
    assert_eq!(groups["target_groups"], serde_json::json!([TG_WEB, TG_API, extra]));
    assert_eq!((groups["from_tags"].as_u64(), groups["from_options"].as_u64()), (Some(2), Some(1)));
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn with_no_target_groups_notices_are_only_logged() {
    let imds = FakeImds::start(Some(vec![("Name".into(), "web".into())]));
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);
    assert_eq!(run.log.line("no-target-groups").expect("warned")["level"], "warn");
    imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("done", 5 * SECOND);
    assert!(elb.requests().is_empty());
    assert_eq!(run.log.count("notice"), 1);
    assert_eq!(run.log.count("draining"), 0);
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn instance_profile_credentials_sign_the_requests() {
    let imds = FakeImds::spot("0");
    let expiration =
        agent::clock::rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(6 * 3600));
    imds.state().role = Some((
        "app-role".into(),
        format!(
            r#"{{"Code": "Success", "LastUpdated": "2026-05-01T11:00:00Z", "Type": "AWS-HMAC",
                "AccessKeyId": "ASIAPROFILE", "SecretAccessKey": "profile-secret",
                "Token": "profile-token", "Expiration": "{expiration}"}}"#
        ),
    ));
    let elb = FakeElb::start();
    let mut run = Running::start(config_with_env(&imds, &elb, &[], &[]));
    run.expect("polling", 5 * SECOND);
    let credentials = run.log.line("credentials").expect("credentials logged");
    assert_eq!(
        (credentials["source"].as_str(), credentials["role"].as_str()),
        (Some("instance-profile"), Some("app-role"))
    );
    assert_eq!(credentials["expiration"].as_str(), Some(expiration.as_str()));
    let text = run.log.lines().iter().map(|l| l.to_string()).collect::<String>();
    assert!(!text.contains("profile-secret") && !text.contains("profile-token"), "no secret in the log");

    imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("done", 5 * SECOND);
    let requests = elb.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_signed(request, "ASIAPROFILE", "profile-secret", "profile-token");
    }
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}

#[test]
fn an_unreadable_notice_is_answered_as_a_termination() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);
    imds.state().instance_action = Some("not json".into());
    run.expect("done", 5 * SECOND);
    assert_eq!(run.log.line("notice-unreadable").expect("warned")["body"], "not json");
    let notice = run.log.line("notice").expect("notice");
    assert_eq!((notice["action"].as_str(), notice["seconds_left"].as_u64()), (Some("terminate"), Some(120)));
    assert_eq!(elb.requests().len(), 2);
    assert_eq!(run.stop(SECOND).expect("stops"), Outcome::Stopped);
}
