//! Target groups: resolution by name or ARN, target health, registration.

use super::AwsError;
use crate::rollout::machine::TargetHealth;
use aws_sdk_elasticloadbalancingv2::types::TargetDescription;

/// A target group as the app refers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetGroup {
    pub name: String,
    pub arn: String,
}

pub fn is_arn(text: &str) -> bool {
    text.starts_with("arn:")
}

/// Resolves each name or ARN; `Err` lists what does not exist. One call for all
/// names and one for all ARNs.
pub async fn resolve_target_groups(
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
        let all = describe(elb, by_arn, &wanted).await?;
        match all {
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
    // Keep the user's order.
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
    match request.send().await {
        Ok(out) => Ok(Some(
            out.target_groups()
                .iter()
                .filter_map(|g| {
                    Some(TargetGroup {
                        name: g.target_group_name()?.to_owned(),
                        arn: g.target_group_arn()?.to_owned(),
                    })
                })
                .collect(),
        )),
        Err(e) => {
            let err = AwsError::new(format!("looking up target groups {wanted:?}"), &e);
            match err.code.as_deref() {
                Some("TargetGroupNotFound" | "ValidationError") => Ok(None),
                _ => Err(err),
            }
        }
    }
}

/// Health of `instances` (or of every registered target when `None`).
pub async fn target_health(
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
            let id = d.target()?.id()?.to_owned();
            let health = d.target_health();
            Some(TargetHealth {
                instance_id: id,
                state: health.and_then(|h| h.state()).map(|s| s.as_str().to_owned()).unwrap_or_default(),
                reason: health.and_then(|h| h.reason()).map(|r| r.as_str().to_owned()),
                description: health.and_then(|h| h.description()).map(str::to_owned),
            })
        })
        .collect())
}

pub async fn register(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    instances: &[String],
) -> Result<(), AwsError> {
    if instances.is_empty() {
        return Ok(());
    }
    elb.register_targets()
        .target_group_arn(target_group_arn)
        .set_targets(Some(instances.iter().map(|id| TargetDescription::builder().id(id).build()).collect()))
        .send()
        .await
        .map_err(|e| {
            AwsError::new(format!("registering {instances:?} in {}", short(target_group_arn)), &e)
        })?;
    Ok(())
}

pub async fn deregister(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    target_group_arn: &str,
    instances: &[String],
) -> Result<(), AwsError> {
    if instances.is_empty() {
        return Ok(());
    }
    let result = elb
        .deregister_targets()
        .target_group_arn(target_group_arn)
        .set_targets(Some(instances.iter().map(|id| TargetDescription::builder().id(id).build()).collect()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            let err =
                AwsError::new(format!("deregistering {instances:?} from {}", short(target_group_arn)), &e);
            // Already gone is what we wanted.
            match err.code.as_deref() {
                Some("InvalidTarget" | "TargetGroupNotFound") => Ok(()),
                _ => Err(err),
            }
        }
    }
}

/// `web` from `arn:aws:elasticloadbalancing:…:targetgroup/web/0123`, for messages.
pub fn short(arn: &str) -> &str {
    arn.split("targetgroup/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(arn)
}
