//! Reads shared by the resources of one Terraform run.
//!
//! Terraform refreshes every resource with its own `ReadResource` call, up to ten at a
//! time. Asking AWS once per resource would cost an estate of N apps at least 3N
//! requests per plan and run into EC2's request rate limits
//! (`DescribeSpotFleetRequests` refills at a few requests per second per account).
//! Instead:
//!
//! - Spot Fleets: the first read takes a snapshot of the account, every Spot Fleet
//!   request and the running instances of every app's fleet (two calls, made at the
//!   same time), and the reads that follow answer from it. A fleet the snapshot does
//!   not know (created since, or gone) is asked about on its own, and so are the
//!   instances of an open fleet the snapshot found none of (say, an imported fleet
//!   whose instances carry no app tag).
//! - Target health: one `DescribeTargetHealth` per target group, all targets at once.
//! - AMIs: lookups by id that arrive while a `DescribeImages` call is in flight wait
//!   for the next call, which asks for all of them; answers are remembered.
//!
//! A lone read makes the same number of calls as without sharing and starts them at
//! once, so it waits no longer. Snapshots live [`SNAPSHOT_TTL`] at most, and
//! anything the provider changes drops them ([`Reads::changing`]).

use super::AwsError;
use super::ami::{self, Image};
use super::{elb, fleet};
use crate::rollout::machine::TargetHealth;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, oneshot};

/// How long one snapshot answers reads: long enough for a refresh of a large estate,
/// short enough that a long-lived provider process does not serve old news.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(10);

/// A fleet and its running instances, as a read sees them.
#[derive(Clone, Debug)]
pub struct ObservedFleet {
    pub fleet: fleet::Fleet,
    pub instances: Vec<String>,
}

/// Every Spot Fleet request of the account and the running instances of each.
#[derive(Debug, Default)]
struct FleetView {
    fleets: HashMap<String, fleet::Fleet>,
    instances: HashMap<String, Vec<String>>,
}

/// A value fetched once and shared until it is older than the TTL.
struct Slot<T> {
    born: Instant,
    cell: Arc<OnceCell<Arc<T>>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Self { born: Instant::now(), cell: Arc::new(OnceCell::new()) }
    }
}

/// The current cell of `slot`, or a fresh one when it is missing or too old.
fn current<T>(slot: &mut Option<Slot<T>>, ttl: Duration) -> Arc<OnceCell<Arc<T>>> {
    match slot {
        Some(s) if s.born.elapsed() < ttl => Arc::clone(&s.cell),
        _ => {
            let fresh = Slot::new();
            let cell = Arc::clone(&fresh.cell);
            *slot = Some(fresh);
            cell
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shared reads of one provider process.
pub struct Reads {
    ec2: aws_sdk_ec2::Client,
    elbv2: aws_sdk_elasticloadbalancingv2::Client,
    ttl: Duration,
    fleets: Mutex<Option<Slot<FleetView>>>,
    health: Mutex<HashMap<String, Slot<Vec<TargetHealth>>>>,
    images: Arc<ImageBatch>,
}

impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reads").field("ttl", &self.ttl).finish_non_exhaustive()
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
        let images = Arc::new(ImageBatch { ec2: ec2.clone(), ttl, state: Mutex::default() });
        Self { ec2, elbv2, ttl, fleets: Mutex::new(None), health: Mutex::default(), images }
    }

    /// Forgets everything read so far.
    pub fn invalidate(&self) {
        *lock(&self.fleets) = None;
        lock(&self.health).clear();
        lock(&self.images.state).known.clear();
    }

    /// Marks a change the provider is about to make: what was read before is dropped
    /// now, and what is read during the change is dropped when the guard goes.
    pub fn changing(&self) -> Changing<'_> {
        self.invalidate();
        Changing(self)
    }

    /// The fleet `id` and its running instances; `None` when AWS no longer knows it.
    pub async fn fleet(&self, id: &str) -> Result<Option<ObservedFleet>, AwsError> {
        let cell = current(&mut lock(&self.fleets), self.ttl);
        let view = cell.get_or_try_init(|| fetch_fleet_view(&self.ec2)).await?;
        if let Some(found) = view.fleets.get(id) {
            let instances = view.instances.get(id).cloned().unwrap_or_default();
            // An open fleet with capacity but no tagged instance: ask the fleet itself
            // rather than report it empty.
            if instances.is_empty() && found.is_open() && found.fulfilled_capacity > 0.0 {
                let instances = fleet::fleet_instances(&self.ec2, id).await?;
                return Ok(Some(ObservedFleet { fleet: found.clone(), instances }));
            }
            return Ok(Some(ObservedFleet { fleet: found.clone(), instances }));
        }
        // Unknown to the snapshot: requested since it was taken, or gone.
        let Some(found) = fleet::find_fleet(&self.ec2, id).await? else { return Ok(None) };
        let instances =
            if found.is_open() { fleet::fleet_instances(&self.ec2, id).await? } else { Vec::new() };
        Ok(Some(ObservedFleet { fleet: found, instances }))
    }

    /// The open fleets tagged with `app`, from the same snapshot as [`Reads::fleet`].
    pub async fn open_fleets_of(&self, app: &str) -> Result<Vec<String>, AwsError> {
        let mut open: Vec<String> = self.open_fleets(app).await?.into_iter().map(|f| f.id).collect();
        open.sort();
        Ok(open)
    }

    /// The newest generation among the app's open fleets, from the shared snapshot:
    /// the plans of many new apps share one listing.
    pub async fn newest_open_generation(&self, app: &str) -> Result<Option<u64>, AwsError> {
        Ok(self.open_fleets(app).await?.iter().filter_map(fleet::Fleet::generation).max())
    }

    async fn open_fleets(&self, app: &str) -> Result<Vec<fleet::Fleet>, AwsError> {
        let cell = current(&mut lock(&self.fleets), self.ttl);
        let view = cell.get_or_try_init(|| fetch_fleet_view(&self.ec2)).await?;
        Ok(view.fleets.values().filter(|f| f.is_open_of(app)).cloned().collect())
    }

    /// The health of every target registered in the target group.
    pub async fn target_health(&self, target_group_arn: &str) -> Result<Arc<Vec<TargetHealth>>, AwsError> {
        let cell = {
            let mut health = lock(&self.health);
            let mut slot = health.remove(target_group_arn);
            let cell = current(&mut slot, self.ttl);
            if let Some(slot) = slot {
                health.insert(target_group_arn.to_owned(), slot);
            }
            cell
        };
        let targets = cell
            .get_or_try_init(|| async {
                elb::target_health(&self.elbv2, target_group_arn, None).await.map(Arc::new)
            })
            .await?;
        Ok(Arc::clone(targets))
    }

    /// The AMI `id`, or `None` when it does not exist (or is not visible to us).
    pub async fn image(&self, id: &str) -> Result<Option<Image>, AwsError> {
        ImageBatch::get(&self.images, id).await
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
    let (fleets, instances) = tokio::join!(fleet::all_fleets(ec2), fleet::all_fleet_instances(ec2));
    let fleets = fleets?.into_iter().map(|f| (f.id.clone(), f)).collect();
    Ok(Arc::new(FleetView { fleets, instances: instances? }))
}

/// Coalesces `DescribeImages` lookups by id.
struct ImageBatch {
    ec2: aws_sdk_ec2::Client,
    ttl: Duration,
    state: Mutex<BatchState>,
}

type Answer = Result<Option<Image>, AwsError>;

#[derive(Default)]
struct BatchState {
    /// A call is in flight (its driver takes whatever waits when it returns).
    busy: bool,
    waiting: HashMap<String, Vec<oneshot::Sender<Answer>>>,
    known: HashMap<String, (Instant, Option<Image>)>,
}

impl ImageBatch {
    async fn get(this: &Arc<Self>, id: &str) -> Answer {
        let answer = {
            let mut state = lock(&this.state);
            if let Some((at, image)) = state.known.get(id)
                && at.elapsed() < this.ttl
            {
                return Ok(image.clone());
            }
            let (tx, rx) = oneshot::channel();
            state.waiting.entry(id.to_owned()).or_default().push(tx);
            if !state.busy {
                state.busy = true;
                tokio::spawn(Self::drive(Arc::clone(this)));
            }
            rx
        };
        answer
            .await
            .unwrap_or_else(|_| Err(AwsError::plain(format!("describing AMI {id}"), "lookup abandoned")))
    }

    /// Asks for everything that waits, until nothing does.
    async fn drive(this: Arc<Self>) {
        loop {
            let batch = {
                let mut state = lock(&this.state);
                if state.waiting.is_empty() {
                    state.busy = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let ids: Vec<String> = batch.keys().cloned().collect();
            let result = ami::find_images_by_ids(&this.ec2, &ids).await;
            let mut state = lock(&this.state);
            for (id, waiters) in batch {
                let answer = match &result {
                    Ok(images) => Ok(images.get(&id).cloned()),
                    Err(e) => Err(e.clone()),
                };
                if let Ok(image) = &answer {
                    state.known.insert(id, (Instant::now(), image.clone()));
                }
                for waiter in waiters {
                    let _ = waiter.send(answer.clone());
                }
            }
        }
    }
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
            .tags(Tag::builder().key(fleet::FLEET_ID_TAG).value(fleet).build())
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
