//! `terraform-provider-schemafloor`: a provider that does nothing, with the schema of
//! `immutable_app`.
//!
//! One resource, `schemafloor_app`, whose schema is exactly `immutable_app`'s (the same
//! attributes, nested blocks, plan modifiers and validators) and which talks to nothing:
//! an apply stores the plan with every value not yet known set to null, a read returns
//! the state as it is, a delete forgets it. The plan benchmark plans N of them with the
//! configuration it gives N `immutable_app`, so that Terraform does the same work on
//! the same configuration and schema; what an `immutable_app` plan takes beyond this
//! floor is the provider's own work (its reads in AWS, its planning).

use async_trait::async_trait;
use std::process::ExitCode;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::plugin::{ServeOptions, serve};
use tfplugin::provider::{Change, Context, DataSource, Provider, Resource, State};
use tfplugin::schema::{Block, Schema};
use tfplugin::value::Value;

struct SchemaFloor;

#[async_trait]
impl Provider for SchemaFloor {
    fn type_name(&self) -> &'static str {
        "schemafloor"
    }

    fn schema(&self) -> Schema {
        Schema::new(Block::new(
            "A provider that does nothing, with immutable_app's schema, for measuring what Terraform \
             and the plugin protocol cost on that schema.",
        ))
    }

    async fn configure(&self, _: &Context, _: &str, _: &Value, _: &mut Diagnostics) {}

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(App)]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }
}

struct App;

impl App {
    /// The state an apply leaves: the plan with every unknown value (the computed
    /// attributes Terraform leaves to the provider) set to null, which Terraform
    /// accepts for any value planned as unknown.
    fn applied(change: &Change) -> State {
        let mut value = change.planned.clone();
        value.transform(&mut |_, value| {
            if value.is_unknown() {
                *value = Value::Null;
            }
        });
        State { value, private: Vec::new() }
    }
}

#[async_trait]
impl Resource for App {
    fn type_name(&self) -> &'static str {
        "schemafloor_app"
    }

    fn schema(&self) -> Schema {
        provider::resource::app::schema()
    }

    async fn create(&self, _: &Context, change: &Change, _: &mut Diagnostics) -> Option<State> {
        Some(Self::applied(change))
    }

    async fn read(&self, _: &Context, state: &State, _: &mut Diagnostics) -> Option<State> {
        Some(state.clone())
    }

    async fn update(&self, _: &Context, change: &Change, _: &mut Diagnostics) -> Option<State> {
        Some(Self::applied(change))
    }

    async fn delete(&self, _: &Context, _: &State, _: &mut Diagnostics) {}
}

fn main() -> ExitCode {
    serve(
        SchemaFloor,
        ServeOptions {
            binary: "terraform-provider-schemafloor",
            address: "terraform.local/bench/schemafloor",
            version: "0.0.1",
        },
    )
}
