//! Target groups: resolution by name or ARN, target health, registration.

use super::{AwsError, OrNotFound};
use crate::health::TargetHealth;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;

/// AWS's answers for target groups that are not there (asked for several, the call
/// fails as a whole).
pub const NOT_FOUND: &[&str] = &["TargetGroupNotFound", "ValidationError"];

/// A target group as the app refers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    pub name: String,
    pub arn: String,
    /// Seconds between health checks, and consecutive successes a target needs to
    /// be healthy.
    pub health_check_interval: Option<u32>,
    pub healthy_threshold: Option<u32>,
}

impl TargetGroup {
    /// The least time a new target takes to be healthy once it answers: the healthy
    /// threshold's checks, one interval apart.
    pub fn time_to_healthy(&self) -> std::time::Duration {
        let interval = self.health_check_interval.unwrap_or(30);
        let threshold = self.healthy_threshold.unwrap_or(5);
        std::time::Duration::from_secs(u64::from(interval) * u64::from(threshold))
    }
}

pub fn is_arn(text: &str) -> bool {
    text.starts_with("arn:")
}

/// Resolves each name or ARN, in the user's order; `Err` lists what does not exist.
/// One call for all names and one for all ARNs.
pub async fn resolve(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    refs: &[String],
) -> Result<Result<Vec<TargetGroup>, Vec<String>>, AwsError> {
    let (arns, names): (Vec<String>, Vec<String>) = refs.iter().cloned().partition(|r| is_arn(r));
    let mut found = Vec::new();
    for (by_arn, wanted) in [(true, arns), (false, names)] {
        if wanted.is_empty() {
            continue;
        }
        // Asking for several at once fails as a whole when one is missing; ask one
        // by one then, to say which.
        match describe(elb, by_arn, &wanted).await? {
            Some(groups) => found.extend(groups),
            None => {
                let mut missing = Vec::new();
                for one in &wanted {
                    match describe(elb, by_arn, std::slice::from_ref(one)).await? {
                        Some(groups) => found.extend(groups),
                        None => missing.push(one.clone()),
                    }
                }
                if !missing.is_empty() {
                    return Ok(Err(missing));
                }
            }
        }
    }
    let ordered =
        refs.iter().filter_map(|r| found.iter().find(|g| &g.arn == r || &g.name == r).cloned()).collect();
    Ok(Ok(ordered))
}

/// `None` when any of `wanted` does not exist.
async fn describe(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    by_arn: bool,
    wanted: &[String],
) -> Result<Option<Vec<TargetGroup>>, AwsError> {
    let request = elb.describe_target_groups();
    let request = if by_arn {
        request.set_target_group_arns(Some(wanted.to_vec()))
    } else {
        request.set_names(Some(wanted.to_vec()))
    };
    let out = request
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up target groups {}", wanted.join(", ")), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.map(|out| {
        out.target_groups()
            .iter()
            .filter_map(|g| {
                Some(TargetGroup {
                    name: g.target_group_name()?.to_owned(),
                    arn: g.target_group_arn()?.to_owned(),
                    health_check_interval: g
                        .health_check_interval_seconds()
                        .and_then(|s| u32::try_from(s).ok()),
                    healthy_threshold: g.healthy_threshold_count().and_then(|c| u32::try_from(c).ok()),
                })
            })
            .collect()
    }))
}

/// Health of `instances` (or of every registered target when `None`).
/// The group's deregistration delay (`deregistration_delay.timeout_seconds`): how long
/// a deregistered target drains at most.
pub async fn deregistration_delay(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
) -> Result<Option<std::time::Duration>, AwsError> {
    let out =
        elb.describe_target_group_attributes().target_group_arn(target_group_arn).send().await.map_err(
            |e| AwsError::new(format!("reading the attributes of {}", short(target_group_arn)), &e),
        )?;
    Ok(out
        .attributes()
        .iter()
        .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
        .and_then(|a| a.value()?.parse::<u64>().ok())
        .map(std::time::Duration::from_secs))
}

pub async fn health(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    instances: Option<&[String]>,
) -> Result<Vec<TargetHealth>, AwsError> {
    let targets =
        instances.map(|ids| ids.iter().map(|id| TargetDescription::builder().id(id).build()).collect());
    let out = elb
        .describe_target_health()
        .target_group_arn(target_group_arn)
        .set_targets(targets)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing target health in {}", short(target_group_arn)), &e))?;
    Ok(out
        .target_health_descriptions()
        .iter()
        .filter_map(|d| {
            let health = d.target_health();
            Some(TargetHealth {
                instance_id: d.target()?.id()?.to_owned(),
                state: health.and_then(|h| h.state()).map(|s| s.as_str().to_owned()).unwrap_or_default(),
                reason: health.and_then(|h| h.reason()).map(|r| r.as_str().to_owned()),
                description: health.and_then(|h| h.description()).map(str::to_owned),
            })
        })
        .collect())
}

fn targets(instances: &[String]) -> Vec<TargetDescription> {
    instances.iter().map(|id| TargetDescription::builder().id(id).build()).collect()
}

/// "registering i-1, i-2 in target group web"
fn moving(verb: &str, instances: &[String], preposition: &str, target_group_arn: &str) -> String {
    format!("{verb} {} {preposition} target group {}", instances.join(", "), short(target_group_arn))
}

pub async fn register(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    instances: &[String],
) -> Result<(), AwsError> {
    change(elb, target_group_arn, instances, true).await
}

/// Deregisters `instances`; targets or a group already gone are what was wanted.
pub async fn deregister(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    instances: &[String],
) -> Result<(), AwsError> {
    change(elb, target_group_arn, instances, false).await
}

async fn change(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    arn: &str,
    instances: &[String],
    register: bool,
) -> Result<(), AwsError> {
    if instances.is_empty() {
        return Ok(());
    }
    let targets = Some(targets(instances));
    if register {
        let result = elb.register_targets().target_group_arn(arn).set_targets(targets).send().await;
        result.map_err(|e| AwsError::new(moving("registering", instances, "in", arn), &e))?;
    } else {
        let result = elb.deregister_targets().target_group_arn(arn).set_targets(targets).send().await;
        result
            .map_err(|e| AwsError::new(moving("deregistering", instances, "from", arn), &e))
            .or_not_found(&["InvalidTarget", "TargetGroupNotFound"])?;
    }
    Ok(())
}

/// `web` from `arn:aws:elasticloadbalancing:…:targetgroup/web/0123`, for messages.
pub fn short(arn: &str) -> &str {
    arn.split("targetgroup/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(arn)
}
