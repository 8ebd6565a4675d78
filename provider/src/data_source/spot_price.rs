//! `immutable_spot_price`: the current Spot price of each pool of some instance types,
//! next to their On-Demand price, and what Spot saves.

use crate::aws::AwsError;
use crate::aws::prices::{self, SpotPrice};
use crate::config::Shared;
use async_trait::async_trait;
use bigdecimal::BigDecimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::provider::decode;
use tfplugin::provider::{Context, DataSource};
use tfplugin::schema::{self, Attribute, Block, Schema, Validator};
use tfplugin::value::{Type, Val, Value};

pub const TYPE_NAME: &str = "immutable_spot_price";

pub const DEFAULT_PRODUCT_DESCRIPTION: &str = "Linux/UNIX";

pub struct SpotPriceDataSource {
    shared: Arc<Shared>,
}

impl SpotPriceDataSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[derive(Debug, Deserialize)]
struct Config {
    instance_types: Val<Vec<String>>,
    availability_zones: Val<Vec<String>>,
    product_description: Val<String>,
}

#[derive(Debug, Serialize)]
struct State {
    instance_types: Vec<String>,
    availability_zones: Option<Vec<String>>,
    product_description: String,
    region: String,
    pools: Option<Vec<Pool>>,
    types: BTreeMap<String, TypeSummary>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct Pool {
    instance_type: String,
    availability_zone: String,
    spot_price: String,
    on_demand_price: Option<String>,
    savings_percent: Option<i64>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct TypeSummary {
    on_demand_price: Option<String>,
    cheapest_spot_price: Option<String>,
    cheapest_availability_zone: Option<String>,
    savings_percent: Option<i64>,
}

fn pool_type() -> Type {
    Type::object([
        ("instance_type", Type::String),
        ("availability_zone", Type::String),
        ("spot_price", Type::String),
        ("on_demand_price", Type::String),
        ("savings_percent", Type::Number),
    ])
}

fn type_summary_type() -> Type {
    Type::object([
        ("on_demand_price", Type::String),
        ("cheapest_spot_price", Type::String),
        ("cheapest_availability_zone", Type::String),
        ("savings_percent", Type::Number),
    ])
}

/// Instance type names as EC2 spells them: a family, a dot, a size (`t3.small`,
/// `m7i-flex.large`, `c6gn.16xlarge`, `u-6tb1.metal`), in lower case.
pub fn is_plausible_instance_type(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !p.starts_with('-')
            && !p.ends_with('-')
    };
    match name.split_once('.') {
        Some((family, size)) => {
            part(family)
                && part(size)
                && family.starts_with(|c: char| c.is_ascii_lowercase())
                && family.bytes().any(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn instance_types_validator() -> Validator {
    Validator::new("Instance type names such as `t3.small`.", |value, path, diags| {
        if let Value::List(items) = value {
            for (i, item) in items.iter().enumerate() {
                if let Value::String(s) = item
                    && !s.trim().is_empty()
                    && !is_plausible_instance_type(s)
                {
                    let at = path.clone().push_index(i as i64);
                    diags.error_at(
                        at.clone(),
                        "Invalid Instance Type",
                        format!("{at} must be an EC2 instance type such as \"t3.small\", got {s:?}"),
                    );
                }
            }
        }
    })
}

#[async_trait]
impl DataSource for SpotPriceDataSource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "The current Spot price of every pool (instance type and availability zone) of some \
                 instance types in the provider's region, cheapest first, with each type's On-Demand \
                 price and what Spot saves. Prices are decimal strings in USD per hour, as AWS gives \
                 them (without trailing zeros). Spot prices come from EC2's Spot price history \
                 (`ec2:DescribeSpotPriceHistory`), On-Demand prices from the AWS Price List \
                 (`pricing:GetProducts`, shared tenancy, no pre-installed software). When a price \
                 cannot be read (the permission is missing, the Price List endpoint cannot be \
                 reached), its fields are null and one warning says why; the read does not fail.",
            )
            .attribute(
                Attribute::required("instance_types", Type::list(Type::String))
                    .description("Instance types to price, e.g. `[\"t3.small\", \"t3a.small\"]`.")
                    .validator(schema::validators::non_empty_list())
                    .validator(instance_types_validator()),
            )
            .attribute(Attribute::optional("availability_zones", Type::list(Type::String)).description(
                "Only the pools of these availability zones, e.g. `[\"eu-west-1a\"]` (default: every zone \
                 of the region).",
            ))
            .attribute(
                Attribute::optional_computed("product_description", Type::String)
                    .description(format!(
                        "The Spot product (operating system) to price (default `{DEFAULT_PRODUCT_DESCRIPTION}`); \
                         On-Demand prices are those of the same operating system."
                    ))
                    .validator(schema::validators::one_of(prices::PRODUCT_DESCRIPTIONS)),
            )
            .attribute(Attribute::computed("region", Type::String).description("The region the prices are for."))
            .attribute(Attribute::computed("pools", Type::list(pool_type())).description(
                "Every Spot pool of the instance types (in `availability_zones`, when set): \
                 `{ instance_type, availability_zone, spot_price, on_demand_price, savings_percent }`, \
                 cheapest Spot price first, ties by instance type, then zone. `savings_percent` is \
                 `(on_demand_price - spot_price) / on_demand_price` in whole percent, rounded down (so it \
                 never overstates the saving; negative when Spot costs more). Null when Spot prices \
                 could not be read; `on_demand_price` and `savings_percent` are null when the \
                 On-Demand price could not be.",
            ))
            .attribute(Attribute::computed("types", Type::map(type_summary_type())).description(
                "Per instance type (every one of `instance_types`): \
                 `{ on_demand_price, cheapest_spot_price, cheapest_availability_zone, savings_percent }`, \
                 the cheapest of its pools against its On-Demand price, e.g. \
                 `types[\"t3.small\"].savings_percent`. A price that could not be read, or that AWS has \
                 none of (a type the region does not offer), is null.",
            )),
        )
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = decode::<Config>(config, "configuration", diags) else { return };
        if let Some(zones) = model.availability_zones.known() {
            for (i, zone) in zones.iter().enumerate() {
                if zone.trim().is_empty() {
                    let at = AttributePath::attr("availability_zones").push_index(i as i64);
                    diags.error_at(at.clone(), "Empty Value", format!("{at} must not be empty"));
                }
            }
        }
    }

    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let model = decode::<Config>(config, "configuration", diags)?;
        let clients = self.shared.clients(diags)?;
        let instance_types = model.instance_types.known()?.clone();
        let zones = model.availability_zones.known().cloned();
        let description = model
            .product_description
            .known()
            .cloned()
            .unwrap_or_else(|| DEFAULT_PRODUCT_DESCRIPTION.to_owned());
        let mut missing = Missing::default();

        let (spot, on_demand) = tokio::join!(clients.prices.spot(&instance_types, &description), async {
            let Some(location) = prices::location(&clients.region) else {
                return Err(Unavailable::NoLocation);
            };
            let Some(os) = prices::operating_system(&description) else {
                return Err(Unavailable::NoOperatingSystem);
            };
            clients.prices.on_demand(&instance_types, location, os).await.map_err(Unavailable::Failed)
        });
        let spot = match spot {
            Ok(pools) => Some(pools),
            Err(e) if prices::tolerated(&e, false) => {
                missing.spot = Some(e);
                None
            }
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        let on_demand = match on_demand {
            Ok(prices) => Some(prices),
            Err(Unavailable::Failed(e)) if !prices::tolerated(&e, true) => {
                diags.push(e.diagnostic());
                return None;
            }
            Err(why) => {
                missing.on_demand = Some(why);
                None
            }
        };

        let pools: Option<Vec<SpotPrice>> = spot.map(|pools| {
            pools
                .iter()
                .filter(|p| zones.as_ref().is_none_or(|z| z.contains(&p.availability_zone)))
                .cloned()
                .collect()
        });
        let (pools_state, types) = summarise(&instance_types, pools.as_deref(), on_demand.as_deref());
        for (name, summary) in &types {
            if pools.is_some() && summary.cheapest_spot_price.is_none() {
                missing.no_spot.push(name.clone());
            }
            if on_demand.is_some() && summary.on_demand_price.is_none() {
                missing.no_on_demand.push(name.clone());
            }
        }
        if let Some(warning) = missing.warning(&clients.region, zones.is_some()) {
            diags.push(warning);
        }
        tracing::info!(
            types = %instance_types.join(","),
            pools = pools_state.as_ref().map_or(0, Vec::len),
            on_demand = on_demand.is_some(),
            "read Spot and On-Demand prices"
        );
        let state = State {
            instance_types,
            availability_zones: zones,
            product_description: description,
            region: clients.region.clone(),
            pools: pools_state,
            types,
        };
        tfplugin::provider::encode(&state, &self.schema(), diags)
    }
}

/// Why no On-Demand price was read.
#[derive(Debug)]
enum Unavailable {
    /// The region has no Price List location this version knows.
    NoLocation,
    /// The product description has no On-Demand counterpart.
    NoOperatingSystem,
    Failed(AwsError),
}

/// What could not be read, for the one warning.
#[derive(Debug, Default)]
struct Missing {
    spot: Option<AwsError>,
    on_demand: Option<Unavailable>,
    /// Types with no Spot pool (in the zones asked for).
    no_spot: Vec<String>,
    /// Types the Price List has no On-Demand price of.
    no_on_demand: Vec<String>,
}

impl Missing {
    fn warning(&self, region: &str, zones_given: bool) -> Option<tfplugin::diag::Diagnostic> {
        let mut lines = Vec::new();
        if let Some(e) = &self.spot {
            lines.push(format!("Spot prices: {}.", prices::unread_because(e, prices::SPOT_PERMISSION)));
        }
        match &self.on_demand {
            Some(Unavailable::Failed(e)) => lines.push(format!(
                "On-Demand prices: {}.",
                prices::unread_because(e, prices::PRICE_LIST_PERMISSION)
            )),
            Some(Unavailable::NoLocation) => lines.push(format!(
                "On-Demand prices: this version of the provider does not know the AWS Price List's name \
                 for region {region}."
            )),
            Some(Unavailable::NoOperatingSystem) => lines
                .push("On-Demand prices: the product description has no On-Demand counterpart.".to_owned()),
            None => {}
        }
        if !self.no_spot.is_empty() {
            let place = if zones_given { format!("the given zones of {region}") } else { region.to_owned() };
            lines.push(format!(
                "No Spot price for {} in {place}: not offered there, or not an instance type.",
                self.no_spot.join(", ")
            ));
        }
        if !self.no_on_demand.is_empty() {
            lines.push(format!(
                "No On-Demand price in the AWS Price List for {} in {region}.",
                self.no_on_demand.join(", ")
            ));
        }
        if lines.is_empty() {
            return None;
        }
        lines.push("The fields of the prices that could not be read are null.".to_owned());
        Some(tfplugin::diag::Diagnostic::warning("Prices Incomplete", lines.join("\n")))
    }
}

/// The pools (`None`: Spot prices unknown) and the per-type summary of
/// `instance_types`, from the pools, cheapest first, and the On-Demand prices
/// (`None`: unknown).
fn summarise(
    instance_types: &[String],
    pools: Option<&[SpotPrice]>,
    on_demand: Option<&BTreeMap<String, BigDecimal>>,
) -> (Option<Vec<Pool>>, BTreeMap<String, TypeSummary>) {
    let on_demand_of = |t: &str| on_demand.and_then(|prices| prices.get(t));
    let savings =
        |t: &str, spot: &BigDecimal| on_demand_of(t).and_then(|od| prices::savings_percent(od, spot));
    let mut sorted: Vec<SpotPrice> = pools.map(<[SpotPrice]>::to_vec).unwrap_or_default();
    prices::sort_cheapest_first(&mut sorted);
    let types = instance_types
        .iter()
        .map(|t| {
            let cheapest = sorted.iter().find(|p| &p.instance_type == t);
            let summary = TypeSummary {
                on_demand_price: on_demand_of(t).map(prices::price_text),
                cheapest_spot_price: cheapest.map(|p| prices::price_text(&p.price)),
                cheapest_availability_zone: cheapest.map(|p| p.availability_zone.clone()),
                savings_percent: cheapest.and_then(|p| savings(t, &p.price)),
            };
            (t.clone(), summary)
        })
        .collect();
    let pools = pools.map(|_| {
        sorted
            .iter()
            .map(|p| Pool {
                instance_type: p.instance_type.clone(),
                availability_zone: p.availability_zone.clone(),
                spot_price: prices::price_text(&p.price),
                on_demand_price: on_demand_of(&p.instance_type).map(prices::price_text),
                savings_percent: savings(&p.instance_type, &p.price),
            })
            .collect()
    });
    (pools, types)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Scope;

    fn pool(t: &str, z: &str, price: &str) -> SpotPrice {
        SpotPrice {
            instance_type: t.to_owned(),
            availability_zone: z.to_owned(),
            price: prices::parse_price(price).expect("price"),
        }
    }

    #[test]
    fn instance_type_names_are_checked_for_their_shape() {
        for good in [
            "t3.small",
            "m7i-flex.large",
            "c6gn.16xlarge",
            "u-6tb1.metal",
            "mac2-m2pro.metal",
            "p4de.24xlarge",
        ] {
            assert!(is_plausible_instance_type(good), "{good}");
        }
        for bad in [
            "t3",
            "T3.small",
            "t3.small ",
            "t3..small",
            "small.t3x",
            ".small",
            "t3.",
            "t3.small.x",
            "-t3.small",
        ] {
            assert!(!is_plausible_instance_type(bad), "{bad}");
        }
    }

    #[test]
    fn pools_and_types_from_prices() {
        let types = vec!["t3.small".to_owned(), "t3a.small".to_owned(), "t3.nano".to_owned()];
        let pools = [
            pool("t3.small", "eu-west-1b", "0.0070"),
            pool("t3a.small", "eu-west-1a", "0.0061"),
            pool("t3.small", "eu-west-1a", "0.0068"),
            pool("t3a.small", "eu-west-1b", "0.0061"),
        ];
        let on_demand: BTreeMap<String, BigDecimal> = [
            ("t3.small".to_owned(), prices::parse_price("0.0228").expect("price")),
            ("t3a.small".to_owned(), prices::parse_price("0.0204").expect("price")),
        ]
        .into();
        let (listed, summary) = summarise(&types, Some(&pools), Some(&on_demand));
        let listed = listed.expect("pools");
        let rows: Vec<(&str, &str, &str, Option<i64>)> = listed
            .iter()
            .map(|p| {
                (
                    p.instance_type.as_str(),
                    p.availability_zone.as_str(),
                    p.spot_price.as_str(),
                    p.savings_percent,
                )
            })
            .collect();
        // 1 - 0.0061/0.0204 = 70.09…%, 1 - 0.0068/0.0228 = 70.17…%, 1 - 0.0070/0.0228 = 69.29…%
        assert_eq!(
            rows,
            [
                ("t3a.small", "eu-west-1a", "0.0061", Some(70)),
                ("t3a.small", "eu-west-1b", "0.0061", Some(70)),
                ("t3.small", "eu-west-1a", "0.0068", Some(70)),
                ("t3.small", "eu-west-1b", "0.007", Some(69)),
            ]
        );
        assert_eq!(
            summary["t3.small"],
            TypeSummary {
                on_demand_price: Some("0.0228".to_owned()),
                cheapest_spot_price: Some("0.0068".to_owned()),
                cheapest_availability_zone: Some("eu-west-1a".to_owned()),
                savings_percent: Some(70),
            }
        );
        assert_eq!(
            summary["t3.nano"],
            TypeSummary {
                on_demand_price: None,
                cheapest_spot_price: None,
                cheapest_availability_zone: None,
                savings_percent: None
            }
        );

        let (listed, summary) = summarise(&types, Some(&pools), None);
        assert!(
            listed.expect("pools").iter().all(|p| p.on_demand_price.is_none() && p.savings_percent.is_none())
        );
        assert_eq!(summary["t3a.small"].cheapest_spot_price.as_deref(), Some("0.0061"));
        let (listed, summary) = summarise(&types, None, Some(&on_demand));
        assert!(listed.is_none(), "unknown Spot prices are null, not an empty list");
        assert_eq!(summary["t3a.small"].on_demand_price.as_deref(), Some("0.0204"));
        assert_eq!(summary["t3a.small"].savings_percent, None);
    }

    #[test]
    fn one_warning_names_every_missing_price_and_permission() {
        let denied = |action: &str, code: &str| AwsError {
            action: action.to_owned(),
            code: Some(code.to_owned()),
            message: "not authorized".to_owned(),
            request_id: None,
            scope: Scope::Request,
        };
        let missing = Missing {
            spot: Some(denied("reading the Spot prices of t3.small", "UnauthorizedOperation")),
            on_demand: Some(Unavailable::Failed(denied(
                "reading the On-Demand prices of t3.small in EU (Ireland)",
                "AccessDeniedException",
            ))),
            no_spot: vec![],
            no_on_demand: vec![],
        };
        let warning = missing.warning("eu-west-1", false).expect("a warning");
        assert_eq!(warning.summary, "Prices Incomplete");
        assert!(
            warning.detail.contains("not allowed to call ec2:DescribeSpotPriceHistory"),
            "{}",
            warning.detail
        );
        assert!(warning.detail.contains("not allowed to call pricing:GetProducts"), "{}", warning.detail);
        assert!(Missing::default().warning("eu-west-1", false).is_none());
    }
}
