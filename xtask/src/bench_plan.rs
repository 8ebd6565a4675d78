//! `terraform plan` (with refresh) over N applied `immutable_app`s, all behind one
//! target group and on one AMI given by id, against the same plan over N
//! `terraform_data` (Terraform's own floor, built into Terraform), over N
//! `floor_item` of `terraform-provider-floor` (`tfplugin/examples/floor.rs`, a plugin
//! that does nothing: the floor of any provider Terraform runs as a plugin) and over N
//! `schemafloor_app` of `terraform-provider-schemafloor`
//! (`provider/examples/schema_floor.rs`, a plugin that does nothing with
//! `immutable_app`'s schema, configured with the apps' arguments: the floor of this
//! provider's schema, apart from what the provider itself does), and the AWS requests
//! of that no-change plan as the emulator counted them.

use crate::bench::{Findings, Row, median, ms, progress, ratio};
use crate::bench_cpu::{PluginSampler, children_cpu, emulator_pid, process_cpu};
use anyhow::{Context as _, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tests::{Account, LocalAws, RequestStats, Workdir, core_infra, register_ami};

/// Most resources Terraform creates at once while building an estate.
const MAX_PARALLELISM: usize = 100;

/// One estate: N apps, N `terraform_data`, N `floor_item` and N `schemafloor_app`,
/// applied, in an account of its own.
struct Estate {
    n: usize,
    account: Account,
    apps: Workdir,
    data: Workdir,
    floor: Workdir,
    schema_floor: Workdir,
    /// How long the apply that created the N apps took.
    apps_apply: Duration,
}

/// What the timed plans of one estate gave.
struct Measured {
    n: usize,
    app_plan: Duration,
    data_plan: Duration,
    /// The same plan over N resources of the do-nothing plugin (median).
    floor_plan: Duration,
    /// The same plan over N resources of the do-nothing plugin with the apps' schema
    /// and configuration (median).
    schema_floor_plan: Duration,
    /// How long the apply that created the N apps took.
    apps_apply: Duration,
    /// Time the emulator was busy with the app plan's requests (median).
    emulator: Duration,
    /// The app plan with `-refresh=false`: no read, no AWS call (median).
    unrefreshed: Duration,
    /// Most AWS requests of one such plan.
    unrefreshed_requests: u64,
    /// Requests of the run with the median number of requests.
    requests: RequestStats,
    /// Fewest and most requests over the runs.
    request_range: (u64, u64),
    apps_profile: Profile,
    data_profile: Profile,
    schema_floor_profile: Profile,
    /// Provider RPCs Terraform made in the app plan, by method.
    rpcs: BTreeMap<String, u64>,
    /// Provider RPCs Terraform made in the same-schema floor's plan, by method.
    schema_floor_rpcs: BTreeMap<String, u64>,
}

/// Where one plan's time went: wall time and the CPU time of each process.
#[derive(Default)]
struct Profile {
    wall: Duration,
    terraform: Duration,
    provider: Duration,
    emulator: Duration,
}

pub fn run(
    aws: &LocalAws,
    runtime: &tokio::runtime::Runtime,
    sizes: &[usize],
    runs: usize,
) -> Result<Findings> {
    let mirror = floor_mirror()?;
    let mut measured = Vec::new();
    for &n in sizes {
        let estate = build(aws, runtime, n, &mirror)?;
        measured.push(measure(&estate, runs)?);
    }
    Ok(findings(&measured, runs))
}

fn apps_config(n: usize, ami: &str) -> String {
    app_config("immutable", "terraform.local/immutable/immutable", "immutable_app", n, ami)
}

/// N `schemafloor_app` with the arguments [`apps_config`] gives the apps.
fn schema_floor_config(n: usize, ami: &str) -> String {
    app_config("schemafloor", SCHEMA_FLOOR.source, "schemafloor_app", n, ami)
}

/// N resources of type `resource` (of `provider`, installed from `source`) with the
/// arguments of an app: the one configuration body of the apps and of the
/// same-schema floor, so that Terraform does the same work on both.
fn app_config(provider: &str, source: &str, resource: &str, n: usize, ami: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    {provider} = {{ source = "{source}" }}
  }}
}}

resource "{resource}" "app" {{
  count                = {n}
  name                 = "bench-${{count.index}}"
  ami_id               = "{ami}"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}}
"#
    )
}

fn data_config(n: usize) -> String {
    format!(
        "resource \"terraform_data\" \"item\" {{\n  count = {n}\n  input = \"bench-${{count.index}}\"\n}}\n"
    )
}

fn floor_config(n: usize) -> String {
    let source = FLOOR.source;
    format!(
        r#"terraform {{
  required_providers {{
    floor = {{ source = "{source}" }}
  }}
}}

resource "floor_item" "item" {{
  count = {n}
  input = "bench-${{count.index}}"
}}
"#
    )
}

/// A do-nothing provider the plan is also measured over: the example that cargo
/// builds it from, and the source address Terraform installs it from.
struct Floor {
    package: &'static str,
    example: &'static str,
    source: &'static str,
}

impl Floor {
    /// `terraform-provider-TYPE`, TYPE being the last part of the source address.
    fn binary_name(&self) -> String {
        format!("terraform-provider-{}", self.source.rsplit('/').next().unwrap_or(self.source))
    }
}

/// The floor of any provider served by `tfplugin`: one resource with two attributes.
const FLOOR: Floor = Floor { package: "tfplugin", example: "floor", source: "terraform.local/bench/floor" };

/// The floor of `immutable_app`'s schema: one resource with that schema.
const SCHEMA_FLOOR: Floor =
    Floor { package: "provider", example: "schema_floor", source: "terraform.local/bench/schemafloor" };

/// Builds the do-nothing providers (release) and a filesystem mirror holding them;
/// returns the mirror's directory.
fn floor_mirror() -> Result<std::path::PathBuf> {
    let mirror = tests::target_dir().join("immutable-bench").join("floor-mirror");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    for floor in [&FLOOR, &SCHEMA_FLOOR] {
        let name = floor.binary_name();
        progress(format!("building {name} (release)"));
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["build", "--quiet", "--release", "-p", floor.package, "--example", floor.example])
            .status()
            .context("running cargo build")?;
        if !status.success() {
            bail!("building {name} failed");
        }
        let binary = tests::target_dir().join("release").join("examples").join(floor.example);
        let package =
            mirror.join(floor.source).join("0.0.1").join(format!("{}_{arch}", std::env::consts::OS));
        std::fs::create_dir_all(&package).with_context(|| format!("creating {}", package.display()))?;
        let link = package.join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&binary, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    Ok(mirror)
}

/// A workdir whose Terraform installs the do-nothing provider `floor` from `mirror`.
fn floor_workdir(account: &Account, mirror: &std::path::Path, floor: &Floor) -> Result<Workdir> {
    let workdir = Workdir::new(account);
    let cli_config = format!(
        "disable_checkpoint = true\n\nprovider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    \
         include = [{:?}]\n  }}\n  direct {{\n    exclude = [\"terraform.local/*/*\"]\n  }}\n}}\n",
        mirror.display().to_string(),
        floor.source
    );
    std::fs::write(workdir.cli_config(), cli_config).context("writing the floor's CLI configuration")?;
    Ok(workdir)
}

fn build(
    aws: &LocalAws,
    runtime: &tokio::runtime::Runtime,
    n: usize,
    floor_mirror: &std::path::Path,
) -> Result<Estate> {
    progress(format!("plan N={n}: creating the core infrastructure and the AMI"));
    let account = aws.account();
    let ami = runtime.block_on(async {
        core_infra(&account).await?;
        let ec2 = account.ec2().await;
        register_ami(&ec2, "bench-web-1700000000", &[("Layer", "web"), ("Commit", &"b".repeat(40))]).await
    })?;

    let apps = Workdir::new(&account);
    apps.write("main.tf", &apps_config(n, &ami));
    apps.init()?;
    let parallelism = n.clamp(1, MAX_PARALLELISM);
    progress(format!("plan N={n}: applying {n} immutable_app (-parallelism={parallelism})"));
    let started = Instant::now();
    apply_with_progress(&apps, n, parallelism)?;
    let apps_apply = started.elapsed();
    progress(format!("plan N={n}: {n} apps applied in {:.0} s", apps_apply.as_secs_f64()));

    let data = Workdir::new(&account);
    data.write("main.tf", &data_config(n));
    data.init()?;
    data.run_ok(&["apply", "-auto-approve", "-no-color", "-input=false"])?;

    let floor = floor_workdir(&account, floor_mirror, &FLOOR)?;
    floor.write("main.tf", &floor_config(n));
    floor.init()?;
    floor.run_ok(&["apply", "-auto-approve", "-no-color", "-input=false"])?;

    let schema_floor = floor_workdir(&account, floor_mirror, &SCHEMA_FLOOR)?;
    schema_floor.write("main.tf", &schema_floor_config(n, &ami));
    schema_floor.init()?;
    schema_floor.run_ok(&["apply", "-auto-approve", "-no-color", "-input=false"])?;
    Ok(Estate { n, account, apps, data, floor, schema_floor, apps_apply })
}

/// `terraform apply` in `workdir` without a time limit, printing how many of the
/// `total` resources are created as Terraform reports them.
fn apply_with_progress(workdir: &Workdir, total: usize, parallelism: usize) -> Result<()> {
    let parallelism = format!("-parallelism={parallelism}");
    let mut command = Command::new(tests::terraform_binary());
    command
        .args(["apply", "-auto-approve", "-no-color", "-input=false", &parallelism])
        .current_dir(workdir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // As `Workdir::terraform`: the caller's Terraform and AWS settings stay out.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("TF_") || key.starts_with("AWS_") || key == "CHECKPOINT_DISABLE" {
            command.env_remove(&key);
        }
    }
    command.envs(workdir.env());
    let mut child = command.spawn().context("starting terraform apply")?;
    let stderr = child.stderr.take().context("terraform stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let stdout = child.stdout.take().context("terraform stdout")?;
    let step = (total / 10).max(1);
    let mut created = 0;
    let mut tail = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line.contains(": Creation complete after") {
            created += 1;
            if created % step == 0 || created == total {
                progress(format!("  {created}/{total} created"));
            }
        }
        tail.push(line);
        if tail.len() > 40 {
            tail.remove(0);
        }
    }
    let status = child.wait().context("waiting for terraform apply")?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "terraform apply in {} failed: {status}\n{}\n{errors}",
            workdir.path().display(),
            tail.join("\n")
        );
    }
    Ok(())
}

/// A no-change plan in `workdir`, timed; fails unless Terraform finds nothing to do.
fn timed_plan(workdir: &Workdir, what: &str) -> Result<Duration> {
    timed_plan_with(workdir, what, &[])
}

fn timed_plan_with(workdir: &Workdir, what: &str, extra: &[&str]) -> Result<Duration> {
    let mut args = vec!["plan", "-no-color", "-input=false", "-detailed-exitcode"];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let out = workdir.terraform(&args);
    let took = started.elapsed();
    match out.status.code() {
        Some(0) => Ok(took),
        Some(2) => bail!("the plan over {what} proposes changes; the estate did not settle:\n{out}"),
        _ => bail!("terraform plan over {what} failed:\n{out}"),
    }
}

fn measure(estate: &Estate, runs: usize) -> Result<Measured> {
    let n = estate.n;
    progress(format!("plan N={n}: {runs} plans of each, interleaved"));
    let (mut app_times, mut data_times, mut emulator) = (Vec::new(), Vec::new(), Vec::new());
    let (mut floor_times, mut schema_floor_times) = (Vec::new(), Vec::new());
    let (mut unrefreshed, mut unrefreshed_requests) = (Vec::new(), 0);
    let mut requests = Vec::new();
    for _ in 0..runs {
        estate.account.reset_request_stats()?;
        app_times.push(timed_plan(&estate.apps, &format!("{n} immutable_app"))?);
        let stats = estate.account.request_stats()?;
        emulator.push(stats.busy());
        requests.push(stats);
        data_times.push(timed_plan(&estate.data, &format!("{n} terraform_data"))?);
        floor_times.push(timed_plan(&estate.floor, &format!("{n} floor_item"))?);
        schema_floor_times.push(timed_plan(&estate.schema_floor, &format!("{n} schemafloor_app"))?);
        estate.account.reset_request_stats()?;
        unrefreshed.push(timed_plan_with(&estate.apps, &format!("{n} immutable_app"), &["-refresh=false"])?);
        unrefreshed_requests = unrefreshed_requests.max(estate.account.request_stats()?.total());
    }
    requests.sort_by_key(RequestStats::total);
    let request_range =
        (requests.first().map_or(0, RequestStats::total), requests.last().map_or(0, RequestStats::total));
    let median_requests = requests.get(requests.len() / 2).cloned().unwrap_or_default();
    progress(format!("plan N={n}: one more plan of each for CPU times, one with Terraform's trace log"));
    let apps_profile = profiled_plan(&estate.apps, &format!("{n} immutable_app"))?;
    let data_profile = profiled_plan(&estate.data, &format!("{n} terraform_data"))?;
    let schema_floor_profile = profiled_plan(&estate.schema_floor, &format!("{n} schemafloor_app"))?;
    let rpcs = provider_rpcs(&estate.apps)?;
    let schema_floor_rpcs = provider_rpcs(&estate.schema_floor)?;
    let result = Measured {
        n,
        app_plan: median(app_times),
        data_plan: median(data_times),
        floor_plan: median(floor_times),
        schema_floor_plan: median(schema_floor_times),
        apps_apply: estate.apps_apply,
        emulator: median(emulator),
        unrefreshed: median(unrefreshed),
        unrefreshed_requests,
        requests: median_requests,
        request_range,
        apps_profile,
        data_profile,
        schema_floor_profile,
        rpcs,
        schema_floor_rpcs,
    };
    progress(format!(
        "plan N={n}: apps {}, terraform_data {}, floor_item {}, schemafloor_app {}, emulator busy {}, {} requests",
        ms(result.app_plan),
        ms(result.data_plan),
        ms(result.floor_plan),
        ms(result.schema_floor_plan),
        ms(result.emulator),
        result.requests.total()
    ));
    Ok(result)
}

/// One more no-change plan, with the CPU time Terraform, the provider and the
/// emulator spent on it.
fn profiled_plan(workdir: &Workdir, what: &str) -> Result<Profile> {
    let emulator = emulator_pid();
    let emulator_before = emulator.and_then(process_cpu).unwrap_or_default();
    let children_before = children_cpu();
    let sampler = PluginSampler::start();
    let wall = timed_plan(workdir, what)?;
    let provider = sampler.finish();
    // Terraform waits for its plugins, so their times are in Terraform's children's.
    let terraform_and_provider = children_cpu().saturating_sub(children_before);
    let emulator_cpu = emulator.and_then(process_cpu).unwrap_or_default().saturating_sub(emulator_before);
    Ok(Profile {
        wall,
        terraform: terraform_and_provider.saturating_sub(provider),
        provider,
        emulator: emulator_cpu,
    })
}

/// The provider RPCs of one no-change plan, by method, from Terraform's trace log.
fn provider_rpcs(workdir: &Workdir) -> Result<BTreeMap<String, u64>> {
    let out = workdir.terraform_with_env(&["plan", "-no-color", "-input=false"], &[("TF_LOG", "trace")]);
    if !out.success() {
        bail!("terraform plan with TF_LOG=trace failed:\n{out}");
    }
    let mut rpcs = BTreeMap::new();
    for line in out.stderr.lines() {
        // "GRPCProvider.v6: ReadResource" as a call starts; lower-case words follow up.
        if let Some(method) = line.split("GRPCProvider.v6: ").nth(1).and_then(|m| m.split_whitespace().next())
            && method.starts_with(|c: char| c.is_ascii_uppercase())
        {
            *rpcs.entry(method.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(rpcs)
}

/// The calls to a provider: their number, then the count of each method.
fn rpc_summary(rpcs: &BTreeMap<String, u64>) -> String {
    let calls: u64 = rpcs.values().sum();
    let by_method: Vec<String> = rpcs.iter().map(|(method, n)| format!("{method} {n}")).collect();
    format!("{calls}: {}", by_method.join(", "))
}

fn findings(measured: &[Measured], runs: usize) -> Findings {
    let mut rows = Vec::new();
    for m in measured {
        rows.push(Row {
            what: format!("terraform plan, {} applied immutable_app (refresh, median of {runs})", m.n),
            measured: ms(m.app_plan),
            baseline: format!("{} (same plan over {} terraform_data)", ms(m.data_plan), m.n),
            ratio: ratio(m.app_plan, m.data_plan),
        });
    }
    for m in measured {
        rows.push(Row {
            what: format!("terraform plan, {} floor_item of a do-nothing plugin (median of {runs})", m.n),
            measured: ms(m.floor_plan),
            baseline: format!("{} (same plan over {} terraform_data)", ms(m.data_plan), m.n),
            ratio: ratio(m.floor_plan, m.data_plan),
        });
    }
    for m in measured {
        rows.push(Row {
            what: format!(
                "terraform plan, {} schemafloor_app of a do-nothing plugin with immutable_app's schema \
                 (median of {runs})",
                m.n
            ),
            measured: ms(m.schema_floor_plan),
            baseline: format!("{} (same plan over {} terraform_data)", ms(m.data_plan), m.n),
            ratio: ratio(m.schema_floor_plan, m.data_plan),
        });
    }
    for m in measured {
        rows.push(Row {
            what: format!("terraform plan, {} applied immutable_app, against the plugin floor", m.n),
            measured: ms(m.app_plan),
            baseline: format!("{} (same plan over {} floor_item)", ms(m.floor_plan), m.n),
            ratio: ratio(m.app_plan, m.floor_plan),
        });
    }
    for m in measured {
        rows.push(Row {
            what: format!("terraform plan, {} applied immutable_app, against the same-schema floor", m.n),
            measured: ms(m.app_plan),
            baseline: format!("{} (same plan over {} schemafloor_app)", ms(m.schema_floor_plan), m.n),
            ratio: ratio(m.app_plan, m.schema_floor_plan),
        });
    }
    for m in measured {
        let total = m.requests.total();
        // One call per read action per resource: what a provider that shares no call makes.
        let actions = m.requests.counts.len();
        let unshared = (m.n * actions) as u64;
        let range = if m.request_range.0 == m.request_range.1 {
            String::new()
        } else {
            format!(", {}–{} over the runs", m.request_range.0, m.request_range.1)
        };
        rows.push(Row {
            what: format!("AWS requests of that no-change plan, N={}", m.n),
            measured: format!("{total} ({:.2} per resource{range})", total as f64 / m.n as f64),
            baseline: format!("{unshared} ({} × {actions} actions: one call per action per resource)", m.n),
            ratio: total as f64 / (unshared as f64).max(1.0),
        });
    }

    let mut details = String::from(
        "## Plan over N apps: where the time goes\n\n\
         Medians of the timed plans. The emulator's time is the wall-clock time during which it was \
         serving at least one of the plan's requests; the rest is Terraform, the provider and the wire. \
         The same-schema floor is N `schemafloor_app` of `terraform-provider-schemafloor` \
         (`provider/examples/schema_floor.rs`): a plugin with exactly `immutable_app`'s schema, given the \
         apps' configuration, that talks to nothing (its read returns the state, its plan is the generic \
         one). Terraform decodes, validates, plans and stores the same configuration on the same schema \
         for it, over the same calls to the provider (its state holds nulls where an app's holds what \
         the provider computed), so the time of an `immutable_app` plan beyond it is \
         the provider's own: its reads in AWS (the emulator's time) and its work on them; the rest over \
         it is that work without the emulator's time. The same plan with `-refresh=false` reads no \
         resource (its AWS requests in brackets). The apply of the N apps is the one that built the \
         estate (for the record: not a ratio, and not repeated).\n\n\
         | N | plan of N immutable_app | plan of N terraform_data | plan of N schemafloor_app | emulator busy | \
         rest over terraform_data | rest over schemafloor_app | plan of N immutable_app, -refresh=false | \
         apply of the N apps |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for m in measured {
        let rest = m.app_plan.saturating_sub(m.data_plan).saturating_sub(m.emulator);
        let own = m.app_plan.saturating_sub(m.schema_floor_plan).saturating_sub(m.emulator);
        details.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.0} s |\n",
            m.n,
            ms(m.app_plan),
            ms(m.data_plan),
            ms(m.schema_floor_plan),
            ms(m.emulator),
            ms(rest),
            ms(own),
            ms(m.unrefreshed),
            m.unrefreshed_requests,
            m.apps_apply.as_secs_f64()
        ));
    }

    let keys: BTreeSet<&String> = measured.iter().flat_map(|m| m.requests.counts.keys()).collect();
    let mut by_action = String::from("## AWS requests of a no-change plan, by action\n\n| action |");
    let mut rule = String::from("|---|");
    for m in measured {
        by_action.push_str(&format!(" N={} |", m.n));
        rule.push_str("---|");
    }
    by_action.push('\n');
    by_action.push_str(&rule);
    by_action.push('\n');
    for key in keys {
        by_action.push_str(&format!("| {key} |"));
        for m in measured {
            let count = m.requests.counts.get(key).copied().unwrap_or(0);
            let seconds = m.requests.seconds.get(key).copied().unwrap_or(0.0);
            by_action.push_str(&format!(" {count} ({:.0} ms) |", seconds * 1e3));
        }
        by_action.push('\n');
    }
    by_action.push_str("\nEach cell: requests (the emulator's time serving them, summed).\n");

    let mut cpu = String::from(
        "## Plan over N apps: CPU time by process\n\n\
         One more no-change plan of each estate, with the CPU time (user + system) of Terraform, \
         of the provider plugin and of the emulator during it, and the calls to the provider Terraform \
         made (counted in its trace log, from a separate plan). The provider CPU of the same-schema \
         floor is what serving those calls on that schema costs by itself.\n\n\
         | plan | wall | Terraform CPU | provider CPU | emulator CPU | calls to the provider |\n\
         |---|---|---|---|---|---|\n",
    );
    for m in measured {
        for (what, p, rpcs) in [
            (format!("{} immutable_app", m.n), &m.apps_profile, rpc_summary(&m.rpcs)),
            (format!("{} schemafloor_app", m.n), &m.schema_floor_profile, rpc_summary(&m.schema_floor_rpcs)),
            (format!("{} terraform_data", m.n), &m.data_profile, "none".to_owned()),
        ] {
            cpu.push_str(&format!(
                "| {what} | {} | {} | {} | {} | {rpcs} |\n",
                ms(p.wall),
                ms(p.terraform),
                ms(p.provider),
                ms(p.emulator)
            ));
        }
    }
    Findings { rows, details: vec![details, by_action, cpu] }
}
