//! The emulator counts every AWS request per account and action.

use tests::{LayerSeed, LocalAws, Workdir, mutating, seed_lineage};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn count(requests: &tests::RequestCounts, key: &str) -> u64 {
    requests.get(key).copied().unwrap_or(0)
}

#[test]
fn requests_are_counted_per_account_and_action() {
    let aws = LocalAws::shared();
    let account = aws.account();
    let bystander = aws.account();
    assert!(account.requests().expect("requests").is_empty(), "a fresh account has made no request");

    // Seeding is two mutating calls per image: RegisterImage, then CreateTags.
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        seed_lineage(&ec2, &[LayerSeed::new("counted", "Counted", "c".repeat(40))]).await;
    });
    let seeded = account.requests().expect("requests");
    assert_eq!(count(&seeded, "ec2:RegisterImage"), 1, "{seeded:?}");
    assert_eq!(count(&seeded, "ec2:CreateTags"), 1, "{seeded:?}");
    assert_eq!(mutating(&seeded), vec!["ec2:CreateTags x1", "ec2:RegisterImage x1"]);
    assert_eq!(account.requests().expect("requests"), seeded, "reading the counts is not counted");
    assert!(bystander.requests().expect("requests").is_empty(), "other accounts are not charged");

    // Reset hands back the counts and starts from zero.
    assert_eq!(account.reset_requests().expect("reset"), seeded);
    assert!(account.requests().expect("requests").is_empty(), "nothing after a reset");

    // A data source plan reads images and changes nothing.
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        r#"terraform {
  required_providers {
    immutable = { source = "terraform.local/immutable/immutable" }
  }
}

data "immutable_ami" "counted" {
  layer = "counted"
}
"#,
    );
    workdir.init().expect("init");
    assert!(account.requests().expect("requests").is_empty(), "terraform init calls no AWS API");
    workdir.plan().expect("plan");
    let planned = account.requests().expect("requests");
    assert!(count(&planned, "ec2:DescribeImages") >= 1, "the data source looked for images: {planned:?}");
    assert!(mutating(&planned).is_empty(), "a plan changes nothing: {planned:?}");
    assert!(planned.keys().all(|k| k.starts_with("ec2:")), "only EC2 was asked: {planned:?}");

    // Each plan adds its own reads.
    workdir.plan().expect("plan");
    let twice = account.requests().expect("requests");
    assert_eq!(count(&twice, "ec2:DescribeImages"), 2 * count(&planned, "ec2:DescribeImages"), "{twice:?}");
}

#[test]
fn serving_time_is_summed_per_account_and_action() {
    let aws = LocalAws::shared();
    let account = aws.account();
    let bystander = aws.account();
    let fresh = account.request_stats().expect("timing");
    assert_eq!(fresh.total(), 0, "a fresh account has made no request: {fresh:?}");
    assert_eq!(fresh.busy_seconds, 0.0);

    runtime().block_on(async {
        let ec2 = account.ec2().await;
        seed_lineage(&ec2, &[LayerSeed::new("timed", "Timed", "d".repeat(40))]).await;
    });
    let stats = account.request_stats().expect("timing");
    assert_eq!(
        stats.counts,
        account.requests().expect("requests"),
        "the same counts, with or without timing"
    );
    assert_eq!(
        stats.counts.keys().collect::<Vec<_>>(),
        stats.seconds.keys().collect::<Vec<_>>(),
        "every counted action was timed: {stats:?}"
    );
    let summed: f64 = stats.seconds.values().sum();
    assert!(stats.seconds.values().all(|s| *s > 0.0), "{stats:?}");
    assert!(stats.busy_seconds > 0.0 && stats.busy_seconds <= summed + 1e-9, "{stats:?}");
    assert_eq!(bystander.request_stats().expect("timing").total(), 0, "other accounts are not charged");

    assert_eq!(account.reset_request_stats().expect("reset"), stats, "reset hands back the figures");
    let after = account.request_stats().expect("timing");
    assert_eq!((after.total(), after.busy_seconds), (0, 0.0), "nothing after a reset: {after:?}");
}
