//! `cargo xtask bench`: every figure is a ratio to a baseline measured in the same run
//! on the same machine, so numbers compare across machines and days.

use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tests::{LocalAws, Workdir, seed_example_lineage};
use tfplugin::client::PluginProcess;

const STARTS: usize = 15;
const SCHEMA_CALLS: usize = 200;
const PLANS: usize = 5;

/// The parts of the benchmark, in the order they run; `--only` picks some.
const SECTIONS: [(&str, &str); 8] = [
    ("startup", "exec to handshake, GetProviderSchema latency, RSS"),
    ("lineage", "terraform plan of examples/terraform/lineage"),
    ("plan", "terraform plan over N applied immutable_app, and its AWS requests"),
    ("rollout", "blue/green rollout of one app: orchestration overhead"),
    (
        "timed-rollout",
        "rollouts of one app on AWS's health timing, all at once and in steps, against the physical floor",
    ),
    ("throttled", "100 apps rolled out by one apply under EC2's and ELB's request limits"),
    ("codegen", "immutable-codegen packer over a 1,000-layer file"),
    ("agent", "immutable-agent: binary size, and memory and CPU while it polls"),
];

/// Numbers of applied apps the plan section measures unless `--sizes` says otherwise.
/// 1000 is left to `--sizes 1000`: the emulator's answers grow with the estate (every
/// Spot Fleet and instance of the account), and building 1,000 apps takes it about ten
/// minutes on two cores, more than the rest of the benchmark.
const DEFAULT_SIZES: [usize; 3] = [1, 10, 100];

pub const USAGE: &str = "\
cargo xtask bench [--only SECTION,...] [--sizes N,...] [--runs K]

  --only    run only these sections (startup, lineage, plan, rollout, timed-rollout,
            throttled, codegen, agent)
  --sizes   numbers of applied apps for the plan section (default 1,10,100; 1000 takes
            the emulator about ten minutes to build)
  --runs    timed repetitions of each plan and rollout (default 5)

Only a full run with the defaults rewrites BENCHMARKS.md; others print the table.
";

pub struct Row {
    pub what: String,
    pub measured: String,
    pub baseline: String,
    pub ratio: f64,
}

/// What one section found: table rows, and details written under the table.
#[derive(Default)]
pub struct Findings {
    pub rows: Vec<Row>,
    pub details: Vec<String>,
}

struct Options {
    sections: Vec<&'static str>,
    sizes: Vec<usize>,
    runs: usize,
    /// The defaults: the run may rewrite BENCHMARKS.md.
    complete: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut options = Options {
        sections: SECTIONS.iter().map(|(name, _)| *name).collect(),
        sizes: DEFAULT_SIZES.to_vec(),
        runs: PLANS,
        complete: true,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        if matches!(flag, "-h" | "--help") {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let value = match inline {
            Some(value) => value,
            None => args.next().with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?.clone(),
        };
        options.complete = false;
        match flag {
            "--only" => {
                let mut chosen = Vec::new();
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let Some((known, _)) = SECTIONS.iter().find(|(known, _)| *known == name) else {
                        let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
                        bail!("no bench section {name:?}; sections: {}", names.join(", "));
                    };
                    chosen.push(*known);
                }
                // Keep the usual order whatever the order given.
                options.sections.retain(|name| chosen.contains(name));
            }
            "--sizes" => {
                options.sizes = value
                    .split(',')
                    .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
                    .collect::<Option<Vec<_>>>()
                    .with_context(|| format!("--sizes takes positive numbers: {value:?}"))?;
            }
            "--runs" => {
                options.runs = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("--runs takes a positive number: {value:?}"))?;
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    if options.sections.is_empty() {
        bail!("no section chosen\n\n{USAGE}");
    }
    Ok(options)
}

/// Prints a progress line with the time since the bench started.
pub fn progress(message: impl std::fmt::Display) {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    let elapsed = STARTED.get_or_init(Instant::now).elapsed().as_secs();
    eprintln!("[bench {:02}:{:02}] {message}", elapsed / 60, elapsed % 60);
}

pub fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    progress(format!("sections: {}", options.sections.join(", ")));
    progress("building the provider (release)");
    let binary = crate::build_provider(crate::Profile::Release)?;
    tests::use_provider_binary(binary.clone());
    let runtime = tokio::runtime::Runtime::new()?;
    let needs_emulator = options.sections.iter().any(|s| !matches!(*s, "startup" | "codegen" | "agent"));
    let aws = if needs_emulator {
        progress("starting the local AWS emulator");
        Some(LocalAws::start()?)
    } else {
        None
    };

    let mut found = Findings::default();
    for section in &options.sections {
        let started = Instant::now();
        progress(format!("section {section}"));
        let aws = || aws.as_ref().context("emulator not started");
        let section_findings = match *section {
            "startup" => Findings { rows: runtime.block_on(startup_and_schema(&binary))?, details: vec![] },
            "lineage" => Findings { rows: vec![plan_time(&runtime, aws()?)?], details: vec![] },
            "plan" => crate::bench_plan::run(aws()?, &runtime, &options.sizes, options.runs)?,
            "rollout" => crate::bench_rollout::run(aws()?, &runtime, options.runs)?,
            "timed-rollout" => crate::bench_timed::run(aws()?, &runtime, options.runs.min(3))?,
            "throttled" => crate::bench_throttled::run(aws()?, &runtime)?,
            "codegen" => {
                let (what, measured, baseline, ratio) = crate::bench_codegen::codegen_row()?;
                Findings { rows: vec![Row { what, measured, baseline, ratio }], details: vec![] }
            }
            "agent" => crate::bench_agent::run()?,
            other => bail!("no bench section {other:?}"),
        };
        progress(format!("section {section} done in {:.0} s", started.elapsed().as_secs_f64()));
        found.rows.extend(section_findings.rows);
        found.details.extend(section_findings.details);
    }
    if let Some(aws) = aws {
        aws.stop();
    }

    let mut table = String::from("| measure | provider | baseline | ratio |\n|---|---|---|---|\n");
    for row in &found.rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.what,
            row.measured,
            row.baseline,
            ratio_text(row.ratio)
        ));
    }
    let machine = machine();
    println!("\nMachine: {machine}\n\n{table}");
    for detail in &found.details {
        println!("{detail}");
    }
    if !options.complete {
        println!("BENCHMARKS.md left as it was (only a full run with the defaults rewrites it)");
        return Ok(());
    }
    let mut report = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench`. Each figure is a ratio to a baseline measured in the \
         same run on the same machine (release build of the provider, local emulator).\n\n\
         Machine: {machine}\n\n{table}"
    );
    for detail in &found.details {
        report.push('\n');
        report.push_str(detail);
    }
    std::fs::write(crate::repo_root().join("BENCHMARKS.md"), report)?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

/// CPU model, cores, memory and OS from /proc and /etc/os-release, and the versions
/// of the tools the figures depend on.
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
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let distribution = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let terraform = tool_version(Command::new(tests::terraform_binary()).arg("version"));
    let packer = tool_version(Command::new("packer").arg("version"));
    let rustc = tool_version(
        Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("--version"),
    );
    format!(
        "{model}, {cores} cores, {mem_gib:.0} GiB, {distribution} (Linux {}, {}); {terraform}, {packer}, {rustc}",
        kernel.trim(),
        std::env::consts::ARCH
    )
}

/// The first line a tool prints about its version, or why there is none.
fn tool_version(command: &mut Command) -> String {
    let program = command.get_program().to_string_lossy().into_owned();
    match command.output() {
        Ok(out) if out.status.success() => {
            String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_owned()
        }
        Ok(out) => format!("{program} failed ({})", out.status),
        Err(_) => format!("{program} not found"),
    }
}

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A ratio with two decimals, or two significant digits below 0.01 (a CPU share).
fn ratio_text(ratio: f64) -> String {
    if ratio > 0.0 && ratio < 0.01 {
        let decimals = (-ratio.log10()).floor() as usize + 2;
        format!("{ratio:.decimals$}")
    } else {
        format!("{ratio:.2}")
    }
}

/// `a / b`, without dividing by zero.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
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
            ratio: ratio(hs, floor),
        },
        Row {
            what: "GetProviderSchema latency (median)".into(),
            measured: ms(sc),
            baseline: format!("{} (health check RPC)", ms(hc)),
            ratio: ratio(sc, hc),
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

fn plan_time(runtime: &tokio::runtime::Runtime, aws: &LocalAws) -> Result<Row> {
    let account = aws.account();
    runtime.block_on(async {
        let ec2 = account.ec2().await;
        seed_example_lineage(&ec2, &"c".repeat(40)).await
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
    let (o, f) = (median(ours_times), median(floor_times));
    Ok(Row {
        what: "terraform plan of examples/terraform/lineage (median)".into(),
        measured: ms(o),
        baseline: format!("{} (plan of one terraform_data)", ms(f)),
        ratio: ratio(o, f),
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    fn options(args: &[&str]) -> Result<Options> {
        parse_options(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn no_options_run_everything_and_may_write_the_report() {
        let all = options(&[]).expect("defaults");
        assert_eq!(
            all.sections,
            ["startup", "lineage", "plan", "rollout", "timed-rollout", "throttled", "codegen", "agent"]
        );
        assert_eq!((all.sizes, all.runs, all.complete), (vec![1, 10, 100], PLANS, true));
    }

    #[test]
    fn ratios_keep_two_significant_digits_when_small() {
        assert_eq!(ratio_text(3.1749), "3.17");
        assert_eq!(ratio_text(0.01), "0.01");
        assert_eq!(ratio_text(0.0), "0.00");
        assert_eq!(ratio_text(0.0034), "0.0034");
        assert_eq!(ratio_text(0.00051), "0.00051");
    }

    #[test]
    fn a_subset_keeps_the_usual_order_and_leaves_the_report_alone() {
        let some = options(&["--only", "rollout,plan", "--sizes=1,10", "--runs", "2"]).expect("subset");
        assert_eq!(some.sections, ["plan", "rollout"]);
        assert_eq!((some.sizes, some.runs, some.complete), (vec![1, 10], 2, false));
        assert!(options(&["--only", "nope"]).is_err());
        assert!(options(&["--sizes", "0"]).is_err());
        assert!(options(&["--runs"]).is_err());
        assert!(options(&["--fast"]).is_err());
    }
}
