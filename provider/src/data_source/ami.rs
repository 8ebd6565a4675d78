//! `immutable_ami`: the newest available AMI of a layer, with its lineage.

use crate::aws::images::{self, ImageQuery};
use crate::config::Shared;
use crate::resource::validators;
use async_trait::async_trait;
use conventions::ami_tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::provider::decode;
use tfplugin::provider::{Context, DataSource};
use tfplugin::schema::{self, Attribute, Block, Schema};
use tfplugin::value::{Type, Val, Value};

pub const TYPE_NAME: &str = "immutable_ami";

pub struct AmiDataSource {
    shared: Arc<Shared>,
}

impl AmiDataSource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[derive(Debug, Deserialize)]
struct Config {
    layer: Val<String>,
    commit: Val<String>,
    filter_tags: Val<BTreeMap<String, String>>,
    owners: Val<Vec<String>>,
}

#[derive(Debug, Serialize)]
struct State {
    id: String,
    layer: String,
    commit: Option<String>,
    filter_tags: Option<BTreeMap<String, String>>,
    owners: Vec<String>,
    ami_id: String,
    name: String,
    creation_date: String,
    fingerprint: Option<String>,
    tags: BTreeMap<String, String>,
    lineage: Vec<LineageEntry>,
}

#[derive(Debug, Serialize)]
struct LineageEntry {
    layer: String,
    ami_id: String,
    commit: Option<String>,
}

/// A lineage: `{ layer, ami_id, commit }` from the root layer to an AMI.
pub(crate) fn lineage_type() -> Type {
    Type::list(Type::object([("layer", Type::String), ("ami_id", Type::String), ("commit", Type::String)]))
}

#[async_trait]
impl DataSource for AmiDataSource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new(
                "The newest available AMI of a layer (by its `Layer` tag), optionally pinned to a commit, \
                 with its lineage: the chain of parent AMIs, followed through their `ParentAMI` tags up to \
                 the root layer.",
            )
            .attribute(
                Attribute::required("layer", Type::String)
                    .description("Layer id, the AMI's `Layer` tag (e.g. `rails-base`).")
                    .validator(schema::validators::not_empty()),
            )
            .attribute(
                Attribute::optional_computed("commit", Type::String)
                    .description("Only AMIs built from this git commit (`Commit` tag). Read back from the AMI when unset.")
                    .validator(validators::commit()),
            )
            .attribute(
                Attribute::optional("filter_tags", Type::map(Type::String))
                    .description("Further tags the AMI must carry, e.g. `{ Project = \"shop\" }`."),
            )
            .attribute(
                Attribute::optional_computed("owners", Type::list(Type::String))
                    .description("AMI owners to search: account ids, `self` or `amazon` (default `[\"self\"]`)."),
            )
            .attribute(Attribute::computed("id", Type::String).description("The AMI id."))
            .attribute(Attribute::computed("ami_id", Type::String).description("The AMI id."))
            .attribute(Attribute::computed("name", Type::String).description("The AMI name."))
            .attribute(
                Attribute::computed("creation_date", Type::String).description("When the AMI was created (RFC 3339)."),
            )
            .attribute(
                Attribute::computed("fingerprint", Type::String)
                    .description("The AMI's `Fingerprint` tag: a digest of the layer's inputs and its parent's."),
            )
            .attribute(Attribute::computed("tags", Type::map(Type::String)).description("All tags of the AMI."))
            .attribute(Attribute::computed("lineage", lineage_type()).description(
                "The chain from the root layer to this AMI: a list of `{ layer, ami_id, commit }`, root first, \
                 this AMI last.",
            )),
        )
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        // Values that only apply will know (e.g. a tag from another resource) are
        // checked when they are known.
        let Some(model) = decode::<Config>(config, "configuration", diags) else { return };
        if let Some(owners) = model.owners.known() {
            if owners.is_empty() {
                diags.error_at(
                    "owners",
                    "Empty Owners",
                    "owners must name at least one owner, or be left unset",
                );
            }
            for (i, owner) in owners.iter().enumerate() {
                if owner.trim().is_empty() {
                    diags.error_at(
                        tfplugin::path::AttributePath::attr("owners").push_index(i as i64),
                        "Empty Value",
                        format!("owners[{i}] must be an account id, \"self\" or \"amazon\""),
                    );
                }
            }
        }
    }

    async fn read(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let model = decode::<Config>(config, "configuration", diags)?;
        let clients = self.shared.clients(diags)?;
        let query = ImageQuery {
            layer: model.layer.known()?.clone(),
            commit: model.commit.known().cloned(),
            tags: model.filter_tags.known().cloned().unwrap_or_default(),
            owners: model.owners.known().cloned().unwrap_or_else(|| vec!["self".to_owned()]),
        };
        let images = match images::find_images(&clients.ec2, &query).await {
            Ok(images) => images,
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        let Some(newest) = images.into_iter().next() else {
            diags.error_at(
                "layer",
                "No Matching AMI",
                format!("no available AMI matches {} in {}", query.describe(), clients.region),
            );
            return None;
        };
        let lineage = match images::lineage(&clients.reads, &newest).await {
            Ok(lineage) => lineage,
            Err(mut e) => {
                e.action = format!("following the lineage of {}: {}", newest.id, e.action);
                diags.push(e.diagnostic());
                return None;
            }
        };
        tracing::info!(layer = %query.layer, ami = %newest.id, depth = lineage.len(), "found newest AMI of layer");
        let state = State {
            id: newest.id.clone(),
            layer: query.layer.clone(),
            commit: newest.tag(ami_tags::COMMIT).map(str::to_owned).or(query.commit.clone()),
            filter_tags: model.filter_tags.into_option(),
            owners: query.owners,
            ami_id: newest.id.clone(),
            name: newest.name.clone(),
            creation_date: newest.creation_date.clone(),
            fingerprint: newest.tag(ami_tags::FINGERPRINT).map(str::to_owned),
            tags: newest.tags.clone(),
            lineage: lineage
                .into_iter()
                .map(|a| LineageEntry { layer: a.layer, ami_id: a.ami_id, commit: a.commit })
                .collect(),
        };
        tfplugin::provider::encode(&state, &self.schema(), diags)
    }
}
