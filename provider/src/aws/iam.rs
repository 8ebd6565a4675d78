//! IAM names to ARNs (instance profiles, roles): users refer to them by name, as the
//! deploy scripts this provider replaces searched AWS by the names of assets.

use super::{AwsError, OrNotFound};

/// AWS's answer for an IAM name that names nothing.
pub const NOT_FOUND: &[&str] = &["NoSuchEntity"];

/// The name in `name_or_arn` (`arn:aws:iam::1:instance-profile/web` names `web`).
fn name_of(name_or_arn: &str) -> &str {
    name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
}

/// The ARN of instance profile `name_or_arn`; `None` when it does not exist.
pub async fn instance_profile_arn(
    iam: &aws_sdk_iam::Client,
    name_or_arn: &str,
) -> Result<Option<String>, AwsError> {
    let name = name_of(name_or_arn);
    let out = iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up instance profile {name:?}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| out.instance_profile().map(|p| p.arn().to_owned())))
}

/// The ARN of role `name_or_arn`; `None` when it does not exist.
pub async fn role_arn(iam: &aws_sdk_iam::Client, name_or_arn: &str) -> Result<Option<String>, AwsError> {
    let name = name_of(name_or_arn);
    let out = iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up role {name:?}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| out.role().map(|r| r.arn().to_owned())))
}
