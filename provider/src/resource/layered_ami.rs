//! `immutable_layered_ami`: one layer of an AMI lineage (SPEC section 5).
//!
//! Plan decides between adoption and a build: an available AMI of this layer tagged
//! with this commit, fingerprint and parent already exists -> its id is planned and
//! apply builds nothing; otherwise `ami_id` is unknown and apply builds it (Packer or
//! the native builder), tags it, and prunes the layer's old AMIs per `keep`.

use crate::aws::ami::{self, Image};
use crate::aws::build::{self, Limits};
use crate::aws::image::{self, Identity};
use crate::aws::{AwsError, Clients, iam, network};
use crate::builder::native::NativeSpec;
use crate::builder::packer::{self, PackerSpec};
use crate::builder::{BuildError, BuildRequest, Builder, Parent};
use crate::config::Shared;
use crate::data_source::ami::commit_validator;
use async_trait::async_trait;
use conventions::ami_tags;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::provider::{Change, Context, Plan, Resource, State};
use tfplugin::schema::{Attribute, Block, NestedBlock, PlanModifier, Schema, Validator, timeout, validators};
use tfplugin::value::{Type, Val, Value, from_value, to_value};

pub const TYPE_NAME: &str = "immutable_layered_ami";

const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const DEFAULT_INSTANCE_TYPE: &str = "t3.micro";

/// Tag keys the resource owns; users cannot set them through `tags`.
const RESERVED_TAGS: [&str; 6] = [
    ami_tags::LAYER,
    ami_tags::COMMIT,
    ami_tags::FINGERPRINT,
    ami_tags::PARENT_LAYER,
    ami_tags::PARENT_AMI,
    ami_tags::MANAGED_BY,
];

pub struct LayeredAmiResource {
    shared: Arc<Shared>,
}

impl LayeredAmiResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// The resource's model, mirroring its schema.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct Model {
    layer: Val<String>,
    commit: Val<String>,
    display_name: Val<String>,
    parent: Val<String>,
    source: Val<SourceModel>,
    build: Val<BuildModel>,
    keep: Val<i64>,
    deregister_on_destroy: Val<bool>,
    tags: Val<BTreeMap<String, String>>,
    timeouts: Val<TimeoutsModel>,
    id: Val<String>,
    ami_id: Val<String>,
    ami_name: Val<String>,
    creation_date: Val<String>,
    parent_ami_id: Val<String>,
    fingerprint: Val<String>,
    lineage: Val<Vec<LineageEntry>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct SourceModel {
    owners: Val<Vec<String>>,
    name: Val<String>,
    tags: Val<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct BuildModel {
    packer_template: Val<String>,
    command: Val<String>,
    manifest: Val<String>,
    native: Val<NativeModel>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct NativeModel {
    user_data: Val<String>,
    instance_type: Val<String>,
    subnet_id: Val<String>,
    security_group_ids: Val<Vec<String>>,
    iam_instance_profile: Val<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct TimeoutsModel {
    create: Val<String>,
    update: Val<String>,
    delete: Val<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
struct LineageEntry {
    layer: String,
    ami_id: String,
    commit: Option<String>,
}

fn schema() -> Schema {
    let computed =
        |name: &str, description: &str| Attribute::computed(name, Type::String).description(description);
    let native = Block::new("Bake the image without Packer: an instance launched from the parent runs `user_data`, which must power the instance off when done; the stopped instance becomes the AMI and is then terminated.")
        .attribute(
            Attribute::required("user_data", Type::String)
                .description("The script that provisions the image and ends with `shutdown -h now`.")
                .validator(validators::not_empty()),
        )
        .attribute(
            Attribute::optional("instance_type", Type::String)
                .description(format!("Instance type of the builder instance (default `{DEFAULT_INSTANCE_TYPE}`)."))
                .validator(validators::not_empty()),
        )
        .attribute(Attribute::optional("subnet_id", Type::String).description("Subnet of the builder instance (default: the default VPC)."))
        .attribute(
            Attribute::optional("security_group_ids", Type::list(Type::String))
                .description("Security groups of the builder instance."),
        )
        .attribute(
            Attribute::optional("iam_instance_profile", Type::String)
                .description("Instance profile (name or ARN) for the builder instance."),
        );
    let build = Block::new("How to build the layer when no AMI can be adopted: `packer_template`, or a `native` block.")
        .attribute(
            Attribute::optional("packer_template", Type::String)
                .description("Packer template (JSON or HCL2), e.g. one generated by `immutable-codegen`. It gets `-var commit=...` and `-var parent=...` and needs a manifest post-processor. A literal `Fingerprint` tag in it is the layer's fingerprint.")
                .validator(validators::not_empty()),
        )
        .attribute(
            Attribute::optional("command", Type::String)
                .description(format!("Command that runs the template, split on whitespace (default `{}`).", packer::DEFAULT_COMMAND))
                .validator(validators::not_empty()),
        )
        .attribute(
            Attribute::optional("manifest", Type::String)
                .description(format!("The file the template's manifest post-processor writes (default: its `output`, else `{}`).", packer::DEFAULT_MANIFEST)),
        )
        .block(NestedBlock::single("native", native));
    let source = Block::new("A root layer's upstream image: the newest available AMI matching all of these.")
        .attribute(
            Attribute::required("owners", Type::list(Type::String))
                .description("Owners to search: account ids, `self` or `amazon`.")
                .validator(validators::non_empty_list()),
        )
        .attribute(
            Attribute::required("name", Type::String)
                .description("AMI name pattern, with `*` wildcards, e.g. `ubuntu/images/hvm-ssd/ubuntu-bionic-18.04-amd64-server-*`.")
                .validator(validators::not_empty()),
        )
        .attribute(Attribute::optional("tags", Type::map(Type::String)).description("Tags the source AMI must carry."));
    Schema::new(
        Block::new(
            "One layer of an AMI lineage (base -> role -> app), tagged with the git commit and the lineage it came from. \
             When an available AMI of this layer with this commit, fingerprint and parent exists, the plan adopts it and \
             nothing is built; otherwise apply builds it with Packer or the native builder. A new parent AMI rebuilds \
             every descendant. `keep` prunes the layer's old AMIs after a build, never one still in use.",
        )
        .attribute(
            Attribute::required("layer", Type::String)
                .description("Layer id, the AMI's `Layer` tag and its name prefix (`<layer>-<unix time>`).")
                .modifier(PlanModifier::RequiresReplace)
                .validator(validators::not_empty())
                .validator(layer_validator()),
        )
        .attribute(
            Attribute::required("commit", Type::String)
                .description("The git commit of the image sources (`Commit` tag).")
                .validator(commit_validator()),
        )
        .attribute(
            Attribute::optional("display_name", Type::String)
                .description("Human name of the layer, the AMI's `Name` tag (default: the layer id).")
                .validator(validators::not_empty()),
        )
        .attribute(
            Attribute::optional("parent", Type::String)
                .description("A child layer's parent AMI id, normally another layer's `ami_id`. Exactly one of `parent` and `source`.")
                .validator(ami_id_validator()),
        )
        .attribute(
            Attribute::optional("keep", Type::Number)
                .description("After a build, keep the newest `keep` AMIs of the layer and deregister older ones (deleting their snapshots), except AMIs that instances, Spot Fleets or child layers still use. Unset: keep all.")
                .validator(keep_validator()),
        )
        .attribute(
            Attribute::optional("deregister_on_destroy", Type::Bool)
                .description("Whether destroying the resource deregisters its current AMI and deletes its snapshots (default `true`)."),
        )
        .attribute(
            Attribute::optional("tags", Type::map(Type::String))
                .description("Further AMI tags, over the provider's `default_tags`. The lineage tags (`Layer`, `Commit`, `Fingerprint`, `ParentLayer`, `ParentAMI`, `ManagedBy`) are set by the resource."),
        )
        .attribute(computed("id", "The current AMI id."))
        .attribute(computed("ami_id", "The current AMI id of the layer: adopted or built."))
        .attribute(computed("ami_name", "The AMI name."))
        .attribute(computed("creation_date", "When the AMI was created (RFC 3339)."))
        .attribute(computed(
            "parent_ami_id",
            "The AMI the layer is built from: `parent`, or for a root layer the newest `source` image.",
        ))
        .attribute(computed(
            "fingerprint",
            "Digest of the layer's inputs and its parent's fingerprint (`Fingerprint` tag): the template's literal tag, or computed over the native builder's settings.",
        ))
        .attribute(Attribute::computed("lineage", crate::data_source::ami::lineage_type()).description(
            "The chain from the root layer to this AMI: a list of `{ layer, ami_id, commit }`, root first, this AMI last.",
        ))
        .block(NestedBlock::single("source", source))
        .block(NestedBlock::single("build", build))
        .timeouts(&[("create", "60m"), ("update", "60m"), ("delete", "20m")]),
    )
}

fn keep_validator() -> Validator {
    Validator::new("At least 1.", |value, path, diags| {
        if let Value::Number(n) = value
            && n.to_i64().is_none_or(|keep| keep < 1)
        {
            diags.error_at(
                path.clone(),
                "Invalid Retention",
                format!("{path} must be a whole number of at least 1 (the current AMI is always kept), got {n}; leave it unset to keep every AMI"),
            );
        }
    })
}

fn layer_validator() -> Validator {
    Validator::new("Usable in an AMI name (`<layer>-<unix time>`).", |value, path, diags| {
        if let Value::String(layer) = value
            && let Some(problem) = conventions::ami_name_problem(&format!("{layer}-1700000000"))
        {
            diags.error_at(
                path.clone(),
                "Invalid Layer Id",
                format!("{path} {layer:?} cannot prefix AMI names: {problem}"),
            );
        }
    })
}

fn ami_id_validator() -> Validator {
    Validator::new("An AMI id (`ami-...`).", |value, path, diags| {
        if let Value::String(id) = value
            && (!id.starts_with("ami-") || id.len() < 5)
        {
            diags.error_at(
                path.clone(),
                "Invalid AMI Id",
                format!("{path} must be an AMI id such as \"ami-0123456789abcdef0\", got {id:?}"),
            );
        }
    })
}

/// Decodes a configuration, plan or state. A collection with an unknown inside
/// reads as not yet known as a whole.
fn decode(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<Model> {
    match from_value(&value.collapse_partial_unknowns()) {
        Ok(model) => Some(model),
        Err(e) => {
            diags.error_at(e.path.clone(), "Invalid Argument", format!("{what}: {e}"));
            None
        }
    }
}

fn encode(model: &Model, diags: &mut Diagnostics) -> Option<Value> {
    match to_value(model, &schema().value_type()) {
        Ok(value) => Some(value),
        Err(e) => {
            diags.error("Provider Bug", format!("encoding {TYPE_NAME}: {e}"));
            None
        }
    }
}

/// The builder the configuration asks for; `None` while parts are unknown or missing.
fn builder_of(model: &Model) -> Option<Builder> {
    let build = model.build.known()?;
    if let Some(template) = build.packer_template.known() {
        let command = match &build.command {
            Val::Known(command) => packer::split_command(command),
            Val::Null => packer::split_command(packer::DEFAULT_COMMAND),
            Val::Unknown => return None,
        };
        let manifest = match &build.manifest {
            Val::Known(path) => Some(PathBuf::from(path)),
            Val::Null => None,
            Val::Unknown => return None,
        };
        return Some(Builder::Packer(PackerSpec { template: PathBuf::from(template), command, manifest }));
    }
    let native = build.native.known()?;
    let optional = |v: &Val<String>| -> Option<Option<String>> {
        match v {
            Val::Known(s) => Some(Some(s.clone())),
            Val::Null => Some(None),
            Val::Unknown => None,
        }
    };
    Some(Builder::Native(NativeSpec {
        user_data: native.user_data.known()?.clone(),
        instance_type: optional(&native.instance_type)?.unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_owned()),
        subnet_id: optional(&native.subnet_id)?,
        security_group_ids: match &native.security_group_ids {
            Val::Known(ids) => ids.clone(),
            Val::Null => Vec::new(),
            Val::Unknown => return None,
        },
        iam_instance_profile: optional(&native.iam_instance_profile)?,
    }))
}

/// What the configuration asks for, as far as it is known.
struct Desired {
    parent: Option<Parent>,
    fingerprint: Option<String>,
    builder: Option<Builder>,
}

impl Desired {
    fn identity(&self, model: &Model) -> Option<Identity> {
        Some(Identity {
            layer: model.layer.known()?.clone(),
            commit: model.commit.known()?.clone(),
            parent_ami: self.parent.as_ref()?.ami_id.clone(),
            fingerprint: self.fingerprint.clone()?,
        })
    }
}

fn aws_error(diags: &mut Diagnostics, attribute: Option<&str>, e: &AwsError) {
    match attribute {
        Some(path) => diags.error_at(path, "AWS Error", e.to_string()),
        None => diags.error("AWS Error", e.to_string()),
    }
}

/// The parent AMI: `parent`, or the newest image matching `source`. `Ok(None)`
/// while the configuration does not know it yet.
async fn resolve_parent(clients: &Clients, model: &Model, diags: &mut Diagnostics) -> Option<Option<Parent>> {
    match (&model.parent, &model.source) {
        // Shared: the layers of a chain plan at once and look up the same images.
        (Val::Known(id), _) => match clients.reads.image(id).await {
            Ok(Some(image)) if image.state == "available" => Some(Some(Parent {
                ami_id: image.id.clone(),
                layer: image.tag(ami_tags::LAYER).map(str::to_owned),
                fingerprint: image.tag(ami_tags::FINGERPRINT).map(str::to_owned),
            })),
            Ok(Some(image)) => {
                diags.error_at(
                    "parent",
                    "Parent AMI Not Available",
                    format!("parent AMI {id} is {}, not available", image.state),
                );
                None
            }
            Ok(None) => {
                diags.error_at(
                    "parent",
                    "Parent AMI Not Found",
                    format!("parent AMI {id} does not exist in {} (deregistered?)", clients.region),
                );
                None
            }
            Err(e) => {
                aws_error(diags, Some("parent"), &e);
                None
            }
        },
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
            match image::find_source_image(&clients.ec2, owners, name, &tags).await {
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
                    aws_error(diags, Some("source"), &e);
                    None
                }
            }
        }
        (Val::Null, _) => Some(None),
    }
}

async fn desired(clients: &Clients, model: &Model, diags: &mut Diagnostics) -> Option<Desired> {
    let parent = resolve_parent(clients, model, diags).await?;
    let builder = builder_of(model);
    let fingerprint = match (&parent, &builder, model.layer.known()) {
        (Some(parent), Some(builder), Some(layer)) => match builder.fingerprint(layer, parent) {
            Ok(fingerprint) => Some(fingerprint),
            Err(e) => {
                diags.error_at("build.packer_template", "Unreadable Packer Template", e.to_string());
                return None;
            }
        },
        _ => None,
    };
    Some(Desired { parent, fingerprint, builder })
}

/// The AMI to adopt: the prior one when it still qualifies, else the newest that does.
async fn find_adoptable(
    clients: &Clients,
    identity: &Identity,
    prior_ami: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<Option<Image>> {
    match image::find_adoptable(&clients.ec2, identity).await {
        Ok(images) => {
            let prior = images.iter().position(|i| Some(i.id.as_str()) == prior_ami).unwrap_or(0);
            Some(images.into_iter().nth(prior))
        }
        Err(e) => {
            aws_error(diags, None, &e);
            None
        }
    }
}

/// Fills the AMI's own attributes from the image.
async fn describe_into(
    clients: &Clients,
    model: &mut Model,
    image: &Image,
    diags: &mut Diagnostics,
) -> Option<()> {
    let lineage = match ami::lineage(&clients.reads, image).await {
        Ok(lineage) => lineage,
        Err(e) => {
            diags.error("AWS Error", format!("following the lineage of {}: {e}", image.id));
            return None;
        }
    };
    model.id = Val::Known(image.id.clone());
    model.ami_id = Val::Known(image.id.clone());
    model.ami_name = Val::Known(image.name.clone());
    model.creation_date = Val::Known(image.creation_date.clone());
    model.lineage = Val::Known(
        lineage
            .into_iter()
            .map(|a| LineageEntry { layer: a.layer, ami_id: a.ami_id, commit: a.commit })
            .collect(),
    );
    Some(())
}

/// A build is planned: the builder instance's subnet, security groups, instance
/// profile and type must exist now, not fail the apply.
async fn check_native_builder(clients: &Clients, native: &NativeModel, diags: &mut Diagnostics) {
    let at = |name: &str| AttributePath::attr("build").push_attr("native").push_attr(name);
    let aws = |diags: &mut Diagnostics, name: &str, e: AwsError| {
        diags.error_at(at(name), "AWS Error", e.to_string())
    };
    if let Some(subnet) = native.subnet_id.known() {
        match network::missing_subnets(&clients.ec2, std::slice::from_ref(subnet)).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(_) => diags.error_at(
                at("subnet_id"),
                "Unknown Subnet",
                format!("no subnet {subnet} in {} for the builder instance", clients.region),
            ),
            Err(e) => aws(diags, "subnet_id", e),
        }
    }
    if let Some(groups) = native.security_group_ids.known() {
        let names: Vec<&String> = groups.iter().filter(|g| !g.starts_with("sg-")).collect();
        if !names.is_empty() {
            diags.error_at(
                at("security_group_ids"),
                "Security Group Id Expected",
                format!("build.native.security_group_ids takes sg- ids; got {names:?}"),
            );
        } else {
            match network::resolve_security_groups(&clients.ec2, groups).await {
                Ok(Ok(_)) => {}
                Ok(Err(missing)) => diags.error_at(
                    at("security_group_ids"),
                    "Unknown Security Group",
                    format!("no security group {} in {}", missing.join(", "), clients.region),
                ),
                Err(e) => aws(diags, "security_group_ids", e),
            }
        }
    }
    if let Some(profile) = native.iam_instance_profile.known() {
        match iam::instance_profile_arn(&clients.iam, profile).await {
            Ok(Some(_)) => {}
            Ok(None) => diags.error_at(
                at("iam_instance_profile"),
                "Unknown Instance Profile",
                format!("no instance profile {profile:?} for the builder instance"),
            ),
            Err(e) => aws(diags, "iam_instance_profile", e),
        }
    }
    if let Some(instance_type) = native.instance_type.known() {
        match network::unknown_instance_types(&clients.ec2, std::slice::from_ref(instance_type)).await {
            Ok(unknown) if unknown.is_empty() => {}
            Ok(_) => diags.error_at(
                at("instance_type"),
                "Unknown Instance Type",
                format!("EC2 offers no instance type {instance_type} in {}", clients.region),
            ),
            Err(e) => aws(diags, "instance_type", e),
        }
    }
}

/// Every tag the layer's AMI carries: default tags, then the user's, then the
/// lineage tags (which win).
fn ami_tags_for(
    clients: &Clients,
    model: &Model,
    parent: &Parent,
    fingerprint: &str,
) -> BTreeMap<String, String> {
    let layer = model.layer.known().cloned().unwrap_or_default();
    let mut tags = clients.default_tags.clone();
    tags.extend(model.tags.known().cloned().unwrap_or_default());
    tags.insert(
        ami_tags::NAME.to_owned(),
        model.display_name.known().cloned().unwrap_or_else(|| layer.clone()),
    );
    tags.insert(ami_tags::LAYER.to_owned(), layer);
    tags.insert(ami_tags::COMMIT.to_owned(), model.commit.known().cloned().unwrap_or_default());
    tags.insert(ami_tags::FINGERPRINT.to_owned(), fingerprint.to_owned());
    tags.insert(ami_tags::PARENT_AMI.to_owned(), parent.ami_id.clone());
    if let Some(parent_layer) = &parent.layer {
        tags.insert(ami_tags::PARENT_LAYER.to_owned(), parent_layer.clone());
    }
    tags.insert(ami_tags::MANAGED_BY.to_owned(), ami_tags::MANAGED_BY_VALUE.to_owned());
    tags
}

/// Whether `program` can be run: a path that exists, or a name found on `PATH`.
fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

impl LayeredAmiResource {
    /// Create and update: adopt the planned AMI, or build one; then retention.
    async fn converge(
        &self,
        ctx: &Context,
        change: &Change,
        operation: &str,
        diags: &mut Diagnostics,
    ) -> Option<State> {
        let config = decode(&change.config, "configuration", diags)?;
        let planned = decode(&change.planned, "planned state", diags)?;
        let prior = if change.prior.is_null() { None } else { decode(&change.prior, "prior state", diags) };
        let clients = self.shared.clients(diags)?;
        let _changing = clients.reads.changing();
        if let (Some(layer), Some(commit)) = (config.layer.known(), config.commit.known()) {
            terminate_leftover_builders(clients, layer, commit, diags).await;
        }
        let mut state = planned.clone();
        // The planned AMI was adopted at plan time: nothing to build.
        if let Some(ami_id) = planned.ami_id.known() {
            match ami::find_image_by_id(&clients.ec2, ami_id).await {
                Ok(Some(image)) if image.state == "available" => {}
                Ok(_) => {
                    diags.error(
                        "Adopted AMI Vanished",
                        format!("AMI {ami_id}, adopted at plan time, is no longer available; plan again"),
                    );
                    return None;
                }
                Err(e) => {
                    aws_error(diags, None, &e);
                    return None;
                }
            }
            self.sync_user_tags(clients, prior.as_ref(), &config, ami_id, diags).await;
            tracing::info!(layer = ?config.layer.known(), ami = %ami_id, "layer adopted an existing AMI");
            return Some(State { value: encode(&state, diags)?, private: Vec::new() });
        }

        let want = desired(clients, &config, diags).await?;
        let (Some(parent), Some(fingerprint), Some(identity), Some(builder)) =
            (want.parent.clone(), want.fingerprint.clone(), want.identity(&config), want.builder.clone())
        else {
            diags
                .error("Provider Bug", format!("{TYPE_NAME}: the configuration is not fully known at apply"));
            return None;
        };
        if let Some(planned_fp) = planned.fingerprint.known()
            && planned_fp != &fingerprint
        {
            diags.error_at(
                "build",
                "Layer Inputs Changed Since Plan",
                format!("the layer's fingerprint was {planned_fp} at plan time and is {fingerprint} now; plan again"),
            );
            return None;
        }
        let layer = identity.layer.clone();
        // An AMI built since the plan (or by CI) is adopted rather than built again.
        let image = match find_adoptable(clients, &identity, None, diags).await? {
            Some(image) => {
                tracing::info!(layer, ami = %image.id, "adopting an AMI built since the plan");
                image
            }
            None => {
                let deadline = Instant::now() + timeout(&change.config, operation, DEFAULT_BUILD_TIMEOUT);
                let request = BuildRequest {
                    layer: layer.clone(),
                    commit: identity.commit.clone(),
                    parent: parent.clone(),
                    tags: ami_tags_for(clients, &config, &parent, &fingerprint),
                    explicit_name: config.display_name.is_known(),
                    resource_tags: clients.default_tags.clone(),
                    limits: Limits { deadline, stop: ctx.stop.clone() },
                };
                tracing::info!(layer, commit = %identity.commit, parent = %parent.ami_id, fingerprint = %fingerprint, "building layer");
                let ami = match builder.build(&clients.ec2, &clients.region, &request).await {
                    Ok(ami) => ami,
                    Err(e) => {
                        build_failed(diags, &layer, &identity, &e);
                        return None;
                    }
                };
                match ami::find_image_by_id(&clients.ec2, &ami).await {
                    Ok(Some(image)) => image,
                    Ok(None) => {
                        diags.error(
                            "Built AMI Vanished",
                            format!("AMI {ami} of layer {layer} disappeared right after its build"),
                        );
                        return None;
                    }
                    Err(e) => {
                        aws_error(diags, None, &e);
                        return None;
                    }
                }
            }
        };
        state.parent_ami_id = Val::Known(parent.ami_id.clone());
        state.fingerprint = Val::Known(fingerprint);
        describe_into(clients, &mut state, &image, diags).await?;
        if let Some(&keep) = config.keep.known() {
            self.retain(clients, &layer, keep, &image.id, diags).await;
        }
        Some(State { value: encode(&state, diags)?, private: Vec::new() })
    }

    async fn retain(
        &self,
        clients: &Clients,
        layer: &str,
        keep: i64,
        current: &str,
        diags: &mut Diagnostics,
    ) {
        let keep = usize::try_from(keep).unwrap_or(1).max(1);
        match image::prune_layer(&clients.ec2, layer, keep, current).await {
            Ok(pruned) => {
                tracing::info!(
                    layer,
                    keep,
                    deregistered = pruned.deregistered.len(),
                    kept_in_use = pruned.kept_in_use.len(),
                    "retention done"
                );
            }
            Err(e) => diags.warning(
                "Retention Incomplete",
                format!("layer {layer} was built, but pruning its old AMIs (keep = {keep}) failed: {e}"),
            ),
        }
    }

    /// Applies changes of `tags` (and `display_name`) to an adopted AMI.
    async fn sync_user_tags(
        &self,
        clients: &Clients,
        prior: Option<&Model>,
        config: &Model,
        ami_id: &str,
        diags: &mut Diagnostics,
    ) {
        let mut wanted = clients.default_tags.clone();
        wanted.extend(config.tags.known().cloned().unwrap_or_default());
        if let Some(name) = config.display_name.known().or(config.layer.known()) {
            wanted.insert(ami_tags::NAME.to_owned(), name.clone());
        }
        let removed: Vec<String> = prior
            .and_then(|p| p.tags.known())
            .map(|old| old.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect())
            .unwrap_or_default();
        let image = match ami::find_image_by_id(&clients.ec2, ami_id).await {
            Ok(Some(image)) => image,
            Ok(None) => return,
            Err(e) => return aws_error(diags, None, &e),
        };
        let changed: BTreeMap<String, String> =
            wanted.into_iter().filter(|(k, v)| image.tags.get(k) != Some(v)).collect();
        if let Err(e) = image::tag_image(&clients.ec2, ami_id, &changed).await {
            return aws_error(diags, Some("tags"), &e);
        }
        if let Err(e) = image::untag_image(&clients.ec2, ami_id, &removed).await {
            aws_error(diags, Some("tags"), &e);
        }
    }
}

/// Terminates the builder instances a killed run of this layer and commit left
/// behind (its guard died with it), whether this run adopts the image that run
/// made or builds anew. Builders of other commits may belong to another run
/// building at the same time, and are left alone.
async fn terminate_leftover_builders(clients: &Clients, layer: &str, commit: &str, diags: &mut Diagnostics) {
    let leftovers = match build::leftover_builders(&clients.ec2, layer, commit).await {
        Ok(ids) => ids,
        Err(e) => return diags.warning("Cleanup Incomplete", e.to_string()),
    };
    for id in leftovers {
        tracing::warn!(layer, instance = %id, "terminating a builder instance left by an interrupted build");
        if let Err(e) = build::terminate_instance(&clients.ec2, &id).await {
            diags.warning("Cleanup Incomplete", e.to_string());
        }
    }
}

fn build_failed(diags: &mut Diagnostics, layer: &str, identity: &Identity, e: &BuildError) {
    let summary = if e.is_cancelled() { "Layer Build Cancelled" } else { "Layer Build Failed" };
    diags.error_at(
        "build",
        summary,
        format!("building layer {layer} at commit {} from {}: {e}", identity.commit, identity.parent_ami),
    );
}

#[async_trait]
impl Resource for LayeredAmiResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = decode(config, "configuration", diags) else { return };
        match (&model.parent, &model.source) {
            (Val::Null, Val::Null) => diags.error_at(
                "parent",
                "Missing Parent Or Source",
                "a layer needs either parent (the AMI id of its parent layer) or a source block (a root layer's \
                 upstream image); neither is set",
            ),
            (Val::Known(_) | Val::Unknown, Val::Known(_) | Val::Unknown) => diags.error_at(
                "parent",
                "Conflicting Parent And Source",
                "parent and source are mutually exclusive: a child layer has a parent AMI, a root layer a source block",
            ),
            _ => {}
        }
        if let Some(tags) = model.tags.known() {
            for key in tags.keys().filter(|k| RESERVED_TAGS.contains(&k.as_str())) {
                diags.error_at(
                    AttributePath::attr("tags").push_key(key.clone()),
                    "Reserved Tag Key",
                    format!("tags[{key:?}] is set by the resource from the layer's lineage and cannot be overridden"),
                );
            }
            for key in tags.keys().filter(|k| k.to_ascii_lowercase().starts_with("aws:")) {
                diags.error_at(
                    AttributePath::attr("tags").push_key(key.clone()),
                    "Reserved Tag Key",
                    format!("tags[{key:?}]: keys starting with aws: are reserved by AWS"),
                );
            }
        }
        let build = match &model.build {
            Val::Null => {
                diags.error_at(
                    "build",
                    "Missing Build Block",
                    "a build block is required: build { packer_template = \"...\" } or build { native { user_data = \"...\" } }",
                );
                return;
            }
            Val::Unknown => return,
            Val::Known(build) => build,
        };
        match (&build.packer_template, &build.native) {
            // On the absent attribute rather than the block: Terraform shows a block
            // path without its source, an absent attribute at its block.
            (Val::Null, Val::Null) => diags.error_at(
                AttributePath::attr("build").push_attr("packer_template"),
                "Missing Builder",
                "build needs packer_template (a Packer template to run) or a native block; it has neither",
            ),
            (Val::Known(_) | Val::Unknown, Val::Known(_) | Val::Unknown) => diags.error_at(
                "build.native",
                "Conflicting Builders",
                "build.packer_template and build.native are mutually exclusive: choose one builder",
            ),
            _ => {}
        }
        if let Val::Known(template) = &build.packer_template {
            let path = Path::new(template);
            if !path.is_file() {
                let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
                diags.error_at(
                    "build.packer_template",
                    "Packer Template Not Found",
                    format!("build.packer_template: no file at {template:?} (relative paths start at {cwd})"),
                );
            }
        }
        if build.packer_template.is_null() {
            for (attribute, value) in [("command", &build.command), ("manifest", &build.manifest)] {
                if !value.is_null() {
                    diags.error_at(
                        AttributePath::attr("build").push_attr(attribute),
                        "Packer Setting Without Template",
                        format!("build.{attribute} applies to the Packer builder only; set build.packer_template or remove it"),
                    );
                }
            }
        }
    }

    async fn plan(&self, _ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        let Some(config) = decode(&plan.config, "configuration", diags) else { return };
        let Some(mut planned) = decode(&plan.planned, "planned state", diags) else { return };
        let prior = if plan.prior.is_null() { None } else { decode(&plan.prior, "prior state", diags) };
        let Some(clients) = self.shared.clients(diags) else { return };
        let Some(want) = desired(clients, &config, diags).await else { return };

        planned.parent_ami_id = want.parent.as_ref().map_or(Val::Unknown, |p| Val::Known(p.ami_id.clone()));
        planned.fingerprint = want.fingerprint.clone().map_or(Val::Unknown, Val::Known);
        let prior_ami = prior.as_ref().and_then(|p| p.ami_id.known().cloned());
        let adopted = match want.identity(&config) {
            Some(identity) => find_adoptable(clients, &identity, prior_ami.as_deref(), diags).await,
            None => Some(None),
        };
        let Some(adopted) = adopted else { return };
        match adopted {
            Some(image) => {
                if describe_into(clients, &mut planned, &image, diags).await.is_none() {
                    return;
                }
                if prior_ami.as_deref() != Some(image.id.as_str()) {
                    tracing::info!(layer = ?config.layer.known(), ami = %image.id, "plan adopts an existing AMI");
                }
            }
            None => {
                for field in
                    [&mut planned.id, &mut planned.ami_id, &mut planned.ami_name, &mut planned.creation_date]
                {
                    *field = Val::Unknown;
                }
                planned.lineage = Val::Unknown;
                if let Some(native) = config.build.known().and_then(|b| b.native.known()) {
                    check_native_builder(clients, native, diags).await;
                }
                if let Some(Builder::Packer(spec)) = &want.builder
                    && let Some(program) = spec.command.first()
                    && !program_exists(program)
                {
                    diags.error_at(
                        if config.build.known().is_some_and(|b| b.command.is_known()) {
                            "build.command"
                        } else {
                            "build.packer_template"
                        },
                        "Packer Not Found",
                        format!("layer needs a build but {program:?} is not an executable file or on PATH"),
                    );
                }
            }
        }
        // Only computed attributes are the provider's to plan; arguments stay exactly
        // as Terraform proposed them (partially unknown collections included).
        if let Some(full) = encode(&planned, diags) {
            let schema = schema();
            for attribute in
                schema.block.attributes.iter().filter(|a| a.mode == tfplugin::schema::Mode::Computed)
            {
                let path = tfplugin::path::AttributePath::attr(attribute.name.clone());
                if let (Some(value), Some(slot)) = (full.attr(&attribute.name), plan.planned.get_mut(&path)) {
                    *slot = value.clone();
                }
            }
        }
    }

    async fn create(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        self.converge(ctx, change, "create", diags).await
    }

    async fn read(&self, _ctx: &Context, state: &State, diags: &mut Diagnostics) -> Option<State> {
        let mut model = decode(&state.value, "state", diags)?;
        let clients = self.shared.clients(diags)?;
        let Some(ami_id) = model.ami_id.known().cloned() else { return Some(state.clone()) };
        let image = match clients.reads.image(&ami_id).await {
            Ok(Some(image)) if image.state == "available" || image.state == "pending" => image,
            Ok(_) => {
                tracing::info!(ami = %ami_id, "layer AMI deregistered outside Terraform; removing it from state");
                return None;
            }
            Err(e) => {
                aws_error(diags, None, &e);
                return None;
            }
        };
        describe_into(clients, &mut model, &image, diags).await?;
        Some(State { value: encode(&model, diags)?, private: state.private.clone() })
    }

    async fn update(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let result = self.converge(ctx, change, "update", diags).await;
        // A failed rebuild leaves the prior AMI as the layer's current one.
        result.or_else(|| Some(State { value: change.prior.clone(), private: change.private.clone() }))
    }

    async fn delete(&self, _ctx: &Context, change: &Change, diags: &mut Diagnostics) {
        let Some(prior) = decode(&change.prior, "prior state", diags) else { return };
        let Some(ami_id) = prior.ami_id.known() else { return };
        if prior.deregister_on_destroy.known() == Some(&false) {
            tracing::info!(ami = %ami_id, "deregister_on_destroy = false: leaving the AMI");
            return;
        }
        let Some(clients) = self.shared.clients(diags) else { return };
        let _changing = clients.reads.changing();
        let limit = timeout(&change.prior, "delete", DEFAULT_DELETE_TIMEOUT);
        match tokio::time::timeout(limit, image::deregister_with_snapshots(&clients.ec2, ami_id)).await {
            Ok(Ok(snapshots)) => tracing::info!(ami = %ami_id, ?snapshots, "deregistered layer AMI"),
            Ok(Err(e)) => aws_error(diags, None, &e),
            Err(_) => diags
                .error("Delete Timed Out", format!("deregistering AMI {ami_id} took longer than {limit:?}")),
        }
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.shared.clients(diags)?;
        let image = match ami::find_image_by_id(&clients.ec2, id).await {
            Ok(Some(image)) => image,
            Ok(None) => {
                diags.error(
                    "Cannot Import Missing AMI",
                    format!("AMI {id} does not exist in {}", clients.region),
                );
                return None;
            }
            Err(e) => {
                aws_error(diags, None, &e);
                return None;
            }
        };
        let Some(layer) = image.tag(ami_tags::LAYER) else {
            diags.error(
                "Cannot Import AMI",
                format!("AMI {id} has no {} tag, so it is no layer's AMI", ami_tags::LAYER),
            );
            return None;
        };
        let mut model = Model {
            layer: Val::Known(layer.to_owned()),
            commit: image.tag(ami_tags::COMMIT).map(str::to_owned).into(),
            fingerprint: image.tag(ami_tags::FINGERPRINT).map(str::to_owned).into(),
            parent_ami_id: image.tag(ami_tags::PARENT_AMI).map(str::to_owned).into(),
            ..Model::default()
        };
        // A child layer's parent is an argument; a root layer's is found by its source block.
        if image.tag(ami_tags::PARENT_LAYER).is_some() {
            model.parent = model.parent_ami_id.clone();
        }
        describe_into(clients, &mut model, &image, diags).await?;
        Some(State { value: encode(&model, diags)?, private: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::engine;

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut object: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in pairs {
            object.insert((*k).to_owned(), v.clone());
        }
        let model: Model = from_value(&Value::Object(object)).expect("model");
        to_value(&model, &schema().value_type()).expect("value")
    }

    fn errors(config: &Value) -> Vec<(String, String)> {
        let mut diags = Diagnostics::new();
        engine::validate_block(&schema().block, config, &AttributePath::root(), &mut diags);
        let resource = LayeredAmiResource::new(Arc::new(Shared::default()));
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(resource.validate(&Context::default(), config, &mut diags));
        diags
            .iter()
            .map(|d| (d.summary.clone(), d.attribute.as_ref().map(ToString::to_string).unwrap_or_default()))
            .collect()
    }

    fn native() -> Value {
        Value::Object(BTreeMap::from([(
            "native".to_owned(),
            Value::Object(BTreeMap::from([(
                "user_data".to_owned(),
                Value::from("#!/bin/sh\nshutdown -h now"),
            )])),
        )]))
    }

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn a_valid_child_layer_has_no_diagnostics() {
        let value = config(&[
            ("layer", "app".into()),
            ("commit", COMMIT.into()),
            ("parent", "ami-12345678".into()),
            ("build", native()),
            ("keep", 2.into()),
        ]);
        assert_eq!(errors(&value), Vec::<(String, String)>::new());
    }

    #[test]
    fn bad_arguments_are_reported_on_their_paths() {
        let source = Value::Object(BTreeMap::from([
            ("owners".to_owned(), Value::List(vec!["self".into()])),
            ("name".to_owned(), "base-*".into()),
        ]));
        let packer_and_native = Value::Object(BTreeMap::from([
            ("packer_template".to_owned(), "/nonexistent/packer.json".into()),
            ("native".to_owned(), native().attr("native").cloned().unwrap_or_default()),
        ]));
        let value = config(&[
            ("layer", "app".into()),
            ("commit", "abc".into()),
            ("parent", "ami-12345678".into()),
            ("source", source),
            ("build", packer_and_native),
            ("keep", 0.into()),
            ("tags", Value::Map(BTreeMap::from([("Layer".to_owned(), "x".into())]))),
        ]);
        let found = errors(&value);
        for (summary, path) in [
            ("Invalid Commit", "commit"),
            ("Conflicting Parent And Source", "parent"),
            ("Invalid Retention", "keep"),
            ("Reserved Tag Key", "tags[\"Layer\"]"),
            ("Conflicting Builders", "build.native"),
            ("Packer Template Not Found", "build.packer_template"),
        ] {
            assert!(
                found.contains(&(summary.to_owned(), path.to_owned())),
                "{summary} at {path} in {found:?}"
            );
        }
    }

    #[test]
    fn missing_parent_source_and_build_are_errors() {
        let found = errors(&config(&[("layer", "app".into()), ("commit", COMMIT.into())]));
        assert!(found.contains(&("Missing Parent Or Source".to_owned(), "parent".to_owned())), "{found:?}");
        assert!(found.contains(&("Missing Build Block".to_owned(), "build".to_owned())), "{found:?}");
    }

    #[test]
    fn unknown_values_are_not_errors() {
        let value = config(&[
            ("layer", "app".into()),
            ("commit", Value::unknown()),
            ("parent", Value::unknown()),
            ("build", native()),
        ]);
        assert_eq!(errors(&value), Vec::<(String, String)>::new());
    }
}
