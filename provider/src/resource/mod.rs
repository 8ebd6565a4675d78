//! Managed resources: one folder each (schema, model, the steps of each Terraform call),
//! and what they share: [`Base`], plan-time lookups (`resolve`) and validators.

pub mod app;
pub mod layered_ami;
pub mod resolve;
pub mod validators;

use crate::aws::Clients;
use crate::config::Shared;
use serde::Serialize;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::provider::{Plan, State};
use tfplugin::schema::Schema;

/// What every resource holds: the provider's configured clients and its schema, built
/// once.
pub struct Base {
    shared: Arc<Shared>,
    schema: Schema,
}

impl Base {
    pub fn new(shared: Arc<Shared>, schema: Schema) -> Self {
        Self { shared, schema }
    }

    pub fn schema(&self) -> Schema {
        self.schema.clone()
    }

    /// The AWS clients, or a diagnostic when the provider is not configured.
    pub fn clients(&self, diags: &mut Diagnostics) -> Option<&Clients> {
        self.shared.clients(diags)
    }

    /// The state of `model`.
    pub fn state<M: Serialize>(&self, model: &M, diags: &mut Diagnostics) -> Option<State> {
        State::from_model(model, &self.schema, diags)
    }

    /// Plans the computed attributes as `model` has them (see [`Plan::set_computed`]).
    pub fn plan_computed<M: Serialize>(&self, plan: &mut Plan, model: &M, diags: &mut Diagnostics) {
        plan.set_computed(&self.schema, model, diags);
    }
}
