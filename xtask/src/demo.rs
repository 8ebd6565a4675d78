//! `cargo xtask demo`: the product end to end on a laptop, no AWS account needed.

use anyhow::{Context as _, Result};
use tests::{LocalAws, Workdir, core_infra};

pub fn run() -> Result<()> {
    step("building the provider");
    crate::build_provider(crate::Profile::Debug)?;

    step("starting the local AWS emulator (first run creates its Python venv)");
    let aws = LocalAws::start()?;
    println!("    emulator at {}", aws.endpoint());
    let account = aws.account();

    let runtime = tokio::runtime::Runtime::new()?;
    let chain = crate::demo_layers::Chain::new(&account)?;
    step("baking the image layers with immutable_layered_ami: ubuntu-1804 -> rails-base -> demo-web-app");
    let built = chain.build(&commit('e'))?;
    let summary = built.lines().rev().find(|l| l.starts_with("Apply complete!"));
    println!("    {}", summary.unwrap_or("(no summary)"));
    step("terraform plan of the layers again: every layer is adopted, nothing to build");
    println!("    {}", chain.plan_summary()?);

    step("terraform init + apply of examples/terraform/lineage: the newest app AMI and its lineage");
    let workdir = Workdir::new(&account);
    let example = crate::repo_root().join("examples/terraform/lineage/main.tf");
    let config =
        std::fs::read_to_string(&example).with_context(|| format!("reading {}", example.display()))?;
    workdir.write("main.tf", &config);
    workdir.init()?;
    let applied = workdir.apply()?;
    let outputs = applied.stdout.rsplit("Outputs:").next().unwrap_or(&applied.stdout);
    for line in outputs.lines().filter(|l| !l.trim().is_empty()) {
        println!("    {line}");
    }

    step("creating the core infrastructure, found later by name: web-sg, target group web, web-profile");
    let infra = runtime.block_on(async {
        let infra = core_infra(&account).await?;
        // Drains within the 2-minute notice Spot gives before it reclaims an instance
        // (the plan warns about a longer delay).
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
        elb.modify_target_group_attributes()
            .target_group_arn(&infra.target_group_arn)
            .attributes(
                aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                    .key("deregistration_delay.timeout_seconds")
                    .value("60")
                    .build(),
            )
            .send()
            .await
            .context("setting the target group's deregistration delay")?;
        anyhow::Ok(infra)
    })?;
    println!("    target group {} (deregistration delay 60 s)", infra.target_group_arn);

    step("sample Spot prices for the app's instance types in eu-west-1, about 70% below On-Demand");
    seed_sample_prices(&account)?;

    step("terraform apply of examples/terraform/app: demo-web-app on a Spot Fleet behind target group web");
    let app = Workdir::new(&account);
    let config = std::fs::read_to_string(crate::repo_root().join("examples/terraform/app/main.tf"))?;
    app.write("main.tf", &config);
    app.init()?;
    apply_showing_rollout(&app)?;
    let blue = text(&app, "fleet_id")?;
    println!(
        "    serving: fleet {blue}, generation {}, commit {}",
        text(&app, "generation")?,
        text(&app, "commit")?
    );
    println!("    cost: {}", cost_line(&runtime, &account, &app)?);

    step("a new commit (ffff…): terraform apply of the layers rebuilds the chain");
    let rebuilt = chain.build(&commit('f'))?;
    let summary = rebuilt.lines().rev().find(|l| l.starts_with("Apply complete!"));
    println!("    {}", summary.unwrap_or("(no summary)"));

    step("terraform apply again: blue/green rollout to the new build in two steps, gated on target health");
    println!("    plan: {}", planned_rollout(&app)?);
    println!("    (on AWS's health-check timing; the emulator's targets here are healthy at once)");
    apply_showing_rollout(&app)?;
    for line in app.output("last_rollout")?.as_array().into_iter().flatten() {
        println!("    step: {}", line.as_str().unwrap_or_default());
    }
    println!(
        "    serving: fleet {}, generation {}, commit {}; the old fleet {blue} is cancelled",
        text(&app, "fleet_id")?,
        text(&app, "generation")?,
        text(&app, "commit")?
    );
    println!("    cost: {}", cost_line(&runtime, &account, &app)?);
    println!("    while both fleets ran: {}", text(&app, "rollout_overlap")?);

    step(
        "a Spot interruption: immutable-agent takes the instance out of its target group before AWS reclaims it",
    );
    let instances: Vec<String> = app
        .output("instances")?
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    interruption(&runtime, &account, &infra.target_group_arn, &instances)?;

    step("done");
    println!("    everything above ran against the local emulator through the real provider and Terraform.");
    aws.stop();
    Ok(())
}

/// `terraform apply`, printing the provider's progress lines (from Terraform's log).
fn apply_showing_rollout(workdir: &Workdir) -> Result<()> {
    let out = workdir.terraform_with_env(
        &["apply", "-auto-approve", "-no-color"],
        &[("TF_LOG", "info"), ("TF_LOG_PROVIDER", "info")],
    );
    for line in out.stderr.lines() {
        if let Some((_, message)) = line.split_once("provider.terraform-provider-immutable: ") {
            // Terraform appends the line's fields as `: key=value ...`.
            let end = message
                .match_indices(": ")
                .find(|(at, _)| message[at + 2..].split(' ').next().is_some_and(|word| word.contains('=')))
                .map_or(message.len(), |(at, _)| at);
            println!("    | {}", &message[..end]);
        }
    }
    if !out.success() {
        anyhow::bail!("terraform apply failed\n{out}");
    }
    Ok(())
}

/// The `rollout_plan` summary of the app's planned change.
fn planned_rollout(workdir: &Workdir) -> Result<String> {
    workdir.run_ok(&["plan", "-out=rollout.tfplan", "-no-color", "-input=false"])?;
    let shown = workdir.run_ok(&["show", "-json", "rollout.tfplan"])?;
    let plan: serde_json::Value = serde_json::from_str(&shown.stdout).context("reading the plan's JSON")?;
    let summary = plan["resource_changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|c| c["address"] == "immutable_app.web"))
        .and_then(|change| change["change"]["after"]["rollout_plan"]["summary"].as_str())
        .unwrap_or("(not in the plan)");
    Ok(summary.to_owned())
}

/// Runs `immutable-agent` for each instance (reading that instance's metadata from the
/// emulator, as on the instance), interrupts the first one, and shows the agent's log
/// and the target group until the fleet's replacement serves.
fn interruption(
    runtime: &tokio::runtime::Runtime,
    account: &tests::Account,
    group: &str,
    instances: &[String],
) -> Result<()> {
    use std::time::{Duration, Instant};
    let Some(victim) = instances.first() else { anyhow::bail!("the app has no instance") };
    // Spot's notice comes 2 AWS minutes before the reclaim: 6 s here.
    account.behave(serde_json::json!({ "clock_scale": 0.05, "spot": { "interruptions_per_minute": 0 } }))?;
    let agents = tests::Agents::start(account, instances, "250ms", false)?;
    let healthy = || -> Result<Vec<String>> {
        runtime.block_on(async {
            let elb = aws_sdk_elasticloadbalancingv2::Client::new(&account.sdk_config().await);
            let out = elb.describe_target_health().target_group_arn(group).send().await?;
            Ok(out
                .target_health_descriptions()
                .iter()
                .filter(|t| {
                    t.target_health().and_then(|h| h.state()).is_some_and(|s| s.as_str() == "healthy")
                })
                .filter_map(|t| t.target().and_then(|t| t.id()).map(str::to_owned))
                .collect())
        })
    };
    let result = (|| -> Result<()> {
        let started = Instant::now();
        while !instances.iter().all(|id| agents.logged(id, "polling") > 0) {
            if started.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("the agents did not start polling");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("    {} agents polling their instance metadata every 250 ms", instances.len());
        println!("    healthy in tg web: {}", healthy()?.join(", "));
        let mut shown = agents.events(victim).len();
        account.control("POST", &format!("/_immutable/spot/interrupt?instance={victim}"), None)?;
        println!("    Spot posts an interruption notice for {victim}");
        let mut left = false;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(90) {
            let logged = agents.events(victim);
            for event in logged.iter().skip(shown) {
                if event["event"] != "polling" && event["event"] != "credentials" {
                    println!("    | agent on {victim}: {}", event["message"].as_str().unwrap_or_default());
                }
            }
            shown = logged.len();
            let now = healthy()?;
            if !left && !now.contains(victim) {
                left = true;
                println!(
                    "    healthy in tg web: {} ({victim} is out of service, still running)",
                    now.join(", ")
                );
            }
            if left && now.len() == instances.len() && !now.contains(victim) {
                println!("    healthy in tg web: {} (the fleet's replacement serves)", now.join(", "));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        anyhow::bail!("the replacement did not serve in time")
    })();
    agents.stop();
    result
}

/// Spot prices (USD per hour) the emulator answers for every pool of the example's
/// instance types in the accounts' region: about 70% below their On-Demand prices in
/// the emulator's sample Price List (t3.small 0.0228, t3a.small 0.0204 in eu-west-1).
const SAMPLE_SPOT_PRICES: [(&str, &str, &str); 6] = [
    ("t3.small", "eu-west-1a", "0.006800"),
    ("t3.small", "eu-west-1b", "0.006900"),
    ("t3.small", "eu-west-1c", "0.007100"),
    ("t3a.small", "eu-west-1a", "0.006100"),
    ("t3a.small", "eu-west-1b", "0.006200"),
    ("t3a.small", "eu-west-1c", "0.006400"),
];

fn seed_sample_prices(account: &tests::Account) -> Result<()> {
    let seeds: Vec<tests::SpotPriceSeed> =
        SAMPLE_SPOT_PRICES.iter().map(|(t, zone, price)| tests::SpotPriceSeed::new(t, zone, price)).collect();
    account.seed_spot_prices(&seeds)?;
    for instance_type in ["t3.small", "t3a.small"] {
        let pools: Vec<String> = SAMPLE_SPOT_PRICES
            .iter()
            .filter(|(t, _, _)| *t == instance_type)
            .map(|(_, zone, price)| format!("{zone} {}", price.trim_end_matches('0')))
            .collect();
        println!("    {instance_type}: {}", pools.join(", "));
    }
    Ok(())
}

/// "2 x t3.small on Spot: $0.0136/h, On-Demand $0.0456/h, saving 70%", from the app's
/// instances (as EC2 describes them) and its cost outputs.
fn cost_line(
    runtime: &tokio::runtime::Runtime,
    account: &tests::Account,
    workdir: &Workdir,
) -> Result<String> {
    let ids: Vec<String> = workdir
        .output("instances")?
        .as_array()
        .map(|ids| ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let described = runtime.block_on(async {
        account.ec2().await.describe_instances().set_instance_ids(Some(ids.clone())).send().await
    })?;
    let mut types = std::collections::BTreeMap::<String, usize>::new();
    let mut on_demand = 0;
    for instance in described.reservations().iter().flat_map(|r| r.instances()) {
        let instance_type = instance.instance_type().map_or("?", |t| t.as_str());
        *types.entry(instance_type.to_owned()).or_default() += 1;
        if instance.instance_lifecycle().is_none() {
            on_demand += 1;
        }
    }
    let types: Vec<String> = types.iter().map(|(t, n)| format!("{n} x {t}")).collect();
    let on = if on_demand == 0 { "on Spot".to_owned() } else { format!("({on_demand} On-Demand)") };
    let figure = |name: &str| text(workdir, name).unwrap_or_else(|_| "unknown".to_owned());
    Ok(format!(
        "{} {on}: ${}/h, On-Demand ${}/h, saving {}%",
        types.join(" + "),
        figure("hourly_cost"),
        figure("on_demand_hourly_cost"),
        figure("savings_percent")
    ))
}

/// An output as plain text.
fn text(workdir: &Workdir, name: &str) -> Result<String> {
    let value = workdir.output(name)?;
    Ok(value.as_str().map_or_else(|| value.to_string(), str::to_owned))
}

fn commit(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn step(text: &str) {
    println!("\n==> {text}");
}
