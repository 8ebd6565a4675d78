//! `data.immutable_spot_price` end to end: real Terraform, real provider, emulator with
//! known Spot and On-Demand prices.

use serde_json::json;
use tests::{Account, LocalAws, SpotPriceSeed, TfOutput, Workdir, diagnostic_blocks, first_line_is};

const PROVIDER: &str = r#"
terraform {
  required_providers {
    immutable = { source = "terraform.local/immutable/immutable" }
  }
}
"#;

/// Two types in two zones of eu-west-1 (the accounts' region), and their On-Demand
/// prices. The zones' third pool (eu-west-1c) keeps the emulator's stock price.
fn seed_prices(account: &Account) {
    account
        .seed_spot_prices(&[
            // An older price of the pool, replaced since: the newest counts.
            SpotPriceSeed::new("t3.small", "eu-west-1a", "0.0080").ago(600),
            SpotPriceSeed::new("t3.small", "eu-west-1a", "0.006900"),
            SpotPriceSeed::new("t3.small", "eu-west-1b", "0.007820"),
            SpotPriceSeed::new("t3a.small", "eu-west-1a", "0.006100"),
            SpotPriceSeed::new("t3a.small", "eu-west-1b", "0.006100"),
        ])
        .expect("seeding Spot prices");
    account
        .seed_on_demand_prices(&[("t3.small", "eu-west-1", "0.0230"), ("t3a.small", "eu-west-1", "0.0190")])
        .expect("seeding On-Demand prices");
}

const TWO_BLOCKS: &str = r#"
data "immutable_spot_price" "web" {
  instance_types     = ["t3.small", "t3a.small"]
  availability_zones = ["eu-west-1a", "eu-west-1b"]
}

# The same types in another order, every zone.
data "immutable_spot_price" "all" {
  instance_types = ["t3a.small", "t3.small"]
}

output "pools" {
  value = data.immutable_spot_price.web.pools
}

output "types" {
  value = data.immutable_spot_price.web.types
}

output "all_pools" {
  value = length(data.immutable_spot_price.all.pools)
}

output "product_description" {
  value = data.immutable_spot_price.web.product_description
}
"#;

fn warnings<'a>(out: &'a TfOutput, summary: &str) -> Vec<&'a str> {
    let heading = format!("Warning: {summary}");
    diagnostic_blocks(&out.stdout)
        .chain(diagnostic_blocks(&out.stderr))
        .filter(|b| first_line_is(b, &heading))
        .collect()
}

#[test]
fn spot_price_figures_match_a_hand_computation_and_two_blocks_share_one_read_of_each() {
    let account = LocalAws::shared().account();
    seed_prices(&account);
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &format!("{PROVIDER}{TWO_BLOCKS}"));
    workdir.init().expect("terraform init");
    account.reset_requests().expect("reset request counts");
    let apply = workdir.apply().expect("terraform apply");
    assert!(warnings(&apply, "Prices Incomplete").is_empty(), "{apply}");

    // Savings, floor((on_demand - spot) * 100 / on_demand):
    //   t3a.small 0.0061 of 0.0190: 0.0129 / 0.0190 = 67.89…%  -> 67
    //   t3.small  0.0069 of 0.0230: 0.0161 / 0.0230 = 70% exactly -> 70
    //   t3.small  0.00782 of 0.0230: 0.01518 / 0.0230 = 66% exactly -> 66
    //     (in binary floating point 65.99999999999999, which would round down to 65)
    // Cheapest first; the t3a.small tie by zone.
    let pool = |t: &str, z: &str, spot: &str, od: &str, savings: i64| {
        json!({
            "instance_type": t,
            "availability_zone": z,
            "spot_price": spot,
            "on_demand_price": od,
            "savings_percent": savings,
        })
    };
    assert_eq!(
        workdir.output("pools").expect("pools"),
        json!([
            pool("t3a.small", "eu-west-1a", "0.0061", "0.019", 67),
            pool("t3a.small", "eu-west-1b", "0.0061", "0.019", 67),
            pool("t3.small", "eu-west-1a", "0.0069", "0.023", 70),
            pool("t3.small", "eu-west-1b", "0.00782", "0.023", 66),
        ])
    );
    assert_eq!(
        workdir.output("types").expect("types"),
        json!({
            "t3.small": {
                "on_demand_price": "0.023",
                "cheapest_spot_price": "0.0069",
                "cheapest_availability_zone": "eu-west-1a",
                "savings_percent": 70,
            },
            "t3a.small": {
                "on_demand_price": "0.019",
                "cheapest_spot_price": "0.0061",
                "cheapest_availability_zone": "eu-west-1a",
                "savings_percent": 67,
            },
        })
    );
    // Every zone: the two types in each of eu-west-1's three zones.
    assert_eq!(workdir.output("all_pools").expect("all_pools"), json!(6));
    assert_eq!(workdir.output("product_description").expect("description"), json!("Linux/UNIX"));

    // Two blocks of the same types: one read of each price source in the run.
    let requests = account.requests().expect("request counts");
    assert_eq!(requests.get("ec2:DescribeSpotPriceHistory"), Some(&1), "{requests:?}");
    assert_eq!(requests.get("pricing:GetProducts"), Some(&1), "{requests:?}");
}

#[test]
fn denied_on_demand_prices_are_null_with_one_warning_and_the_apply_succeeds() {
    let account = LocalAws::shared().account();
    seed_prices(&account);
    account.deny(&["pricing:GetProducts"]).expect("deny pricing:GetProducts");
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            r#"{PROVIDER}
data "immutable_spot_price" "web" {{
  instance_types     = ["t3.small", "t3a.small"]
  availability_zones = ["eu-west-1a", "eu-west-1b"]
}}

output "cheapest" {{
  value = data.immutable_spot_price.web.pools[0]
}}

output "t3_small" {{
  value = data.immutable_spot_price.web.types["t3.small"]
}}
"#
        ),
    );
    workdir.init().expect("terraform init");
    account.reset_requests().expect("reset request counts");
    let apply = workdir.apply().expect("terraform apply succeeds without On-Demand prices");
    let warned = warnings(&apply, "Prices Incomplete");
    assert_eq!(warned.len(), 1, "exactly one warning:\n{apply}");
    assert!(warned[0].contains("pricing:GetProducts"), "names the permission: {}", warned[0]);
    assert!(warned[0].contains("AccessDeniedException"), "AWS's answer: {}", warned[0]);
    assert!(!warned[0].contains("ec2:DescribeSpotPriceHistory"), "Spot prices were read: {}", warned[0]);

    assert_eq!(
        workdir.output("cheapest").expect("cheapest"),
        json!({
            "instance_type": "t3a.small",
            "availability_zone": "eu-west-1a",
            "spot_price": "0.0061",
            "on_demand_price": null,
            "savings_percent": null,
        })
    );
    assert_eq!(
        workdir.output("t3_small").expect("t3_small"),
        json!({
            "on_demand_price": null,
            "cheapest_spot_price": "0.0069",
            "cheapest_availability_zone": "eu-west-1a",
            "savings_percent": null,
        })
    );
    let requests = account.requests().expect("request counts");
    assert_eq!(requests.get("pricing:GetProducts"), Some(&1), "{requests:?}");
    assert_eq!(requests.get("ec2:DescribeSpotPriceHistory"), Some(&1), "{requests:?}");
}

#[test]
fn without_either_permission_every_price_is_null_and_one_warning_names_both() {
    let account = LocalAws::shared().account();
    account.deny(&["pricing:GetProducts", "ec2:DescribeSpotPriceHistory"]).expect("deny");
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            r#"{PROVIDER}
data "immutable_spot_price" "web" {{
  instance_types = ["m5.large"]
}}

output "pools_known" {{
  value = data.immutable_spot_price.web.pools != null
}}

output "m5_large" {{
  value = data.immutable_spot_price.web.types["m5.large"]
}}
"#
        ),
    );
    workdir.init().expect("terraform init");
    let apply = workdir.apply().expect("terraform apply succeeds without prices");
    let warned = warnings(&apply, "Prices Incomplete");
    assert_eq!(warned.len(), 1, "exactly one warning:\n{apply}");
    assert!(warned[0].contains("ec2:DescribeSpotPriceHistory"), "{}", warned[0]);
    assert!(warned[0].contains("pricing:GetProducts"), "{}", warned[0]);
    assert_eq!(workdir.output("pools_known").expect("pools_known"), json!(false));
    assert_eq!(
        workdir.output("m5_large").expect("m5_large"),
        json!({
            "on_demand_price": null,
            "cheapest_spot_price": null,
            "cheapest_availability_zone": null,
            "savings_percent": null,
        })
    );
}

/// The checks at plan, each on its attribute's line, before any AWS request.
#[test]
fn bad_instance_types_fail_the_plan_on_their_line() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", PROVIDER);
    workdir.init().expect("terraform init");
    for (types, summary) in [("[]", "Empty List"), (r#"["t3.small", "t3"]"#, "Invalid Instance Type")] {
        let line = format!("instance_types = {types}");
        workdir
            .write("main.tf", &format!("{PROVIDER}\ndata \"immutable_spot_price\" \"x\" {{\n  {line}\n}}\n"));
        account.reset_requests().expect("reset request counts");
        let plan = workdir.terraform(&["plan", "-no-color", "-input=false"]);
        assert!(!plan.success(), "{plan}");
        let heading = format!("Error: {summary}");
        let blocks: Vec<&str> =
            diagnostic_blocks(&plan.stderr).filter(|b| first_line_is(b, &heading)).collect();
        assert_eq!(blocks.len(), 1, "{plan}");
        assert!(blocks[0].contains(&line), "points at `{line}`: {}", blocks[0]);
        let requests = account.requests().expect("request counts");
        assert!(
            !requests.keys().any(|k| k.contains("SpotPrice") || k.starts_with("pricing:")),
            "{requests:?}"
        );
    }
}

#[test]
fn an_unreachable_price_list_leaves_on_demand_prices_null_with_one_warning() {
    let account = LocalAws::shared().account();
    seed_prices(&account);
    // Nothing listens on port 1: the connection is refused at once.
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            r#"{PROVIDER}
provider "immutable" {{
  endpoints {{
    pricing = "http://127.0.0.1:1"
  }}
}}

data "immutable_spot_price" "web" {{
  instance_types     = ["t3.small"]
  availability_zones = ["eu-west-1a"]
}}

output "t3_small" {{
  value = data.immutable_spot_price.web.types["t3.small"]
}}
"#
        ),
    );
    workdir.init().expect("terraform init");
    let apply = workdir.apply().expect("terraform apply succeeds without the Price List");
    let warned = warnings(&apply, "Prices Incomplete");
    assert_eq!(warned.len(), 1, "exactly one warning:\n{apply}");
    // Terraform wraps the detail's lines.
    let detail = warned[0].split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(detail.contains("the AWS Price List could not be reached"), "{detail}");
    assert!(detail.contains("http://127.0.0.1:1 refused the connection"), "names the endpoint: {detail}");
    assert_eq!(
        workdir.output("t3_small").expect("t3_small"),
        json!({
            "on_demand_price": null,
            "cheapest_spot_price": "0.0069",
            "cheapest_availability_zone": "eu-west-1a",
            "savings_percent": null,
        })
    );
}
