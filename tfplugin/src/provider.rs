//! What a provider implements: a configuration, resources and data sources.
//!
//! Values cross this boundary as [`Value`]s already decoded against the schema;
//! resources read them as typed models ([`Plan::config`], [`Change::planned`],
//! [`State::decode`]) and answer with models ([`State::from_model`],
//! [`Plan::set_computed`]).

use crate::diag::Diagnostics;
use crate::schema::{Mode, Schema};
use crate::value::{Value, from_value, to_value};
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Decodes a configuration, plan or state into a model (see [`from_value`]). A collection
/// with an element not yet known reads as not yet known as a whole, so that a model sees
/// collections whole. A value that does not fit the model is one error on its path.
pub fn decode<M: DeserializeOwned>(value: &Value, what: &str, diags: &mut Diagnostics) -> Option<M> {
    match from_value::<M>(&value.collapse_partial_unknowns()) {
        Ok(model) => Some(model),
        Err(e) => {
            diags.error_at(e.path.clone(), "Value Conversion Error", format!("reading the {what}: {e}"));
            None
        }
    }
}

/// Encodes a model as a value of `schema`. Failing is a bug of the model, reported so.
pub fn encode<M: Serialize>(model: &M, schema: &Schema, diags: &mut Diagnostics) -> Option<Value> {
    match to_value(model, &schema.value_type()) {
        Ok(value) => Some(value),
        Err(e) => {
            diags.error("Provider Bug", format!("encoding a model as its schema: {e}"));
            None
        }
    }
}

/// Passed to every call: observe `stop` in long operations (Terraform's StopProvider,
/// sent when the user presses Ctrl-C).
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub stop: CancellationToken,
}

impl Context {
    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's local name: the prefix of every resource type (`immutable`).
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Offline checks of the provider block (no network).
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}

    /// Called once before any resource or data source is used.
    async fn configure(
        &self,
        ctx: &Context,
        terraform_version: &str,
        config: &Value,
        diags: &mut Diagnostics,
    );

    fn resources(&self) -> Vec<Arc<dyn Resource>>;

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;

    /// Provider-defined functions (none by default).
    fn functions(&self) -> Vec<Arc<dyn crate::function::Function>> {
        Vec::new()
    }
}

#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Offline checks beyond the schema's validators.
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}

    /// Returns the full object (config plus computed attributes), or `None` with errors.
    async fn read(&self, ctx: &Context, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// A resource's state together with its private data (opaque to Terraform).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub value: Value,
    pub private: Vec<u8>,
}

impl State {
    /// The state of `model`, without private data.
    pub fn from_model<M: Serialize>(model: &M, schema: &Schema, diags: &mut Diagnostics) -> Option<State> {
        Some(State { value: encode(model, schema, diags)?, private: Vec::new() })
    }

    pub fn decode<M: DeserializeOwned>(&self, diags: &mut Diagnostics) -> Option<M> {
        decode(&self.value, "state", diags)
    }
}

/// The planning input and output. The generic planner has already applied the
/// schema's plan modifiers to `planned` and `requires_replace` when `plan` runs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Null on create.
    pub prior: Value,
    pub config: Value,
    /// Terraform's proposal with computed attributes settled by the generic planner.
    pub planned: Value,
    pub prior_private: Vec<u8>,
    pub planned_private: Vec<u8>,
    pub requires_replace: Vec<crate::path::AttributePath>,
}

impl Plan {
    pub fn is_create(&self) -> bool {
        self.prior.is_null()
    }

    /// Plans the computed attributes (those only the provider sets) as `model` has them.
    /// The arguments stay exactly as Terraform proposed them, partially unknown
    /// collections included, which a decoded model cannot hold.
    pub fn set_computed<M: Serialize>(&mut self, schema: &Schema, model: &M, diags: &mut Diagnostics) {
        let Some(full) = encode(model, schema, diags) else { return };
        for attribute in schema.block.attributes.iter().filter(|a| a.mode == Mode::Computed) {
            let path = crate::path::AttributePath::attr(attribute.name.clone());
            if let (Some(value), Some(slot)) = (full.attr(&attribute.name), self.planned.get_mut(&path)) {
                *slot = value.clone();
            }
        }
    }
}

/// The create or update to carry out in apply (a delete gets the prior [`State`]).
#[derive(Clone, Debug)]
pub struct Change {
    /// Null on create.
    pub prior: Value,
    pub planned: Value,
    pub config: Value,
    pub private: Vec<u8>,
}

impl Change {
    /// The prior state and its private data, unchanged: what an update that failed
    /// before it changed anything returns.
    pub fn prior_state(&self) -> State {
        State { value: self.prior.clone(), private: self.private.clone() }
    }
}

/// The typed accessors of a call that carries a prior state, a configuration and a
/// plan ([`Plan`], [`Change`]): each decodes into the resource's model.
macro_rules! typed_accessors {
    ($($call:ty),*) => {$(
        impl $call {
            pub fn config<M: DeserializeOwned>(&self, diags: &mut Diagnostics) -> Option<M> {
                decode(&self.config, "configuration", diags)
            }

            /// The plan: in planning, as the generic planner left it.
            pub fn planned<M: DeserializeOwned>(&self, diags: &mut Diagnostics) -> Option<M> {
                decode(&self.planned, "plan", diags)
            }

            /// The prior state; `None` on create.
            pub fn prior<M: DeserializeOwned>(&self, diags: &mut Diagnostics) -> Option<M> {
                if self.prior.is_null() { None } else { decode(&self.prior, "prior state", diags) }
            }
        }
    )*};
}

typed_accessors!(Plan, Change);

#[async_trait]
pub trait Resource: Send + Sync + 'static {
    fn type_name(&self) -> &'static str;

    fn schema(&self) -> Schema;

    /// Offline checks beyond the schema's validators.
    async fn validate(&self, _ctx: &Context, _config: &Value, _diags: &mut Diagnostics) {}

    /// Adjusts the plan (resource-specific computed values, plan-time AWS checks).
    async fn plan(&self, _ctx: &Context, _plan: &mut Plan, _diags: &mut Diagnostics) {}

    /// Creates the object; on failure, returns whatever was created (or nothing).
    async fn create(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State>;

    /// Refreshes the object; `None` when it no longer exists.
    async fn read(&self, ctx: &Context, state: &State, diags: &mut Diagnostics) -> Option<State>;

    /// Updates in place; on failure, returns the state that now holds (e.g. the prior one).
    async fn update(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State>;

    /// Deletes the object. Terraform sends no configuration with a destroy: everything a
    /// delete needs (its timeout too) comes from the prior state.
    async fn delete(&self, ctx: &Context, prior: &State, diags: &mut Diagnostics);

    /// `terraform import` and `import {}` blocks: the state for an existing object's id,
    /// which Terraform then completes with a read.
    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<State> {
        diags.error("Import Not Supported", format!("{} cannot be imported (id {id:?})", self.type_name()));
        None
    }

    /// Turns state stored by an older schema version into the current shape. `raw` is
    /// the state's JSON. The default accepts only the current version.
    async fn upgrade_state(&self, version: i64, raw: &[u8], diags: &mut Diagnostics) -> Option<Value> {
        let schema = self.schema();
        if version != schema.version {
            diags.error(
                "Unsupported State Version",
                format!(
                    "{} state has schema version {version}; this provider knows only version {}",
                    self.type_name(),
                    schema.version
                ),
            );
            return None;
        }
        match crate::value::decode_json(raw, &schema.value_type()) {
            Ok(value) => Some(value),
            Err(e) => {
                diags.error("Unreadable State", format!("decoding {} state: {e}", self.type_name()));
                None
            }
        }
    }
}
