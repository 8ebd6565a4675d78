//! IAM names to ARNs (instance profiles, roles), as the deploy script searched AWS by
//! the names of assets.

use super::AwsError;

/// The ARN of instance profile `name_or_arn`; `None` when it does not exist.
pub async fn instance_profile_arn(
    iam: &aws_sdk_iam::Client,
    name_or_arn: &str,
) -> Result<Option<String>, AwsError> {
    let name = name_or_arn.rsplit('/').next().unwrap_or(name_or_arn);
    match iam.get_instance_profile().instance_profile_name(name).send().await {
        Ok(out) => Ok(out.instance_profile().map(|p| p.arn().to_owned())),
        Err(e) => not_found_is_none(AwsError::new(format!("looking up instance profile {name:?}"), &e)),
    }
}

/// The ARN of role `name_or_arn`; `None` when it does not exist.
pub async fn role_arn(iam: &aws_sdk_iam::Client, name_or_arn: &str) -> Result<Option<String>, AwsError> {
    let name = name_or_arn.rsplit('/').next().unwrap_or(name_or_arn);
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role().map(|r| r.arn().to_owned())),
        Err(e) => not_found_is_none(AwsError::new(format!("looking up role {name:?}"), &e)),
    }
}

fn not_found_is_none(err: AwsError) -> Result<Option<String>, AwsError> {
    match err.code.as_deref() {
        Some("NoSuchEntity") => Ok(None),
        _ => Err(err),
    }
}
