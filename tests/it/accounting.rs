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
