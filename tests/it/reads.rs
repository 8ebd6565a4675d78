//! Reads of many resources share their AWS calls (issue 6): a plan over a large estate
//! costs a handful of requests, not several per resource.

use std::time::Instant;
use tests::{LocalAws, RequestCounts, Workdir, core_infra, mutating, register_ami};

const APPS: usize = 100;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn total(requests: &RequestCounts) -> u64 {
    requests.values().sum()
}

fn count(requests: &RequestCounts, key: &str) -> u64 {
    requests.get(key).copied().unwrap_or(0)
}

/// `APPS` apps behind one target group; the app numbered `changed` runs `new_ami`.
fn config(ami: &str, new_ami: &str, changed: Option<usize>) -> String {
    let changed = changed.map_or_else(|| "-1".to_owned(), |c| c.to_string());
    format!(
        r#"
terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

resource "immutable_app" "web" {{
  count                = {APPS}
  name                 = "web-${{count.index}}"
  ami_id               = count.index == {changed} ? "{new_ami}" : "{ami}"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  rollout {{
    health_timeout = "30s"
    drain_timeout  = "1s"
  }}
}}
"#
    )
}

#[test]
fn a_no_change_plan_over_100_apps_behind_one_target_group_makes_5_requests() {
    let account = LocalAws::shared().account();
    let (ami, new_ami) = runtime().block_on(async {
        core_infra(&account).await.expect("core infrastructure");
        let ec2 = account.ec2().await;
        let (one, two) = ("1".repeat(40), "2".repeat(40));
        let old =
            register_ami(&ec2, "web-1700000000", &[("Layer", "web"), ("Commit", &one)]).await.expect("AMI");
        let new =
            register_ami(&ec2, "web-1700000001", &[("Layer", "web"), ("Commit", &two)]).await.expect("AMI");
        (old, new)
    });
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &config(&ami, &new_ami, None));
    workdir.init().expect("init");
    let started = Instant::now();
    workdir.run_ok(&["apply", "-auto-approve", "-input=false", "-parallelism=20"]).expect("apply");
    eprintln!("applied {APPS} apps in {:.1}s", started.elapsed().as_secs_f64());

    // No change: the refresh of every app shares one snapshot of the account's fleets,
    // their instances and the target group's health (3 requests), and prices every app
    // (`hourly_cost`) from one read of each price source: the apps run the same instance
    // types, and the instances' types and zones come with the snapshot's
    // DescribeInstances. 3 + 2 = 5.
    account.reset_requests().expect("reset");
    assert!(!workdir.plan_has_changes().expect("plan"), "nothing changed");
    let unchanged = account.requests().expect("requests");
    eprintln!("no-change plan over {APPS} apps: {} requests: {unchanged:?}", total(&unchanged));
    assert_eq!(total(&unchanged), 5, "5 requests for {APPS} apps, got {unchanged:?}");
    assert!(mutating(&unchanged).is_empty(), "a plan changes nothing: {unchanged:?}");
    for read in [
        "ec2:DescribeSpotFleetRequests",
        "ec2:DescribeInstances",
        "elbv2:DescribeTargetHealth",
        "ec2:DescribeSpotPriceHistory",
        "pricing:GetProducts",
    ] {
        assert_eq!(count(&unchanged, read), 1, "{read} once for all apps: {unchanged:?}");
    }

    // One app changes: the plan adds that app's plan-time checks, nothing per other app.
    workdir.write("main.tf", &config(&ami, &new_ami, Some(7)));
    account.reset_requests().expect("reset");
    let plan = workdir.run_ok(&["plan", "-input=false", "-no-color"]).expect("plan");
    assert!(plan.stdout.contains("1 to change"), "{}", plan.stdout);
    let changed = account.requests().expect("requests");
    eprintln!("plan changing one app: {} requests: {changed:?}", total(&changed));
    assert!(mutating(&changed).is_empty(), "{changed:?}");
    for read in [
        "ec2:DescribeSpotFleetRequests",
        "ec2:DescribeInstances",
        "elbv2:DescribeTargetHealth",
        "ec2:DescribeSpotPriceHistory",
        "pricing:GetProducts",
    ] {
        assert_eq!(count(&changed, read), 1, "{read} still once for all apps: {changed:?}");
    }
    let added = total(&changed) - total(&unchanged);
    // The changed app's checks: its AMI, security group, target group, instance
    // profile, fleet role and instance types (one call each).
    assert!((1..=8).contains(&added), "one app's checks add a few requests, got {added}: {changed:?}");
}
