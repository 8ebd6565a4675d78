//! Request throttling in the emulator (`scripts/emulator/throttling.py`): AWS's
//! per-account token buckets of EC2 and ELBv2, switched on per account and run on
//! its scaled clock, refusing with the answers AWS gives.

use std::time::Duration;

use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use serde_json::{Value, json};
use tests::{Account, LocalAws};

/// Real seconds per AWS second during a burst: no token comes back for 10 s.
const SLOW_CLOCK: f64 = 10.0;
/// Real seconds per AWS second while the bucket refills.
const REFILL_CLOCK: f64 = 0.5;

/// An EC2 client that sends each call once, so that a refusal reaches the test.
async fn ec2_once(account: &Account) -> aws_sdk_ec2::Client {
    let config = account.sdk_config().await;
    aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&config).retry_config(RetryConfig::disabled()).build(),
    )
}

/// An ELBv2 client that sends each call once.
async fn elb_once(account: &Account) -> aws_sdk_elasticloadbalancingv2::Client {
    let config = account.sdk_config().await;
    aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// The account's refused requests by `<service>:<Action>`.
fn throttled(account: &Account) -> Value {
    let body = account.control("GET", "/_immutable/throttled", None).expect("throttled counts");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("throttled counts are not JSON ({e}): {body}"))
}

#[tokio::test]
async fn a_bucket_of_50_per_3_refuses_the_51st_call_of_a_burst_and_admits_3_a_second_after() {
    let account = LocalAws::shared().account();
    account
        .behave(json!({
            "clock_scale": SLOW_CLOCK,
            "throttling": { "ec2:DescribeSpotFleetRequests": [50, 3] },
        }))
        .expect("switch throttling on");
    let ec2 = ec2_once(&account).await;

    for n in 1..=50 {
        ec2.describe_spot_fleet_requests()
            .send()
            .await
            .unwrap_or_else(|err| panic!("call {n} of the burst is admitted: {err:?}"));
    }
    let err = ec2.describe_spot_fleet_requests().send().await.expect_err("the 51st call is throttled");
    assert_eq!(err.code(), Some("RequestLimitExceeded"), "{err:?}");
    assert_eq!(err.message(), Some("Request limit exceeded."), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503), "{err:?}");

    // One AWS second later the bucket holds 3 tokens again.
    account.behave(json!({ "clock_scale": REFILL_CLOCK })).expect("speed the clock up");
    tokio::time::sleep(Duration::from_secs_f64(REFILL_CLOCK)).await;
    let (mut admitted, mut refused) = (0_u64, 0_u64);
    for _ in 0..10 {
        match ec2.describe_spot_fleet_requests().send().await {
            Ok(_) => admitted += 1,
            Err(err) => {
                assert_eq!(err.code(), Some("RequestLimitExceeded"), "{err:?}");
                refused += 1;
                break;
            }
        }
    }
    assert!(
        (2..=5).contains(&admitted),
        "{admitted} calls admitted one AWS second after the burst, expected 3"
    );
    assert_eq!(refused, 1, "the bucket is empty again after {admitted} calls");

    assert_eq!(throttled(&account), json!({ "ec2:DescribeSpotFleetRequests": 2 }));
    let requests = account.requests().expect("request counts");
    assert_eq!(
        requests.get("ec2:DescribeSpotFleetRequests"),
        Some(&(51 + admitted + refused)),
        "the accounting counts refused requests too: {requests:?}"
    );
}

#[tokio::test]
async fn elbv2_refuses_with_throttling_past_its_account_level_bucket() {
    let account = LocalAws::shared().account();
    account.behave(json!({ "clock_scale": 100.0, "throttling": true })).expect("switch throttling on");
    let elb = elb_once(&account).await;

    for n in 1..=40 {
        elb.describe_load_balancers()
            .send()
            .await
            .unwrap_or_else(|err| panic!("call {n} of the burst is admitted: {err:?}"));
    }
    let err = elb.describe_load_balancers().send().await.expect_err("the 41st call is throttled");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    assert_eq!(err.message(), Some("Rate exceeded"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400), "{err:?}");

    // Every ELBv2 action draws on the account-level bucket; EC2 has buckets of its own.
    let arn = format!(
        "arn:aws:elasticloadbalancing:{}:{}:targetgroup/none/0123456789abcdef",
        account.region, account.id
    );
    let err = elb.describe_target_health().target_group_arn(arn).send().await.expect_err("throttled too");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    ec2_once(&account).await.describe_vpcs().send().await.expect("EC2 is not throttled by ELBv2's buckets");

    assert_eq!(
        throttled(&account),
        json!({ "elbv2:DescribeLoadBalancers": 1, "elbv2:DescribeTargetHealth": 1 })
    );
}
