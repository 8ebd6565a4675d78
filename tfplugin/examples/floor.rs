//! `terraform-provider-floor`: the least a provider served by this crate can do.
//!
//! One resource, `floor_item`, with an optional `input` and a computed `id`, that
//! talks to nothing. The benchmarks plan N of them to measure what Terraform and the
//! plugin protocol cost by themselves, whatever the provider does.

use async_trait::async_trait;
use std::process::ExitCode;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::plugin::{ServeOptions, serve};
use tfplugin::provider::{Change, Context, DataSource, Provider, Resource, State};
use tfplugin::schema::{Attribute, Block, Schema};
use tfplugin::value::{Type, Value};

struct Floor;

#[async_trait]
impl Provider for Floor {
    fn type_name(&self) -> &'static str {
        "floor"
    }

    fn schema(&self) -> Schema {
        Schema::new(Block::new("A provider that does nothing, for measuring the plugin protocol."))
    }

    async fn configure(&self, _: &Context, _: &str, _: &Value, _: &mut Diagnostics) {}

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![Arc::new(Item)]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        Vec::new()
    }
}

struct Item;

impl Item {
    /// The planned object with its `id` set from `input`.
    fn with_id(planned: &Value) -> Value {
        let mut value = planned.clone();
        let id = match planned.attr("input") {
            Some(Value::String(input)) => input.clone(),
            _ => "floor".to_owned(),
        };
        if let Some(slot) = value.get_mut(&AttributePath::attr("id")) {
            *slot = Value::String(id);
        }
        value
    }
}

#[async_trait]
impl Resource for Item {
    fn type_name(&self) -> &'static str {
        "floor_item"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new("Nothing, with an id.")
                .attribute(Attribute::optional("input", Type::String).description("Any text."))
                .attribute(Attribute::computed("id", Type::String).description("`input`, or `floor`.")),
        )
    }

    async fn create(&self, _: &Context, change: &Change, _: &mut Diagnostics) -> Option<State> {
        Some(State { value: Self::with_id(&change.planned), private: Vec::new() })
    }

    async fn read(&self, _: &Context, state: &State, _: &mut Diagnostics) -> Option<State> {
        Some(state.clone())
    }

    async fn update(&self, _: &Context, change: &Change, _: &mut Diagnostics) -> Option<State> {
        Some(State { value: Self::with_id(&change.planned), private: Vec::new() })
    }

    async fn delete(&self, _: &Context, _: &State, _: &mut Diagnostics) {}
}

fn main() -> ExitCode {
    serve(
        Floor,
        ServeOptions {
            binary: "terraform-provider-floor",
            address: "terraform.local/bench/floor",
            version: "0.0.1",
        },
    )
}
