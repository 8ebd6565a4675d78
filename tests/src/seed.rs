//! Seeding an account with AMIs as the image pipeline would have left them.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use anyhow::Context;
use aws_sdk_ec2::types::{ArchitectureValues, BlockDeviceMapping, EbsBlockDevice, Tag, VolumeType};

/// `Project` tag value of seeded layers unless [`LayerSeed::project`] says otherwise.
pub const DEFAULT_PROJECT: &str = "immutable-test";

/// Registers an AMI named `name` and tags it with `tags`; returns its id.
///
/// The request is a complete one for real EC2 (x86_64, HVM, ENA, an 8 GiB gp3
/// root volume). The emulator keeps only the name: its images report a
/// `/dev/sda1` standard root volume and no architecture, ignore tags given at
/// registration (hence the separate `CreateTags`), and have a `CreationDate`
/// of the registration time truncated to whole seconds.
pub async fn register_ami(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    tags: &[(&str, &str)],
) -> anyhow::Result<String> {
    let root = BlockDeviceMapping::builder()
        .device_name("/dev/xvda")
        .ebs(
            EbsBlockDevice::builder()
                .volume_size(8)
                .volume_type(VolumeType::Gp3)
                .delete_on_termination(true)
                .build(),
        )
        .build();
    let registered = ec2
        .register_image()
        .name(name)
        .architecture(ArchitectureValues::X8664)
        .virtualization_type("hvm")
        .ena_support(true)
        .root_device_name("/dev/xvda")
        .block_device_mappings(root)
        .send()
        .await
        .with_context(|| format!("RegisterImage {name}"))?;
    let image_id = registered.image_id().context("RegisterImage returned no image id")?.to_string();
    if !tags.is_empty() {
        ec2.create_tags()
            .resources(&image_id)
            .set_tags(Some(tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()))
            .send()
            .await
            .with_context(|| format!("CreateTags on {image_id}"))?;
    }
    Ok(image_id)
}

/// One layer image of a lineage for [`seed_lineage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSeed {
    /// Layer id (`Layer` tag), e.g. `base` or `web`.
    pub layer: String,
    /// Display name (`Name` tag).
    pub name: String,
    /// Commit the layer was built from (`Commit` tag): 40 hex digits.
    pub commit: String,
    /// Index (in the slice given to [`seed_lineage`]) of the parent layer; it must
    /// come earlier in the slice. `None` for a root layer.
    pub parent: Option<usize>,
    /// `Project` tag.
    pub project: String,
    /// `Fingerprint` tag: 64 hex digits; derived from layer and commit by
    /// [`LayerSeed::new`].
    pub fingerprint: String,
}

impl LayerSeed {
    /// A root layer in [`DEFAULT_PROJECT`], with a fingerprint derived from
    /// `layer` and `commit`.
    pub fn new(layer: impl Into<String>, name: impl Into<String>, commit: impl Into<String>) -> LayerSeed {
        let layer = layer.into();
        let commit = commit.into();
        let fingerprint = fake_fingerprint(&[&layer, &commit]);
        LayerSeed {
            layer,
            name: name.into(),
            commit,
            parent: None,
            project: DEFAULT_PROJECT.to_string(),
            fingerprint,
        }
    }

    /// Makes this layer a child of the layer at `index`.
    pub fn parent(mut self, index: usize) -> LayerSeed {
        self.parent = Some(index);
        self
    }

    /// Sets the `Project` tag.
    pub fn project(mut self, project: impl Into<String>) -> LayerSeed {
        self.project = project.into();
        self
    }

    /// Sets the `Fingerprint` tag.
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> LayerSeed {
        self.fingerprint = fingerprint.into();
        self
    }

    /// The AMI name used for this layer: `<layer>-<first 12 digits of commit>`.
    pub fn ami_name(&self) -> String {
        let short = self.commit.get(..12).unwrap_or(&self.commit);
        format!("{}-{short}", self.layer)
    }
}

/// The lineage `examples/terraform/lineage` reads: `ubuntu-1804` -> `rails-base` ->
/// `demo-web-app`, every layer at `commit`. Returns the AMI ids, root first.
pub async fn seed_example_lineage(ec2: &aws_sdk_ec2::Client, commit: &str) -> Vec<String> {
    seed_lineage(
        ec2,
        &[
            LayerSeed::new("ubuntu-1804", "Ubuntu 18.04", commit),
            LayerSeed::new("rails-base", "Rails base", commit).parent(0),
            LayerSeed::new("demo-web-app", "Demo web app", commit).parent(1),
        ],
    )
    .await
}

/// Registers one AMI per layer, in order, and returns their ids (same order).
///
/// Every AMI is tagged `Name`, `Layer`, `Commit`, `Fingerprint`, `Project` and
/// `ManagedBy=immutable`; children also carry `ParentLayer` (the parent's layer
/// id) and `ParentAMI` (the parent's image id).
///
/// # Panics
/// On an invalid seed (commit not 40 hex digits, fingerprint not 64, parent not
/// earlier in the slice) or when the emulator refuses a request.
pub async fn seed_lineage(ec2: &aws_sdk_ec2::Client, layers: &[LayerSeed]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(layers.len());
    for (index, seed) in layers.iter().enumerate() {
        assert!(is_hex(&seed.commit, 40), "layer {index} ({}): commit must be 40 hex digits", seed.layer);
        assert!(
            is_hex(&seed.fingerprint, 64),
            "layer {index} ({}): fingerprint must be 64 hex digits",
            seed.layer
        );
        let mut tags: Vec<(&str, &str)> = vec![
            ("Name", &seed.name),
            ("Layer", &seed.layer),
            ("Commit", &seed.commit),
            ("Fingerprint", &seed.fingerprint),
            ("Project", &seed.project),
            ("ManagedBy", "immutable"),
        ];
        if let Some(parent) = seed.parent {
            assert!(parent < index, "layer {index} ({}): parent {parent} must come before it", seed.layer);
            tags.push(("ParentLayer", &layers[parent].layer));
            tags.push(("ParentAMI", &ids[parent]));
        }
        let id = match register_ami(ec2, &seed.ami_name(), &tags).await {
            Ok(id) => id,
            Err(err) => panic!("seeding layer {index} ({}): {err:#}", seed.layer),
        };
        ids.push(id);
    }
    ids
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// 64 hex digits determined by `parts` (not a cryptographic digest).
fn fake_fingerprint(parts: &[&str]) -> String {
    (0u8..4)
        .map(|round| {
            let mut hasher = DefaultHasher::new();
            round.hash(&mut hasher);
            parts.hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn seeds_are_well_formed() {
        let seed = LayerSeed::new("web", "Web tier", "0123456789abcdef0123456789abcdef01234567").parent(0);
        assert!(is_hex(&seed.fingerprint, 64));
        assert_eq!(seed.ami_name(), "web-0123456789ab");
        assert_eq!(seed.parent, Some(0));
        assert_eq!(seed.project, DEFAULT_PROJECT);
        let other = LayerSeed::new("web", "Web tier", "1123456789abcdef0123456789abcdef01234567");
        assert_ne!(seed.fingerprint, other.fingerprint);
    }
}
