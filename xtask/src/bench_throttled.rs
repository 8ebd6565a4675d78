//! Many rollouts at once under EC2's and ELB's per-account request limits: 100 apps
//! rolled out to a new AMI by one `terraform apply` (Terraform's default parallelism)
//! in an account whose requests the emulator throttles with AWS's published token
//! buckets (`scripts/emulator/throttling.py`, on the real clock), against the same
//! rollouts in an account without throttling. It reports the requests per rollout,
//! the throttled answers AWS gave, and how many throttling errors reached the user
//! (the target is none: the provider's retries and pacing absorb them).

use crate::bench::{Findings, Row, progress, secs};
use anyhow::{Context as _, Result, bail};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tests::{Account, LocalAws, Workdir, core_infra, register_ami};

const APPS: usize = 100;

fn apps_config(ami: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

resource "immutable_app" "app" {{
  count                = {APPS}
  name                 = "fleet-${{count.index}}"
  ami_id               = "{ami}"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  rollout {{
    drain_timeout = "1s"
  }}
}}
"#
    )
}

/// One estate of 100 apps on the first of two AMIs.
struct Estate {
    account: Account,
    workdir: Workdir,
    amis: Vec<String>,
}

fn estate(aws: &LocalAws, runtime: &tokio::runtime::Runtime, what: &str) -> Result<Estate> {
    progress(format!("throttled rollouts: {what}: the core infrastructure, two AMIs, {APPS} apps"));
    let account = aws.account();
    let amis = runtime.block_on(async {
        core_infra(&account).await?;
        let ec2 = account.ec2().await;
        let mut amis = Vec::new();
        for (i, commit) in ["1", "2"].iter().enumerate() {
            let name = format!("fleet-170000000{i}");
            amis.push(
                register_ami(&ec2, &name, &[("Layer", "fleet"), ("Commit", &commit.repeat(40))]).await?,
            );
        }
        anyhow::Ok(amis)
    })?;
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &apps_config(&amis[0]));
    workdir.init()?;
    let started = Instant::now();
    workdir.run_ok(&["apply", "-auto-approve", "-no-color", "-input=false", "-parallelism=50"])?;
    progress(format!("throttled rollouts: {what}: {APPS} apps created in {}", secs(started.elapsed())));
    Ok(Estate { account, workdir, amis })
}

/// What one apply rolling every app out gave.
struct Rollouts {
    wall: Duration,
    requests: u64,
    /// Requests by `<service>:<Action>`, and the refused among them.
    by_action: BTreeMap<String, u64>,
    refused: BTreeMap<String, u64>,
    throttled: u64,
    /// Throttling errors in what Terraform showed the user.
    surfaced: usize,
    failed: bool,
}

fn roll_out(estate: &Estate) -> Result<Rollouts> {
    estate.workdir.write("main.tf", &apps_config(&estate.amis[1]));
    estate.account.reset_requests()?;
    estate.account.control("POST", "/_immutable/throttled/reset", None)?;
    let started = Instant::now();
    let out = estate.workdir.terraform(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    let wall = started.elapsed();
    let by_action: BTreeMap<String, u64> = estate.account.requests()?.into_iter().collect();
    let requests = by_action.values().sum();
    let refused: BTreeMap<String, u64> =
        serde_json::from_str(&estate.account.control("GET", "/_immutable/throttled", None)?)
            .context("throttled counts")?;
    let throttled = refused.values().sum();
    let text = format!("{}\n{}", out.stdout, out.stderr);
    let surfaced = ["RequestLimitExceeded", "Throttling", "Rate exceeded", "Request limit exceeded"]
        .iter()
        .map(|needle| text.matches(needle).count())
        .sum();
    let failed = !out.success();
    if !failed && !out.stdout.contains(&format!("{APPS} changed")) {
        bail!("the apply did not roll out every app:\n{out}");
    }
    Ok(Rollouts { wall, requests, by_action, refused, throttled, surfaced, failed })
}

pub fn run(aws: &LocalAws, runtime: &tokio::runtime::Runtime) -> Result<Findings> {
    let free = estate(aws, runtime, "without throttling")?;
    let throttled = estate(aws, runtime, "with throttling")?;
    throttled.account.behave(serde_json::json!({ "throttling": true }))?;

    progress(format!("throttled rollouts: rolling out {APPS} apps without throttling"));
    let baseline = roll_out(&free)?;
    progress(format!("throttled rollouts: without throttling: {}", secs(baseline.wall)));
    progress(format!("throttled rollouts: rolling out {APPS} apps under EC2's and ELB's request limits"));
    let measured = roll_out(&throttled)?;
    progress(format!(
        "throttled rollouts: under throttling: {}, {} requests, {} throttled, {} throttling errors shown{}",
        secs(measured.wall),
        measured.requests,
        measured.throttled,
        measured.surfaced,
        if measured.failed { ", the apply FAILED" } else { "" }
    ));

    let per_rollout = |r: &Rollouts| r.requests as f64 / APPS as f64;
    let rows = vec![
        Row {
            what: format!(
                "{APPS} apps rolled out by one apply (parallelism 10) under EC2's and ELB's request limits, wall time"
            ),
            measured: secs(measured.wall),
            baseline: format!("{} (the same rollouts without throttling)", secs(baseline.wall)),
            ratio: measured.wall.as_secs_f64() / baseline.wall.as_secs_f64(),
        },
        Row {
            what: "requests per rollout under throttling (throttled answers included)".into(),
            measured: format!("{:.1}", per_rollout(&measured)),
            baseline: format!("{:.1} (without throttling)", per_rollout(&baseline)),
            ratio: per_rollout(&measured) / per_rollout(&baseline),
        },
    ];
    let mut details = format!(
        "## Rollouts under throttling\n\n\
         {APPS} apps (1 instance each, one target group) rolled out to a new AMI by one `terraform apply` with \
         Terraform's default parallelism (10), in an account where the emulator applies AWS's published \
         per-account token buckets to every EC2 and ELB request on the real clock (for example \
         DescribeSpotFleetRequests 50 / 3 per second, DescribeTargetHealth 40 / 10 shared with ELB's other \
         reads): {} requests, of which AWS answered {} with a throttling error; throttling errors shown to \
         the user: {} (target 0); the apply {}. Without throttling the same rollouts made {} requests.\n",
        measured.requests,
        measured.throttled,
        measured.surfaced,
        if measured.failed { "failed" } else { "succeeded" },
        baseline.requests,
    );
    details.push_str(
        "\n| action | requests without throttling | requests under throttling | throttled |\n|---|---|---|---|\n",
    );
    let actions: std::collections::BTreeSet<&String> =
        baseline.by_action.keys().chain(measured.by_action.keys()).collect();
    for action in actions {
        let count = |r: &Rollouts| r.by_action.get(action).copied().unwrap_or(0);
        details.push_str(&format!(
            "| {action} | {} | {} | {} |\n",
            count(&baseline),
            count(&measured),
            measured.refused.get(action).copied().unwrap_or(0)
        ));
    }
    Ok(Findings { rows, details: vec![details] })
}
