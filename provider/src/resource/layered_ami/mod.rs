//! `immutable_layered_ami`: one layer of an AMI lineage.
//!
//! Plan decides between adoption and a build: an available AMI of this layer tagged
//! with this commit, fingerprint and parent already exists -> its id is planned and
//! apply builds nothing; otherwise `ami_id` is unknown and apply builds it (Packer or
//! the native builder), tags it, and prunes the layer's old AMIs per `keep`.
//!
//! `schema` declares the arguments, `model` reads what they ask for, `desired` finds
//! the parent, fingerprint and an adoptable AMI, `apply` builds and prunes. This file
//! is the resource's sequence of steps for each Terraform call.

mod apply;
mod desired;
mod model;
mod schema;

pub use schema::TYPE_NAME;

use crate::aws::images;
use crate::builder::Builder;
use crate::config::Shared;
use crate::resource::Base;
use async_trait::async_trait;
use conventions::ami_tags;
use model::{AmiAttributes, Model};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::provider::{Change, Context, Plan, Resource, State};
use tfplugin::schema::Schema;
use tfplugin::value::{Val, Value};

pub struct LayeredAmiResource(Base);

impl LayeredAmiResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self(Base::new(shared, schema::schema()))
    }
}

/// Whether `program` can be run: a path that exists, or a name found on `PATH`.
fn program_exists(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

#[async_trait]
impl Resource for LayeredAmiResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        self.0.schema()
    }

    /// Beyond the schema's validators (which check parent/source and the builders).
    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = tfplugin::provider::decode::<Model>(config, "configuration", diags) else { return };
        let build = match &model.build {
            Val::Null => {
                return diags.error_at(
                    "build",
                    "Missing Build Block",
                    "a build block is required: build { packer_template = \"...\" } or build { native { user_data = \"...\" } }",
                );
            }
            Val::Unknown => return,
            Val::Known(build) => build,
        };
        let at = |name: &str| AttributePath::attr("build").push_attr(name);
        if let Val::Known(template) = &build.packer_template
            && !Path::new(template).is_file()
        {
            let cwd = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
            diags.error_at(
                at("packer_template"),
                "Packer Template Not Found",
                format!("build.packer_template: no file at {template:?} (relative paths start at {cwd})"),
            );
        }
        if build.packer_template.is_null() {
            for (attribute, value) in [("command", &build.command), ("manifest", &build.manifest)] {
                if !value.is_null() {
                    diags.error_at(
                        at(attribute),
                        "Packer Setting Without Template",
                        format!("build.{attribute} applies to the Packer builder only; set build.packer_template or remove it"),
                    );
                }
            }
        }
    }

    async fn plan(&self, _ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        let Some(config) = plan.config::<Model>(diags) else { return };
        let Some(mut planned) = plan.planned::<Model>(diags) else { return };
        let prior = plan.prior::<Model>(diags);
        let Some(clients) = self.0.clients(diags) else { return };
        let Some(want) = desired::desired(clients, &config, diags).await else { return };

        planned.parent_ami_id = want.parent.as_ref().map_or(Val::Unknown, |p| Val::Known(p.ami_id.clone()));
        planned.fingerprint = want.fingerprint.clone().map_or(Val::Unknown, Val::Known);
        let prior_ami = prior.as_ref().and_then(|p| p.ami.ami_id.known().cloned());
        let adopted = match want.identity(&config) {
            Some(identity) => match desired::find_adoptable(clients, &identity, prior_ami.as_deref()).await {
                Ok(found) => found,
                Err(e) => return diags.push(e.diagnostic()),
            },
            None => None,
        };
        match adopted {
            Some(image) => {
                planned.ami = match desired::describe(clients, &image).await {
                    Ok(attributes) => attributes,
                    Err(e) => return diags.push(e.diagnostic()),
                };
                if prior_ami.as_deref() != Some(image.id.as_str()) {
                    tracing::info!(layer = ?config.layer.known(), ami = %image.id, "plan adopts an existing AMI");
                }
            }
            None => {
                planned.ami = AmiAttributes::unknown();
                if let Some(native) = config.build.known().and_then(|b| b.native.known()) {
                    desired::check_native_builder(clients, native, diags).await;
                }
                if let Some(Builder::Packer(spec)) = &want.builder
                    && let Some(program) = spec.command.first()
                    && !program_exists(program)
                {
                    let configured = config.build.known().is_some_and(|b| b.command.is_known());
                    diags.error_at(
                        AttributePath::attr("build").push_attr(if configured {
                            "command"
                        } else {
                            "packer_template"
                        }),
                        "Packer Not Found",
                        format!("layer needs a build but {program:?} is not an executable file or on PATH"),
                    );
                }
            }
        }
        // What the configuration decides of the AMI's tags; a difference from what it
        // carries (read at refresh) is set right in place.
        planned.tags_all = config.planned_user_tags(clients);
        self.0.plan_computed(plan, &planned, diags);
    }

    async fn create(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.0.clients(diags)?;
        let _changing = clients.reads.changing();
        let model = apply::converge(ctx, clients, change, "create", diags).await?;
        self.0.state(&model, diags)
    }

    async fn read(&self, _ctx: &Context, state: &State, diags: &mut Diagnostics) -> Option<State> {
        let mut model = state.decode::<Model>(diags)?;
        let clients = self.0.clients(diags)?;
        let Some(ami_id) = model.ami.ami_id.known().cloned() else { return Some(state.clone()) };
        let image = match clients.reads.image(&ami_id).await {
            Ok(Some(image)) if image.is_available() || image.state == "pending" => image,
            Ok(_) => {
                tracing::info!(ami = %ami_id, "layer AMI deregistered outside Terraform; removing it from state");
                return None;
            }
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        model.ami = match desired::describe(clients, &image).await {
            Ok(attributes) => attributes,
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        // The tags the configuration decides, now or at the last apply, as the AMI has them.
        let mut managed: BTreeSet<String> =
            model.tags_all.known().map(|tags| tags.keys().cloned().collect()).unwrap_or_default();
        managed.extend(model.user_tags(clients).into_keys());
        model.tags_all = Val::Known(model::managed_tags(&image.tags, &managed));
        Some(State { private: state.private.clone(), ..self.0.state(&model, diags)? })
    }

    async fn update(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let Some(clients) = self.0.clients(diags) else { return Some(change.prior_state()) };
        let _changing = clients.reads.changing();
        match apply::converge(ctx, clients, change, "update", diags).await {
            Some(model) => self.0.state(&model, diags),
            // A failed rebuild leaves the prior AMI as the layer's current one.
            None => Some(change.prior_state()),
        }
    }

    async fn delete(&self, ctx: &Context, prior: &State, diags: &mut Diagnostics) {
        let Some(model) = prior.decode::<Model>(diags) else { return };
        let Some(clients) = self.0.clients(diags) else { return };
        let _changing = clients.reads.changing();
        apply::delete(ctx, clients, &model, diags).await;
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.0.clients(diags)?;
        let image = match images::find_image(&clients.ec2, id).await {
            Ok(Some(image)) => image,
            Ok(None) => {
                diags.error(
                    "Cannot Import Missing AMI",
                    format!("AMI {id} does not exist in {}", clients.region),
                );
                return None;
            }
            Err(e) => {
                diags.push(e.diagnostic());
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
        // What the configuration would say: `Name` as the display name unless it is the
        // layer id, and as `tags` the rest but the lineage tags and the provider's
        // default tags (with their values).
        let name = image.tag(ami_tags::NAME).filter(|name| *name != layer);
        let tags: BTreeMap<String, String> = image
            .tags
            .iter()
            .filter(|(k, v)| {
                !model::is_lineage_tag(k)
                    && k.as_str() != ami_tags::NAME
                    && clients.default_tags.get(k.as_str()) != Some(v)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut model = Model {
            layer: Val::Known(layer.to_owned()),
            commit: image.tag(ami_tags::COMMIT).map(str::to_owned).into(),
            display_name: name.map(str::to_owned).into(),
            tags: if tags.is_empty() { Val::Null } else { Val::Known(tags) },
            tags_all: Val::Known(
                image
                    .tags
                    .iter()
                    .filter(|(k, _)| !model::is_lineage_tag(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            fingerprint: image.tag(ami_tags::FINGERPRINT).map(str::to_owned).into(),
            parent_ami_id: image.tag(ami_tags::PARENT_AMI).map(str::to_owned).into(),
            ..Model::default()
        };
        // A child layer's parent is an argument; a root layer's is found by its source block.
        if image.tag(ami_tags::PARENT_LAYER).is_some() {
            model.parent = model.parent_ami_id.clone();
        }
        model.ami = match desired::describe(clients, &image).await {
            Ok(attributes) => attributes,
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        self.0.state(&model, diags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tfplugin::engine;
    use tfplugin::value::{from_value, to_value};

    fn config(pairs: &[(&str, Value)]) -> Value {
        let mut object: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in pairs {
            object.insert((*k).to_owned(), v.clone());
        }
        let model: Model = from_value(&Value::Object(object)).expect("model");
        to_value(&model, &schema::schema().value_type()).expect("value")
    }

    fn errors(config: &Value) -> Vec<(String, String)> {
        let mut diags = Diagnostics::new();
        engine::validate_block(&schema::schema().block, config, &AttributePath::root(), &mut diags);
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
