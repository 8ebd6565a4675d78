//! Plan-time lookups: every name and id a configuration refers to (an AMI, security
//! groups, target groups, IAM names, instance types, a key pair, zones, subnets) is
//! resolved at once, in one round trip, and each one that does not resolve is an error
//! on the attribute it came from, before anything is created.

use crate::aws::images::Image;
use crate::aws::target_groups::TargetGroup;
use crate::aws::{AwsError, Clients, iam, network, target_groups};
use std::future::Future;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;

/// What to look up, each with the attribute it came from. Unset: not looked up.
#[derive(Clone, Debug, Default)]
pub struct Lookups<'a> {
    /// An AMI that must exist and be available; the label names it in summaries
    /// ("AMI" gives "AMI Not Found").
    pub image: Option<(AttributePath, &'a str, &'static str)>,
    /// Security groups by name or `sg-` id.
    pub security_groups: Option<(AttributePath, &'a [String])>,
    /// Target groups by name or ARN.
    pub target_groups: Option<(AttributePath, &'a [String])>,
    /// An instance profile by name or ARN.
    pub instance_profile: Option<(AttributePath, &'a str)>,
    /// The role Spot Fleet assumes, by name or ARN.
    pub fleet_role: Option<(AttributePath, &'a str)>,
    pub instance_types: Option<(AttributePath, &'a [String])>,
    pub key_name: Option<(AttributePath, &'a str)>,
    pub availability_zones: Option<(AttributePath, &'a [String])>,
    pub subnets: Option<(AttributePath, &'a [String])>,
}

/// What resolved (the rest stays empty, with its error in the diagnostics).
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub image: Option<Image>,
    pub security_group_ids: Vec<String>,
    pub target_groups: Vec<TargetGroup>,
    pub instance_profile_arn: Option<String>,
    pub fleet_role_arn: Option<String>,
}

/// Looks everything up at once. Reads only.
pub async fn resolve(clients: &Clients, lookups: &Lookups<'_>, diags: &mut Diagnostics) -> Resolved {
    let ec2 = &clients.ec2;
    let region = &clients.region;
    let (image, security_groups, groups, profile, role, types, key, zones, subnets) = tokio::join!(
        lookup(&lookups.image, |(_, id, _)| clients.reads.image(id)),
        lookup(&lookups.security_groups, |(_, refs)| network::resolve_security_groups(ec2, refs)),
        lookup(&lookups.target_groups, |(_, refs)| target_groups::resolve(&clients.elbv2, refs)),
        lookup(&lookups.instance_profile, |(_, p)| iam::instance_profile_arn(&clients.iam, p)),
        lookup(&lookups.fleet_role, |(_, r)| iam::role_arn(&clients.iam, r)),
        lookup(&lookups.instance_types, |(_, t)| network::unknown_instance_types(ec2, t)),
        lookup(&lookups.key_name, |(_, k)| network::key_pair_exists(ec2, k)),
        lookup(&lookups.availability_zones, |(_, z)| network::missing_zones(ec2, z)),
        lookup(&lookups.subnets, |(_, s)| network::missing_subnets(ec2, s)),
    );
    let mut resolved = Resolved::default();
    let mut report =
        |path: &AttributePath, result: Result<Option<String>, AwsError>, summary: &str| match result {
            Ok(None) => {}
            Ok(Some(problem)) => diags.error_at(path.clone(), summary, problem),
            Err(e) => diags.push(e.diagnostic_at(path.clone())),
        };
    if let (Some((path, id, label)), Some(found)) = (&lookups.image, image) {
        let problem = found.map(|found| match found {
            Some(image) if image.is_available() => {
                resolved.image = Some(image);
                None
            }
            Some(image) => Some((
                format!("{label} Not Available"),
                format!("{label} {id} is {}, not available; wait for it or choose another", image.state),
            )),
            None => Some((
                format!("{label} Not Found"),
                format!("{label} {id} does not exist in {region} (or is not shared with this account)"),
            )),
        });
        match problem {
            Ok(Some((summary, detail))) => report(path, Ok(Some(detail)), &summary),
            Ok(None) => {}
            Err(e) => report(path, Err(e), ""),
        }
    }
    if let (Some((path, _)), Some(found)) = (&lookups.security_groups, security_groups) {
        let found = found.map(|r| match r {
            Ok(ids) => {
                resolved.security_group_ids = ids;
                None
            }
            Err(missing) => {
                Some(format!("no security group named or with id {} in {region}", missing.join(", ")))
            }
        });
        report(path, found, "Unknown Security Group");
    }
    if let (Some((path, _)), Some(found)) = (&lookups.target_groups, groups) {
        let found = found.map(|r| match r {
            Ok(groups) => {
                resolved.target_groups = groups;
                None
            }
            Err(missing) => {
                Some(format!("no target group named or with ARN {} in {region}", missing.join(", ")))
            }
        });
        report(path, found, "Unknown Target Group");
    }
    if let (Some((path, name)), Some(found)) = (&lookups.instance_profile, profile) {
        let found = found.map(|arn| {
            resolved.instance_profile_arn = arn;
            resolved.instance_profile_arn.is_none().then(|| format!("no instance profile {name:?}"))
        });
        report(path, found, "Unknown Instance Profile");
    }
    if let (Some((path, name)), Some(found)) = (&lookups.fleet_role, role) {
        let found = found.map(|arn| {
            resolved.fleet_role_arn = arn;
            resolved.fleet_role_arn.is_none().then(|| {
                format!(
                    "no IAM role {name:?}; Spot Fleet needs a role it can assume to launch and tag instances"
                )
            })
        });
        report(path, found, "Unknown Fleet Role");
    }
    if let (Some((path, _)), Some(found)) = (&lookups.instance_types, types) {
        let found = found.map(|unknown| {
            (!unknown.is_empty())
                .then(|| format!("EC2 offers no instance type {} in {region}", unknown.join(", ")))
        });
        report(path, found, "Unknown Instance Type");
    }
    if let (Some((path, name)), Some(found)) = (&lookups.key_name, key) {
        report(
            path,
            found.map(|exists| (!exists).then(|| format!("no key pair {name:?} in {region}"))),
            "Unknown Key Pair",
        );
    }
    if let (Some((path, _)), Some(found)) = (&lookups.availability_zones, zones) {
        let found = found.map(|missing| {
            (!missing.is_empty()).then(|| format!("{region} has no availability zone {}", missing.join(", ")))
        });
        report(path, found, "Unknown Availability Zone");
    }
    if let (Some((path, _)), Some(found)) = (&lookups.subnets, subnets) {
        let found = found.map(|missing| {
            (!missing.is_empty()).then(|| format!("no subnet {} in {region}", missing.join(", ")))
        });
        report(path, found, "Unknown Subnet");
    }
    resolved
}

/// Runs `find` on the value when there is one.
async fn lookup<'a, T, R, F, Fut>(value: &'a Option<T>, find: F) -> Option<R>
where
    F: FnOnce(&'a T) -> Fut,
    Fut: Future<Output = R>,
{
    match value {
        Some(value) => Some(find(value).await),
        None => None,
    }
}
