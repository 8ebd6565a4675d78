//! AMIs: finders (by id, by layer, by source filter, for adoption), lineage, tags,
//! CreateImage and its waiter, and retention (what is in use, deregistering with
//! snapshots).

use super::{AwsError, OrNotFound, fleets, instances, launch_templates, sdk_tags};
use crate::wait::{Backoff, Limits, Poll, WaitError, poll_until};
use aws_sdk_ec2::types::{Filter, ImageState, ResourceType, Tag, TagSpecification};
use conventions::ami_tags;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// AWS's answers for an AMI id that names no AMI visible to the account.
pub const NOT_FOUND: &[&str] =
    &["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"];

/// The parts of an AMI the provider uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub creation_date: String,
    /// `pending`, `available`, `failed`, … as EC2 says.
    pub state: String,
    pub state_reason: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub root_device_name: Option<String>,
    /// The EBS snapshots behind it.
    pub snapshot_ids: Vec<String>,
}

impl Image {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub fn is_available(&self) -> bool {
        self.state == "available"
    }

    pub(crate) fn from_sdk(image: &aws_sdk_ec2::types::Image) -> Option<Self> {
        Some(Self {
            id: image.image_id()?.to_owned(),
            name: image.name().unwrap_or_default().to_owned(),
            creation_date: image.creation_date().unwrap_or_default().to_owned(),
            state: image.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            state_reason: image.state_reason().and_then(|r| r.message()).map(str::to_owned),
            tags: image
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
                .collect(),
            root_device_name: image.root_device_name().map(str::to_owned),
            snapshot_ids: image
                .block_device_mappings()
                .iter()
                .filter_map(|m| m.ebs().and_then(|ebs| ebs.snapshot_id()).map(str::to_owned))
                .collect(),
        })
    }
}

/// What to look for: a layer's available AMIs, optionally narrowed.
#[derive(Clone, Debug, Default)]
pub struct ImageQuery {
    pub layer: String,
    pub commit: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub owners: Vec<String>,
}

impl ImageQuery {
    fn filters(&self) -> Vec<Filter> {
        let mut filters = vec![state_available(), tag_filter(ami_tags::LAYER, &self.layer)];
        if let Some(commit) = &self.commit {
            filters.push(tag_filter(ami_tags::COMMIT, commit));
        }
        filters.extend(self.tags.iter().map(|(k, v)| tag_filter(k, v)));
        filters
    }

    /// Human-readable filters, for "nothing matched" errors.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("Layer = {:?}", self.layer)];
        if let Some(commit) = &self.commit {
            parts.push(format!("Commit = {commit:?}"));
        }
        parts.extend(self.tags.iter().map(|(k, v)| format!("{k} = {v:?}")));
        parts.push("state = available".to_owned());
        format!("{} (owners: {})", parts.join(", "), self.owners.join(", "))
    }
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder().name(format!("tag:{key}")).values(value).build()
}

fn state_available() -> Filter {
    Filter::builder().name("state").values("available").build()
}

/// Every image matching `filters` from `owners`, newest first.
async fn describe(
    ec2: &aws_sdk_ec2::Client,
    owners: &[String],
    filters: Vec<Filter>,
    action: impl Fn() -> String,
) -> Result<Vec<Image>, AwsError> {
    let found = ec2
        .describe_images()
        .set_owners((!owners.is_empty()).then(|| owners.to_vec()))
        .set_filters(Some(filters))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| AwsError::new(action(), &e))?;
    let mut images: Vec<Image> = found.iter().filter_map(Image::from_sdk).collect();
    sort_newest_first(&mut images);
    Ok(images)
}

/// Every AMI matching the query, newest first.
pub async fn find_images(ec2: &aws_sdk_ec2::Client, query: &ImageQuery) -> Result<Vec<Image>, AwsError> {
    describe(ec2, &query.owners, query.filters(), || format!("describing AMIs of layer {:?}", query.layer))
        .await
}

/// Newest first. CreationDate has one-second resolution, so ties fall back to the
/// name (`<layer>-<unix timestamp>` sorts by time) and then the id.
pub(crate) fn sort_newest_first(images: &mut [Image]) {
    images.sort_by(|a, b| {
        (b.creation_date.as_str(), b.name.as_str(), b.id.as_str()).cmp(&(
            a.creation_date.as_str(),
            a.name.as_str(),
            a.id.as_str(),
        ))
    });
}

/// The AMI `id`; `None` when it does not exist (or is not visible to this account).
pub async fn find_image(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<Image>, AwsError> {
    let found = ec2
        .describe_images()
        .image_ids(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing AMI {id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(found.and_then(|out| out.images().iter().filter_map(Image::from_sdk).find(|i| i.id == id)))
}

/// The AMIs among `ids` that exist, by id, in one call when every id does.
pub async fn find_images_by_ids(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<HashMap<String, Image>, AwsError> {
    let result = ec2
        .describe_images()
        .set_image_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing AMIs {}", ids.join(", ")), &e));
    match result {
        Ok(out) => Ok(out
            .images()
            .iter()
            .filter_map(Image::from_sdk)
            .filter(|i| ids.contains(&i.id))
            .map(|i| (i.id.clone(), i))
            .collect()),
        // The call fails as a whole when one id is gone or malformed: ask about each
        // alone, so that only the bad one answers so.
        Err(e) if e.is(NOT_FOUND) && ids.len() > 1 => {
            let mut found = HashMap::new();
            for id in ids {
                if let Some(image) = find_image(ec2, id).await? {
                    found.insert(id.clone(), image);
                }
            }
            Ok(found)
        }
        Err(e) if e.is(NOT_FOUND) => Ok(HashMap::new()),
        Err(e) => Err(e),
    }
}

/// One step of a lineage, root first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ancestor {
    pub layer: String,
    pub ami_id: String,
    pub commit: Option<String>,
    /// False when the AMI is gone (deregistered): only its id and layer are known.
    pub exists: bool,
}

/// Follows `ParentAMI` tags from `image` up to the root; returns root first, `image` last.
pub async fn lineage(reads: &super::reads::Reads, image: &Image) -> Result<Vec<Ancestor>, AwsError> {
    const MAX_DEPTH: usize = 64;
    let ancestor = |image: &Image| Ancestor {
        layer: image.tag(ami_tags::LAYER).unwrap_or_default().to_owned(),
        ami_id: image.id.clone(),
        commit: image.tag(ami_tags::COMMIT).map(str::to_owned),
        exists: true,
    };
    let mut chain = vec![ancestor(image)];
    let mut seen = HashSet::from([image.id.clone()]);
    let mut current = image.clone();
    // A root layer has no ParentLayer; its ParentAMI is the upstream image it was
    // built from, which is not part of the lineage.
    while let Some(parent_id) = current
        .tag(ami_tags::PARENT_AMI)
        .filter(|p| !p.is_empty() && current.tag(ami_tags::PARENT_LAYER).is_some_and(|l| !l.is_empty()))
        .map(str::to_owned)
    {
        if !seen.insert(parent_id.clone()) || chain.len() >= MAX_DEPTH {
            tracing::warn!(ami = %image.id, "AMI lineage loops or is deeper than {MAX_DEPTH}; cut at {parent_id}");
            break;
        }
        match reads.image(&parent_id).await? {
            Some(parent) => {
                chain.push(ancestor(&parent));
                current = parent;
            }
            None => {
                tracing::warn!(ami = %current.id, parent = %parent_id, "parent AMI no longer exists");
                chain.push(Ancestor {
                    layer: current.tag(ami_tags::PARENT_LAYER).unwrap_or_default().to_owned(),
                    ami_id: parent_id,
                    commit: None,
                    exists: false,
                });
                break;
            }
        }
    }
    chain.reverse();
    Ok(chain)
}

/// The newest available AMI matching a root layer's `source`: owners, a name pattern
/// (`*` and `?` wildcards, as EC2 understands them) and optional tags.
pub async fn find_source_image(
    ec2: &aws_sdk_ec2::Client,
    owners: &[String],
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<Image>, AwsError> {
    let mut filters = vec![state_available(), Filter::builder().name("name").values(name).build()];
    filters.extend(tags.iter().map(|(k, v)| tag_filter(k, v)));
    let images = describe(ec2, owners, filters, || format!("describing source AMIs named {name:?}")).await?;
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
    find_images(ec2, &query).await
}

/// Every available AMI of a layer in this account, newest first.
pub async fn find_layer_images(ec2: &aws_sdk_ec2::Client, layer: &str) -> Result<Vec<Image>, AwsError> {
    let query =
        ImageQuery { layer: layer.to_owned(), owners: vec!["self".to_owned()], ..ImageQuery::default() };
    find_images(ec2, &query).await
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

/// Deregisters an AMI and deletes its snapshots; returns the snapshots deleted. An AMI
/// or snapshot already gone counts as done.
pub async fn deregister_with_snapshots(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<String>, AwsError> {
    let snapshots = find_image(ec2, id).await?.map(|i| i.snapshot_ids).unwrap_or_default();
    ec2.deregister_image()
        .image_id(id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("deregistering AMI {id}"), &e))
        .or_not_found(NOT_FOUND)?;
    let mut deleted = Vec::new();
    for snapshot in snapshots {
        let gone = ec2
            .delete_snapshot()
            .snapshot_id(&snapshot)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("deleting snapshot {snapshot} of AMI {id}"), &e))
            .or_not_found(&["InvalidSnapshot.NotFound"])?;
        if gone.is_some() {
            deleted.push(snapshot);
        }
    }
    Ok(deleted)
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
        .await
        .map_err(|e| AwsError::new(action(), &e));
    match result {
        Ok(out) => out
            .image_id()
            .map(str::to_owned)
            .ok_or_else(|| AwsError::plain(action(), "CreateImage returned no image id")),
        // CreateImage has no client token: when the answer to an attempt that AWS
        // carried out is lost, the SDK's retry finds the name taken. The image with
        // this name and all of this build's tags is that attempt's.
        Err(e) if e.is(&["InvalidAMIName.Duplicate"]) => match own_image_named(ec2, name, tags).await? {
            Some(id) => {
                tracing::info!(ami = %id, name, "CreateImage was retried after a lost answer; using its image");
                Ok(id)
            }
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// The account's image named `name` that carries every tag of `tags`.
async fn own_image_named(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<Option<String>, AwsError> {
    let filters = vec![Filter::builder().name("name").values(name).build()];
    let images = describe(ec2, &["self".to_owned()], filters, || format!("looking up AMI {name}")).await?;
    Ok(images
        .into_iter()
        .filter(|image| image.name == name)
        .find(|image| tags.iter().all(|(key, value)| image.tags.get(key) == Some(value)))
        .map(|image| image.id))
}

/// Waits until an AMI is `available`; a failed image ends the wait with AWS's reason.
pub async fn wait_image_available(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    limits: &Limits,
) -> Result<(), WaitError> {
    let waiting_for = format!("waiting for AMI {id} to become available");
    poll_until(limits, Backoff::slow(), &waiting_for, || async {
        // A new AMI may not be visible at once (eventual consistency): not found is pending.
        let Some(image) = find_image(ec2, id).await? else {
            return Ok(Poll::Pending(format!("AMI {id} is not visible yet")));
        };
        match image.state.as_str().into() {
            ImageState::Available => Ok(Poll::Ready(())),
            ImageState::Failed | ImageState::Error | ImageState::Invalid | ImageState::Deregistered => {
                Err(WaitError::Failed(format!(
                    "AMI {id} is {}: {}",
                    image.state,
                    image.state_reason.as_deref().unwrap_or("no reason given")
                )))
            }
            _ => Ok(Poll::Pending(format!("AMI {id} is {}", image.state))),
        }
    })
    .await
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
    for (image, user) in runners(ec2, candidates).await? {
        used.entry(image).or_insert(user);
    }
    for (image, child) in children_of(ec2, candidates).await? {
        used.entry(image).or_insert(format!("AMI {child} was built from it"));
    }
    Ok(used)
}

/// What runs the image `id`: every instance not terminated and every live Spot Fleet
/// request that launches it, as "instance i-1 runs it".
pub async fn image_runners(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Vec<String>, AwsError> {
    Ok(runners(ec2, &[id.to_owned()]).await?.into_iter().map(|(_, user)| user).collect())
}

/// (image, "instance i-1 runs it" / "Spot Fleet request sfr-1 launches it") for each
/// instance and live fleet that uses one of `candidates`.
async fn runners(
    ec2: &aws_sdk_ec2::Client,
    candidates: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let mut found = Vec::new();
    if candidates.is_empty() {
        return Ok(found);
    }
    for (image, instance) in instances::running_images(ec2, candidates).await? {
        found.push((image, format!("instance {instance} runs it")));
    }
    let wanted: BTreeSet<&str> = candidates.iter().map(String::as_str).collect();
    for (image, fleet) in fleet_images(ec2).await? {
        if wanted.contains(image.as_str()) {
            found.push((image, format!("Spot Fleet request {fleet} launches it")));
        }
    }
    Ok(found)
}

/// (image id, fleet request id) for every AMI a live Spot Fleet request launches, from
/// its launch specifications and the launch template versions it names.
async fn fleet_images(ec2: &aws_sdk_ec2::Client) -> Result<Vec<(String, String)>, AwsError> {
    let mut found = Vec::new();
    for fleet in fleets::all_fleet_configs(ec2).await? {
        let (Some(id), Some(config)) = (fleet.spot_fleet_request_id(), fleet.spot_fleet_request_config())
        else {
            continue;
        };
        let live = fleet.spot_fleet_request_state().is_none_or(|s| fleets::is_open_state(s.as_str()));
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
            if let Some(image) = launch_templates::image_of(ec2, spec).await? {
                found.push((image, id.to_owned()));
            }
        }
    }
    Ok(found)
}

/// (parent image id, child image id) for available AMIs tagged `ParentAMI` = one of `images`.
async fn children_of(
    ec2: &aws_sdk_ec2::Client,
    images: &[String],
) -> Result<Vec<(String, String)>, AwsError> {
    let filters = vec![
        state_available(),
        Filter::builder()
            .name(format!("tag:{}", ami_tags::PARENT_AMI))
            .set_values(Some(images.to_vec()))
            .build(),
    ];
    let children =
        describe(ec2, &["self".to_owned()], filters, || "describing AMIs built from old AMIs".to_owned())
            .await?;
    Ok(children
        .into_iter()
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

    fn image(id: &str, name: &str, created: &str) -> Image {
        Image {
            id: id.into(),
            name: name.into(),
            creation_date: created.into(),
            state: "available".into(),
            state_reason: None,
            tags: BTreeMap::new(),
            root_device_name: None,
            snapshot_ids: Vec::new(),
        }
    }

    #[test]
    fn newest_first_breaks_same_second_ties_by_name() {
        let mut images = vec![
            image("ami-1", "web-1700000000", "2026-01-01T00:00:00.000Z"),
            image("ami-3", "web-1700000002", "2026-01-01T00:00:01.000Z"),
            image("ami-2", "web-1700000001", "2026-01-01T00:00:01.000Z"),
        ];
        sort_newest_first(&mut images);
        let ids: Vec<&str> = images.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["ami-3", "ami-2", "ami-1"]);
    }

    #[test]
    fn query_description_names_every_filter() {
        let query = ImageQuery {
            layer: "web".into(),
            commit: Some("abc".into()),
            tags: BTreeMap::from([("Team".to_owned(), "core".to_owned())]),
            owners: vec!["self".into()],
        };
        let text = query.describe();
        for part in ["Layer = \"web\"", "Commit = \"abc\"", "Team = \"core\"", "owners: self"] {
            assert!(text.contains(part), "{text}");
        }
    }

    #[test]
    fn retention_skips_the_newest_and_the_current() {
        let images: Vec<Image> =
            ["ami-4", "ami-3", "ami-2", "ami-1"].into_iter().map(|id| image(id, "", "")).collect();
        let ids = |v: Vec<&Image>| v.into_iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(beyond_retention(&images, 2, "ami-4")), ["ami-2", "ami-1"]);
        // An adopted older AMI is never pruned by its own layer.
        assert_eq!(ids(beyond_retention(&images, 2, "ami-1")), ["ami-2"]);
        assert!(beyond_retention(&images, 10, "ami-4").is_empty());
    }
}
