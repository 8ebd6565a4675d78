//! `cargo xtask bench`: every figure is a ratio to a baseline measured in the same run
//! on the same machine, so numbers compare across machines and days.

use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};
use tests::{LayerSeed, LocalAws, Workdir, seed_lineage};
use tfplugin::client::PluginProcess;

const STARTS: usize = 15;
const SCHEMA_CALLS: usize = 200;
const PLANS: usize = 5;

struct Row {
    what: String,
    measured: String,
    baseline: String,
    ratio: f64,
}

pub fn run() -> Result<()> {
    eprintln!("building the provider (release)");
    let binary = crate::build_provider(crate::Profile::Release)?;
    tests::use_provider_binary(binary.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    let mut rows = Vec::new();
    runtime.block_on(async {
        rows.extend(startup_and_schema(&binary).await?);
        anyhow::Ok(())
    })?;
    rows.push(plan_time(&runtime)?);
    let (what, measured, baseline, ratio) = crate::bench_codegen::codegen_row()?;
    rows.push(Row { what, measured, baseline, ratio });

    let mut table = String::from("| measure | provider | baseline | ratio |\n|---|---|---|---|\n");
    for row in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {:.2} |\n",
            row.what, row.measured, row.baseline, row.ratio
        ));
    }
    println!("\n{table}");
    let report = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench`. Each figure is a ratio to a baseline measured in the \
         same run on the same machine (release build of the provider, local emulator).\n\n\
         Machine: {}\n\n{table}",
        machine()
    );
    std::fs::write(crate::repo_root().join("BENCHMARKS.md"), report)?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

/// CPU model, cores and memory, from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {mem_gib:.0} GiB, {} {}", std::env::consts::OS, std::env::consts::ARCH)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn startup_and_schema(binary: &Path) -> Result<Vec<Row>> {
    // Floor for start-up: spawning and reaping a process that does nothing.
    let mut spawn_floor = Vec::new();
    for _ in 0..STARTS {
        let started = Instant::now();
        tokio::process::Command::new("/bin/true").status().await?;
        spawn_floor.push(started.elapsed());
    }
    let mut handshakes = Vec::new();
    for _ in 0..STARTS {
        let plugin = PluginProcess::start(binary, &[]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        handshakes.push(plugin.time_to_handshake);
        plugin.shutdown().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let plugin = PluginProcess::start(binary, &[]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let pid = plugin.pid().context("plugin has no pid")?;
    let idle_rss = rss_kib(pid)?;
    // Floor for an RPC: the health check on the same connection.
    let mut health = Vec::new();
    let mut schema = Vec::new();
    for _ in 0..SCHEMA_CALLS {
        let started = Instant::now();
        if !plugin.health().await.map_err(|e| anyhow::anyhow!("{e}"))? {
            bail!("plugin reported not serving");
        }
        health.push(started.elapsed());
        let started = Instant::now();
        let (_, data_sources) = plugin.schema_type_names().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        schema.push(started.elapsed());
        if data_sources.is_empty() {
            bail!("schema has no data sources");
        }
    }
    let busy_rss = rss_kib(pid)?;
    plugin.shutdown().await.map_err(|e| anyhow::anyhow!("{e}"))?;

    let (hs, floor) = (median(handshakes), median(spawn_floor));
    let (sc, hc) = (median(schema), median(health));
    Ok(vec![
        Row {
            what: "exec to handshake line (median)".into(),
            measured: ms(hs),
            baseline: format!("{} (spawn /bin/true)", ms(floor)),
            ratio: hs.as_secs_f64() / floor.as_secs_f64().max(1e-9),
        },
        Row {
            what: "GetProviderSchema latency (median)".into(),
            measured: ms(sc),
            baseline: format!("{} (health check RPC)", ms(hc)),
            ratio: sc.as_secs_f64() / hc.as_secs_f64().max(1e-9),
        },
        Row {
            what: "provider RSS after serving schemas".into(),
            measured: format!("{:.1} MiB", busy_rss as f64 / 1024.0),
            baseline: format!("{:.1} MiB (same process, idle after handshake)", idle_rss as f64 / 1024.0),
            ratio: busy_rss as f64 / (idle_rss as f64).max(1.0),
        },
    ])
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc status")
}

fn plan_time(runtime: &tokio::runtime::Runtime) -> Result<Row> {
    let aws = LocalAws::start()?;
    let account = aws.account();
    runtime.block_on(async {
        let ec2 = account.ec2().await;
        let commit = "c".repeat(40);
        seed_lineage(
            &ec2,
            &[
                LayerSeed::new("ubuntu-1804", "Ubuntu 18.04", commit.clone()),
                LayerSeed::new("rails-base", "Rails base", commit.clone()).parent(0),
                LayerSeed::new("demo-web-app", "Demo web app", commit).parent(1),
            ],
        )
        .await
    });
    let example = std::fs::read_to_string(crate::repo_root().join("examples/terraform/lineage/main.tf"))?;
    let ours = Workdir::new(&account);
    ours.write("main.tf", &example);
    ours.init()?;
    let floor = Workdir::new(&account);
    floor.write("main.tf", "resource \"terraform_data\" \"x\" {\n  input = \"floor\"\n}\n");
    floor.init()?;

    let mut ours_times = Vec::new();
    let mut floor_times = Vec::new();
    for _ in 0..PLANS {
        for (workdir, times) in [(&ours, &mut ours_times), (&floor, &mut floor_times)] {
            let started = Instant::now();
            workdir.plan()?;
            times.push(started.elapsed());
        }
    }
    aws.stop();
    let (o, f) = (median(ours_times), median(floor_times));
    Ok(Row {
        what: "terraform plan of examples/terraform/lineage (median)".into(),
        measured: ms(o),
        baseline: format!("{} (plan of one terraform_data)", ms(f)),
        ratio: o.as_secs_f64() / f.as_secs_f64().max(1e-9),
    })
}
