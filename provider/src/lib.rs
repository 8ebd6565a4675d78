//! terraform-provider-immutable: immutable servers on EC2 Spot, as Terraform resources.
//!
//! `config` turns the provider block into AWS clients; `aws` is the only module that
//! talks to the AWS SDK; each resource and data source is a module of its own that
//! decodes its typed model, calls `aws`, and returns state.

pub mod aws;
pub mod builder;
pub mod capacity;
pub mod config;
pub mod data_source;
pub mod docs;
pub mod function;
pub mod health;
pub mod resource;
pub mod rollout;
pub mod wait;

use async_trait::async_trait;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::provider::{Context, DataSource, Provider, Resource};
use tfplugin::schema::Schema;
use tfplugin::value::Value;

/// The provider's source address as users declare it in `required_providers`.
pub const SOURCE_ADDRESS: &str = "terraform.local/immutable/immutable";

pub const SERVE_OPTIONS: tfplugin::plugin::ServeOptions = tfplugin::plugin::ServeOptions {
    binary: "terraform-provider-immutable",
    address: SOURCE_ADDRESS,
    version: env!("CARGO_PKG_VERSION"),
};

/// The provider: its configuration, shared by every resource and data source once
/// Terraform has configured it.
#[derive(Default)]
pub struct ImmutableProvider {
    shared: Arc<config::Shared>,
}

#[async_trait]
impl Provider for ImmutableProvider {
    fn type_name(&self) -> &'static str {
        "immutable"
    }

    fn schema(&self) -> Schema {
        config::schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        config::validate(config, diags);
    }

    async fn configure(
        &self,
        ctx: &Context,
        _terraform_version: &str,
        config: &Value,
        diags: &mut Diagnostics,
    ) {
        // Terraform configures the provider at the start of every run.
        resource::app::new_run();
        config::configure(ctx, &self.shared, config, diags).await;
    }

    fn resources(&self) -> Vec<Arc<dyn Resource>> {
        vec![
            Arc::new(resource::app::AppResource::new(self.shared.clone())),
            Arc::new(resource::layered_ami::LayeredAmiResource::new(self.shared.clone())),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![
            Arc::new(data_source::ami::AmiDataSource::new(self.shared.clone())),
            Arc::new(data_source::spot_price::SpotPriceDataSource::new(self.shared.clone())),
        ]
    }

    fn functions(&self) -> Vec<Arc<dyn tfplugin::function::Function>> {
        vec![Arc::new(function::ManifestAmi)]
    }
}
