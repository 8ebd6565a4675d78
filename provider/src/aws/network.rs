//! Where instances run and with what: security groups by name or id, subnets,
//! availability zones, key pairs, instance types.

use super::{AwsError, OrNotFound};
use aws_sdk_ec2::types::Filter;

/// Resolves security group names or `sg-` ids to ids, in the user's order; `Err` lists
/// what does not exist (or is ambiguous).
pub async fn resolve_security_groups(
    ec2: &aws_sdk_ec2::Client,
    refs: &[String],
) -> Result<Result<Vec<String>, Vec<String>>, AwsError> {
    if refs.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let (ids, names): (Vec<String>, Vec<String>) = refs.iter().cloned().partition(|r| r.starts_with("sg-"));
    let mut found: Vec<(String, String)> = Vec::new();
    for (key, values) in [("group-id", ids), ("group-name", names)] {
        if values.is_empty() {
            continue;
        }
        let groups = ec2
            .describe_security_groups()
            .filters(Filter::builder().name(key).set_values(Some(values.clone())).build())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::new(format!("looking up security groups {}", values.join(", ")), &e))?;
        found.extend(
            groups.iter().filter_map(|g| {
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
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("subnet-id").set_values(Some(ids.to_vec())).build())
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::new(format!("looking up subnets {}", ids.join(", ")), &e))?;
    let found: Vec<&str> = subnets.iter().filter_map(|s| s.subnet_id()).collect();
    Ok(ids.iter().filter(|id| !found.contains(&id.as_str())).cloned().collect())
}

/// Whether key pair `name` exists.
pub async fn key_pair_exists(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<bool, AwsError> {
    let out = ec2
        .describe_key_pairs()
        .key_names(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up key pair {name:?}"), &e))
        .or_not_found(&["InvalidKeyPair.NotFound"])?;
    Ok(out.is_some_and(|out| out.key_pairs().iter().any(|k| k.key_name() == Some(name))))
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
        let offered = ec2
            .describe_instance_types()
            .instance_types(instance_type.as_str().into())
            .send()
            .await
            .map_err(|e| AwsError::new(format!("looking up instance type {instance_type:?}"), &e))
            .or_not_found(&["InvalidInstanceType", "InvalidParameterValue"])?;
        if offered.is_none() {
            unknown.push(instance_type.clone());
        }
    }
    Ok(unknown)
}
