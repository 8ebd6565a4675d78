//! Security groups by name or id, subnets, and the AMI facts a launch needs.

use super::AwsError;
use aws_sdk_ec2::types::Filter;

/// Resolves security group names or `sg-` ids to ids; `Err` lists what does not exist.
pub async fn resolve_security_groups(
    ec2: &aws_sdk_ec2::Client,
    refs: &[String],
) -> Result<Result<Vec<String>, Vec<String>>, AwsError> {
    if refs.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let (ids, names): (Vec<String>, Vec<String>) = refs.iter().cloned().partition(|r| r.starts_with("sg-"));
    let mut filters = Vec::new();
    if !ids.is_empty() {
        filters.push(("group-id", ids));
    }
    if !names.is_empty() {
        filters.push(("group-name", names));
    }
    let mut found: Vec<(String, String)> = Vec::new();
    for (key, values) in filters {
        let out = ec2
            .describe_security_groups()
            .filters(Filter::builder().name(key).set_values(Some(values.clone())).build())
            .send()
            .await
            .map_err(|e| AwsError::new(format!("looking up security groups {values:?}"), &e))?;
        found.extend(
            out.security_groups().iter().filter_map(|g| {
                Some((g.group_id()?.to_owned(), g.group_name().unwrap_or_default().to_owned()))
            }),
        );
    }
    let mut resolved = Vec::new();
    let mut missing = Vec::new();
    for r in refs {
        let matches: Vec<&(String, String)> =
            found.iter().filter(|(id, name)| id == r || name == r).collect();
        match matches.as_slice() {
            [] => missing.push(r.clone()),
            [(id, _)] => resolved.push(id.clone()),
            // The same name in several VPCs: ambiguous.
            _ => {
                missing.push(format!("{r} (ambiguous: {} groups have this name; use the id)", matches.len()))
            }
        }
    }
    Ok(if missing.is_empty() { Ok(resolved) } else { Err(missing) })
}

/// Subnet ids among `ids` that do not exist.
pub async fn missing_subnets(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<String>, AwsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_subnets()
        .filters(Filter::builder().name("subnet-id").set_values(Some(ids.to_vec())).build())
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up subnets {ids:?}"), &e))?;
    let found: Vec<&str> = out.subnets().iter().filter_map(|s| s.subnet_id()).collect();
    Ok(ids.iter().filter(|id| !found.contains(&id.as_str())).cloned().collect())
}

/// What a launch needs to know about its AMI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchImage {
    pub id: String,
    pub state: String,
    pub root_device_name: Option<String>,
    pub commit: Option<String>,
}

/// `None` when the AMI does not exist (or is not visible to this account).
pub async fn launch_image(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<LaunchImage>, AwsError> {
    match ec2.describe_images().image_ids(id).send().await {
        Ok(out) => Ok(out.images().iter().find(|i| i.image_id() == Some(id)).map(|i| LaunchImage {
            id: id.to_owned(),
            state: i.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            root_device_name: i.root_device_name().map(str::to_owned),
            commit: i
                .tags()
                .iter()
                .find(|t| t.key() == Some(conventions::ami_tags::COMMIT))
                .and_then(|t| t.value())
                .map(str::to_owned),
        })),
        Err(e) => {
            let err = AwsError::new(format!("describing AMI {id}"), &e);
            match err.code.as_deref() {
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Malformed" | "InvalidAMIID.Unavailable") => {
                    Ok(None)
                }
                _ => Err(err),
            }
        }
    }
}

/// Whether key pair `name` exists.
pub async fn key_pair_exists(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<bool, AwsError> {
    match ec2.describe_key_pairs().key_names(name).send().await {
        Ok(out) => Ok(out.key_pairs().iter().any(|k| k.key_name() == Some(name))),
        Err(e) => {
            let err = AwsError::new(format!("looking up key pair {name:?}"), &e);
            match err.code.as_deref() {
                Some("InvalidKeyPair.NotFound") => Ok(false),
                _ => Err(err),
            }
        }
    }
}

/// Zone names among `zones` that this region does not have.
pub async fn missing_zones(ec2: &aws_sdk_ec2::Client, zones: &[String]) -> Result<Vec<String>, AwsError> {
    if zones.is_empty() {
        return Ok(Vec::new());
    }
    let out = ec2
        .describe_availability_zones()
        .all_availability_zones(true)
        .send()
        .await
        .map_err(|e| AwsError::new("listing availability zones", &e))?;
    let known: Vec<&str> = out.availability_zones().iter().filter_map(|z| z.zone_name()).collect();
    Ok(zones.iter().filter(|z| !known.contains(&z.as_str())).cloned().collect())
}

/// Instance types among `types` that EC2 does not offer.
pub async fn unknown_instance_types(
    ec2: &aws_sdk_ec2::Client,
    types: &[String],
) -> Result<Vec<String>, AwsError> {
    let mut unknown = Vec::new();
    for instance_type in types {
        let result = ec2.describe_instance_types().instance_types(instance_type.as_str().into()).send().await;
        if let Err(e) = result {
            let err = AwsError::new(format!("looking up instance type {instance_type:?}"), &e);
            match err.code.as_deref() {
                Some("InvalidInstanceType" | "InvalidParameterValue") => unknown.push(instance_type.clone()),
                _ => return Err(err),
            }
        }
    }
    Ok(unknown)
}
