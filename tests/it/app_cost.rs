//! What an `immutable_app` costs, end to end: known Spot and On-Demand prices in the
//! emulator, the app's instances priced by the pools they landed in, and the overlap
//! of a rollout's two fleets; without a price permission, null costs and one warning.

use super::app::{config, out_list, runtime, setup};
use serde_json::json;
use tests::{
    Account, LocalAws, SpotPriceSeed, TfOutput, Workdir, core_infra, diagnostic_blocks, first_line_is,
};

/// Decimal places of the hand computations (prices here have at most 5).
const SCALE: u32 = 10;

/// Spot prices for every pool of the app's types in eu-west-1 (the accounts' region),
/// different in each zone, and their On-Demand prices.
fn seed_prices(account: &Account) {
    let spot = [
        ("t3.small", "eu-west-1a", "0.006900"),
        ("t3.small", "eu-west-1b", "0.007820"),
        ("t3.small", "eu-west-1c", "0.007100"),
        ("t3a.small", "eu-west-1a", "0.006100"),
        ("t3a.small", "eu-west-1b", "0.006300"),
        ("t3a.small", "eu-west-1c", "0.006650"),
    ];
    let seeds: Vec<SpotPriceSeed> = spot.iter().map(|(t, z, p)| SpotPriceSeed::new(t, z, p)).collect();
    account.seed_spot_prices(&seeds).expect("seeding Spot prices");
    account
        .seed_on_demand_prices(&[("t3.small", "eu-west-1", "0.0228"), ("t3a.small", "eu-west-1", "0.0204")])
        .expect("seeding On-Demand prices");
}

/// The seeded Spot price of a pool and On-Demand price of a type, in units of
/// 10^-SCALE USD per hour.
fn spot_price(instance_type: &str, zone: &str) -> u128 {
    let price = match (instance_type, zone) {
        ("t3.small", "eu-west-1a") => "0.0069",
        ("t3.small", "eu-west-1b") => "0.00782",
        ("t3.small", "eu-west-1c") => "0.0071",
        ("t3a.small", "eu-west-1a") => "0.0061",
        ("t3a.small", "eu-west-1b") => "0.0063",
        ("t3a.small", "eu-west-1c") => "0.00665",
        other => panic!("no seeded Spot price for {other:?}"),
    };
    units(price)
}

fn on_demand_price(instance_type: &str) -> u128 {
    match instance_type {
        "t3.small" => units("0.0228"),
        "t3a.small" => units("0.0204"),
        other => panic!("no seeded On-Demand price for {other}"),
    }
}

/// "0.00782" as units of 10^-SCALE.
fn units(text: &str) -> u128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    assert!(fraction.len() <= SCALE as usize, "{text}");
    let digits = format!("{whole}{fraction:0<width$}", width = SCALE as usize);
    digits.parse().expect("digits")
}

/// Units of 10^-SCALE as the provider writes a price: plain, without trailing zeros.
fn text(units: u128) -> String {
    let ten = 10u128.pow(SCALE);
    let fraction = format!("{:0>width$}", units % ten, width = SCALE as usize);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() { format!("{}", units / ten) } else { format!("{}.{fraction}", units / ten) }
}

/// The type, zone and lifecycle of each instance, as EC2 describes them.
fn described(account: &Account, ids: &[String]) -> Vec<(String, String, bool)> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out =
            ec2.describe_instances().set_instance_ids(Some(ids.to_vec())).send().await.expect("describe");
        let mut found: Vec<(String, String, bool)> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                (
                    i.instance_type().expect("type").as_str().to_owned(),
                    i.placement().and_then(|p| p.availability_zone()).expect("zone").to_owned(),
                    i.instance_lifecycle().is_some_and(|l| l.as_str() == "spot"),
                )
            })
            .collect();
        found.sort();
        found
    })
}

/// The default VPC's subnet in `zone`.
fn subnet_in(account: &Account, zone: &str) -> String {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let subnets = ec2
            .describe_subnets()
            .filters(aws_sdk_ec2::types::Filter::builder().name("availability-zone").values(zone).build())
            .send()
            .await
            .expect("describe subnets");
        let subnet = subnets.subnets().first().and_then(|s| s.subnet_id()).expect("a subnet in the zone");
        subnet.to_owned()
    })
}

/// (hourly cost, On-Demand hourly cost) of instances, in units.
fn hand_cost(instances: &[(String, String, bool)]) -> (u128, u128) {
    let mut cost = 0;
    let mut on_demand = 0;
    for (instance_type, zone, spot) in instances {
        on_demand += on_demand_price(instance_type);
        cost += if *spot { spot_price(instance_type, zone) } else { on_demand_price(instance_type) };
    }
    (cost, on_demand)
}

const COST_OUTPUTS: &str = r#"
output "hourly_cost" {
  value = immutable_app.web.hourly_cost
}
output "on_demand_hourly_cost" {
  value = immutable_app.web.on_demand_hourly_cost
}
output "savings_percent" {
  value = immutable_app.web.savings_percent
}
output "last_rollout" {
  value = immutable_app.web.last_rollout
}
"#;

fn assert_cost_matches(workdir: &Workdir, account: &Account, when: &str) -> (u128, usize) {
    let instances = described(account, &out_list(workdir, "instance_ids"));
    assert!(!instances.is_empty(), "{when}: the app runs instances");
    let (cost, on_demand) = hand_cost(&instances);
    // floor((on_demand - cost) * 100 / on_demand), on integers.
    let savings = (on_demand - cost) * 100 / on_demand;
    eprintln!(
        "{when}: {instances:?}: {} per hour, On-Demand {}, saving {savings}%",
        text(cost),
        text(on_demand)
    );
    assert_eq!(workdir.output("hourly_cost").expect("hourly_cost"), json!(text(cost)), "{when}");
    assert_eq!(
        workdir.output("on_demand_hourly_cost").expect("on_demand_hourly_cost"),
        json!(text(on_demand)),
        "{when}"
    );
    assert_eq!(workdir.output("savings_percent").expect("savings_percent"), json!(savings), "{when}");
    (cost, instances.len())
}

/// Seconds of a duration as `last_rollout` writes them ("1m5s", "12s", "0").
fn seconds(text: &str) -> u64 {
    let (mut total, mut number) = (0, 0);
    for c in text.chars() {
        match c {
            '0'..='9' => number = number * 10 + u64::from(c.to_digit(10).expect("digit")),
            'h' => (total, number) = (total + number * 3600, 0),
            'm' => (total, number) = (total + number * 60, 0),
            's' => (total, number) = (total + number, 0),
            other => panic!("unexpected {other:?} in {text:?}"),
        }
    }
    total
}

#[test]
fn an_apps_cost_after_apply_refresh_and_rollout_matches_a_hand_computation() {
    let s = setup();
    seed_prices(&s.account);
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &(config(&s.amis[0], 2, "") + COST_OUTPUTS));
    workdir.init().expect("init");
    let created = workdir.apply().expect("create");
    assert!(
        !created.stdout.contains("App Cost Unknown") && !created.stderr.contains("App Cost Unknown"),
        "{created}"
    );
    assert_cost_matches(&workdir, &s.account, "after the create");
    // A first deploy runs one fleet: nothing overlapped.
    let first = workdir.output("last_rollout").expect("last_rollout");
    assert_eq!(
        (&first["overlap_instance_seconds"], &first["overlap_cost"]),
        (&json!(0), &json!("0")),
        "{first}"
    );

    // A refresh reads the same prices again, and a plan keeps them: no change.
    workdir
        .run_ok(&["apply", "-refresh-only", "-auto-approve", "-no-color", "-input=false"])
        .expect("refresh");
    assert_cost_matches(&workdir, &s.account, "after a refresh");
    assert!(!workdir.plan_has_changes().expect("plan"), "costs kept from state: no change");

    // A resize changes the instances: the cost is known after the apply.
    workdir.write("main.tf", &(config(&s.amis[0], 3, "") + COST_OUTPUTS));
    let plan = workdir.plan().expect("plan a resize");
    let line =
        plan.stdout.lines().find(|l| l.contains("hourly_cost") && !l.contains("on_demand")).unwrap_or("");
    assert!(line.contains("(known after apply)"), "{}", plan.stdout);

    // A rollout to another zone: two fleets ran at once for a while, and green's
    // instances run in other pools.
    let elsewhere = format!(r#"subnet_ids = ["{}"]"#, subnet_in(&s.account, "eu-west-1b"));
    workdir.write("main.tf", &(config(&s.amis[1], 2, &elsewhere) + COST_OUTPUTS));
    workdir.apply().expect("rollout");
    let (green_cost, green_instances) = assert_cost_matches(&workdir, &s.account, "after the rollout");
    let last = workdir.output("last_rollout").expect("last_rollout");
    assert_eq!(last["outcome"], json!("switched"), "{last}");
    let overlap = last["overlap_instance_seconds"].as_u64().expect("overlap_instance_seconds");
    assert!(overlap > 0, "green served beside blue for a while: {last}");
    // One step of 2 instances over a blue of 2: 2 extra instances from the step's first
    // new instance running to its end, which the record gives in whole seconds.
    let step = &last["steps"][0];
    assert!(step["healthy_after"].is_string(), "a last step without bake records its health: {step}");
    let (launched, duration) = (
        seconds(step["launched_after"].as_str().expect("launched_after")),
        seconds(step["duration"].as_str().expect("duration")),
    );
    let (low, high) = (2 * duration.saturating_sub(launched + 1), 2 * (duration - launched + 1));
    assert!((low..=high).contains(&overlap), "{overlap} within [{low}, {high}] from {step}");
    // overlap x the mean hourly price of green's instances / 3600, half up to 10 places.
    let numerator = u128::from(overlap) * green_cost;
    let denominator = green_instances as u128 * 3600;
    let expected = (2 * numerator + denominator) / (2 * denominator);
    assert_eq!(last["overlap_cost"], json!(text(expected)), "{last}");
    assert!(!workdir.plan_has_changes().expect("plan"), "converged");
}

/// Two apps with the same types and no `pricing:GetProducts` permission.
fn two_apps(ami: &str) -> String {
    let app = |name: &str| {
        format!(
            r#"
resource "immutable_app" "{name}" {{
  name                 = "{name}"
  ami_id               = "{ami}"
  instance_types       = ["t3.small", "t3a.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  rollout {{
    health_timeout = "30s"
    drain_timeout  = "1s"
  }}
}}

output "{name}_costs_null" {{
  value = [for v in [immutable_app.{name}.hourly_cost, immutable_app.{name}.on_demand_hourly_cost, immutable_app.{name}.savings_percent] : v == null]
}}
"#
        )
    };
    format!(
        r#"
terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}
{}{}"#,
        app("web"),
        app("api")
    )
}

fn cost_warnings(out: &TfOutput) -> Vec<&str> {
    diagnostic_blocks(&out.stdout)
        .chain(diagnostic_blocks(&out.stderr))
        .filter(|b| first_line_is(b, "Warning: App Cost Unknown"))
        .collect()
}

#[test]
fn without_the_price_list_permission_costs_are_null_with_one_warning_for_two_apps() {
    let account = LocalAws::shared().account();
    let ami = runtime().block_on(async {
        core_infra(&account).await.expect("core infrastructure");
        let ec2 = account.ec2().await;
        tests::register_ami(&ec2, "web-1700000000", &[("Layer", "web"), ("Commit", &"1".repeat(40))])
            .await
            .expect("AMI")
    });
    seed_prices(&account);
    account.deny(&["pricing:GetProducts"]).expect("deny pricing:GetProducts");
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &two_apps(&ami));
    workdir.init().expect("init");

    account.reset_requests().expect("reset");
    let apply = workdir.apply().expect("the apply succeeds without On-Demand prices");
    let warned = cost_warnings(&apply);
    assert_eq!(warned.len(), 1, "one warning for both apps:\n{apply}");
    // Terraform would fold more of them into this one ("and 1 more similar warning").
    assert!(!warned[0].contains("similar warning"), "{}", warned[0]);
    let detail = warned[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(detail.contains("not allowed to call pricing:GetProducts"), "{detail}");
    assert!(detail.contains("AccessDeniedException"), "AWS's answer: {detail}");
    assert!(detail.contains("once per run"), "{detail}");
    for app in ["web", "api"] {
        let nulls = workdir.output(&format!("{app}_costs_null")).expect("output");
        assert_eq!(nulls, json!([true, true, true]), "{app}");
    }
    let requests = account.requests().expect("requests");
    assert_eq!(requests.get("pricing:GetProducts"), Some(&1), "the denial is asked once: {requests:?}");

    account.reset_requests().expect("reset");
    let plan = workdir.plan().expect("the plan succeeds");
    assert!(plan.stdout.contains("No changes"), "{plan}");
    assert_eq!(cost_warnings(&plan).len(), 1, "one warning for both apps:\n{plan}");
    let requests = account.requests().expect("requests");
    assert_eq!(requests.get("pricing:GetProducts"), Some(&1), "{requests:?}");
    assert_eq!(requests.get("ec2:DescribeSpotPriceHistory"), Some(&1), "{requests:?}");
}
