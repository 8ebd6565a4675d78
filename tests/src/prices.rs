//! Prices in the emulator (`scripts/emulator/prices.py`): the Spot price of a pool
//! and the On-Demand price of an instance type, set per account so that a test knows
//! the figures a read must give.

use crate::Account;
use anyhow::Context as _;
use serde_json::{Value, json};

/// A Spot price change of one pool (instance type and zone) of the Linux/UNIX product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotPriceSeed {
    pub instance_type: String,
    pub zone: String,
    /// USD per hour, as AWS writes it ("0.006800").
    pub price: String,
    /// How long ago (real seconds) the price took effect.
    pub seconds_ago: u64,
}

impl SpotPriceSeed {
    /// `price` for the pool of `instance_type` in `zone`, in effect from now on.
    pub fn new(instance_type: &str, zone: &str, price: &str) -> Self {
        Self { instance_type: instance_type.into(), zone: zone.into(), price: price.into(), seconds_ago: 0 }
    }

    /// The same price change, made `seconds` ago.
    #[must_use]
    pub fn ago(mut self, seconds: u64) -> Self {
        self.seconds_ago = seconds;
        self
    }
}

impl Account {
    /// Records Spot price changes in this account's pools: DescribeSpotPriceHistory
    /// answers them.
    pub fn seed_spot_prices(&self, seeds: &[SpotPriceSeed]) -> anyhow::Result<Value> {
        let body: Vec<Value> = seeds
            .iter()
            .map(|s| {
                json!({
                    "instance_type": s.instance_type,
                    "zone": s.zone,
                    "price": s.price,
                    "seconds_ago": s.seconds_ago,
                })
            })
            .collect();
        self.prices_call("/_immutable/prices/spot", &Value::Array(body))
    }

    /// Sets On-Demand prices (Linux, shared tenancy) the Price List answers this
    /// account: `(instance type, region, USD per hour)`.
    pub fn seed_on_demand_prices(&self, prices: &[(&str, &str, &str)]) -> anyhow::Result<Value> {
        let body: Vec<Value> = prices
            .iter()
            .map(|(instance_type, region, price)| {
                json!({ "instance_type": instance_type, "region": region, "price": price })
            })
            .collect();
        self.prices_call("/_immutable/prices/on_demand", &Value::Array(body))
    }

    /// Takes permissions away from this account: each `"<service>:<Action>"` of
    /// `actions` is refused as AWS refuses a call no policy allows.
    pub fn deny(&self, actions: &[&str]) -> anyhow::Result<Value> {
        self.behave(json!({ "deny": actions }))
    }

    fn prices_call(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self.control("POST", path, Some(body))?;
        serde_json::from_str(&answer).with_context(|| format!("prices answer is not JSON: {answer}"))
    }
}
