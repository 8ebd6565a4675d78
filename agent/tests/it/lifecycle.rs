//! Start and stop: On-Demand instances, and the stop flag at every wait.

use std::time::{Duration, Instant};

use agent::Outcome;

use crate::standin::*;

const SECOND: Duration = Duration::from_secs(1);
/// What "promptly" means for the stop flag.
const PROMPT: Duration = Duration::from_millis(300);

#[test]
fn an_on_demand_instance_is_not_watched() {
    let imds = FakeImds::spot("0");
    imds.state().life_cycle = "on-demand".into();
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    assert_eq!(run.join(5 * SECOND).expect("a clean end"), Outcome::OnDemand);
    let paths: Vec<String> = imds.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        ["latest/api/token", "latest/meta-data/instance-life-cycle", "latest/meta-data/instance-id"]
    );
    assert_eq!(run.log.events(), ["started", "on-demand"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(imds.seen().len(), 3, "nothing polled");
}

fn stopped_promptly(run: &mut Running) {
    let asked = Instant::now();
    assert_eq!(run.stop(5 * SECOND).expect("a clean end"), Outcome::Stopped);
    assert!(asked.elapsed() < PROMPT, "stopped after {:?}", asked.elapsed());
    assert_eq!(run.log.events().last().map(String::as_str), Some("stopped"));
}

#[test]
fn the_stop_flag_ends_a_long_poll_wait_at_once() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut config = config(&imds, &elb, &[]);
    config.poll_interval = Duration::from_secs(30);
    let mut run = Running::start(config);
    run.expect("polling", 5 * SECOND);
    stopped_promptly(&mut run);
}

#[test]
fn the_stop_flag_ends_the_drain_wait_at_once() {
    let imds = FakeImds::spot("60");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &[]));
    run.expect("polling", 5 * SECOND);
    imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("draining", 5 * SECOND);
    stopped_promptly(&mut run);
    assert_eq!(run.log.count("drained"), 0);
}

#[test]
fn the_stop_flag_ends_an_outage_at_start_up_at_once() {
    let imds = FakeImds::spot("0");
    imds.set_mode(Mode::Unavailable);
    let elb = FakeElb::start();
    let mut config = config(&imds, &elb, &[]);
    config.poll_interval = Duration::from_secs(30);
    let mut run = Running::start(config);
    run.expect("imds-unavailable", 5 * SECOND);
    stopped_promptly(&mut run);
}

#[test]
fn the_stop_flag_ends_a_running_hook_wait_at_once() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &["--drain-hook", "sleep 30"]));
    run.expect("polling", 5 * SECOND);
    imds.post_notice("terminate", Duration::from_secs(120));
    run.expect("hook-started", 5 * SECOND);
    stopped_promptly(&mut run);
}

#[test]
fn a_hook_outliving_the_instance_is_not_waited_for() {
    let imds = FakeImds::spot("30");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &["--drain-hook", "sleep 30"]));
    run.expect("polling", 5 * SECOND);
    imds.post_notice("terminate", Duration::from_secs(2));
    run.expect("done", 5 * SECOND);
    assert_eq!(run.log.line("hook-timeout").expect("timed out")["level"], "warn");
    // No time left to drain either.
    assert!(run.log.line("draining").expect("draining")["wait_ms"].as_u64().is_some_and(|ms| ms < 1000));
    run.stop(SECOND).expect("stops");
}

#[test]
fn a_failing_hook_is_logged() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut run = Running::start(config(&imds, &elb, &["--drain-hook", "exit 3"]));
    run.expect("polling", 5 * SECOND);
    imds.post_notice("hibernate", Duration::from_secs(120));
    run.expect("done", 5 * SECOND);
    let finished = run.log.line("hook-finished").expect("hook finished");
    assert_eq!((finished["level"].as_str(), finished["exit_code"].as_i64()), (Some("warn"), Some(3)));
    assert_eq!(run.log.line("notice").expect("notice")["action"], "hibernate");
    run.stop(SECOND).expect("stops");
}
