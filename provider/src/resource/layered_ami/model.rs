//! The layer's model, mirroring its schema, and what it asks for: a parent, a builder,
//! a fingerprint, the AMI's tags.

use super::schema::DEFAULT_INSTANCE_TYPE;
use crate::aws::Clients;
use crate::aws::images::{Ancestor, Image};
use crate::builder::native::NativeSpec;
use crate::builder::packer::{self, PackerSpec};
use crate::builder::{Builder, Parent};
use conventions::ami_tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tfplugin::schema::Timeouts;
use tfplugin::value::Val;

/// Configuration, plan and state alike.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Model {
    pub layer: Val<String>,
    pub commit: Val<String>,
    pub display_name: Val<String>,
    pub parent: Val<String>,
    pub source: Val<SourceModel>,
    pub build: Val<BuildModel>,
    pub keep: Val<i64>,
    pub deregister_on_destroy: Val<bool>,
    pub force_deregister: Val<bool>,
    pub tags: Val<BTreeMap<String, String>>,
    pub tags_all: Val<BTreeMap<String, String>>,
    pub timeouts: Val<Timeouts>,
    pub parent_ami_id: Val<String>,
    pub fingerprint: Val<String>,
    #[serde(flatten)]
    pub ami: AmiAttributes,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct SourceModel {
    pub owners: Val<Vec<String>>,
    pub name: Val<String>,
    pub tags: Val<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BuildModel {
    pub packer_template: Val<String>,
    pub command: Val<String>,
    pub manifest: Val<String>,
    pub native: Val<NativeModel>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct NativeModel {
    pub user_data: Val<String>,
    pub instance_type: Val<String>,
    pub subnet_id: Val<String>,
    pub security_group_ids: Val<Vec<String>>,
    pub iam_instance_profile: Val<String>,
}

/// The attributes the layer's current AMI decides.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct AmiAttributes {
    pub id: Val<String>,
    pub ami_id: Val<String>,
    pub ami_name: Val<String>,
    pub creation_date: Val<String>,
    pub lineage: Val<Vec<LineageEntry>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct LineageEntry {
    pub layer: String,
    pub ami_id: String,
    pub commit: Option<String>,
}

impl AmiAttributes {
    /// Not known until the AMI is built.
    pub fn unknown() -> Self {
        Self {
            id: Val::Unknown,
            ami_id: Val::Unknown,
            ami_name: Val::Unknown,
            creation_date: Val::Unknown,
            lineage: Val::Unknown,
        }
    }

    /// Those of `image`, whose lineage is `lineage`.
    pub fn of(image: &Image, lineage: Vec<Ancestor>) -> Self {
        Self {
            id: Val::Known(image.id.clone()),
            ami_id: Val::Known(image.id.clone()),
            ami_name: Val::Known(image.name.clone()),
            creation_date: Val::Known(image.creation_date.clone()),
            lineage: Val::Known(
                lineage
                    .into_iter()
                    .map(|a| LineageEntry { layer: a.layer, ami_id: a.ami_id, commit: a.commit })
                    .collect(),
            ),
        }
    }
}

/// Whether the provider sets the AMI tag `key` itself: the lineage tags.
pub fn is_lineage_tag(key: &str) -> bool {
    super::schema::OWNED_TAGS.contains(&key) || key.starts_with("immutable:") || key.starts_with("aws:")
}

/// The AMI's tags among `managed` (the keys the configuration decides now or did).
pub fn managed_tags(
    image_tags: &BTreeMap<String, String>,
    managed: &std::collections::BTreeSet<String>,
) -> BTreeMap<String, String> {
    image_tags.iter().filter(|(k, _)| managed.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A value that must be known: `Some(Some)` known, `Some(None)` null, `None` unknown.
fn settled<T: Clone>(value: &Val<T>) -> Option<Option<T>> {
    match value {
        Val::Known(v) => Some(Some(v.clone())),
        Val::Null => Some(None),
        Val::Unknown => None,
    }
}

impl Model {
    /// The builder the configuration asks for; `None` while parts are unknown or missing.
    pub fn builder(&self) -> Option<Builder> {
        let build = self.build.known()?;
        if let Some(template) = build.packer_template.known() {
            let command = settled(&build.command)?;
            return Some(Builder::Packer(PackerSpec {
                template: PathBuf::from(template),
                command: packer::split_command(command.as_deref().unwrap_or(packer::DEFAULT_COMMAND)),
                manifest: settled(&build.manifest)?.map(PathBuf::from),
            }));
        }
        let native = build.native.known()?;
        Some(Builder::Native(NativeSpec {
            user_data: native.user_data.known()?.clone(),
            instance_type: settled(&native.instance_type)?
                .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned()),
            subnet_id: settled(&native.subnet_id)?,
            security_group_ids: settled(&native.security_group_ids)?.unwrap_or_default(),
            iam_instance_profile: settled(&native.iam_instance_profile)?,
        }))
    }

    /// Every tag the layer's AMI carries: default tags, then the user's, then the
    /// lineage tags (which win).
    pub fn ami_tags(
        &self,
        clients: &Clients,
        parent: &Parent,
        fingerprint: &str,
    ) -> BTreeMap<String, String> {
        let layer = self.layer.known().cloned().unwrap_or_default();
        let mut tags = self.user_tags(clients);
        // Without a display name, a native build names the AMI after the layer (a Packer
        // build keeps its template's `Name`, see BuildRequest::explicit_name).
        tags.entry(ami_tags::NAME.to_owned()).or_insert_with(|| layer.clone());
        tags.insert(ami_tags::LAYER.to_owned(), layer);
        tags.insert(ami_tags::COMMIT.to_owned(), self.commit.known().cloned().unwrap_or_default());
        tags.insert(ami_tags::FINGERPRINT.to_owned(), fingerprint.to_owned());
        tags.insert(ami_tags::PARENT_AMI.to_owned(), parent.ami_id.clone());
        if let Some(parent_layer) = &parent.layer {
            tags.insert(ami_tags::PARENT_LAYER.to_owned(), parent_layer.clone());
        }
        tags.insert(ami_tags::MANAGED_BY.to_owned(), ami_tags::MANAGED_BY_VALUE.to_owned());
        tags
    }

    /// [`Self::user_tags`] when the configuration decides them at plan time.
    pub fn planned_user_tags(&self, clients: &Clients) -> Val<BTreeMap<String, String>> {
        if self.tags.is_unknown() || self.display_name.is_unknown() {
            return Val::Unknown;
        }
        Val::Known(self.user_tags(clients))
    }

    /// The tags the user decides: default tags, the resource's `tags`, and `Name` when
    /// `display_name` is set (else the AMI keeps the `Name` its build gave it).
    pub fn user_tags(&self, clients: &Clients) -> BTreeMap<String, String> {
        let mut tags = clients.default_tags.clone();
        tags.extend(self.tags.known().cloned().unwrap_or_default());
        if let Some(name) = self.display_name.known() {
            tags.insert(ami_tags::NAME.to_owned(), name.clone());
        }
        tags
    }
}
