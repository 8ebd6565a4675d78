//! What a provider implements: a configuration, resources and data sources.
//!
//! Values cross this boundary as [`Value`]s already decoded against the schema;
//! resources turn them into typed models with [`crate::value::from_value`].

use crate::diag::Diagnostics;
use crate::schema::Schema;
use crate::value::Value;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
}

/// The change to carry out in apply.
#[derive(Clone, Debug)]
pub struct Change {
    /// Null on create.
    pub prior: Value,
    /// Null on delete.
    pub planned: Value,
    pub config: Value,
    pub private: Vec<u8>,
}

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

    async fn delete(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics);

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
