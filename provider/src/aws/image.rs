//! Finders and mutations for the AMIs of a layer: source lookup, adoption candidates,
//! tagging, and retention (what is in use, deregistering with snapshots).

use super::AwsError;
use super::ami::{self, Image, ImageQuery};
use aws_sdk_ec2::types::{BatchState, Filter, Tag};
use conventions::ami_tags;
use std::collections::{BTreeMap, BTreeSet};

/// The newest available AMI matching a root layer's `source`: owners, a name pattern
/// (`*` and `?` wildcards, as EC2 understands them) and optional tags.
pub async fn find_source_image(
    ec2: &aws_sdk_ec2::Client,
    owners: &[String],
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<Image>, AwsError> {
    let mut filters = vec![
        Filter::builder().name("state").values("available").build(),
        Filter::builder().name("name").values(name).build(),
    ];
    filters.extend(tags.iter().map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build()));
    let mut images = Vec::new();
    let mut next_token = None;
    loop {
        let response = ec2
            .describe_images()
            .set_owners(Some(owners.to_vec()))
            .set_filters(Some(filters.clone()))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("describing source AMIs named {name:?}"), &e))?;
        images.extend(response.images().iter().filter_map(Image::from_sdk));
        next_token = response.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    ami::sort_newest_first(&mut images);
    Ok(images.into_iter().next())
}

/// What an AMI of a layer must carry to stand for a given build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub layer: String,
    pub commit: String,
    pub parent_ami: String,
    pub fingerprint: String,
}

/// The available AMIs that already are this build of the layer, newest first.
pub async fn find_adoptable(ec2: &aws_sdk_ec2::Client, identity: &Identity) -> Result<Vec<Image>, AwsError> {
    let query = ImageQuery {
        layer: identity.layer.clone(),
        commit: Some(identity.commit.clone()),
        tags: BTreeMap::from([
            (ami_tags::PARENT_AMI.to_owned(), identity.parent_ami.clone()),
            (ami_tags::FINGERPRINT.to_owned(), identity.fingerprint.clone()),
        ]),
        owners: vec!["self".to_owned()],
    };
    ami::find_images(ec2, &query).await
}

/// Every available AMI of a layer in this account, newest first.
pub async fn find_layer_images(ec2: &aws_sdk_ec2::Client, layer: &str) -> Result<Vec<Image>, AwsError> {
    let query =
        ImageQuery { layer: layer.to_owned(), owners: vec!["self".to_owned()], ..ImageQuery::default() };
    ami::find_images(ec2, &query).await
}

/// Sets (adds or overwrites) tags on an AMI.
pub async fn tag_image(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if tags.is_empty() {
        return Ok(());
    }
    ec2.create_tags()
        .resources(id)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("tagging AMI {id}"), &e))?;
    Ok(())
}

/// Removes tags (by key) from an AMI.
pub async fn untag_image(ec2: &aws_sdk_ec2::Client, id: &str, keys: &[String]) -> Result<(), AwsError> {
    if keys.is_empty() {
        return Ok(());
    }
    ec2.delete_tags()
        .resources(id)
        .set_tags(Some(keys.iter().map(|k| Tag::builder().key(k).build()).collect()))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("removing tags from AMI {id}"), &e))?;
    Ok(())
}

pub(crate) fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
}

/// The EBS snapshots behind an AMI; empty when the AMI is gone.
pub async fn image_snapshots(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<String>, AwsError> {
    let result = ec2.describe_images().image_ids(id).send().await;
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            let err = AwsError::new(format!("describing AMI {id}"), &e);
            return match err.code.as_deref() {
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable") => Ok(Vec::new()),
                _ => Err(err),
            };
        }
    };
    Ok(response
        .images()
        .iter()
        .filter(|i| i.image_id() == Some(id))
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|ebs| ebs.snapshot_id()).map(str::to_owned))
        .collect())
}

/// Deregisters an AMI and deletes its snapshots; returns the snapshots deleted. An AMI
/// or snapshot already gone counts as done.
pub async fn deregister_with_snapshots(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<String>, AwsError> {
    let snapshots = image_snapshots(ec2, id).await?;
    if let Err(e) = ec2.deregister_image().image_id(id).send().await {
        let err = AwsError::new(format!("deregistering AMI {id}"), &e);
        if !matches!(err.code.as_deref(), Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable")) {
            return Err(err);
        }
    }
    let mut deleted = Vec::new();
    for snapshot in snapshots {
        match ec2.delete_snapshot().snapshot_id(&snapshot).send().await {
            Ok(_) => deleted.push(snapshot),
            Err(e) => {
                let err = AwsError::new(format!("deleting snapshot {snapshot} of AMI {id}"), &e);
                if err.code.as_deref() != Some("InvalidSnapshot.NotFound") {
                    return Err(err);
                }
            }
        }
    }
    Ok(deleted)
}

/// Which of `candidates` something still uses, with the reason: an instance that is
/// not terminated, an active Spot Fleet request that launches it, or an available AMI
/// built from it (a child layer's image).
pub async fn images_in_use(
    ec2: &aws_sdk_ec2::Client,
    candidates: &[String],
) -> Result<BTreeMap<String, String>, AwsError> {
    let mut used = BTreeMap::new();
    if candidates.is_empty() {
        return Ok(used);
    }
    for (image, instance) in instances_using(ec2, candidates).await? {
        used.entry(image).or_insert(format!("instance {instance} runs it"));
    }
    let wanted: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    for (image, fleet) in fleet_images(ec2).await? {
        if wanted.contains(image.as_str()) {
            used.entry(image).or_insert(format!("Spot Fleet request {fleet} launches it"));
        }
    }
    for (image, child) in children_of(ec2, candidates).await? {
        used.entry(image).or_insert(format!("AMI {child} was built from it"));
    }
    Ok(used)
}

/// (image id, instance id) for instances not terminated that run one of `images`.
async fn instances_using(
    ec2: &aws_sdk_ec2::Client,
    images: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let filters = vec![
        Filter::builder().name("image-id").set_values(Some(images.to_vec())).build(),
        Filter::builder()
            .name("instance-state-name")
            .values("pending")
            .values("running")
            .values("stopping")
            .values("stopped")
            .build(),
    ];
    let mut found = Vec::new();
    let mut next_token = None;
    loop {
        let response = ec2
            .describe_instances()
            .set_filters(Some(filters.clone()))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new("describing instances that run old AMIs", &e))?;
        for instance in response.reservations().iter().flat_map(|r| r.instances()) {
            if let (Some(image), Some(id)) = (instance.image_id(), instance.instance_id()) {
                found.push((image.to_owned(), id.to_owned()));
            }
        }
        next_token = response.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    Ok(found)
}

/// (image id, fleet request id) for every AMI a live Spot Fleet request launches, from
/// its launch specifications and the launch template versions it names.
async fn fleet_images(ec2: &aws_sdk_ec2::Client) -> Result<Vec<(String, String)>, AwsError> {
    let mut found = Vec::new();
    let mut next_token = None;
    loop {
        let response = ec2
            .describe_spot_fleet_requests()
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new("describing Spot Fleet requests", &e))?;
        for request in response.spot_fleet_request_configs() {
            let live = matches!(
                request.spot_fleet_request_state(),
                Some(BatchState::Active | BatchState::Modifying | BatchState::Submitted) | None
            );
            let (Some(id), Some(config)) =
                (request.spot_fleet_request_id(), request.spot_fleet_request_config())
            else {
                continue;
            };
            if !live {
                continue;
            }
            for spec in config.launch_specifications() {
                if let Some(image) = spec.image_id() {
                    found.push((image.to_owned(), id.to_owned()));
                }
            }
            for template in config.launch_template_configs() {
                let Some(spec) = template.launch_template_specification() else { continue };
                if let Some(image) = launch_template_image(ec2, spec).await? {
                    found.push((image, id.to_owned()));
                }
            }
        }
        next_token = response.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    Ok(found)
}

async fn launch_template_image(
    ec2: &aws_sdk_ec2::Client,
    spec: &aws_sdk_ec2::types::FleetLaunchTemplateSpecification,
) -> Result<Option<String>, AwsError> {
    let request = ec2
        .describe_launch_template_versions()
        .set_launch_template_id(spec.launch_template_id().map(str::to_owned))
        .set_launch_template_name(spec.launch_template_name().map(str::to_owned))
        .versions(spec.version().unwrap_or("$Default"));
    let name = spec.launch_template_id().or(spec.launch_template_name()).unwrap_or_default();
    let response =
        request.send().await.map_err(|e| AwsError::new(format!("describing launch template {name}"), &e))?;
    Ok(response
        .launch_template_versions()
        .iter()
        .find_map(|v| v.launch_template_data().and_then(|d| d.image_id()).map(str::to_owned)))
}

/// (parent image id, child image id) for available AMIs tagged `ParentAMI` = one of `images`.
async fn children_of(
    ec2: &aws_sdk_ec2::Client,
    images: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let filters = vec![
        Filter::builder().name("state").values("available").build(),
        Filter::builder()
            .name(format!("tag:{}", ami_tags::PARENT_AMI))
            .set_values(Some(images.to_vec()))
            .build(),
    ];
    let response = ec2
        .describe_images()
        .owners("self")
        .set_filters(Some(filters))
        .send()
        .await
        .map_err(|e| AwsError::new("describing AMIs built from old AMIs", &e))?;
    Ok(response
        .images()
        .iter()
        .filter_map(Image::from_sdk)
        .filter_map(|child| Some((child.tag(ami_tags::PARENT_AMI)?.to_owned(), child.id)))
        .collect())
}

/// What retention did to a layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Deregistered AMIs with the snapshots deleted for each.
    pub deregistered: Vec<(String, Vec<String>)>,
    /// Old AMIs kept because something uses them, with the reason.
    pub kept_in_use: Vec<(String, String)>,
}

/// Which AMIs retention may consider: those beyond the newest `keep` (newest first),
/// never `current`.
pub fn beyond_retention<'a>(images: &'a [Image], keep: usize, current: &str) -> Vec<&'a Image> {
    images.iter().skip(keep).filter(|i| i.id != current).collect()
}

/// Deregisters the AMIs of `layer` beyond the newest `keep` (with their snapshots),
/// except `current` and any AMI still in use.
pub async fn prune_layer(
    ec2: &aws_sdk_ec2::Client,
    layer: &str,
    keep: usize,
    current: &str,
) -> Result<Pruned, AwsError> {
    let images = find_layer_images(ec2, layer).await?;
    let old: Vec<String> =
        beyond_retention(&images, keep, current).into_iter().map(|i| i.id.clone()).collect();
    let mut pruned = Pruned::default();
    if old.is_empty() {
        return Ok(pruned);
    }
    let in_use = images_in_use(ec2, &old).await?;
    for id in old {
        if let Some(reason) = in_use.get(&id) {
            tracing::info!(layer, ami = %id, reason = %reason, "retention keeps an old AMI still in use");
            pruned.kept_in_use.push((id, reason.clone()));
            continue;
        }
        let snapshots = deregister_with_snapshots(ec2, &id).await?;
        tracing::info!(layer, ami = %id, snapshots = ?snapshots, "retention deregistered an old AMI");
        pruned.deregistered.push((id, snapshots));
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str) -> Image {
        Image {
            id: id.into(),
            name: String::new(),
            creation_date: String::new(),
            state: "available".into(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn retention_skips_the_newest_and_the_current() {
        let images: Vec<Image> = ["ami-4", "ami-3", "ami-2", "ami-1"].into_iter().map(image).collect();
        let ids = |v: Vec<&Image>| v.into_iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(beyond_retention(&images, 2, "ami-4")), ["ami-2", "ami-1"]);
        // An adopted older AMI is never pruned by its own layer.
        assert_eq!(ids(beyond_retention(&images, 2, "ami-1")), ["ami-2"]);
        assert!(beyond_retention(&images, 10, "ami-4").is_empty());
    }
}
