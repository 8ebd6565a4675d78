//! The AWS side of baking an AMI without Packer: a builder instance, its waiters,
//! CreateImage and the image waiter. Waiters poll with a backoff that starts fast
//! (an emulator answers at once) and slows to a few seconds (AWS takes minutes).

use super::AwsError;
use super::image::sdk_tags;
use aws_sdk_ec2::types::{
    HttpTokensState, ImageState, InstanceMetadataOptionsRequest, InstanceStateName, InstanceType,
    ResourceType, ShutdownBehavior, TagSpecification,
};
use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Tag on builder instances: the layer they build.
pub const BUILDER_TAG: &str = conventions::BUILDER_TAG;

/// Polling intervals: 150 ms, then x1.5 up to 5 s.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(150);
    const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The next interval to wait.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 3 / 2).min(Self::MAX);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a wait may last and what interrupts it.
#[derive(Clone, Debug)]
pub struct Limits {
    pub deadline: Instant,
    pub stop: CancellationToken,
}

impl Limits {
    /// Sleeps for the backoff's next interval, or less when the deadline comes first.
    async fn pause(&self, backoff: &mut Backoff, waiting_for: &str) -> Result<(), WaitError> {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(WaitError::TimedOut(waiting_for.to_owned()));
        }
        let delay = backoff.next_delay().min(self.deadline - now);
        tokio::select! {
            () = self.stop.cancelled() => Err(WaitError::Cancelled(waiting_for.to_owned())),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    pub fn check(&self, doing: &str) -> Result<(), WaitError> {
        if self.stop.is_cancelled() {
            return Err(WaitError::Cancelled(doing.to_owned()));
        }
        if Instant::now() >= self.deadline {
            return Err(WaitError::TimedOut(doing.to_owned()));
        }
        Ok(())
    }
}

/// Why a wait ended without the awaited state.
#[derive(Debug)]
pub enum WaitError {
    /// Terraform asked the provider to stop (Ctrl-C).
    Cancelled(String),
    TimedOut(String),
    /// The object reached a state it cannot leave, with AWS's reason.
    Failed(String),
    Aws(AwsError),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Cancelled(what) => write!(f, "stopped by Terraform while {what}"),
            WaitError::TimedOut(what) => write!(f, "timed out while {what}"),
            WaitError::Failed(reason) => f.write_str(reason),
            WaitError::Aws(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WaitError {}

impl From<AwsError> for WaitError {
    fn from(e: AwsError) -> Self {
        WaitError::Aws(e)
    }
}

/// What to launch a builder instance with.
#[derive(Clone, Debug)]
pub struct BuilderInstance<'a> {
    pub layer: &'a str,
    pub image_id: &'a str,
    pub instance_type: &'a str,
    pub user_data: &'a str,
    pub subnet_id: Option<&'a str>,
    pub security_group_ids: &'a [String],
    pub iam_instance_profile: Option<&'a str>,
    /// Tags of the instance (besides the builder tag).
    pub tags: BTreeMap<String, String>,
}

/// Launches one builder instance, tagged at creation as a builder of the layer. It
/// stops (not terminates) when its user data powers it off.
pub async fn launch_builder(
    ec2: &aws_sdk_ec2::Client,
    spec: &BuilderInstance<'_>,
) -> Result<String, AwsError> {
    let mut tags = spec.tags.clone();
    tags.insert(BUILDER_TAG.to_owned(), spec.layer.to_owned());
    let mut request = ec2
        .run_instances()
        .image_id(spec.image_id)
        .instance_type(InstanceType::from(spec.instance_type))
        .min_count(1)
        .max_count(1)
        .user_data(aws_smithy_types::base64::encode(spec.user_data.as_bytes()))
        .instance_initiated_shutdown_behavior(ShutdownBehavior::Stop)
        .metadata_options(
            InstanceMetadataOptionsRequest::builder().http_tokens(HttpTokensState::Required).build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(sdk_tags(&tags)))
                .build(),
        )
        .set_subnet_id(spec.subnet_id.map(str::to_owned))
        .set_iam_instance_profile(spec.iam_instance_profile.map(|p| {
            let builder = aws_sdk_ec2::types::IamInstanceProfileSpecification::builder();
            if p.starts_with("arn:") { builder.arn(p).build() } else { builder.name(p).build() }
        }));
    if !spec.security_group_ids.is_empty() {
        request = request.set_security_group_ids(Some(spec.security_group_ids.to_vec()));
    }
    let response = request
        .send()
        .await
        .map_err(|e| AwsError::new(format!("launching a builder instance for layer {}", spec.layer), &e))?;
    response.instances().iter().find_map(|i| i.instance_id()).map(str::to_owned).ok_or_else(|| AwsError {
        action: format!("launching a builder instance for layer {}", spec.layer),
        message: "RunInstances returned no instance id".to_owned(),
        code: None,
    })
}

/// An instance's state and AWS's reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    pub state: InstanceStateName,
    pub reason: Option<String>,
}

pub async fn find_instance_status(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<InstanceStatus>, AwsError> {
    let result = ec2.describe_instances().instance_ids(id).send().await;
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            let err = AwsError::new(format!("describing instance {id}"), &e);
            return match err.code.as_deref() {
                Some("InvalidInstanceID.NotFound") => Ok(None),
                _ => Err(err),
            };
        }
    };
    Ok(response.reservations().iter().flat_map(|r| r.instances()).find(|i| i.instance_id() == Some(id)).map(
        |i| InstanceStatus {
            state: i.state().and_then(|s| s.name()).cloned().unwrap_or(InstanceStateName::Pending),
            reason: i.state_reason().and_then(|r| r.message()).map(str::to_owned),
        },
    ))
}

/// Waits until the builder instance has powered itself off (`stopped`).
pub async fn wait_instance_stopped(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    limits: &Limits,
) -> Result<(), WaitError> {
    let waiting_for = format!("waiting for builder instance {id} to power off");
    let mut backoff = Backoff::new();
    let mut last = None;
    loop {
        match find_instance_status(ec2, id).await? {
            None => return Err(WaitError::Failed(format!("builder instance {id} disappeared"))),
            Some(status) => match status.state {
                InstanceStateName::Stopped => return Ok(()),
                InstanceStateName::Terminated | InstanceStateName::ShuttingDown => {
                    return Err(WaitError::Failed(format!(
                        "builder instance {id} was terminated before it powered off: {}",
                        status.reason.as_deref().unwrap_or("no reason given")
                    )));
                }
                state => {
                    if last.as_ref() != Some(&state) {
                        tracing::info!(instance = %id, state = %state.as_str(), "builder instance running its user data");
                        last = Some(state);
                    }
                }
            },
        }
        limits.pause(&mut backoff, &waiting_for).await?;
    }
}

/// CreateImage from a stopped builder instance, tagged at creation; returns the AMI id.
pub async fn create_image(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
    name: &str,
    description: &str,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    let action = || format!("creating AMI {name} from builder instance {instance_id}");
    let result = ec2
        .create_image()
        .instance_id(instance_id)
        .name(name)
        .description(description)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(sdk_tags(tags)))
                .build(),
        )
        .send()
        .await;
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            let err = AwsError::new(action(), &e);
            // CreateImage has no client token: when the answer to an attempt that AWS
            // carried out is lost, the SDK's retry finds the name taken. The image
            // with this name and all of this build's tags is that attempt's.
            if err.code.as_deref() == Some("InvalidAMIName.Duplicate")
                && let Some(id) = own_image_named(ec2, name, tags).await?
            {
                tracing::info!(ami = %id, name, "CreateImage was retried after a lost answer; using its image");
                return Ok(id);
            }
            return Err(err);
        }
    };
    response.image_id().map(str::to_owned).ok_or_else(|| AwsError {
        action: action(),
        message: "CreateImage returned no image id".to_owned(),
        code: None,
    })
}

/// The account's image named `name` that carries every tag of `tags`.
async fn own_image_named(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<String>, AwsError> {
    let response = ec2
        .describe_images()
        .owners("self")
        .filters(aws_sdk_ec2::types::Filter::builder().name("name").values(name).build())
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up AMI {name}"), &e))?;
    Ok(response
        .images()
        .iter()
        .filter(|image| image.name() == Some(name))
        .find(|image| {
            tags.iter().all(|(key, value)| {
                image
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(key.as_str()) && t.value() == Some(value.as_str()))
            })
        })
        .and_then(|image| image.image_id())
        .map(str::to_owned))
}

/// Waits until an AMI is `available`; a failed image ends the wait with AWS's reason.
pub async fn wait_image_available(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    limits: &Limits,
) -> Result<(), WaitError> {
    let waiting_for = format!("waiting for AMI {id} to become available");
    let mut backoff = Backoff::new();
    loop {
        let result = ec2.describe_images().image_ids(id).send().await;
        let state =
            match result {
                Ok(response) => response.images().iter().find(|i| i.image_id() == Some(id)).map(|i| {
                    (i.state().cloned(), i.state_reason().and_then(|r| r.message()).map(str::to_owned))
                }),
                Err(e) => {
                    let err = AwsError::new(format!("describing AMI {id}"), &e);
                    // A new AMI may not be visible at once (eventual consistency).
                    if err.code.as_deref() != Some("InvalidAMIID.NotFound") {
                        return Err(err.into());
                    }
                    None
                }
            };
        match state {
            Some((Some(ImageState::Available), _)) => return Ok(()),
            Some((
                Some(
                    state @ (ImageState::Failed
                    | ImageState::Error
                    | ImageState::Invalid
                    | ImageState::Deregistered),
                ),
                reason,
            )) => {
                return Err(WaitError::Failed(format!(
                    "AMI {id} is {}: {}",
                    state.as_str(),
                    reason.as_deref().unwrap_or("no reason given")
                )));
            }
            _ => {}
        }
        limits.pause(&mut backoff, &waiting_for).await?;
    }
}

/// Builder instances of `layer` at `commit` that are not terminated. Outside a
/// build there should be none: those found were left by a build whose process was
/// killed before its [`InstanceGuard`] could act.
pub async fn leftover_builders(
    ec2: &aws_sdk_ec2::Client,
    layer: &str,
    commit: &str,
) -> Result<Vec<String>, AwsError> {
    use aws_sdk_ec2::types::Filter;
    let out = ec2
        .describe_instances()
        .filters(Filter::builder().name(format!("tag:{BUILDER_TAG}")).values(layer).build())
        .filters(
            Filter::builder().name(format!("tag:{}", conventions::ami_tags::COMMIT)).values(commit).build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(["pending", "running", "stopping", "stopped"].map(str::to_owned).to_vec()))
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking for builder instances of layer {layer}"), &e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}

pub async fn terminate_instance(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    match ec2.terminate_instances().instance_ids(id).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = AwsError::new(format!("terminating builder instance {id}"), &e);
            if err.code.as_deref() == Some("InvalidInstanceID.NotFound") { Ok(()) } else { Err(err) }
        }
    }
}

/// Terminates a builder instance when dropped, unless [`InstanceGuard::terminate`]
/// already did: a failed, cancelled or abandoned build leaves no instance behind.
pub struct InstanceGuard {
    ec2: aws_sdk_ec2::Client,
    id: Option<String>,
}

impl InstanceGuard {
    pub fn new(ec2: aws_sdk_ec2::Client, id: String) -> Self {
        Self { ec2, id: Some(id) }
    }

    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// Terminates the instance now, retrying a few times on errors.
    pub async fn terminate(mut self) -> Result<(), AwsError> {
        let Some(id) = self.id.take() else { return Ok(()) };
        terminate_with_retries(&self.ec2, &id).await
    }
}

async fn terminate_with_retries(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    let mut backoff = Backoff::new();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match terminate_instance(ec2, id).await {
            Ok(()) => {
                tracing::info!(instance = %id, "terminated builder instance");
                return Ok(());
            }
            Err(e) if attempt >= 5 => return Err(e),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "terminating builder instance failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        tracing::warn!(instance = %id, "build abandoned; terminating its builder instance");
        let ec2 = self.ec2.clone();
        let task_id = id.clone();
        // Tracked: a provider exiting because Terraform is gone waits for it.
        let spawned = tfplugin::cleanup::spawn(async move {
            if let Err(e) = terminate_with_retries(&ec2, &task_id).await {
                tracing::error!(instance = %task_id, error = %e, "could not terminate builder instance");
            }
        });
        if !spawned {
            tracing::error!(instance = %id, "no runtime to terminate builder instance; terminate it by hand")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_fast_and_caps() {
        let mut backoff = Backoff::new();
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], Duration::from_millis(150));
        assert_eq!(delays[1], Duration::from_millis(225));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap_or(&Duration::ZERO), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_cancelled_wait_returns_at_once() {
        let limits =
            Limits { deadline: Instant::now() + Duration::from_secs(60), stop: CancellationToken::new() };
        limits.stop.cancel();
        let started = Instant::now();
        let mut backoff = Backoff { next: Duration::from_secs(30) };
        let result = limits.pause(&mut backoff, "testing").await;
        assert!(matches!(result, Err(WaitError::Cancelled(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
