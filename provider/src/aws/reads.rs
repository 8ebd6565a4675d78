//! Reads shared by the resources of one Terraform run.
//!
//! Terraform refreshes every resource with its own `ReadResource` call, up to ten at a
//! time. Asking AWS once per resource would cost an estate of N apps at least 3N
//! requests per plan and run into EC2's request rate limits
//! (`DescribeSpotFleetRequests` refills at a few requests per second per account).
//! Instead, through one [`Coalescer`] each:
//!
//! - Spot Fleets: the first read takes a snapshot of the account, every Spot Fleet
//!   request and the running instances of every app's fleet (two calls, made at the
//!   same time), and the reads that follow answer from it. A fleet the snapshot does
//!   not know (created since, or gone) is asked about on its own, and so are the
//!   instances of an open fleet the snapshot found none of (say, an imported fleet
//!   whose instances carry no app tag).
//! - Target health: one `DescribeTargetHealth` per target group, all targets at once.
//! - AMIs: lookups by id that arrive while a `DescribeImages` call is in flight wait
//!   for the next call, which asks for all of them.
//!
//! - Spot Fleets as they are now ([`Reads::fleets_now`], for the checks before a change:
//!   a create's ownership check, a rollout looking for a fleet left by an interrupted
//!   run, the clean-up of strays): a listing in flight is shared by everyone who asks
//!   meanwhile, and nothing is remembered, so the hundred creates of one apply list the
//!   account's fleets a few times rather than three hundred times.
//!
//! - Prices ([`PriceReads`]): one `DescribeSpotPriceHistory` and one `GetProducts` per
//!   set of instance types, remembered for [`PRICES_TTL`] and not dropped by changes
//!   (nothing the provider does moves a price), so that every data source and resource
//!   of a run that asks about the same types shares them.
//!
//! A lone read makes the same number of calls as without sharing and starts them at
//! once, so it waits no longer. Answers live [`SNAPSHOT_TTL`] at most, and anything the
//! provider changes drops them all ([`Reads::changing`]).

use super::coalesce::{Coalescer, Mode, Registry, in_flight_only};
use super::images::{self, Image};
use super::instances::{self, RunningInstance};
use super::prices::{self, SpotPrice};
use super::{AwsError, fleets, target_groups};
use crate::health::TargetHealth;
use bigdecimal::BigDecimal;
use futures::FutureExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long an answer is shared: long enough for a refresh of a large estate, short
/// enough that a long-lived provider process does not serve old news.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(10);

/// A fleet and its running instances, as a read sees them.
#[derive(Clone, Debug)]
pub struct ObservedFleet {
    pub fleet: fleets::Fleet,
    /// The ids of its running instances, sorted.
    pub instances: Vec<String>,
    /// The same instances with their type, zone, lifecycle and platform, from the same
    /// Describe call; empty when that call was not made (a fleet with no instance).
    pub running: Vec<RunningInstance>,
}

impl ObservedFleet {
    fn new(fleet: fleets::Fleet, running: Vec<RunningInstance>) -> Self {
        let instances = running.iter().map(|i| i.id.clone()).collect();
        Self { fleet, instances, running }
    }
}

/// Every Spot Fleet request of the account and the running instances of each, with
/// what DescribeInstances says of them (type, zone, lifecycle, platform: what prices
/// them, at no extra request).
#[derive(Debug, Default)]
struct FleetView {
    fleets: HashMap<String, fleets::Fleet>,
    instances: HashMap<String, Vec<RunningInstance>>,
}

/// Shared reads of one provider process.
pub struct Reads {
    ec2: aws_sdk_ec2::Client,
    registry: Registry,
    fleets: Arc<Coalescer<(), Arc<FleetView>>>,
    health: Arc<Coalescer<String, Arc<Vec<TargetHealth>>>>,
    images: Arc<Coalescer<String, Image>>,
    listing: Arc<Coalescer<(), Arc<Vec<fleets::Fleet>>>>,
    /// Fleets by id, described now: the status polls of concurrent rollouts.
    states: Arc<Coalescer<String, fleets::Fleet>>,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads").finish_non_exhaustive()
    }
}

impl Reads {
    pub fn new(ec2: aws_sdk_ec2::Client, elbv2: aws_sdk_elasticloadbalancingv2::Client) -> Self {
        Self::with_ttl(ec2, elbv2, SNAPSHOT_TTL)
    }

    pub fn with_ttl(
        ec2: aws_sdk_ec2::Client,
        elbv2: aws_sdk_elasticloadbalancingv2::Client,
        ttl: Duration,
    ) -> Self {
        let mut registry = Registry::new(ttl);
        let client = ec2.clone();
        let fleets = registry.coalescer("listing Spot Fleets", Mode::PerKey, move |_: Vec<()>| {
            let ec2 = client.clone();
            async move { Ok(HashMap::from([((), fetch_fleet_view(&ec2).await?)])) }.boxed()
        });
        let health =
            registry.coalescer("describing target health", Mode::PerKey, move |groups: Vec<String>| {
                let elbv2 = elbv2.clone();
                async move {
                    let mut found = HashMap::new();
                    for group in groups {
                        let targets = target_groups::health(&elbv2, &group, None).await?;
                        found.insert(group, Arc::new(targets));
                    }
                    Ok(found)
                }
                .boxed()
            });
        let client = ec2.clone();
        let images = registry.coalescer("describing AMIs", Mode::Batched, move |ids: Vec<String>| {
            let ec2 = client.clone();
            async move { images::find_images_by_ids(&ec2, &ids).await }.boxed()
        });
        let client = ec2.clone();
        let listing = in_flight_only("listing Spot Fleets", Mode::PerKey, move |_: Vec<()>| {
            let ec2 = client.clone();
            async move { Ok(HashMap::from([((), Arc::new(fleets::all_fleets(&ec2).await?))])) }.boxed()
        });
        let client = ec2.clone();
        let states = in_flight_only("describing Spot Fleets", Mode::Batched, move |ids: Vec<String>| {
            let ec2 = client.clone();
            async move {
                let mut found = HashMap::new();
                for chunk in ids.chunks(FLEETS_PER_CALL) {
                    for fleet in fleets::describe_fleets(&ec2, chunk).await? {
                        found.insert(fleet.id.clone(), fleet);
                    }
                }
                Ok(found)
            }
            .boxed()
        });
        Self { ec2, registry, fleets, health, images, listing, states }
    }

    /// Forgets everything read so far.
    pub fn invalidate(&self) {
        self.registry.forget_all();
    }

    /// Marks a change the provider is about to make: what was read before is dropped
    /// now, and what is read during the change is dropped when the guard goes.
    pub fn changing(&self) -> Changing<'_> {
        self.invalidate();
        Changing(self)
    }

    async fn view(&self) -> Result<Arc<FleetView>, AwsError> {
        let view = self.fleets.get(()).await?;
        view.ok_or_else(|| AwsError::plain("listing Spot Fleets", "the snapshot went missing"))
    }

    /// The fleet `id` and its running instances; `None` when AWS no longer knows it.
    pub async fn fleet(&self, id: &str) -> Result<Option<ObservedFleet>, AwsError> {
        let view = self.view().await?;
        if let Some(found) = view.fleets.get(id) {
            let running = view.instances.get(id).cloned().unwrap_or_default();
            // An open fleet with capacity but no tagged instance: ask the fleet itself
            // rather than report it empty.
            if running.is_empty() && found.is_open() && found.fulfilled_capacity > 0.0 {
                return Ok(Some(self.asked_alone(found.clone()).await?));
            }
            return Ok(Some(ObservedFleet::new(found.clone(), running)));
        }
        // Unknown to the snapshot: requested since it was taken, or gone.
        let Some(found) = fleets::find_fleet(&self.ec2, id).await? else { return Ok(None) };
        if !found.is_open() {
            return Ok(Some(ObservedFleet::new(found, Vec::new())));
        }
        Ok(Some(self.asked_alone(found).await?))
    }

    /// A fleet the snapshot cannot answer for: its instances from the fleet itself, then
    /// what they are (one DescribeInstances for them).
    async fn asked_alone(&self, fleet: fleets::Fleet) -> Result<ObservedFleet, AwsError> {
        let ids = fleets::fleet_instances(&self.ec2, &fleet.id).await?;
        let mut running = instances::running(&self.ec2, &ids).await?;
        // An instance the fleet names that DescribeInstances did not (yet) show still
        // counts as the fleet's, without its details.
        for id in &ids {
            if !running.iter().any(|r| &r.id == id) {
                running.push(RunningInstance::unknown(id));
            }
        }
        running.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ObservedFleet::new(fleet, running))
    }

    /// The fleet `id` as AWS describes it now: from a call made after this one began
    /// (or, when another caller asked for the same fleet meanwhile, one in flight when it
    /// did), shared with the fleets other rollouts poll at the same time, so that many
    /// rollouts polling their fleets make one DescribeSpotFleetRequests a round rather
    /// than one each. `None` when AWS no longer knows it.
    pub async fn fleet_now(&self, id: &str) -> Result<Option<fleets::Fleet>, AwsError> {
        self.states.get(id.to_owned()).await
    }

    /// Every Spot Fleet request of the account, from a listing made after this call
    /// began or in flight when it did (see the module's documentation).
    pub async fn fleets_now(&self) -> Result<Arc<Vec<fleets::Fleet>>, AwsError> {
        let listing = self.listing.get(()).await?;
        listing.ok_or_else(|| AwsError::plain("listing Spot Fleets", "the listing went missing"))
    }

    /// The open fleets tagged with `app`, from the same snapshot as [`Reads::fleet`]: the
    /// plans and reads of many apps share one listing.
    pub async fn open_fleets(&self, app: &str) -> Result<Vec<fleets::Fleet>, AwsError> {
        let view = self.view().await?;
        let mut open: Vec<fleets::Fleet> =
            view.fleets.values().filter(|f| f.is_open_of(app)).cloned().collect();
        open.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(open)
    }

    /// The health of every target registered in the target group.
    pub async fn target_health(&self, target_group_arn: &str) -> Result<Arc<Vec<TargetHealth>>, AwsError> {
        Ok(self.health.get(target_group_arn.to_owned()).await?.unwrap_or_default())
    }

    /// The AMI `id`, or `None` when it does not exist (or is not visible to us).
    pub async fn image(&self, id: &str) -> Result<Option<Image>, AwsError> {
        self.images.get(id.to_owned()).await
    }
}

/// Fleet ids per DescribeSpotFleetRequests of [`Reads::fleet_now`].
const FLEETS_PER_CALL: usize = 100;

/// How long prices are remembered. A provider process lives for one Terraform command;
/// this bounds what a long-lived one (`--debug`) serves.
pub const PRICES_TTL: Duration = Duration::from_secs(3600);

/// Instance types as a key: sorted, each once.
fn type_set(instance_types: &[String]) -> Vec<String> {
    let mut types = instance_types.to_vec();
    types.sort();
    types.dedup();
    types
}

/// The instance types and product description of a Spot price read.
type SpotKey = (Vec<String>, String);

/// The instance types, Price List location and operating system of an On-Demand read.
type OnDemandKey = (Vec<String>, String, String);

/// What a price read gives: the prices, or the failure that leaves them unknown without
/// failing the read (see [`prices::tolerated`]), remembered like an answer so that the
/// apps and data sources of a run that lack a permission ask once, not once each.
type PriceAnswer<T> = Result<Arc<T>, AwsError>;

/// Prices read by one provider process: Spot prices by [`SpotKey`], On-Demand prices
/// by [`OnDemandKey`].
pub struct PriceReads {
    spot: Arc<Coalescer<SpotKey, PriceAnswer<Vec<SpotPrice>>>>,
    on_demand: Arc<Coalescer<OnDemandKey, PriceAnswer<BTreeMap<String, BigDecimal>>>>,
    /// Whether an app's missing prices were reported (see [`PriceReads::first_cost_warning`]).
    cost_warned: AtomicBool,
}

impl std::fmt::Debug for PriceReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PriceReads").finish_non_exhaustive()
    }
}

/// A price read's result as the coalescer keeps it: a tolerated failure is an answer.
fn kept<T>(result: Result<T, AwsError>, price_list: bool) -> Result<PriceAnswer<T>, AwsError> {
    match result {
        Ok(found) => Ok(Ok(Arc::new(found))),
        Err(e) if prices::tolerated(&e, price_list) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

impl PriceReads {
    pub fn new(ec2: aws_sdk_ec2::Client, pricing: aws_sdk_pricing::Client) -> Self {
        Self::with_ttl(ec2, pricing, PRICES_TTL)
    }

    pub fn with_ttl(ec2: aws_sdk_ec2::Client, pricing: aws_sdk_pricing::Client, ttl: Duration) -> Self {
        // A registry of their own: `Reads::changing` does not drop prices.
        let mut registry = Registry::new(ttl);
        let spot = registry.coalescer("reading Spot prices", Mode::PerKey, move |keys: Vec<SpotKey>| {
            let ec2 = ec2.clone();
            async move {
                let mut found = HashMap::new();
                for (types, description) in keys {
                    let prices = kept(prices::spot_prices(&ec2, &types, &description).await, false)?;
                    found.insert((types, description), prices);
                }
                Ok(found)
            }
            .boxed()
        });
        let on_demand =
            registry.coalescer("reading On-Demand prices", Mode::PerKey, move |keys: Vec<OnDemandKey>| {
                let pricing = pricing.clone();
                async move {
                    let mut found = HashMap::new();
                    for (types, location, os) in keys {
                        let prices =
                            kept(prices::on_demand_prices(&pricing, &types, &location, &os).await, true)?;
                        found.insert((types, location, os), prices);
                    }
                    Ok(found)
                }
                .boxed()
            });
        Self { spot, on_demand, cost_warned: AtomicBool::new(false) }
    }

    /// The current Spot price of every pool of `instance_types` in the region.
    pub async fn spot(
        &self,
        instance_types: &[String],
        product_description: &str,
    ) -> Result<Arc<Vec<SpotPrice>>, AwsError> {
        let key = (type_set(instance_types), product_description.to_owned());
        let found = self.spot.get(key).await?;
        found.unwrap_or_else(|| Err(AwsError::plain("reading Spot prices", "the answer went missing")))
    }

    /// The On-Demand price of each of `instance_types` the Price List has in `location`
    /// for `operating_system`.
    pub async fn on_demand(
        &self,
        instance_types: &[String],
        location: &str,
        operating_system: &str,
    ) -> Result<Arc<BTreeMap<String, BigDecimal>>, AwsError> {
        let key = (type_set(instance_types), location.to_owned(), operating_system.to_owned());
        let found = self.on_demand.get(key).await?;
        found.unwrap_or_else(|| Err(AwsError::plain("reading On-Demand prices", "the answer went missing")))
    }

    /// Whether the caller is the first in this provider process to report that an
    /// app's cost could not be worked out: the apps of a run share one warning (every
    /// app of a run meets the same missing permission), given by whichever app meets it
    /// first. Terraform starts a provider process for a plan and another for an apply.
    pub fn first_cost_warning(&self) -> bool {
        !self.cost_warned.swap(true, Ordering::SeqCst)
    }
}

/// Dropped when a change is over; see [`Reads::changing`].
#[must_use = "the guard drops what was read during the change when it goes"]
pub struct Changing<'a>(&'a Reads);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

async fn fetch_fleet_view(ec2: &aws_sdk_ec2::Client) -> Result<Arc<FleetView>, AwsError> {
    let (fleets, instances) = tokio::join!(fleets::all_fleets(ec2), fleets::all_fleet_instances(ec2));
    let fleets = fleets?.into_iter().map(|f| (f.id.clone(), f)).collect();
    Ok(Arc::new(FleetView { fleets, instances: instances? }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::Client as Ec2;
    use aws_sdk_ec2::types::{
        Image as SdkImage, ImageState, Instance, Reservation, SpotFleetRequestConfig, Tag,
    };
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn elbv2() -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::from_conf(
            aws_sdk_elasticloadbalancingv2::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new("eu-west-1"))
                .build(),
        )
    }

    fn sdk_fleet(id: &str) -> SpotFleetRequestConfig {
        SpotFleetRequestConfig::builder()
            .spot_fleet_request_id(id)
            .spot_fleet_request_state(aws_sdk_ec2::types::BatchState::Active)
            .build()
    }

    fn sdk_instance(id: &str, fleet: &str) -> Instance {
        Instance::builder()
            .instance_id(id)
            .tags(Tag::builder().key(fleets::FLEET_ID_TAG).value(fleet).build())
            .tags(Tag::builder().key(conventions::fleet_tags::APP).value("web").build())
            .build()
    }

    #[tokio::test]
    async fn an_open_fleet_without_app_tagged_instances_is_asked_about_alone() {
        let fleets = mock!(Ec2::describe_spot_fleet_requests).then_output(|| {
            let imported = SpotFleetRequestConfig::builder()
                .spot_fleet_request_id("sfr-imported")
                .spot_fleet_request_state(aws_sdk_ec2::types::BatchState::Active)
                .spot_fleet_request_config(
                    aws_sdk_ec2::types::SpotFleetRequestConfigData::builder()
                        .fulfilled_capacity(1.0)
                        .target_capacity(1)
                        .iam_fleet_role("arn:aws:iam::1:role/fleet")
                        .build(),
                )
                .build();
            aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput::builder()
                .spot_fleet_request_configs(imported)
                .build()
        });
        let none = mock!(Ec2::describe_instances).then_output(|| {
            aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder().build()
        });
        let alone = mock!(Ec2::describe_spot_fleet_instances)
            .match_requests(|r| r.spot_fleet_request_id() == Some("sfr-imported"))
            .then_output(|| {
                aws_sdk_ec2::operation::describe_spot_fleet_instances::DescribeSpotFleetInstancesOutput::builder()
                    .active_instances(aws_sdk_ec2::types::ActiveInstance::builder().instance_id("i-9").build())
                    .build()
            });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&fleets, &none, &alone]);
        let reads = Reads::new(ec2, elbv2());
        let observed = reads.fleet("sfr-imported").await.expect("read").expect("fleet");
        assert_eq!(observed.instances, ["i-9"]);
        assert_eq!(alone.num_calls(), 1);
    }

    #[tokio::test]
    async fn status_polls_at_once_describe_their_fleets_in_one_call_and_nothing_is_remembered() {
        use aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput;
        let ids =
            |r: &aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsInput| {
                let mut ids = r.spot_fleet_request_ids().to_vec();
                ids.sort();
                ids
            };
        let together = mock!(Ec2::describe_spot_fleet_requests)
            .match_requests(move |r| ids(r) == ["sfr-1", "sfr-2", "sfr-3"])
            .then_output(|| {
                DescribeSpotFleetRequestsOutput::builder()
                    .spot_fleet_request_configs(sdk_fleet("sfr-1"))
                    .spot_fleet_request_configs(sdk_fleet("sfr-2"))
                    .spot_fleet_request_configs(sdk_fleet("sfr-3"))
                    .build()
            });
        let alone = mock!(Ec2::describe_spot_fleet_requests)
            .match_requests(move |r| ids(r) == ["sfr-1"])
            .then_output(|| {
                DescribeSpotFleetRequestsOutput::builder()
                    .spot_fleet_request_configs(sdk_fleet("sfr-1"))
                    .build()
            });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&together, &alone]);
        let reads = Reads::new(ec2, elbv2());
        let (one, two, three) =
            tokio::join!(reads.fleet_now("sfr-1"), reads.fleet_now("sfr-2"), reads.fleet_now("sfr-3"));
        for (answer, id) in [(one, "sfr-1"), (two, "sfr-2"), (three, "sfr-3")] {
            assert_eq!(answer.expect("described").expect("the fleet").id, id);
        }
        assert_eq!((together.num_calls(), alone.num_calls()), (1, 0));
        // The next poll is described anew.
        assert_eq!(reads.fleet_now("sfr-1").await.expect("described").expect("the fleet").id, "sfr-1");
        assert_eq!((together.num_calls(), alone.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn concurrent_fleet_reads_share_one_snapshot() {
        let fleets = mock!(Ec2::describe_spot_fleet_requests).then_output(|| {
            aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput::builder()
                .spot_fleet_request_configs(sdk_fleet("sfr-1"))
                .spot_fleet_request_configs(sdk_fleet("sfr-2"))
                .build()
        });
        let instances = mock!(Ec2::describe_instances).then_output(|| {
            aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder()
                .reservations(
                    Reservation::builder()
                        .instances(sdk_instance("i-1", "sfr-1"))
                        .instances(sdk_instance("i-2", "sfr-2"))
                        .instances(sdk_instance("i-3", "sfr-2"))
                        .build(),
                )
                .build()
        });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&fleets, &instances]);
        let reads = Reads::new(ec2, elbv2());
        let (one, two) = tokio::join!(reads.fleet("sfr-1"), reads.fleet("sfr-2"));
        let (one, two) = (one.expect("read").expect("sfr-1"), two.expect("read").expect("sfr-2"));
        assert_eq!(one.instances, ["i-1"]);
        assert_eq!(two.instances, ["i-2", "i-3"]);
        assert_eq!((fleets.num_calls(), instances.num_calls()), (1, 1));
        // A change drops the snapshot: the next read asks again.
        drop(reads.changing());
        reads.fleet("sfr-1").await.expect("read");
        assert_eq!((fleets.num_calls(), instances.num_calls()), (2, 2));
    }

    #[tokio::test]
    async fn an_old_snapshot_is_not_used() {
        let fleets = mock!(Ec2::describe_spot_fleet_requests).then_output(|| {
            aws_sdk_ec2::operation::describe_spot_fleet_requests::DescribeSpotFleetRequestsOutput::builder()
                .spot_fleet_request_configs(sdk_fleet("sfr-1"))
                .build()
        });
        let instances = mock!(Ec2::describe_instances).then_output(|| {
            aws_sdk_ec2::operation::describe_instances::DescribeInstancesOutput::builder().build()
        });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&fleets, &instances]);
        let reads = Reads::with_ttl(ec2, elbv2(), Duration::ZERO);
        reads.fleet("sfr-1").await.expect("read");
        reads.fleet("sfr-1").await.expect("read");
        assert_eq!(fleets.num_calls(), 2);
    }

    fn pricing(rules: &[&aws_smithy_mocks::Rule]) -> aws_sdk_pricing::Client {
        aws_smithy_mocks::mock_client!(aws_sdk_pricing, RuleMode::MatchAny, rules)
    }

    #[tokio::test]
    async fn apps_with_the_same_instance_types_share_one_read_of_each_price_source() {
        use aws_sdk_ec2::operation::describe_spot_price_history::DescribeSpotPriceHistoryOutput;
        use aws_sdk_pricing::operation::get_products::GetProductsOutput;
        let history = mock!(Ec2::describe_spot_price_history).then_output(|| {
            DescribeSpotPriceHistoryOutput::builder()
                .spot_price_history(
                    aws_sdk_ec2::types::SpotPrice::builder()
                        .instance_type(aws_sdk_ec2::types::InstanceType::T3Small)
                        .availability_zone("eu-west-1a")
                        .spot_price("0.006900")
                        .timestamp(aws_smithy_types::DateTime::from_secs(1))
                        .build(),
                )
                .build()
        });
        let products = mock!(aws_sdk_pricing::Client::get_products).then_output(|| {
            let entry = r#"{"product":{"attributes":{"instanceType":"t3.small"}},"terms":{"OnDemand":{"o":{"priceDimensions":{"r":{"unit":"Hrs","pricePerUnit":{"USD":"0.0228000000"}}}}}}}"#;
            GetProductsOutput::builder().price_list(entry).build()
        });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&history]);
        let reads = Arc::new(PriceReads::new(ec2, pricing(&[&products])));
        // A hundred apps read at once, their types in either order.
        let apps = (0..100).map(|i| {
            let reads = Arc::clone(&reads);
            async move {
                let mut types = vec!["t3a.small".to_owned(), "t3.small".to_owned()];
                if i % 2 == 0 {
                    types.reverse();
                }
                let (spot, on_demand) = tokio::join!(
                    reads.spot(&types, "Linux/UNIX"),
                    reads.on_demand(&types, "EU (Ireland)", "Linux")
                );
                (spot.expect("Spot prices").len(), on_demand.expect("On-Demand prices").len())
            }
        });
        let answers = futures::future::join_all(apps).await;
        assert!(answers.iter().all(|a| *a == (1, 1)), "{answers:?}");
        assert_eq!((history.num_calls(), products.num_calls()), (1, 1));
        // Remembered for the run.
        reads
            .spot(&["t3.small".to_owned(), "t3a.small".to_owned()], "Linux/UNIX")
            .await
            .expect("Spot prices");
        assert_eq!(history.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_denied_price_read_is_asked_once_and_warned_about_once() {
        use aws_sdk_pricing::operation::get_products::GetProductsError;
        let denied = mock!(aws_sdk_pricing::Client::get_products).then_error(|| {
            GetProductsError::generic(
                aws_sdk_pricing::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("not authorized to perform pricing:GetProducts")
                    .build(),
            )
        });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, []);
        let reads = PriceReads::new(ec2, pricing(&[&denied]));
        let types = ["t3.small".to_owned()];
        for _ in 0..3 {
            let e = reads.on_demand(&types, "EU (Ireland)", "Linux").await.expect_err("denied");
            assert!(e.is(prices::NOT_ALLOWED), "{e}");
        }
        assert_eq!(denied.num_calls(), 1, "the denial is an answer, remembered");
        assert!(reads.first_cost_warning(), "the first to report warns");
        assert!(!reads.first_cost_warning() && !reads.first_cost_warning(), "nobody after it");
    }

    fn sdk_image(id: &str) -> SdkImage {
        SdkImage::builder().image_id(id).state(ImageState::Available).build()
    }

    #[tokio::test]
    async fn image_lookups_that_arrive_together_share_one_call() {
        // The first lookup goes out alone at once; the three that arrive after it (while
        // its call is in flight, or just after) go out together in one call for exactly
        // their ids.
        let first =
            mock!(Ec2::describe_images).match_requests(|r| r.image_ids() == ["ami-1"]).then_output(|| {
                aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
                    .images(sdk_image("ami-1"))
                    .build()
            });
        let rest = mock!(Ec2::describe_images)
            .match_requests(|r| {
                let mut ids = r.image_ids().to_vec();
                ids.sort();
                ids == ["ami-2", "ami-3", "ami-4"]
            })
            .then_output(|| {
                aws_sdk_ec2::operation::describe_images::DescribeImagesOutput::builder()
                    .images(sdk_image("ami-2"))
                    .images(sdk_image("ami-3"))
                    .build()
            });
        let ec2 = mock_client!(aws_sdk_ec2, RuleMode::MatchAny, [&first, &rest]);
        let reads = Reads::new(ec2, elbv2());
        let lone = reads.image("ami-1");
        let later = async {
            tokio::task::yield_now().await;
            tokio::join!(reads.image("ami-2"), reads.image("ami-3"), reads.image("ami-4"))
        };
        let (lone, (two, three, four)) = tokio::join!(lone, later);
        assert_eq!(lone.expect("lookup").map(|i| i.id).as_deref(), Some("ami-1"));
        assert_eq!(two.expect("lookup").map(|i| i.id).as_deref(), Some("ami-2"));
        assert_eq!(three.expect("lookup").map(|i| i.id).as_deref(), Some("ami-3"));
        assert!(four.expect("lookup").is_none(), "ami-4 does not exist");
        assert_eq!((first.num_calls(), rest.num_calls()), (1, 1));
        // Remembered: no further call.
        reads.image("ami-2").await.expect("lookup");
        assert_eq!(rest.num_calls(), 1);
    }
}
