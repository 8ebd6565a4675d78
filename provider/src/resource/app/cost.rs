//! What an app costs: its running instances priced now, each Spot instance at its
//! pool's Spot price and each On-Demand instance at its type's On-Demand price
//! (`hourly_cost`), the same instances On-Demand (`on_demand_hourly_cost`), what Spot
//! saves, and what a rollout's overlap of two fleets cost. See docs/design.md, "What an
//! app costs".
//!
//! The instances come from the fleet reads the app makes anyway (their type, zone,
//! lifecycle and platform are in the same DescribeInstances answer), the prices from
//! [`crate::aws::reads::PriceReads`], keyed by the app's set of instance types: the
//! apps of a run with the same types share one read of each source. A price that cannot
//! be had leaves the three attributes null and never fails a plan or an apply; the apps
//! of a run share one warning.

use super::model::Model;
use crate::aws::Clients;
use crate::aws::instances::RunningInstance;
use crate::aws::prices::{self, SpotPrice};
use bigdecimal::BigDecimal;
use std::collections::{BTreeMap, BTreeSet};
use tfplugin::diag::Diagnostics;
use tfplugin::value::Val;

/// The hourly cost of an app's running instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cost {
    /// Each instance at its own price (Spot or On-Demand), USD per hour.
    pub hourly: BigDecimal,
    /// Each instance at its type's On-Demand price, USD per hour.
    pub on_demand: BigDecimal,
    pub instances: usize,
}

impl Cost {
    pub fn savings_percent(&self) -> Option<i64> {
        prices::savings_percent(&self.on_demand, &self.hourly)
    }
}

/// Prices of one Spot product (platform): its pools' Spot prices and its types'
/// On-Demand prices.
#[derive(Debug, Default)]
pub struct ProductPrices {
    pub spot: Vec<SpotPrice>,
    pub on_demand: BTreeMap<String, BigDecimal>,
}

/// What stands between an app and its cost, one line each for the warning.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Gaps {
    pub lines: Vec<String>,
}

impl Gaps {
    fn note(&mut self, line: String) {
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }
}

/// The Spot product of an instance (see [`prices::product_description_of`]).
pub fn product_of(instance: &RunningInstance) -> &'static str {
    prices::product_description_of(instance.platform_details.as_deref(), instance.platform.as_deref())
}

/// Sums the cost of `instances` from the prices of their products; the gaps instead
/// when any instance cannot be priced.
pub fn sum(
    instances: &[RunningInstance],
    prices: &BTreeMap<&'static str, ProductPrices>,
    region: &str,
) -> Result<Cost, Gaps> {
    let mut gaps = Gaps::default();
    let mut hourly = BigDecimal::from(0);
    let mut on_demand = BigDecimal::from(0);
    for instance in instances {
        let (Some(instance_type), Some(zone)) = (&instance.instance_type, &instance.availability_zone) else {
            gaps.note(format!("Instance {}: EC2 did not say its instance type and zone.", instance.id));
            continue;
        };
        let product = product_of(instance);
        let Some(known) = prices.get(product) else {
            gaps.note(format!("No prices of {product} were read."));
            continue;
        };
        let od = known.on_demand.get(instance_type);
        match od {
            Some(od) => on_demand += od,
            None => gaps.note(format!(
                "No On-Demand price in the AWS Price List for {instance_type} ({product}) in {region}."
            )),
        }
        if instance.spot {
            let pool =
                known.spot.iter().find(|p| &p.instance_type == instance_type && &p.availability_zone == zone);
            match pool {
                Some(pool) => hourly += &pool.price,
                None => gaps.note(format!("No Spot price for {instance_type} ({product}) in {zone}.")),
            }
        } else if let Some(od) = od {
            hourly += od;
        }
    }
    if gaps.lines.is_empty() { Ok(Cost { hourly, on_demand, instances: instances.len() }) } else { Err(gaps) }
}

/// The cost of `instances` (the app's running instances, of the configured
/// `instance_types`), or `None` with the app's share of the run's one warning.
pub async fn of_instances(
    clients: &Clients,
    app: &str,
    instance_types: &[String],
    instances: &[RunningInstance],
    diags: &mut Diagnostics,
) -> Option<Cost> {
    if instances.is_empty() {
        return Some(Cost { hourly: BigDecimal::from(0), on_demand: BigDecimal::from(0), instances: 0 });
    }
    // The key of the shared reads: the app's configured types (and any other an
    // instance runs), whatever their order.
    let mut types: BTreeSet<String> = instance_types.iter().cloned().collect();
    types.extend(instances.iter().filter_map(|i| i.instance_type.clone()));
    let types: Vec<String> = types.into_iter().collect();
    let products: BTreeSet<&'static str> = instances.iter().map(product_of).collect();

    let mut gaps = Gaps::default();
    let mut read = BTreeMap::new();
    for product in products {
        let spot = clients.prices.spot(&types, product);
        let on_demand = async {
            let Some(location) = prices::location(&clients.region) else {
                return Err(format!(
                    "On-Demand prices: this version of the provider does not know the AWS Price List's name for \
                     region {}.",
                    clients.region
                ));
            };
            let Some(os) = prices::operating_system(product) else {
                return Err(format!("On-Demand prices: {product} has no On-Demand counterpart."));
            };
            clients.prices.on_demand(&types, location, os).await.map_err(|e| {
                format!("On-Demand prices: {}.", prices::unread_because(&e, prices::PRICE_LIST_PERMISSION))
            })
        };
        let (spot, on_demand) = tokio::join!(spot, on_demand);
        let spot = spot
            .map_err(|e| format!("Spot prices: {}.", prices::unread_because(&e, prices::SPOT_PERMISSION)));
        match (spot, on_demand) {
            (Ok(spot), Ok(on_demand)) => {
                read.insert(product, ProductPrices { spot: spot.to_vec(), on_demand: (*on_demand).clone() });
            }
            (spot, on_demand) => {
                for line in [spot.err(), on_demand.err()].into_iter().flatten() {
                    gaps.note(line);
                }
            }
        }
    }
    let result = if gaps.lines.is_empty() { sum(instances, &read, &clients.region) } else { Err(gaps) };
    match result {
        Ok(cost) => Some(cost),
        Err(gaps) => {
            tracing::warn!(app = %app, "the app's cost is unknown: {}", gaps.lines.join(" "));
            if clients.prices.first_cost_warning() {
                diags.push(warning(app, &gaps));
            }
            None
        }
    }
}

/// The run's one warning about costs that could not be worked out, from the first app
/// that met it.
pub fn warning(app: &str, gaps: &Gaps) -> tfplugin::diag::Diagnostic {
    let mut lines = vec![format!(
        "The hourly cost of app {app:?} (hourly_cost, on_demand_hourly_cost, savings_percent) could not be \
         worked out:"
    )];
    lines.extend(gaps.lines.iter().cloned());
    lines.push(
        "These attributes are null for it and for every other app of this run whose prices are missing (this \
         warning is given once per run). Plans and applies are not affected."
            .to_owned(),
    );
    tfplugin::diag::Diagnostic::warning("App Cost Unknown", lines.join("\n"))
}

/// Sets the app's cost attributes: known together, or null together.
pub fn set(model: &mut Model, cost: Option<&Cost>) {
    let computed = &mut model.computed;
    computed.hourly_cost = cost.map(|c| prices::price_text(&c.hourly)).into();
    computed.on_demand_hourly_cost = cost.map(|c| prices::price_text(&c.on_demand)).into();
    computed.savings_percent = cost.and_then(Cost::savings_percent).into();
}

/// Prices the overlap of the rollout `model.computed.last_rollout` records at the
/// mean hourly price of green's instances now (`cost`, just after the switch).
pub fn price_overlap(model: &mut Model, cost: Option<&Cost>) {
    let Val::Known(last) = &mut model.computed.last_rollout else { return };
    let seconds = last.overlap_instance_seconds.known().copied();
    last.overlap_cost = match (seconds, cost) {
        (Some(seconds), Some(cost)) => prices::cost_over(seconds, &cost.hourly, cost.instances.max(1))
            .map(|c| prices::price_text(&c))
            .into(),
        _ => Val::Null,
    };
}

/// The cost of the app's fleet `model.computed.fleet_id` as it runs now (the shared
/// fleet read, taken after the change), set on the model; returned for the overlap.
pub async fn settle(clients: &Clients, model: &mut Model, diags: &mut Diagnostics) -> Option<Cost> {
    let app = model.name.known().cloned().unwrap_or_default();
    let fleet_id = model.computed.fleet_id.known()?.clone();
    let running = match clients.reads.fleet(&fleet_id).await {
        Ok(Some(observed)) => observed.running,
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!(app = %app, "{e}; the app's cost is unknown");
            if clients.prices.first_cost_warning() {
                let gaps = Gaps { lines: vec![format!("Its instances: {e}.")] };
                diags.push(warning(&app, &gaps));
            }
            set(model, None);
            return None;
        }
    };
    let types = model.launch.instance_types.known().cloned().unwrap_or_default();
    let cost = of_instances(clients, &app, &types, &running, diags).await;
    set(model, cost.as_ref());
    cost
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> BigDecimal {
        prices::parse_price(text).expect("price")
    }

    fn instance(id: &str, instance_type: &str, zone: &str, spot: bool) -> RunningInstance {
        RunningInstance {
            id: id.to_owned(),
            instance_type: Some(instance_type.to_owned()),
            availability_zone: Some(zone.to_owned()),
            spot,
            platform_details: Some("Linux/UNIX".to_owned()),
            platform: None,
        }
    }

    fn pool(instance_type: &str, zone: &str, price: &str) -> SpotPrice {
        SpotPrice {
            instance_type: instance_type.to_owned(),
            availability_zone: zone.to_owned(),
            price: d(price),
        }
    }

    fn linux() -> BTreeMap<&'static str, ProductPrices> {
        let spot = vec![
            pool("t3.small", "eu-west-1a", "0.0069"),
            pool("t3.small", "eu-west-1b", "0.00782"),
            pool("t3a.small", "eu-west-1a", "0.0061"),
        ];
        let on_demand = [("t3.small".to_owned(), d("0.0228")), ("t3a.small".to_owned(), d("0.0204"))].into();
        [("Linux/UNIX", ProductPrices { spot, on_demand })].into()
    }

    #[test]
    fn each_instance_at_its_pools_spot_price_or_its_on_demand_price() {
        let instances = [
            instance("i-1", "t3.small", "eu-west-1a", true),
            instance("i-2", "t3.small", "eu-west-1b", true),
            instance("i-3", "t3a.small", "eu-west-1a", true),
            // On-Demand: its type's On-Demand price, whatever the pool.
            instance("i-4", "t3a.small", "eu-west-1b", false),
        ];
        let cost = sum(&instances, &linux(), "eu-west-1").expect("priced");
        // 0.0069 + 0.00782 + 0.0061 + 0.0204 = 0.04122
        assert_eq!(prices::price_text(&cost.hourly), "0.04122");
        // 0.0228 + 0.0228 + 0.0204 + 0.0204 = 0.0864
        assert_eq!(prices::price_text(&cost.on_demand), "0.0864");
        // (0.0864 - 0.04122) / 0.0864 = 52.29…%
        assert_eq!(cost.savings_percent(), Some(52));
        assert_eq!(cost.instances, 4);
    }

    #[test]
    fn a_missing_pool_or_type_price_leaves_the_cost_unknown_and_says_which() {
        let instances = [
            instance("i-1", "t3.small", "eu-west-1c", true),
            instance("i-2", "m5.large", "eu-west-1a", false),
            RunningInstance { instance_type: None, ..instance("i-3", "t3.small", "eu-west-1a", true) },
        ];
        let gaps = sum(&instances, &linux(), "eu-west-1").expect_err("not priced");
        assert_eq!(
            gaps.lines,
            [
                "No Spot price for t3.small (Linux/UNIX) in eu-west-1c.",
                "No On-Demand price in the AWS Price List for m5.large (Linux/UNIX) in eu-west-1.",
                "Instance i-3: EC2 did not say its instance type and zone.",
            ]
        );
        let windows = RunningInstance {
            platform_details: Some("Windows".to_owned()),
            platform: Some("windows".to_owned()),
            ..instance("i-4", "t3.small", "eu-west-1a", true)
        };
        let gaps = sum(&[windows], &linux(), "eu-west-1").expect_err("no Windows prices");
        assert_eq!(gaps.lines, ["No prices of Windows were read."]);
    }

    #[test]
    fn no_instance_costs_nothing_and_saves_no_percent() {
        let cost = sum(&[], &linux(), "eu-west-1").expect("priced");
        assert_eq!(
            (prices::price_text(&cost.hourly), prices::price_text(&cost.on_demand)),
            ("0".into(), "0".into())
        );
        assert_eq!(cost.savings_percent(), None);
    }

    #[test]
    fn the_attributes_are_known_together_or_null_together() {
        let mut model = Model::default();
        let cost = Cost { hourly: d("0.0138"), on_demand: d("0.0456"), instances: 2 };
        set(&mut model, Some(&cost));
        assert_eq!(model.computed.hourly_cost, Val::Known("0.0138".to_owned()));
        assert_eq!(model.computed.on_demand_hourly_cost, Val::Known("0.0456".to_owned()));
        // (0.0456 - 0.0138) / 0.0456 = 69.73…%
        assert_eq!(model.computed.savings_percent, Val::Known(69));
        set(&mut model, None);
        assert!(model.computed.hourly_cost.is_null() && model.computed.on_demand_hourly_cost.is_null());
        assert!(model.computed.savings_percent.is_null());
    }

    #[test]
    fn the_overlap_is_priced_at_the_mean_price_of_greens_instances() {
        use super::super::model::LastRollout;
        let mut model = Model::default();
        model.computed.last_rollout =
            Val::Known(LastRollout { overlap_instance_seconds: Val::Known(90), ..LastRollout::default() });
        let cost = Cost { hourly: d("0.0138"), on_demand: d("0.0456"), instances: 2 };
        price_overlap(&mut model, Some(&cost));
        // 90 s x 0.0138 / 2 / 3600 = 0.0001725
        let last = model.computed.last_rollout.known().expect("record");
        assert_eq!(last.overlap_cost, Val::Known("0.0001725".to_owned()));
        price_overlap(&mut model, None);
        assert!(model.computed.last_rollout.known().expect("record").overlap_cost.is_null());
    }
}
