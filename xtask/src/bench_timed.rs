//! A rollout where AWS's time goes: one app rolled out to a new AMI with the
//! emulator's timed target health on the real clock (no scaling, so the provider's
//! own polling is measured as it runs), against the physical floor those settings
//! allow.
//!
//! The target group has AWS's fastest health checks (every 5 s, healthy after 2
//! passes) and a 10 s deregistration delay; every instance takes 23 s to boot. A new
//! instance is checked 5 s after its registration and every 5 s after that, so the
//! first check it passes is the first at or after its boot (25 s) and it is healthy
//! one interval later (30 s); the old fleet then drains for the full delay. The floor
//! is that sum, 40 s: no rollout that waits for health and drains can be shorter on
//! AWS with these settings.

use crate::bench::{Findings, Row, median, progress, secs};
use crate::bench_rollout::{CAPACITY, app_config};
use anyhow::{Context as _, Result, bail};
use std::time::{Duration, Instant};
use tests::{LocalAws, Workdir, core_infra, register_ami};

const INTERVAL: u32 = 5;
const HEALTHY_THRESHOLD: u32 = 2;
const DEREGISTRATION_DELAY: u32 = 10;
const BOOT: u32 = 23;

/// The first check at or after boot, the threshold's remaining checks, the drain.
fn floor() -> Duration {
    let first_pass = BOOT.div_ceil(INTERVAL) * INTERVAL;
    Duration::from_secs(u64::from(first_pass + (HEALTHY_THRESHOLD - 1) * INTERVAL + DEREGISTRATION_DELAY))
}

pub fn run(aws: &LocalAws, runtime: &tokio::runtime::Runtime, runs: usize) -> Result<Findings> {
    progress("timed rollout: the core infrastructure with AWS's fastest health checks, two AMIs, the app");
    let account = aws.account();
    account.behave(serde_json::json!({
        "clock_scale": 1.0,
        "target_health": "timed",
        "boot_seconds": [BOOT, BOOT],
    }))?;
    let amis = runtime.block_on(async {
        let infra = core_infra(&account).await?;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
        elb.modify_target_group()
            .target_group_arn(&infra.target_group_arn)
            .health_check_interval_seconds(INTERVAL as i32)
            .health_check_timeout_seconds(2)
            .healthy_threshold_count(HEALTHY_THRESHOLD as i32)
            .unhealthy_threshold_count(2)
            .send()
            .await
            .context("ModifyTargetGroup")?;
        elb.modify_target_group_attributes()
            .target_group_arn(&infra.target_group_arn)
            .attributes(
                aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value(DEREGISTRATION_DELAY.to_string())
                    .build(),
            )
            .send()
            .await
            .context("ModifyTargetGroupAttributes")?;
        let ec2 = account.ec2().await;
        let mut amis = Vec::new();
        for (i, commit) in ["1", "2"].iter().enumerate() {
            let name = format!("web-170000000{i}");
            amis.push(register_ami(&ec2, &name, &[("Layer", "web"), ("Commit", &commit.repeat(40))]).await?);
        }
        anyhow::Ok(amis)
    })?;
    let app = Workdir::new(&account);
    app.write("main.tf", &app_config(&amis[0]));
    app.init()?;
    let started = Instant::now();
    app.apply()?;
    progress(format!("timed rollout: created in {}", secs(started.elapsed())));

    let mut samples = Vec::new();
    for run in 1..=runs {
        app.write("main.tf", &app_config(&amis[run % 2]));
        let started = Instant::now();
        let out = app.apply()?;
        let apply = started.elapsed();
        if !out.stdout.contains("1 changed") {
            bail!("the rollout was not an in-place update of the app:\n{out}");
        }
        progress(format!("timed rollout: {run}/{runs}: {}", secs(apply)));
        samples.push(apply);
    }
    let apply = median(samples);
    let floor = floor();
    let row = Row {
        what: format!(
            "blue/green rollout of one app ({CAPACITY} instances) on AWS's health timing, apply (median of {runs})"
        ),
        measured: secs(apply),
        baseline: format!(
            "{} (physical floor: healthy {} s after launch with checks every {INTERVAL} s, threshold \
             {HEALTHY_THRESHOLD}, boot {BOOT} s; then {DEREGISTRATION_DELAY} s deregistration delay)",
            secs(floor),
            floor.as_secs() - u64::from(DEREGISTRATION_DELAY)
        ),
        ratio: apply.as_secs_f64() / floor.as_secs_f64(),
    };
    Ok(Findings { rows: vec![row], details: vec![] })
}

#[cfg(test)]
mod unit {
    #[test]
    fn the_floor_is_the_first_passing_check_the_threshold_and_the_drain() {
        // Boot 23 s: checks at 5..20 fail, 25 passes, 30 passes (healthy), then 10 s drain.
        assert_eq!(super::floor().as_secs(), 40);
    }
}
