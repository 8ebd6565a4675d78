//! EC2 instances: the native builder's instance (launch, wait until it powers off,
//! terminate, and the guard that terminates it on every path), builders left by a
//! killed run, which instances are still alive, and which run given AMIs.

use super::{AwsError, OrNotFound, sdk_tags};
use crate::wait::{Backoff, Limits, Poll, WaitError, poll_until};
use aws_sdk_ec2::types::{
    Filter, HttpTokensState, IamInstanceProfileSpecification, Instance, InstanceMetadataOptionsRequest,
    InstanceStateName, InstanceType, ResourceType, ShutdownBehavior, TagSpecification,
};
use std::collections::BTreeMap;

/// AWS's answers for an instance id that names no instance.
pub const NOT_FOUND: &[&str] = &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"];

/// Tag on builder instances: the layer they build.
pub const BUILDER_TAG: &str = conventions::BUILDER_TAG;

/// States of an instance that still exists (or will).
const NOT_TERMINATED: [&str; 4] = ["pending", "running", "stopping", "stopped"];

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
    let action = || format!("launching a builder instance for layer {}", spec.layer);
    let mut tags = spec.tags.clone();
    tags.insert(BUILDER_TAG.to_owned(), spec.layer.to_owned());
    let profile = spec.iam_instance_profile.map(|p| {
        let builder = IamInstanceProfileSpecification::builder();
        if p.starts_with("arn:") { builder.arn(p).build() } else { builder.name(p).build() }
    });
    let response = ec2
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
        .set_iam_instance_profile(profile)
        .set_security_group_ids(
            (!spec.security_group_ids.is_empty()).then(|| spec.security_group_ids.to_vec()),
        )
        .send()
        .await
        .map_err(|e| AwsError::new(action(), &e))?;
    response
        .instances()
        .iter()
        .find_map(|i| i.instance_id())
        .map(str::to_owned)
        .ok_or_else(|| AwsError::plain(action(), "RunInstances returned no instance id"))
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
    let response = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing instance {id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(response.and_then(|response| {
        response.reservations().iter().flat_map(|r| r.instances()).find(|i| i.instance_id() == Some(id)).map(
            |i| InstanceStatus {
                state: i.state().and_then(|s| s.name()).cloned().unwrap_or(InstanceStateName::Pending),
                reason: i.state_reason().and_then(|r| r.message()).map(str::to_owned),
            },
        )
    }))
}

/// Waits until the builder instance has powered itself off (`stopped`).
pub async fn wait_stopped(ec2: &aws_sdk_ec2::Client, id: &str, limits: &Limits) -> Result<(), WaitError> {
    let waiting_for = format!("waiting for builder instance {id} to power off");
    poll_until(limits, Backoff::slow(), &waiting_for, || async {
        match find_instance_status(ec2, id).await? {
            None => Err(WaitError::Failed(format!("builder instance {id} disappeared"))),
            Some(status) => match status.state {
                InstanceStateName::Stopped => Ok(Poll::Ready(())),
                InstanceStateName::Terminated | InstanceStateName::ShuttingDown => {
                    Err(WaitError::Failed(format!(
                        "builder instance {id} was terminated before it powered off: {}",
                        status.reason.as_deref().unwrap_or("no reason given")
                    )))
                }
                state => Ok(Poll::Pending(format!(
                    "builder instance {id} is {} (running its user data)",
                    state.as_str()
                ))),
            },
        }
    })
    .await
}

/// Every instance matching `filters`, across pages.
pub(crate) async fn describe(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    action: impl FnOnce() -> String,
) -> Result<Vec<Instance>, AwsError> {
    let reservations = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .page_size(1000)
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::new(action(), &e))?;
    Ok(reservations.iter().flat_map(|r| r.instances()).cloned().collect())
}

/// The filter for instances in one of `states`.
pub(crate) fn in_states(states: &[&str]) -> Filter {
    Filter::builder()
        .name("instance-state-name")
        .set_values(Some(states.iter().map(|s| (*s).to_owned()).collect()))
        .build()
}

/// Builder instances of `layer` at `commit` that are not terminated. Outside a
/// build there should be none: those found were left by a build whose process was
/// killed before its [`InstanceGuard`] could act.
pub async fn leftover_builders(
    ec2: &aws_sdk_ec2::Client,
    layer: &str,
    commit: &str,
) -> Result<Vec<String>, AwsError> {
    let filters = vec![
        Filter::builder().name(format!("tag:{BUILDER_TAG}")).values(layer).build(),
        Filter::builder().name(format!("tag:{}", conventions::ami_tags::COMMIT)).values(commit).build(),
        in_states(&NOT_TERMINATED),
    ];
    let found = describe(ec2, filters, || format!("looking for builder instances of layer {layer}")).await?;
    Ok(found.iter().filter_map(|i| i.instance_id().map(str::to_owned)).collect())
}

/// (image id, instance id) for the instances not terminated that run one of `images`.
pub async fn running_images(
    ec2: &aws_sdk_ec2::Client,
    images: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let filters = vec![
        Filter::builder().name("image-id").set_values(Some(images.to_vec())).build(),
        in_states(&NOT_TERMINATED),
    ];
    let found = describe(ec2, filters, || "describing instances that run old AMIs".to_owned()).await?;
    Ok(found.iter().filter_map(|i| Some((i.image_id()?.to_owned(), i.instance_id()?.to_owned()))).collect())
}

/// A pending or running instance as a Describe call shows it: what prices it (its
/// instance type, its zone, Spot or On-Demand) and what it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningInstance {
    pub id: String,
    pub instance_type: Option<String>,
    pub availability_zone: Option<String>,
    /// `InstanceLifecycle` is `spot`; an On-Demand instance has none.
    pub spot: bool,
    /// `PlatformDetails` ("Linux/UNIX", "Windows", "Red Hat Enterprise Linux", ...).
    pub platform_details: Option<String>,
    /// `Platform`: `windows` for Windows instances, nothing otherwise.
    pub platform: Option<String>,
}

impl RunningInstance {
    pub fn of(instance: &Instance) -> Option<Self> {
        Some(RunningInstance {
            id: instance.instance_id()?.to_owned(),
            instance_type: instance.instance_type().map(|t| t.as_str().to_owned()),
            availability_zone: instance.placement().and_then(|p| p.availability_zone()).map(str::to_owned),
            spot: instance.instance_lifecycle().is_some_and(|l| l.as_str() == "spot"),
            platform_details: instance.platform_details().map(str::to_owned),
            platform: instance.platform().map(|p| p.as_str().to_owned()),
        })
    }

    /// An instance known by its id only.
    pub fn unknown(id: &str) -> Self {
        RunningInstance {
            id: id.to_owned(),
            instance_type: None,
            availability_zone: None,
            spot: false,
            platform_details: None,
            platform: None,
        }
    }
}

/// The pending and running instances among `ids`, sorted by id.
pub async fn running(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<RunningInstance>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filters = vec![
        Filter::builder().name("instance-id").set_values(Some(ids.to_vec())).build(),
        in_states(&["pending", "running"]),
    ];
    let found = describe(ec2, filters, || format!("describing instances {}", ids.join(", "))).await?;
    let mut running: Vec<RunningInstance> = found.iter().filter_map(RunningInstance::of).collect();
    running.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(running)
}

/// Instances among `ids` not yet terminated (nor shutting down).
pub async fn live_instances(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<String>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filters = vec![Filter::builder().name("instance-id").set_values(Some(ids.to_vec())).build()];
    let found = describe(ec2, filters, || format!("describing instances {}", ids.join(", "))).await?;
    Ok(found
        .iter()
        .filter(|i| {
            !matches!(
                i.state().and_then(|s| s.name()).map(|n| n.as_str()),
                Some("terminated" | "shutting-down")
            )
        })
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}

/// Terminates an instance; one already gone is fine.
pub async fn terminate(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    ec2.terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("terminating builder instance {id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(())
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

/// Cleanup that must finish even after Ctrl-C: no stop, a few attempts.
async fn terminate_with_retries(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<(), AwsError> {
    const ATTEMPTS: u32 = 5;
    let limits = Limits::cleanup();
    let mut backoff = Backoff::slow();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match terminate(ec2, id).await {
            Ok(()) => {
                tracing::info!(instance = %id, "terminated builder instance");
                return Ok(());
            }
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::warn!(instance = %id, "{e}; trying again (attempt {attempt} of {ATTEMPTS})");
                // A cleanup limit has neither stop nor deadline: the pause always ends.
                let _ = limits.sleep(backoff.next_delay(), "terminating a builder instance").await;
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
                tracing::error!(instance = %task_id, "could not terminate builder instance: {e}");
            }
        });
        if !spawned {
            tracing::error!(instance = %id, "no runtime to terminate builder instance; terminate it by hand")
        }
    }
}
