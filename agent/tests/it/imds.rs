//! IMDS as it fails: IMDSv1-only endpoints, outages of every kind, tokens refused
//! or expiring.

use std::time::Duration;

use agent::Fatal;
use agent::imds::ImdsError;

use crate::standin::*;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn an_imdsv1_only_endpoint_is_refused_and_nothing_is_read_without_a_token() {
    for refusal in [403, 404, 405] {
        let imds = FakeImds::spot("0");
        imds.set_mode(Mode::V1Only(refusal));
        let elb = FakeElb::start();
        let mut run = Running::start(config(&imds, &elb, &[]));
        let result = run.join(5 * SECOND);
        match result {
            Err(Fatal::Imds(ImdsError::V2Refused { status, .. })) => assert_eq!(status, refusal),
            other => panic!("{refusal}: {other:?}"),
        }
        let seen = imds.seen();
        assert!(
            seen.iter().all(|s| s.method == "PUT" && s.path == "latest/api/token"),
            "{refusal}: {seen:#?}"
        );
        let error = run.log.line("imdsv2-unsupported").expect("the refusal logged");
        assert_eq!(error["level"], "error");
        assert_eq!(error["status"], refusal);
        let message = error["message"].as_str().unwrap_or("");
        assert!(message.contains("IMDSv2") && message.contains("IMDSv1 is not used"), "{message}");
        assert_eq!(run.log.count("polling"), 0);
    }
}

/// Every kind of outage is warned about once, its end is logged, and the agent still
/// answers a notice afterwards.
#[test]
fn outages_are_waited_out_without_exiting() {
    let mut imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);

    let outage = |run: &Running, imds: &FakeImds, n: usize, what: &str| {
        assert!(
            wait_until(5 * SECOND, || run.log.count("imds-unavailable") == n),
            "{what}: no warning; {:#?}",
            run.log.lines()
        );
        // Several polls into the outage: one warning only.
        let tries = imds.seen().len();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(run.log.count("imds-unavailable"), n, "{what}: warned once");
        assert!(!run.finished(), "{what}: still running");
        tries
    };
    let recovery = |run: &Running, n: usize, what: &str| {
        assert!(wait_until(5 * SECOND, || run.log.count("imds-recovered") == n), "{what}: no recovery");
    };

    imds.set_mode(Mode::Unavailable);
    let tries = outage(&run, &imds, 1, "503");
    assert!(imds.seen().len() > tries, "polling goes on during the outage");
    let warning = run.log.line("imds-unavailable").expect("warned");
    assert_eq!(warning["level"], "warn");
    assert!(warning["error"].as_str().is_some_and(|e| e.contains("503")), "{warning}");
    imds.set_mode(Mode::Normal);
    recovery(&run, 1, "503");

    imds.server.close();
    outage(&run, &imds, 2, "connection refused");
    imds.server.reopen();
    recovery(&run, 2, "connection refused");

    imds.set_mode(Mode::Drop);
    outage(&run, &imds, 3, "dropped connections");
    imds.set_mode(Mode::Normal);
    recovery(&run, 3, "dropped connections");

    imds.set_mode(Mode::Hang);
    outage(&run, &imds, 4, "no answer");
    imds.set_mode(Mode::Normal);
    recovery(&run, 4, "no answer");
    let timeouts =
        run.log.lines().into_iter().filter(|l| l["event"] == "imds-unavailable").nth(3).expect("4th");
    assert!(timeouts["error"].as_str().is_some_and(|e| e.contains("no answer within 500ms")), "{timeouts}");

    imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("done", 5 * SECOND);
    assert_eq!(elb.requests().len(), 2);
    assert_eq!(run.log.count("started"), 1, "never restarted");
    run.stop(SECOND).expect("stops");
}

#[test]
fn an_outage_at_start_up_is_waited_out() {
    let imds = FakeImds::spot("0");
    imds.set_mode(Mode::Unavailable);
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("imds-unavailable", 5 * SECOND);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(run.log.count("polling"), 0);
    assert_eq!(run.log.count("imds-unavailable"), 1);
    imds.set_mode(Mode::Normal);
    run.expect("polling", 5 * SECOND);
    assert_eq!(run.log.count("imds-recovered"), 1);
    run.stop(SECOND).expect("stops");
}

#[test]
fn a_rejected_token_is_replaced_without_an_outage() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);
    imds.state().tokens.clear();
    run.expect("imds-token-rejected", 5 * SECOND);
    let puts = || imds.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts(), 2);
    let polls = imds.gets_of("spot/instance-action");
    assert!(wait_until(5 * SECOND, || imds.gets_of("spot/instance-action") > polls + 3));
    assert_eq!(run.log.count("imds-unavailable"), 0);
    assert_eq!(puts(), 2, "one new session");
    run.stop(SECOND).expect("stops");
}

#[test]
fn tokens_are_renewed_before_they_expire() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &["--imds-token-ttl", "1s"]));
    run.expect("polling", 5 * SECOND);
    std::thread::sleep(Duration::from_millis(2600));
    let seen = imds.seen();
    let puts: Vec<_> = seen.iter().filter(|s| s.method == "PUT").collect();
    assert!(puts.len() >= 3, "{} sessions in 2.6 s of 1 s tokens", puts.len());
    assert!(puts.iter().all(|s| s.status == 200));
    assert!(seen.iter().all(|s| s.status != 401), "no GET with an expired token");
    assert_eq!(run.log.count("imds-token-rejected"), 0);
    run.stop(SECOND).expect("stops");
}
