//! Prices of EC2 capacity: the current Spot price of each pool (EC2's Spot price
//! history) and the On-Demand price of each instance type (the AWS Price List Query
//! API). Prices are decimals in USD per hour, never floats: AWS writes them as decimal
//! strings and they stay so, from the answer to the state.

use super::{AwsError, Scope};
use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::{BigInt, Sign};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

/// The only region whose Price List endpoint the provider calls (the API is also
/// served in eu-central-1 and ap-south-1, with the same prices).
pub const PRICE_LIST_REGION: &str = "us-east-1";

/// DescribeSpotPriceHistory returns at most 1,000 entries per page.
const SPOT_PAGE_SIZE: i32 = 1000;

/// GetProducts returns at most 100 products per page.
const PRICE_LIST_PAGE_SIZE: i32 = 100;

/// What AWS answers when the caller's policies do not allow the call: EC2's query
/// API, and the JSON APIs (the Price List among them).
pub const NOT_ALLOWED: &[&str] = &["UnauthorizedOperation", "AccessDenied", "AccessDeniedException"];

/// The IAM actions that read prices.
pub const SPOT_PERMISSION: &str = "ec2:DescribeSpotPriceHistory";
pub const PRICE_LIST_PERMISSION: &str = "pricing:GetProducts";

/// Whether a failed price read leaves its prices unknown (with a warning) rather than
/// failing what asked: the caller may not read prices, or (the Price List, whose
/// endpoint differs from every other the provider uses) the endpoint cannot be reached.
pub fn tolerated(error: &AwsError, price_list: bool) -> bool {
    error.is(NOT_ALLOWED) || (price_list && matches!(error.scope, Scope::Endpoint(_)))
}

/// Why a read of prices failed, in words for a warning: the permission to grant, or
/// the Price List endpoint that could not be reached. `permission` is the action the
/// read needs ([`SPOT_PERMISSION`] or [`PRICE_LIST_PERMISSION`]).
pub fn unread_because(error: &AwsError, permission: &str) -> String {
    if error.is(NOT_ALLOWED) {
        return format!(
            "not allowed to call {permission} ({}); allow {permission} to read them",
            error.detail()
        );
    }
    match &error.scope {
        Scope::Endpoint(no) => {
            let why = if no.refused {
                format!("{} refused the connection", no.endpoint)
            } else if no.timed_out {
                format!("{} did not answer in time", no.endpoint)
            } else {
                format!("{} could not be reached ({})", no.endpoint, no.cause)
            };
            if permission == PRICE_LIST_PERMISSION {
                format!(
                    "the AWS Price List could not be reached: {why}. Check the provider's `endpoints.pricing` \
                     (by default the Price List's endpoint in {PRICE_LIST_REGION}) and the network between here \
                     and it"
                )
            } else {
                why
            }
        }
        _ => error.to_string(),
    }
}

/// The `location` attribute of the Price List for each commercial region: the long
/// name the Price List gives it, which for Europe still starts with "EU".
const LOCATIONS: &[(&str, &str)] = &[
    ("af-south-1", "Africa (Cape Town)"),
    ("ap-east-1", "Asia Pacific (Hong Kong)"),
    ("ap-east-2", "Asia Pacific (Taipei)"),
    ("ap-northeast-1", "Asia Pacific (Tokyo)"),
    ("ap-northeast-2", "Asia Pacific (Seoul)"),
    ("ap-northeast-3", "Asia Pacific (Osaka)"),
    ("ap-south-1", "Asia Pacific (Mumbai)"),
    ("ap-south-2", "Asia Pacific (Hyderabad)"),
    ("ap-southeast-1", "Asia Pacific (Singapore)"),
    ("ap-southeast-2", "Asia Pacific (Sydney)"),
    ("ap-southeast-3", "Asia Pacific (Jakarta)"),
    ("ap-southeast-4", "Asia Pacific (Melbourne)"),
    ("ap-southeast-5", "Asia Pacific (Malaysia)"),
    ("ap-southeast-6", "Asia Pacific (New Zealand)"),
    ("ap-southeast-7", "Asia Pacific (Thailand)"),
    ("ca-central-1", "Canada (Central)"),
    ("ca-west-1", "Canada West (Calgary)"),
    ("eu-central-1", "EU (Frankfurt)"),
    ("eu-central-2", "EU (Zurich)"),
    ("eu-north-1", "EU (Stockholm)"),
    ("eu-south-1", "EU (Milan)"),
    ("eu-south-2", "EU (Spain)"),
    ("eu-west-1", "EU (Ireland)"),
    ("eu-west-2", "EU (London)"),
    ("eu-west-3", "EU (Paris)"),
    ("il-central-1", "Israel (Tel Aviv)"),
    ("me-central-1", "Middle East (UAE)"),
    ("me-south-1", "Middle East (Bahrain)"),
    ("mx-central-1", "Mexico (Central)"),
    ("sa-east-1", "South America (Sao Paulo)"),
    ("us-east-1", "US East (N. Virginia)"),
    ("us-east-2", "US East (Ohio)"),
    ("us-west-1", "US West (N. California)"),
    ("us-west-2", "US West (Oregon)"),
];

/// The Price List's `location` of a commercial region; `None` for a region it does
/// not know (another partition, or one opened after this release).
pub fn location(region: &str) -> Option<&'static str> {
    LOCATIONS.iter().find(|(r, _)| *r == region).map(|(_, l)| *l)
}

/// The Spot product descriptions DescribeSpotPriceHistory takes.
pub const PRODUCT_DESCRIPTIONS: &[&str] = &[
    "Linux/UNIX",
    "Linux/UNIX (Amazon VPC)",
    "SUSE Linux",
    "SUSE Linux (Amazon VPC)",
    "Red Hat Enterprise Linux",
    "Red Hat Enterprise Linux (Amazon VPC)",
    "Windows",
    "Windows (Amazon VPC)",
];

/// The Spot product description that prices an instance, from what DescribeInstances
/// says of its platform: its `PlatformDetails` when that is one of the Spot products
/// (`Linux/UNIX`, `SUSE Linux`, `Red Hat Enterprise Linux`, `Windows`), else `Windows`
/// for a Windows instance (`Platform`), else `Linux/UNIX`.
pub fn product_description_of(platform_details: Option<&str>, platform: Option<&str>) -> &'static str {
    const SPOT_PRODUCTS: [&str; 4] = ["Linux/UNIX", "SUSE Linux", "Red Hat Enterprise Linux", "Windows"];
    if let Some(found) = SPOT_PRODUCTS.iter().find(|p| Some(**p) == platform_details) {
        return found;
    }
    if platform.is_some_and(|p| p.eq_ignore_ascii_case("windows")) { "Windows" } else { "Linux/UNIX" }
}

/// The Price List `operatingSystem` of the On-Demand product a Spot product
/// description compares with.
pub fn operating_system(product_description: &str) -> Option<&'static str> {
    match product_description.trim_end_matches(" (Amazon VPC)") {
        "Linux/UNIX" => Some("Linux"),
        "SUSE Linux" => Some("SUSE"),
        "Red Hat Enterprise Linux" => Some("RHEL"),
        "Windows" => Some("Windows"),
        _ => None,
    }
}

/// The current Spot price of one pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpotPrice {
    pub instance_type: String,
    pub availability_zone: String,
    /// USD per hour.
    pub price: BigDecimal,
}

/// The current Spot price of every pool of `instance_types` in the region (every
/// zone that offers them), for `product_description`.
///
/// Asked with a start time of now, AWS answers each pool's price in effect at that
/// time (the last change before it) and any change since; the newest entry of each
/// pool is its price now.
pub async fn spot_prices(
    ec2: &aws_sdk_ec2::Client,
    instance_types: &[String],
    product_description: &str,
) -> Result<Vec<SpotPrice>, AwsError> {
    use aws_sdk_ec2::types::InstanceType;
    let action = format!("reading the Spot prices of {}", instance_types.join(", "));
    let mut pages = ec2
        .describe_spot_price_history()
        .set_instance_types(Some(instance_types.iter().map(|t| InstanceType::from(t.as_str())).collect()))
        .product_descriptions(product_description)
        .start_time(aws_smithy_types::DateTime::from(std::time::SystemTime::now()))
        .max_results(SPOT_PAGE_SIZE)
        .into_paginator()
        .send();
    let mut entries = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new(action.clone(), &e))?;
        for entry in page.spot_price_history() {
            let (Some(instance_type), Some(zone), Some(price)) =
                (entry.instance_type(), entry.availability_zone(), entry.spot_price())
            else {
                continue;
            };
            let price = parse_price(price).map_err(|e| AwsError::plain(action.clone(), e))?;
            let at = entry.timestamp().map(|t| (t.secs(), t.subsec_nanos())).unwrap_or_default();
            entries.push((instance_type.as_str().to_owned(), zone.to_owned(), at, price));
        }
    }
    Ok(newest_per_pool(entries))
}

/// The newest price of each pool among history entries `(type, zone, when, price)`.
fn newest_per_pool(entries: Vec<(String, String, (i64, u32), BigDecimal)>) -> Vec<SpotPrice> {
    let mut newest: HashMap<(String, String), ((i64, u32), BigDecimal)> = HashMap::new();
    for (instance_type, zone, at, price) in entries {
        let pool = newest.entry((instance_type, zone)).or_insert_with(|| (at, price.clone()));
        if at > pool.0 {
            *pool = (at, price);
        }
    }
    let mut pools: Vec<SpotPrice> = newest
        .into_iter()
        .map(|((instance_type, availability_zone), (_, price))| SpotPrice {
            instance_type,
            availability_zone,
            price,
        })
        .collect();
    sort_cheapest_first(&mut pools);
    pools
}

/// Cheapest first; ties by instance type, then zone.
pub fn sort_cheapest_first(pools: &mut [SpotPrice]) {
    pools.sort_by(|a, b| {
        a.price
            .cmp(&b.price)
            .then_with(|| a.instance_type.cmp(&b.instance_type))
            .then_with(|| a.availability_zone.cmp(&b.availability_zone))
    });
}

/// The On-Demand price (USD per hour) of each of `instance_types` in `location`, for
/// `operating_system` on shared tenancy without pre-installed software; a type the
/// Price List has no such product for is absent.
pub async fn on_demand_prices(
    pricing: &aws_sdk_pricing::Client,
    instance_types: &[String],
    location: &str,
    operating_system: &str,
) -> Result<BTreeMap<String, BigDecimal>, AwsError> {
    use aws_sdk_pricing::types::{Filter, FilterType};
    let action = format!("reading the On-Demand prices of {} in {location}", instance_types.join(", "));
    let filter = |kind: FilterType, field: &str, value: &str| {
        Filter::builder()
            .r#type(kind)
            .field(field)
            .value(value)
            .build()
            .map_err(|e| AwsError::plain(action.clone(), e.to_string()))
    };
    // ANY_OF takes the instance types as one comma-separated value: one call for all.
    let filters = vec![
        filter(FilterType::AnyOf, "instanceType", &instance_types.join(","))?,
        filter(FilterType::TermMatch, "location", location)?,
        filter(FilterType::TermMatch, "operatingSystem", operating_system)?,
        filter(FilterType::TermMatch, "tenancy", "Shared")?,
        filter(FilterType::TermMatch, "preInstalledSw", "NA")?,
        filter(FilterType::TermMatch, "capacitystatus", "Used")?,
    ];
    let mut pages = pricing
        .get_products()
        .service_code("AmazonEC2")
        .format_version("aws_v1")
        .set_filters(Some(filters))
        .max_results(PRICE_LIST_PAGE_SIZE)
        .into_paginator()
        .send();
    let mut prices = BTreeMap::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| AwsError::new(action.clone(), &e))?;
        for entry in page.price_list() {
            let (instance_type, price) =
                on_demand_entry(entry).map_err(|e| AwsError::plain(action.clone(), e))?;
            let Some(price) = price else { continue };
            match prices.get(&instance_type) {
                Some(known) if *known != price => tracing::debug!(
                    %instance_type, kept = %known, other = %price,
                    "the Price List has more than one On-Demand price; keeping the first"
                ),
                Some(_) => {}
                None => {
                    prices.insert(instance_type, price);
                }
            }
        }
    }
    Ok(prices)
}

/// One entry of a GetProducts answer (a product and its terms, as a JSON string): its
/// instance type and its On-Demand price per hour in USD, if it has one.
pub fn on_demand_entry(json: &str) -> Result<(String, Option<BigDecimal>), String> {
    let entry: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("a Price List entry is not JSON: {e}"))?;
    let instance_type = entry
        .pointer("/product/attributes/instanceType")
        .and_then(serde_json::Value::as_str)
        .ok_or("a Price List entry has no product.attributes.instanceType")?
        .to_owned();
    let mut price = None;
    // terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD, per hour.
    let offers = entry.pointer("/terms/OnDemand").and_then(serde_json::Value::as_object);
    for offer in offers.into_iter().flat_map(|o| o.values()) {
        let dimensions = offer.get("priceDimensions").and_then(serde_json::Value::as_object);
        for dimension in dimensions.into_iter().flat_map(|d| d.values()) {
            if dimension.get("unit").and_then(serde_json::Value::as_str).is_some_and(|u| u != "Hrs") {
                continue;
            }
            let Some(usd) = dimension.pointer("/pricePerUnit/USD").and_then(serde_json::Value::as_str) else {
                continue;
            };
            let usd = parse_price(usd).map_err(|e| format!("{instance_type}: {e}"))?;
            if price.is_none() {
                price = Some(usd);
            }
        }
    }
    Ok((instance_type, price))
}

/// A price as AWS writes it ("0.006200", "0.0208000000").
pub fn parse_price(text: &str) -> Result<BigDecimal, String> {
    let trimmed = text.trim();
    let valid = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    match BigDecimal::from_str(trimmed) {
        Ok(price) if valid => Ok(price),
        _ => Err(format!("{text:?} is not a price")),
    }
}

/// A price as the provider shows it: plain decimal notation without trailing zeros
/// ("0.0062", "0.0208", "1.5", "0").
pub fn price_text(price: &BigDecimal) -> String {
    price.normalized().to_plain_string()
}

/// The share of the On-Demand price a Spot price saves, in whole percent rounded
/// down: `floor((on_demand - spot) * 100 / on_demand)`, computed exactly. Rounding
/// down never overstates a saving; a Spot price above On-Demand gives a negative
/// figure. `None` when the On-Demand price is not positive.
pub fn savings_percent(on_demand: &BigDecimal, spot: &BigDecimal) -> Option<i64> {
    if on_demand.sign() != Sign::Plus {
        return None;
    }
    // Both as integers of the same scale: the quotient of integers is exact.
    let scale = on_demand.fractional_digit_count().max(spot.fractional_digit_count()).max(0);
    let (on_demand, _) = on_demand.with_scale(scale).into_bigint_and_scale();
    let (spot, _) = spot.with_scale(scale).into_bigint_and_scale();
    let numerator = (&on_demand - &spot) * BigInt::from(100);
    let quotient = &numerator / &on_demand;
    let remainder = &numerator % &on_demand;
    // Integer division truncates toward zero; the divisor is positive, so a negative
    // numerator with a remainder rounds one further down.
    let floor = if remainder.sign() == Sign::Minus { quotient - 1 } else { quotient };
    i64::try_from(floor).ok()
}

/// Whole USD digits kept by [`cost_over`]: the Price List's own precision.
pub const COST_SCALE: i64 = 10;

/// What `instance_seconds` cost at `hourly` USD per hour for `instances` instances
/// (`hourly` is their price together): `instance_seconds * hourly / (instances * 3600)`,
/// rounded half up to [`COST_SCALE`] decimal places, computed on integers. `None` for
/// no instances.
pub fn cost_over(instance_seconds: u64, hourly: &BigDecimal, instances: usize) -> Option<BigDecimal> {
    if instances == 0 {
        return None;
    }
    let scale = hourly.fractional_digit_count().max(0);
    let (hourly, _) = hourly.with_scale(scale).into_bigint_and_scale();
    let numerator = BigInt::from(instance_seconds) * hourly * BigInt::from(10).pow(COST_SCALE as u32);
    let denominator =
        BigInt::from(instances) * BigInt::from(3600) * BigInt::from(10).pow(u32::try_from(scale).ok()?);
    // Half up, for a non-negative quotient: floor((2n + d) / 2d).
    let rounded = (numerator * 2 + &denominator) / (denominator * 2);
    Some(BigDecimal::new(rounded, COST_SCALE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> BigDecimal {
        parse_price(text).expect("price")
    }

    /// An entry as GetProducts returns it (abridged: AWS's also carry Reserved terms and
    /// many more attributes).
    fn entry(instance_type: &str, usd: &str) -> String {
        serde_json::json!({
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {
                    "instanceType": instance_type,
                    "location": "US East (N. Virginia)",
                    "operatingSystem": "Linux",
                    "tenancy": "Shared",
                    "preInstalledSw": "NA",
                    "capacitystatus": "Used",
                    "usagetype": format!("BoxUsage:{instance_type}"),
                },
                "sku": "JRTCKXETXF0SKU01",
            },
            "serviceCode": "AmazonEC2",
            "terms": {
                "OnDemand": {
                    "JRTCKXETXF0SKU01.JRTCKXETXF": {
                        "offerTermCode": "JRTCKXETXF",
                        "sku": "JRTCKXETXF0SKU01",
                        "effectiveDate": "2025-06-01T00:00:00Z",
                        "priceDimensions": {
                            "JRTCKXETXF0SKU01.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "beginRange": "0",
                                "endRange": "Inf",
                                "description": format!("${usd} per On Demand Linux {instance_type} Instance Hour"),
                                "pricePerUnit": { "USD": usd },
                                "appliesTo": [],
                            }
                        },
                        "termAttributes": {},
                    }
                },
                "Reserved": {
                    "JRTCKXETXF0SKU01.4NA7Y494T4": {
                        "priceDimensions": {
                            "JRTCKXETXF0SKU01.4NA7Y494T4.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": { "USD": "0.0130000000" },
                            }
                        }
                    }
                }
            },
            "version": "20250601000000",
            "publicationDate": "2025-06-01T00:00:00Z",
        })
        .to_string()
    }

    #[test]
    fn a_price_list_entry_gives_its_type_and_on_demand_hourly_price() {
        let (instance_type, price) = on_demand_entry(&entry("t3.small", "0.0208000000")).expect("entry");
        assert_eq!(instance_type, "t3.small");
        assert_eq!(price.as_ref().map(price_text).as_deref(), Some("0.0208"), "not the Reserved price");
    }

    #[test]
    fn an_entry_without_on_demand_terms_has_no_price() {
        let json = r#"{"product":{"attributes":{"instanceType":"m5.large"}},"terms":{"Reserved":{}}}"#;
        assert_eq!(on_demand_entry(json).expect("entry"), ("m5.large".to_owned(), None));
        let monthly = r#"{"product":{"attributes":{"instanceType":"m5.large"}},"terms":{"OnDemand":{"o":{"priceDimensions":{"r":{"unit":"Quantity","pricePerUnit":{"USD":"5"}}}}}}}"#;
        assert_eq!(on_demand_entry(monthly).expect("entry").1, None, "only hourly prices");
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        assert!(on_demand_entry("not json").is_err());
        assert!(on_demand_entry(r#"{"product":{}}"#).expect_err("no type").contains("instanceType"));
        let bad = entry("t3.small", "0.02O8");
        assert!(on_demand_entry(&bad).expect_err("bad price").contains("not a price"));
    }

    #[test]
    fn prices_parse_exactly_and_show_without_trailing_zeros() {
        assert_eq!(price_text(&d("0.006200")), "0.0062");
        assert_eq!(price_text(&d("0.0208000000")), "0.0208");
        assert_eq!(price_text(&d("1.500")), "1.5");
        assert_eq!(price_text(&d("12.0000")), "12");
        assert_eq!(price_text(&d("100")), "100");
        assert_eq!(price_text(&d("0.0000000000")), "0");
        for bad in ["", "-0.1", "1e-3", "0,5", "NaN", "0.1.2"] {
            assert!(parse_price(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn savings_are_whole_percent_rounded_down() {
        // (0.0208 - 0.0062) / 0.0208 = 70.19…%
        assert_eq!(savings_percent(&d("0.0208"), &d("0.0062")), Some(70));
        // Exactly 50%: no rounding error takes it to 49.
        assert_eq!(savings_percent(&d("0.0208000000"), &d("0.010400")), Some(50));
        // (0.096 - 0.0337) / 0.096 = 64.89…%: down, not to the nearest.
        assert_eq!(savings_percent(&d("0.096"), &d("0.0337")), Some(64));
        // One ten-thousandth short of 75% stays at 74.
        assert_eq!(savings_percent(&d("1"), &d("0.2501")), Some(74));
        assert_eq!(savings_percent(&d("0.0104"), &d("0.0104")), Some(0));
        // Spot above On-Demand: (0.1 - 0.1032) / 0.1 = -3.2%, rounded down to -4.
        assert_eq!(savings_percent(&d("0.1"), &d("0.1032")), Some(-4));
        assert_eq!(savings_percent(&d("0"), &d("0.01")), None);
        // Floats would get these wrong: 0.3 - 0.1 = 0.19999…
        assert_eq!(savings_percent(&d("0.3"), &d("0.1")), Some(66));
        assert_eq!(savings_percent(&d("0.1"), &d("0.07")), Some(30));
    }

    #[test]
    fn the_newest_entry_of_each_pool_is_its_price_and_pools_sort_cheapest_first() {
        let e = |t: &str, z: &str, at: i64, p: &str| (t.to_owned(), z.to_owned(), (at, 0), d(p));
        let pools = newest_per_pool(vec![
            e("t3.small", "eu-west-1a", 100, "0.0070"),
            e("t3.small", "eu-west-1a", 200, "0.0065"),
            e("t3.small", "eu-west-1b", 150, "0.0062"),
            e("t3a.small", "eu-west-1b", 300, "0.0062"),
            e("t3a.small", "eu-west-1a", 50, "0.0059"),
            e("t3a.small", "eu-west-1a", 10, "0.0010"),
        ]);
        let seen: Vec<(&str, &str, String)> = pools
            .iter()
            .map(|p| (p.instance_type.as_str(), p.availability_zone.as_str(), price_text(&p.price)))
            .collect();
        assert_eq!(
            seen,
            [
                ("t3a.small", "eu-west-1a", "0.0059".to_owned()),
                ("t3.small", "eu-west-1b", "0.0062".to_owned()),
                ("t3a.small", "eu-west-1b", "0.0062".to_owned()),
                ("t3.small", "eu-west-1a", "0.0065".to_owned()),
            ]
        );
    }

    #[test]
    fn a_cost_over_time_is_exact_then_rounded_half_up() {
        // 100 instance-seconds of one instance at 0.0062/h: 0.62 / 3600 = 0.000172222…
        assert_eq!(cost_over(100, &d("0.0062"), 1).map(|c| price_text(&c)).as_deref(), Some("0.0001722222"));
        // Two instances together at 0.0123/h: an instance-hour at their mean price.
        assert_eq!(cost_over(3600, &d("0.0123"), 2).map(|c| price_text(&c)).as_deref(), Some("0.00615"));
        assert_eq!(cost_over(1, &d("0.0018"), 1).map(|c| price_text(&c)).as_deref(), Some("0.0000005"));
        // 1 s at 0.00000018/h is 0.00000000005, half of the last digit kept: up.
        assert_eq!(
            cost_over(1, &d("0.00000018"), 1).map(|c| price_text(&c)).as_deref(),
            Some("0.0000000001")
        );
        assert_eq!(cost_over(1, &d("0.00000017"), 1).map(|c| price_text(&c)).as_deref(), Some("0"));
        assert_eq!(cost_over(0, &d("0.0062"), 1).map(|c| price_text(&c)).as_deref(), Some("0"));
        assert_eq!(cost_over(10, &d("0.0062"), 0), None);
    }

    #[test]
    fn an_instance_is_priced_as_the_spot_product_of_its_platform() {
        assert_eq!(product_description_of(Some("Linux/UNIX"), None), "Linux/UNIX");
        assert_eq!(
            product_description_of(Some("Red Hat Enterprise Linux"), None),
            "Red Hat Enterprise Linux"
        );
        assert_eq!(product_description_of(Some("Windows"), Some("windows")), "Windows");
        assert_eq!(
            product_description_of(Some("Windows with SQL Server Standard"), Some("windows")),
            "Windows"
        );
        assert_eq!(product_description_of(Some("Red Hat BYOL Linux"), None), "Linux/UNIX");
        assert_eq!(product_description_of(None, None), "Linux/UNIX");
        for described in ["Linux/UNIX", "SUSE Linux", "Red Hat Enterprise Linux", "Windows"] {
            assert!(PRODUCT_DESCRIPTIONS.contains(&described));
            assert!(operating_system(described).is_some());
        }
    }

    #[test]
    fn every_known_commercial_region_has_a_location() {
        for region in crate::config::KNOWN_REGIONS {
            let commercial =
                !region.starts_with("cn-") && !region.contains("-gov-") && !region.contains("iso");
            let commercial = commercial && !region.starts_with("eusc-");
            assert_eq!(location(region).is_some(), commercial, "{region}");
        }
        assert_eq!(location("us-east-1"), Some("US East (N. Virginia)"));
        assert_eq!(location("eu-west-1"), Some("EU (Ireland)"));
    }
}
