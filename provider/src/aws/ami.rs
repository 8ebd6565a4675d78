//! Finders for AMIs and their lineage.

use super::AwsError;
use aws_sdk_ec2::types::Filter;
use conventions::ami_tags;
use std::collections::{BTreeMap, HashSet};

/// The parts of an AMI the provider uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub creation_date: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

impl Image {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub(crate) fn from_sdk(image: &aws_sdk_ec2::types::Image) -> Option<Self> {
        Some(Self {
            id: image.image_id()?.to_owned(),
            name: image.name().unwrap_or_default().to_owned(),
            creation_date: image.creation_date().unwrap_or_default().to_owned(),
            state: image.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            tags: image
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value().unwrap_or_default().to_owned())))
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
        let tag = |key: &str, value: &str| Filter::builder().name(format!("tag:{key}")).values(value).build();
        let mut filters = vec![
            Filter::builder().name("state").values("available").build(),
            tag(ami_tags::LAYER, &self.layer),
        ];
        if let Some(commit) = &self.commit {
            filters.push(tag(ami_tags::COMMIT, commit));
        }
        filters.extend(self.tags.iter().map(|(k, v)| tag(k, v)));
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

/// Every AMI matching the query, newest first.
pub async fn find_images(ec2: &aws_sdk_ec2::Client, query: &ImageQuery) -> Result<Vec<Image>, AwsError> {
    let mut images = Vec::new();
    let mut next_token = None;
    loop {
        let response = ec2
            .describe_images()
            .set_owners(Some(query.owners.clone()))
            .set_filters(Some(query.filters()))
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| AwsError::new(format!("describing AMIs of layer {:?}", query.layer), &e))?;
        images.extend(response.images().iter().filter_map(Image::from_sdk));
        next_token = response.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
        if next_token.is_none() {
            break;
        }
    }
    sort_newest_first(&mut images);
    Ok(images)
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

pub async fn find_image_by_id(ec2: &aws_sdk_ec2::Client, id: &str) -> Result<Option<Image>, AwsError> {
    let result = ec2.describe_images().image_ids(id).send().await;
    match result {
        Ok(response) => Ok(response.images().iter().filter_map(Image::from_sdk).find(|i| i.id == id)),
        Err(e) => {
            let err = AwsError::new(format!("describing AMI {id}"), &e);
            match err.code.as_deref() {
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable") => Ok(None),
                _ => Err(err),
            }
        }
    }
}

/// The AMIs among `ids` that exist, by id, in one call when every id does.
pub async fn find_images_by_ids(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<std::collections::HashMap<String, Image>, AwsError> {
    let result = ec2.describe_images().set_image_ids(Some(ids.to_vec())).send().await;
    match result {
        Ok(response) => Ok(response
            .images()
            .iter()
            .filter_map(Image::from_sdk)
            .filter(|i| ids.contains(&i.id))
            .map(|i| (i.id.clone(), i))
            .collect()),
        Err(e) => {
            let err = AwsError::new(format!("describing AMIs {ids:?}"), &e);
            match err.code.as_deref() {
                // The call fails as a whole when one id is gone or malformed: ask
                // about each alone, so that only the bad one answers so.
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable" | "InvalidAMIID.Malformed")
                    if ids.len() > 1 =>
                {
                    let mut found = std::collections::HashMap::new();
                    for id in ids {
                        if let Some(image) = find_image_by_id(ec2, id).await? {
                            found.insert(id.clone(), image);
                        }
                    }
                    Ok(found)
                }
                Some("InvalidAMIID.NotFound" | "InvalidAMIID.Unavailable") => Ok(Default::default()),
                _ => Err(err),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, name: &str, created: &str) -> Image {
        Image {
            id: id.into(),
            name: name.into(),
            creation_date: created.into(),
            state: "available".into(),
            tags: BTreeMap::new(),
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
}
