//! Rollout orchestration overhead: the wall time of `terraform apply` rolling one
//! app out to a new AMI (blue/green, default rollout settings) against the emulator,
//! less the time the emulator spent serving that apply's requests, less Terraform's
//! own floor (an apply that changes one `terraform_data`). What remains is the
//! provider: its waits between polls, its own work, the gRPC round trips.

use crate::bench::{Findings, Row, median, ms, progress, ratio, secs};
use anyhow::{Result, bail};
use std::time::{Duration, Instant};
use tests::{LocalAws, RequestStats, Workdir, core_infra, register_ami};

/// Instances of the app the rollout benchmarks roll out.
pub const CAPACITY: u32 = 2;

/// App `web` on the core infrastructure's names, `CAPACITY` instances of `ami`, default
/// rollout settings.
pub fn app_config(ami: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

resource "immutable_app" "web" {{
  name                 = "web"
  ami_id               = "{ami}"
  instance_types       = ["t3.small", "t3a.small"]
  target_capacity      = {CAPACITY}
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}}
"#
    )
}

fn floor_config(input: &str) -> String {
    format!("resource \"terraform_data\" \"release\" {{\n  input = \"{input}\"\n}}\n")
}

/// One timed rollout.
struct Sample {
    apply: Duration,
    requests: RequestStats,
}

impl Sample {
    fn without_emulator(&self) -> Duration {
        self.apply.saturating_sub(self.requests.busy())
    }
}

pub fn run(aws: &LocalAws, runtime: &tokio::runtime::Runtime, runs: usize) -> Result<Findings> {
    progress("rollout: creating the core infrastructure, two AMIs and the app");
    let account = aws.account();
    let amis = runtime.block_on(async {
        core_infra(&account).await?;
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
    app.apply()?;
    let floor = Workdir::new(&account);
    floor.write("main.tf", &floor_config("release-0"));
    floor.init()?;
    floor.apply()?;

    let mut samples = Vec::new();
    let mut floors = Vec::new();
    for run in 1..=runs {
        progress(format!("rollout: {run}/{runs}"));
        app.write("main.tf", &app_config(&amis[run % 2]));
        account.reset_request_stats()?;
        let started = Instant::now();
        let out = app.apply()?;
        let apply = started.elapsed();
        let requests = account.request_stats()?;
        if !out.stdout.contains("1 changed") {
            bail!("the rollout was not an in-place update of the app:\n{out}");
        }
        samples.push(Sample { apply, requests });

        floor.write("main.tf", &floor_config(&format!("release-{run}")));
        let started = Instant::now();
        floor.apply()?;
        floors.push(started.elapsed());
    }
    let floor_time = median(floors);
    progress("rollout: one more rollout with Terraform's core trace log and the provider's info log");
    app.write("main.tf", &app_config(&amis[(runs + 1) % 2]));
    let traced = app.terraform_with_env(
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        &[("TF_LOG_CORE", "TRACE"), ("TF_LOG_PROVIDER", "INFO")],
    );
    if !traced.success() {
        bail!("the traced rollout failed:\n{traced}");
    }
    let timeline = timeline(&traced.stderr);
    samples.sort_by_key(Sample::without_emulator);
    let Some(sample) = samples.get(samples.len() / 2) else { bail!("no rollout measured") };
    let emulator = sample.requests.busy();
    let overhead = sample.without_emulator().saturating_sub(floor_time);
    progress(format!(
        "rollout: apply {}, emulator {}, terraform_data apply {}, overhead {}",
        secs(sample.apply),
        secs(emulator),
        secs(floor_time),
        secs(overhead)
    ));

    let rows = vec![
        Row {
            what: format!("blue/green rollout of one app ({CAPACITY} instances), apply (median of {runs})"),
            measured: secs(sample.apply),
            baseline: format!(
                "{} ({} emulator serving its requests + {} terraform_data apply)",
                secs(emulator + floor_time),
                secs(emulator),
                secs(floor_time)
            ),
            ratio: ratio(sample.apply, emulator + floor_time),
        },
        Row {
            what: "rollout orchestration overhead (apply − emulator − terraform_data apply)".into(),
            measured: secs(overhead),
            baseline: format!("{} (terraform_data apply)", secs(floor_time)),
            ratio: ratio(overhead, floor_time),
        },
    ];

    let mut details = format!(
        "## Rollout: where the time goes\n\n\
         The median rollout (by apply time less the emulator's): apply {}, of which the emulator was busy \
         serving {} requests for {}, and Terraform's floor (an apply changing one terraform_data) is {}; \
         the remaining {} is the provider's orchestration.\n\n\
         | action | requests | emulator time |\n|---|---|---|\n",
        secs(sample.apply),
        sample.requests.total(),
        ms(emulator),
        secs(floor_time),
        secs(overhead),
    );
    for (key, count) in &sample.requests.counts {
        let seconds = sample.requests.seconds.get(key).copied().unwrap_or(0.0);
        details.push_str(&format!("| {key} | {count} | {:.1} ms |\n", seconds * 1e3));
    }
    details.push_str(
        "\nTimeline of one more rollout, logged (Terraform's core at trace level, the provider at info \
         level, which slows it down): milliseconds since Terraform's first log line.\n\n",
    );
    for (at, event) in timeline {
        details.push_str(&format!("- {at:>5} ms {event}\n"));
    }
    Ok(Findings { rows, details: vec![details] })
}

/// Milliseconds since midnight of a log line's `2006-01-02T15:04:05.000Z` timestamp.
fn log_millis(line: &str) -> Option<u64> {
    let time = line.get(11..23)?;
    let (hms, millis) = time.split_once('.')?;
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(((h * 60 + m) * 60 + s) * 1000 + millis.parse::<u64>().ok()?)
}

/// The plugin starts, the provider calls and the provider's own progress messages
/// of an apply's log, with their offsets.
fn timeline(log: &str) -> Vec<(u64, String)> {
    let mut first = None;
    let mut events = Vec::new();
    for line in log.lines() {
        let Some(at) = log_millis(line) else { continue };
        let start = *first.get_or_insert(at);
        let event = if let Some(call) = line.split("GRPCProvider.v6: ").nth(1) {
            call.starts_with(|c: char| c.is_ascii_uppercase()).then(|| format!("call {call}"))
        } else if line.contains("provider: starting plugin") {
            Some("plugin started".to_owned())
        } else if line.contains("provider: plugin process exited") {
            Some("plugin exited".to_owned())
        } else if let Some(message) = line.split("provider.terraform-provider-immutable: ").nth(1) {
            // The message, without the hclog fields after it (`: key=value ...`).
            let fields = message.find("@module=").unwrap_or(message.len());
            let head = message.get(..fields).unwrap_or(message);
            let text = head.rfind(": ").and_then(|end| head.get(..end)).unwrap_or(head);
            Some(format!("provider: {}", text.trim()))
        } else {
            None
        };
        if let Some(event) = event {
            events.push((at.saturating_sub(start), event));
        }
    }
    if let Some(&(end, _)) = events.last()
        && let Some(last) = log.lines().rev().find_map(log_millis)
        && last > end
    {
        events.push((last.saturating_sub(first.unwrap_or(last)), "last log line".to_owned()));
    }
    events
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn the_timeline_keeps_calls_plugins_and_provider_messages() {
        let log = "\
2026-01-02T10:00:00.100Z [INFO]  Terraform version: 1.11.4
2026-01-02T10:00:00.150Z [TRACE] GRPCProvider.v6: ApplyResourceChange
2026-01-02T10:00:00.151Z [TRACE] GRPCProvider.v6: returning cached schema
2026-01-02T10:00:00.250Z [INFO]  provider.terraform-provider-immutable: healthy 2/2 in tg web: @module=provider timestamp=x
2026-01-02T10:00:00.300Z [INFO]  provider.terraform-provider-immutable: green fleet sfr-1 serves: app=web @module=provider
2026-01-02T10:00:00.310Z [INFO]  provider: plugin process exited: id=1
2026-01-02T10:00:01.000Z [TRACE] statemgr.Filesystem: unlocking
";
        let events: Vec<(u64, String)> = timeline(log);
        let expected = [
            (50, "call ApplyResourceChange"),
            (150, "provider: healthy 2/2 in tg web"),
            (200, "provider: green fleet sfr-1 serves"),
            (210, "plugin exited"),
            (900, "last log line"),
        ];
        assert_eq!(events, expected.map(|(at, e)| (at, e.to_owned())));
        assert_eq!(log_millis("2026-01-02T01:02:03.004Z x"), Some(3_723_004));
        assert_eq!(log_millis("not a log line"), None);
    }
}
