//! Rollouts where AWS's time goes: one app rolled out to a new AMI with the emulator's
//! timed target health on the real clock (no scaling, so the provider's own polling
//! is measured as it runs), all at once and in steps, each against the physical floor
//! its settings allow.
//!
//! The target group has AWS's fastest health checks (every 5 s, healthy after 2
//! passes) and a 10 s deregistration delay; every instance takes 23 s to boot. A new
//! instance is checked 5 s after its registration and every 5 s after that, so the
//! first check it passes is the first at or after its boot (25 s) and it is healthy
//! one interval later (30 s); the old fleet then drains for the full delay. The floor
//! of the rollout all at once is that sum, 40 s: no rollout that waits for health and
//! drains can be shorter on AWS with these settings.
//!
//! The rollout in steps runs 10 instances in steps of 10, 50 and 100 percent (1, 5
//! and 10 new instances) with a 5 s bake: at each step the new instances launched for
//! it are healthy 30 s after their launch as above, the step then holds for the bake,
//! and the old fleet's share drains for the smaller of the rollout's `drain_timeout`
//! (30 s, the default, written out) and the group's delay, so 10 s: the group ends
//! every drain and the provider has to notice it, as in the rollout all at once. Each
//! step's floor is 30 + 5 + 10 = 45 s, and the rollout's is the sum over its steps,
//! 3 x 45 = 135 s. Ten instances rather than the two of the rollout all at once:
//! steps of 10, 50 and 100 percent of two instances round up to 1, 1 and 2, which is
//! two steps; ten give the three distinct steps of the design's example, and a
//! rollout still takes well under three minutes.

use crate::bench::{Findings, Row, median, progress, secs};
use crate::bench_rollout::{CAPACITY, app_config};
use anyhow::{Context as _, Result, bail};
use std::time::{Duration, Instant};
use tests::{Account, LocalAws, Workdir, core_infra, register_ami};

const INTERVAL: u32 = 5;
const HEALTHY_THRESHOLD: u32 = 2;
const DEREGISTRATION_DELAY: u32 = 10;
const BOOT: u32 = 23;

/// The rollout in steps: its app's instances, the steps (percent of them), each
/// step's bake and the rollout's drain limit, in seconds.
const STEPPED_CAPACITY: u32 = 10;
const STEPS: [u32; 3] = [10, 50, 100];
const BAKE: u32 = 5;
const DRAIN_TIMEOUT: u32 = 30;

/// From an instance's launch until it is healthy: the first check at or after boot,
/// then the threshold's remaining checks.
fn healthy_after_launch() -> u32 {
    BOOT.div_ceil(INTERVAL) * INTERVAL + (HEALTHY_THRESHOLD - 1) * INTERVAL
}

/// How long blue drains: the rollout's limit or the group's delay, whichever is shorter.
fn drain() -> u32 {
    DRAIN_TIMEOUT.min(DEREGISTRATION_DELAY)
}

/// One step: its new instances healthy, the bake, blue's share drained.
fn step_floor(bake: u32) -> u32 {
    healthy_after_launch() + bake + drain()
}

/// The rollout all at once: one step without bake.
fn floor() -> Duration {
    Duration::from_secs(u64::from(step_floor(0)))
}

/// Green's size at each step: each share of `capacity` rounded up, steps of the same
/// size as one, the last the full capacity (as the provider plans them).
fn step_sizes(capacity: u32, percents: &[u32]) -> Vec<u32> {
    let mut sizes: Vec<u32> = Vec::new();
    for percent in percents.iter().copied().chain([100]) {
        let size = (capacity * percent.min(100)).div_ceil(100).clamp(1, capacity);
        if sizes.last().is_none_or(|last| size > *last) {
            sizes.push(size);
        }
    }
    sizes
}

/// The rollout in steps: the sum of its steps' floors.
fn stepped_floor() -> Duration {
    let steps = step_sizes(STEPPED_CAPACITY, &STEPS).len() as u32;
    Duration::from_secs(u64::from(steps * step_floor(BAKE)))
}

/// "10, 50, 100"
fn steps_text() -> String {
    STEPS.map(|s| s.to_string()).join(", ")
}

/// The rollout benchmark's app, with `STEPPED_CAPACITY` instances and the rollout
/// block of the rollout in steps.
fn stepped_config(ami: &str) -> Result<String> {
    let app = app_config(ami);
    let capacity = format!("target_capacity      = {CAPACITY}\n");
    let Some(end) = app.rfind("}\n") else { bail!("no closing brace in the app configuration:\n{app}") };
    if !app.contains(&capacity) {
        bail!("no `{}` in the app configuration:\n{app}", capacity.trim());
    }
    let steps = steps_text();
    let rollout = format!(
        "\n  rollout {{\n    steps         = [{steps}]\n    bake_time     = \"{BAKE}s\"\n    \
         drain_timeout = \"{DRAIN_TIMEOUT}s\"\n  }}\n"
    );
    let (head, tail) = app.split_at(end);
    Ok(format!("{head}{rollout}{tail}").replacen(
        &capacity,
        &format!("target_capacity      = {STEPPED_CAPACITY}\n"),
        1,
    ))
}

/// An account with the target group's health checks and delay set as above, and two
/// AMIs of the app.
fn timed_account(aws: &LocalAws, runtime: &tokio::runtime::Runtime) -> Result<(Account, Vec<String>)> {
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
    Ok((account, amis))
}

/// Creates the app from `config(amis[0])`, then times `runs` rollouts, each the
/// `terraform apply` alone, alternating the AMIs; after each, `after` sees the workdir
/// (outside the timed apply).
fn timed_rollouts<T>(
    what: &str,
    app: &Workdir,
    amis: &[String],
    runs: usize,
    config: impl Fn(&str) -> Result<String>,
    mut after: impl FnMut(&Workdir) -> Result<T>,
) -> Result<Vec<(Duration, T)>> {
    app.write("main.tf", &config(&amis[0])?);
    app.init()?;
    let started = Instant::now();
    app.apply()?;
    progress(format!("{what}: created in {}", secs(started.elapsed())));
    let mut samples = Vec::new();
    for run in 1..=runs {
        app.write("main.tf", &config(&amis[run % 2])?);
        let started = Instant::now();
        let out = app.apply()?;
        let apply = started.elapsed();
        if !out.stdout.contains("1 changed") {
            bail!("the rollout was not an in-place update of the app:\n{out}");
        }
        progress(format!("{what}: {run}/{runs}: {}", secs(apply)));
        samples.push((apply, after(app)?));
    }
    Ok(samples)
}

pub fn run(aws: &LocalAws, runtime: &tokio::runtime::Runtime, runs: usize) -> Result<Findings> {
    progress("timed rollout: the core infrastructure with AWS's fastest health checks, two AMIs, the app");
    let (account, amis) = timed_account(aws, runtime)?;
    let app = Workdir::new(&account);
    let samples = timed_rollouts("timed rollout", &app, &amis, runs, |ami| Ok(app_config(ami)), |_| Ok(()))?;
    let apply = median(samples.into_iter().map(|(apply, ())| apply).collect());
    let floor = floor();
    let all_at_once = Row {
        what: format!(
            "blue/green rollout of one app ({CAPACITY} instances) on AWS's health timing, apply (median of {runs})"
        ),
        measured: secs(apply),
        baseline: format!(
            "{} (physical floor: healthy {} s after launch with checks every {INTERVAL} s, threshold \
             {HEALTHY_THRESHOLD}, boot {BOOT} s; then {DEREGISTRATION_DELAY} s deregistration delay)",
            secs(floor),
            healthy_after_launch()
        ),
        ratio: apply.as_secs_f64() / floor.as_secs_f64(),
    };

    progress(format!(
        "timed rollout in steps: another account, {STEPPED_CAPACITY} instances in steps of {} %",
        steps_text()
    ));
    let (account, amis) = timed_account(aws, runtime)?;
    let app = Workdir::new(&account);
    let mut samples =
        timed_rollouts("timed rollout in steps", &app, &amis, runs, stepped_config, last_rollout)?;
    samples.sort_by_key(|(apply, _)| *apply);
    let Some((apply, record)) = samples.get(samples.len() / 2) else { bail!("no rollout in steps measured") };
    let floor = stepped_floor();
    let sizes = step_sizes(STEPPED_CAPACITY, &STEPS);
    let in_steps = Row {
        what: format!(
            "rollout of one app ({STEPPED_CAPACITY} instances) in steps of {} % with a {BAKE} s bake on AWS's \
             health timing, apply (median of {runs})",
            steps_text()
        ),
        measured: secs(*apply),
        baseline: format!(
            "{} (physical floor: {} steps × (healthy {} s after launch + {BAKE} s bake + {} s drain))",
            secs(floor),
            sizes.len(),
            healthy_after_launch(),
            drain()
        ),
        ratio: apply.as_secs_f64() / floor.as_secs_f64(),
    };
    let details = step_details(*apply, record)?;
    Ok(Findings { rows: vec![all_at_once, in_steps], details: vec![details] })
}

/// The app's `last_rollout` from the state.
fn last_rollout(app: &Workdir) -> Result<serde_json::Value> {
    let shown = app.run_ok(&["show", "-json", "-no-color"])?;
    let state: serde_json::Value = serde_json::from_str(&shown.stdout).context("terraform show -json")?;
    state["values"]["root_module"]["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["address"] == "immutable_app.web"))
        .map(|app| app["values"]["last_rollout"].clone())
        .context("no immutable_app.web in the state")
}

/// Milliseconds since midnight (UTC) of an RFC 3339 time such as
/// `2026-01-02T10:00:00.123Z` (the fraction optional).
fn rfc3339_millis(time: &str) -> Option<u64> {
    let clock = time.get(11..)?.strip_suffix('Z')?;
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let millis = format!("{fraction:0<3}").get(..3)?.parse::<u64>().ok()?;
    Some(((h * 60 + m) * 60 + s) * 1000 + millis)
}

/// From `from` to `to` (both from [`rfc3339_millis`]), across midnight.
fn between(from: u64, to: u64) -> Duration {
    Duration::from_millis(if to >= from { to - from } else { to + 86_400_000 - from })
}

/// The table of the median rollout in steps, from its `last_rollout`.
fn step_details(apply: Duration, record: &serde_json::Value) -> Result<String> {
    let time = |value: &serde_json::Value| {
        value.as_str().and_then(rfc3339_millis).with_context(|| format!("no time in last_rollout: {record}"))
    };
    let steps = record["steps"].as_array().context("no steps in last_rollout")?;
    let (started, finished) = (time(&record["started"])?, time(&record["finished"])?);
    let mut starts = Vec::new();
    for step in steps {
        starts.push(time(&step["started"])?);
    }
    let step_floor = step_floor(BAKE);
    let rollout = between(started, finished);
    let mut table = format!(
        "## Timed rollout in steps: where the time goes\n\n\
         The median rollout in steps ({STEPPED_CAPACITY} instances, steps of {} %, {BAKE} s bake), \
         from its `last_rollout`: apply {}, of which the rollout itself (its first request to its outcome) took \
         {} against a floor of {}. Each step from its start to the next one's (the last to the rollout's end), \
         with the time its new instances took to be healthy (whole seconds, as recorded), against the step's \
         floor: healthy {} s after launch, {BAKE} s bake, {} s drain.\n\n\
         | step | new fleet | healthy after | duration | floor |\n|---|---|---|---|---|\n",
        steps_text(),
        secs(apply),
        secs(rollout),
        secs(stepped_floor()),
        healthy_after_launch(),
        drain(),
    );
    for (i, step) in steps.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(finished);
        table.push_str(&format!(
            "| {} | {} of {STEPPED_CAPACITY} | {} | {} | {step_floor} s |\n",
            i + 1,
            step["instances"],
            step["healthy_after"]
                .as_str()
                .and_then(|text| tfplugin::duration::parse(text).ok())
                .map_or_else(|| "-".to_owned(), |healthy| format!("{} s", healthy.as_secs())),
            secs(between(starts[i], end)),
        ));
    }
    table.push_str(&format!(
        "| outside the rollout (Terraform's refresh and plan, the provider's reads and state) | | | {} | 0 s |\n",
        secs(apply.saturating_sub(rollout))
    ));
    Ok(table)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_floor_is_the_first_passing_check_the_threshold_and_the_drain() {
        // Boot 23 s: checks at 5..20 fail, 25 passes, 30 passes (healthy), then 10 s drain.
        assert_eq!(floor().as_secs(), 40);
    }

    #[test]
    fn the_stepped_floor_is_each_step_healthy_baked_and_drained() {
        assert_eq!(step_sizes(10, &STEPS), [1, 5, 10]);
        assert_eq!(step_sizes(2, &STEPS), [1, 2], "two instances: steps of the same size are one");
        assert_eq!(step_sizes(4, &[50]), [2, 4], "the last step is the full capacity");
        // Per step: healthy 30 s after launch, 5 s bake, min(30 s, 10 s) drain.
        assert_eq!(step_floor(BAKE), 45);
        assert_eq!(stepped_floor().as_secs(), 135);
    }

    #[test]
    fn the_stepped_configuration_is_the_rollout_benchmarks_with_steps() {
        let config = stepped_config("ami-1").expect("config");
        let expected = "  target_capacity      = 10\n";
        assert!(config.contains(expected), "{config}");
        let rollout = "  iam_instance_profile = \"web-profile\"\n\n  rollout {\n    steps         = [10, 50, 100]\n    \
                       bake_time     = \"5s\"\n    drain_timeout = \"30s\"\n  }\n}\n";
        assert!(config.ends_with(rollout), "{config}");
        assert_eq!(config.replace(rollout, "").replace(expected, ""), {
            let base = app_config("ami-1");
            base.replace("  iam_instance_profile = \"web-profile\"\n}\n", "")
                .replace(&format!("  target_capacity      = {CAPACITY}\n"), "")
        });
    }

    #[test]
    fn rollout_times_are_read_to_the_millisecond() {
        assert_eq!(rfc3339_millis("2026-01-02T01:02:03.004Z"), Some(3_723_004));
        assert_eq!(rfc3339_millis("2026-01-02T01:02:03.5Z"), Some(3_723_500));
        assert_eq!(rfc3339_millis("2026-01-02T01:02:03Z"), Some(3_723_000));
        assert_eq!(rfc3339_millis("yesterday"), None);
        assert_eq!(between(86_399_000, 1_000), Duration::from_secs(2));
    }
}
