//! What a layer's configuration asks for, found at plan and again at apply: its parent
//! AMI (`parent`, or the newest `source` image), its builder and fingerprint, and an
//! AMI that already is this build (adopted rather than built again).

use super::model::{AmiAttributes, Model, NativeModel};
use crate::aws::images::{self, Identity, Image};
use crate::aws::{AwsError, Clients};
use crate::builder::{Builder, Parent};
use crate::resource::resolve::{Lookups, resolve};
use conventions::ami_tags;
use std::collections::BTreeMap;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::value::Val;

/// What the configuration asks for, as far as it is known.
pub struct Desired {
    pub parent: Option<Parent>,
    pub fingerprint: Option<String>,
    pub builder: Option<Builder>,
}

impl Desired {
    /// The tags an AMI must carry to be this build.
    pub fn identity(&self, model: &Model) -> Option<Identity> {
        Some(Identity {
            layer: model.layer.known()?.clone(),
            commit: model.commit.known()?.clone(),
            parent_ami: self.parent.as_ref()?.ami_id.clone(),
            fingerprint: self.fingerprint.clone()?,
        })
    }
}

pub async fn desired(clients: &Clients, model: &Model, diags: &mut Diagnostics) -> Option<Desired> {
    let parent = resolve_parent(clients, model, diags).await?;
    let builder = model.builder();
    let fingerprint = match (&parent, &builder, model.layer.known()) {
        (Some(parent), Some(builder), Some(layer)) => match builder.fingerprint(layer, parent) {
            Ok(fingerprint) => Some(fingerprint),
            Err(e) => {
                diags.error_at(
                    AttributePath::attr("build").push_attr("packer_template"),
                    "Unreadable Packer Template",
                    e.to_string(),
                );
                return None;
            }
        },
        _ => None,
    };
    Some(Desired { parent, fingerprint, builder })
}

/// The parent AMI: `parent`, or the newest image matching `source`. `Some(None)` while
/// the configuration does not know it yet; `None` with an error.
async fn resolve_parent(clients: &Clients, model: &Model, diags: &mut Diagnostics) -> Option<Option<Parent>> {
    match (&model.parent, &model.source) {
        (Val::Known(id), _) => {
            // Shared: the layers of a chain plan at once and look up the same images.
            let lookups = Lookups {
                image: Some((AttributePath::attr("parent"), id, "Parent AMI")),
                ..Lookups::default()
            };
            let image = resolve(clients, &lookups, diags).await.image?;
            Some(Some(Parent {
                ami_id: image.id.clone(),
                layer: image.tag(ami_tags::LAYER).map(str::to_owned),
                fingerprint: image.tag(ami_tags::FINGERPRINT).map(str::to_owned),
            }))
        }
        (Val::Unknown, _) => Some(None),
        (Val::Null, Val::Known(source)) => {
            let (Some(owners), Some(name)) = (source.owners.known(), source.name.known()) else {
                return Some(None);
            };
            let tags = match &source.tags {
                Val::Known(tags) => tags.clone(),
                Val::Null => BTreeMap::new(),
                Val::Unknown => return Some(None),
            };
            match images::find_source_image(&clients.ec2, owners, name, &tags).await {
                Ok(Some(image)) => Some(Some(Parent {
                    ami_id: image.id.clone(),
                    layer: None,
                    fingerprint: image.tag(ami_tags::FINGERPRINT).map(str::to_owned),
                })),
                Ok(None) => {
                    let filters = tags.iter().map(|(k, v)| format!(", tag {k} = {v:?}")).collect::<String>();
                    diags.error_at(
                        "source",
                        "No Source AMI",
                        format!(
                            "no available AMI named like {name:?}{filters} (owners: {}) in {}",
                            owners.join(", "),
                            clients.region
                        ),
                    );
                    None
                }
                Err(e) => {
                    diags.push(e.diagnostic_at("source"));
                    None
                }
            }
        }
        (Val::Null, _) => Some(None),
    }
}

/// The AMI to adopt: the prior one when it still qualifies, else the newest that does.
pub async fn find_adoptable(
    clients: &Clients,
    identity: &Identity,
    prior_ami: Option<&str>,
) -> Result<Option<Image>, AwsError> {
    let found = images::find_adoptable(&clients.ec2, identity).await?;
    let prior = found.iter().position(|i| Some(i.id.as_str()) == prior_ami).unwrap_or(0);
    Ok(found.into_iter().nth(prior))
}

/// The attributes of `image`, with its lineage.
pub async fn describe(clients: &Clients, image: &Image) -> Result<AmiAttributes, AwsError> {
    let lineage = images::lineage(&clients.reads, image).await.map_err(|mut e| {
        e.action = format!("following the lineage of {}: {}", image.id, e.action);
        e
    })?;
    Ok(AmiAttributes::of(image, lineage))
}

/// A build is planned: the builder instance's subnet, security groups, instance
/// profile and type must exist now, not fail the apply.
pub async fn check_native_builder(clients: &Clients, native: &NativeModel, diags: &mut Diagnostics) {
    let at = |name: &str| AttributePath::attr("build").push_attr("native").push_attr(name);
    let mut lookups = Lookups {
        subnets: native.subnet_id.known().map(|s| (at("subnet_id"), std::slice::from_ref(s))),
        instance_profile: native
            .iam_instance_profile
            .known()
            .map(|p| (at("iam_instance_profile"), p.as_str())),
        instance_types: native.instance_type.known().map(|t| (at("instance_type"), std::slice::from_ref(t))),
        ..Lookups::default()
    };
    if let Some(groups) = native.security_group_ids.known() {
        let names: Vec<&String> = groups.iter().filter(|g| !g.starts_with("sg-")).collect();
        if names.is_empty() {
            lookups.security_groups = Some((at("security_group_ids"), groups.as_slice()));
        } else {
            diags.error_at(
                at("security_group_ids"),
                "Security Group Id Expected",
                format!("build.native.security_group_ids takes sg- ids; got {names:?}"),
            );
        }
    }
    resolve(clients, &lookups, diags).await;
}
