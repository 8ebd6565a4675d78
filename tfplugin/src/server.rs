//! The tfplugin6 `Provider` gRPC service: decodes requests, runs the schema-driven
//! engine and the provider's code, encodes responses. Every RPC answers; the ones
//! this crate has no use for answer with empty results or a clear diagnostic.

use crate::convert::{self, decode, encode};
use crate::diag::{Diagnostic, Diagnostics};
use crate::engine;
use crate::function::{Function, FunctionError, Signature};
use crate::path::AttributePath;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider as ProviderRpc;
use crate::provider::{Change, Context, DataSource, Plan, Provider, Resource, State};
use crate::schema::Schema;
use crate::value::{Type, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

struct Entry<T: ?Sized> {
    imp: Arc<T>,
    schema: Schema,
    ty: Type,
}

impl<T: ?Sized> Entry<T> {
    fn new(imp: Arc<T>, schema: Schema) -> Self {
        let ty = schema.value_type();
        Self { imp, schema, ty }
    }
}

pub(crate) struct ProviderService {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    provider_type: Type,
    resources: HashMap<String, Entry<dyn Resource>>,
    data_sources: HashMap<String, Entry<dyn DataSource>>,
    functions: HashMap<String, (Arc<dyn Function>, Signature)>,
    /// Cancelled when the process must stop everything (Terraform is gone).
    stop_root: CancellationToken,
    /// The stop of the current Terraform run, a child of `stop_root`: StopProvider
    /// cancels it, and the next ConfigureProvider (a new run of a long-lived process,
    /// as in debug mode) starts a fresh one.
    stop: std::sync::Mutex<CancellationToken>,
    /// ApplyResourceChange calls in progress (see [`ProviderService::applying`]).
    applying: Arc<AtomicUsize>,
}

/// Counts one ApplyResourceChange in progress, until dropped (also when the call's
/// future is dropped because its connection went away).
struct Applying(Arc<AtomicUsize>);

impl Applying {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Applying(count.clone())
    }
}

impl Drop for Applying {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ProviderService {
    pub(crate) fn new(provider: Arc<dyn Provider>, stop: CancellationToken) -> Self {
        let provider_schema = provider.schema();
        let provider_type = provider_schema.value_type();
        let resources = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_owned(), Entry::new(r.clone(), r.schema())))
            .collect();
        let data_sources = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name().to_owned(), Entry::new(d.clone(), d.schema())))
            .collect();
        let functions = provider
            .functions()
            .into_iter()
            .map(|f| (f.name().to_owned(), (f.clone(), f.signature())))
            .collect();
        let applying = Arc::new(AtomicUsize::new(0));
        Self {
            provider,
            provider_schema,
            provider_type,
            resources,
            data_sources,
            functions,
            stop: std::sync::Mutex::new(stop.child_token()),
            stop_root: stop,
            applying,
        }
    }

    /// The current run's stop.
    fn stop(&self) -> CancellationToken {
        self.stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// How many ApplyResourceChange calls are in progress: the ones that change
    /// infrastructure and must be let finish (or roll back) before the process exits.
    pub(crate) fn applying(&self) -> Arc<AtomicUsize> {
        self.applying.clone()
    }

    fn ctx(&self) -> Context {
        Context { stop: self.stop() }
    }

    /// Runs `work` unless Terraform asks the provider to stop first (Ctrl-C). Plans,
    /// reads and imports only look, so they are abandoned at once, wherever they are
    /// (a retry's pause, a request that gets no answer); applies see the stop through
    /// their [`Context`] and finish or roll back what they started.
    async fn or_stopped<T>(&self, what: &str, work: impl Future<Output = T>) -> Result<T, Diagnostics> {
        let stop = self.stop();
        tokio::select! {
            biased;
            out = work => Ok(out),
            () = stop.cancelled() => Err(Diagnostic::error(
                "Stopped",
                format!("Terraform asked the provider to stop; the {what} was abandoned, and nothing was changed"),
            )
            .into()),
        }
    }

    fn resource(&self, type_name: &str) -> Result<&Entry<dyn Resource>, Diagnostics> {
        self.resources.get(type_name).ok_or_else(|| unknown_type("resource", type_name))
    }

    fn data_source(&self, type_name: &str) -> Result<&Entry<dyn DataSource>, Diagnostics> {
        self.data_sources.get(type_name).ok_or_else(|| unknown_type("data source", type_name))
    }

    fn full_schema(&self) -> pb::get_provider_schema::Response {
        pb::get_provider_schema::Response {
            provider: Some(convert::schema(&self.provider_schema)),
            resource_schemas: self
                .resources
                .iter()
                .map(|(k, e)| (k.clone(), convert::schema(&e.schema)))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(k, e)| (k.clone(), convert::schema(&e.schema)))
                .collect(),
            server_capabilities: Some(capabilities()),
            functions: self.function_signatures(),
            ..Default::default()
        }
    }

    fn function_signatures(&self) -> HashMap<String, pb::Function> {
        self.functions
            .iter()
            .map(|(name, (_, signature))| (name.clone(), convert::function(signature)))
            .collect()
    }

    /// Decodes the arguments against the function's parameters and calls it.
    async fn call(&self, req: pb::call_function::Request) -> Result<pb::DynamicValue, FunctionError> {
        let Some((function, signature)) = self.functions.get(&req.name) else {
            return Err(FunctionError {
                text: format!("this provider has no function {:?}", req.name),
                argument: None,
            });
        };
        let mut arguments = Vec::with_capacity(req.arguments.len());
        for (index, argument) in req.arguments.iter().enumerate() {
            let Some(parameter) = signature.parameters.get(index).or(signature.variadic.as_ref()) else {
                let text = format!(
                    "{} takes {} arguments, got {}",
                    req.name,
                    signature.parameters.len(),
                    req.arguments.len()
                );
                return Err(FunctionError::argument(index, text));
            };
            let value =
                convert::decode(Some(argument), &parameter.ty, &format!("argument {}", parameter.name))
                    .map_err(|diags| FunctionError::argument(index, diags.to_string()))?;
            arguments.push(value);
        }
        let result = function.call(&self.ctx(), &arguments).await?;
        convert::encode(&result, &signature.returns, &format!("the result of {}", req.name))
            .map_err(|diags| FunctionError { text: diags.to_string(), argument: None })
    }

    async fn plan_resource(
        &self,
        req: pb::plan_resource_change::Request,
    ) -> Result<pb::plan_resource_change::Response, Diagnostics> {
        let entry = self.resource(&req.type_name)?;
        let prior = decode(req.prior_state.as_ref(), &entry.ty, "prior state")?;
        let proposed = decode(req.proposed_new_state.as_ref(), &entry.ty, "proposed new state")?;
        let config = decode(req.config.as_ref(), &entry.ty, "configuration")?;
        let mut diags = Diagnostics::new();
        let (planned, requires_replace) = engine::plan(&entry.schema.block, &prior, &config, proposed);
        let mut plan = Plan {
            prior,
            config,
            planned,
            prior_private: req.prior_private.clone(),
            planned_private: req.prior_private,
            requires_replace,
        };
        if !plan.planned.is_null() {
            self.or_stopped("plan", entry.imp.plan(&self.ctx(), &mut plan, &mut diags)).await?;
        }
        let planned_state = encode(&plan.planned, &entry.ty, "planned state")?;
        Ok(pb::plan_resource_change::Response {
            planned_state: Some(planned_state),
            requires_replace: plan.requires_replace.iter().map(convert::attribute_path).collect(),
            planned_private: plan.planned_private,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        })
    }

    async fn apply_resource(
        &self,
        req: pb::apply_resource_change::Request,
    ) -> Result<pb::apply_resource_change::Response, Diagnostics> {
        let entry = self.resource(&req.type_name)?;
        let change = Change {
            prior: decode(req.prior_state.as_ref(), &entry.ty, "prior state")?,
            planned: decode(req.planned_state.as_ref(), &entry.ty, "planned state")?,
            config: decode(req.config.as_ref(), &entry.ty, "configuration")?,
            private: req.planned_private,
        };
        let ctx = self.ctx();
        let mut diags = Diagnostics::new();
        let state = if change.planned.is_null() {
            let prior = change.prior_state();
            entry.imp.delete(&ctx, &prior, &mut diags).await;
            // A failed delete keeps the object in state.
            diags.has_errors().then_some(prior)
        } else if change.prior.is_null() {
            entry.imp.create(&ctx, &change, &mut diags).await
        } else {
            entry.imp.update(&ctx, &change, &mut diags).await
        };
        let state = state.unwrap_or_default();
        let new_state = encode(&state.value, &entry.ty, "new state")?;
        Ok(pb::apply_resource_change::Response {
            new_state: Some(new_state),
            private: state.private,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        req: pb::read_resource::Request,
    ) -> Result<pb::read_resource::Response, Diagnostics> {
        let entry = self.resource(&req.type_name)?;
        let current =
            State { value: decode(req.current_state.as_ref(), &entry.ty, "state")?, private: req.private };
        let mut diags = Diagnostics::new();
        let state = if current.value.is_null() {
            None
        } else {
            let refreshed =
                self.or_stopped("refresh", entry.imp.read(&self.ctx(), &current, &mut diags)).await?;
            // On a failed read, keep what Terraform knew rather than dropping the object.
            if diags.has_errors() { refreshed.or(Some(current)) } else { refreshed }
        };
        let state = state.unwrap_or_default();
        Ok(pb::read_resource::Response {
            new_state: Some(encode(&state.value, &entry.ty, "refreshed state")?),
            private: state.private,
            diagnostics: convert::diagnostics(diags),
            ..Default::default()
        })
    }

    async fn import_resource(
        &self,
        req: pb::import_resource_state::Request,
    ) -> Result<pb::import_resource_state::Response, Diagnostics> {
        let entry = self.resource(&req.type_name)?;
        let mut diags = Diagnostics::new();
        let imported = self.or_stopped("import", entry.imp.import(&self.ctx(), &req.id, &mut diags)).await?;
        let imported_resources = match imported {
            Some(state) if !diags.has_errors() => vec![pb::import_resource_state::ImportedResource {
                type_name: req.type_name.clone(),
                state: Some(encode(&state.value, &entry.ty, "imported state")?),
                private: state.private,
                identity: None,
            }],
            _ => Vec::new(),
        };
        Ok(pb::import_resource_state::Response {
            imported_resources,
            diagnostics: convert::diagnostics(diags),
            deferred: None,
        })
    }

    async fn upgrade_resource(
        &self,
        req: pb::upgrade_resource_state::Request,
    ) -> Result<pb::upgrade_resource_state::Response, Diagnostics> {
        let entry = self.resource(&req.type_name)?;
        let raw = req.raw_state.unwrap_or_default();
        if raw.json.is_empty() {
            if raw.flatmap.is_empty() {
                // Nothing stored: nothing to upgrade.
                return Ok(pb::upgrade_resource_state::Response {
                    upgraded_state: Some(encode(&Value::Null, &entry.ty, "upgraded state")?),
                    diagnostics: Vec::new(),
                });
            }
            return Err(Diagnostic::error(
                "Unsupported State Format",
                format!(
                    "{} state is in the legacy flatmap format, which this provider never wrote",
                    req.type_name
                ),
            )
            .into());
        }
        let mut diags = Diagnostics::new();
        let upgraded =
            entry.imp.upgrade_state(req.version, &raw.json, &mut diags).await.unwrap_or(Value::Null);
        Ok(pb::upgrade_resource_state::Response {
            upgraded_state: Some(encode(&upgraded, &entry.ty, "upgraded state")?),
            diagnostics: convert::diagnostics(diags),
        })
    }

    async fn read_data(
        &self,
        req: pb::read_data_source::Request,
    ) -> Result<pb::read_data_source::Response, Diagnostics> {
        let entry = self.data_source(&req.type_name)?;
        let config = decode(req.config.as_ref(), &entry.ty, "configuration")?;
        let mut diags = Diagnostics::new();
        let state = self
            .or_stopped("data source read", entry.imp.read(&self.ctx(), &config, &mut diags))
            .await?
            .unwrap_or(Value::Null);
        Ok(pb::read_data_source::Response {
            state: Some(encode(&state, &entry.ty, "data source result")?),
            diagnostics: convert::diagnostics(diags),
            deferred: None,
        })
    }

    async fn validate_with(
        &self,
        schema: &Schema,
        ty: &Type,
        dv: Option<&pb::DynamicValue>,
    ) -> Result<(Value, Diagnostics), Diagnostics> {
        let config = decode(dv, ty, "configuration")?;
        let mut diags = Diagnostics::new();
        engine::validate_block(&schema.block, &config, &AttributePath::root(), &mut diags);
        Ok((config, diags))
    }
}

fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: false,
        get_provider_schema_optional: true,
        move_resource_state: false,
    }
}

fn unknown_type(kind: &str, type_name: &str) -> Diagnostics {
    Diagnostic::error(
        "Unknown Type",
        format!("this provider has no {kind} type {type_name:?}; check the provider version"),
    )
    .into()
}

fn unsupported(what: &str) -> Vec<pb::Diagnostic> {
    convert::diagnostics(Diagnostic::error("Not Supported", format!("this provider has no {what}")).into())
}

/// Flattens `Result<Response, Diagnostics>` into a response carrying the diagnostics.
macro_rules! respond {
    ($result:expr, $resp:ty) => {
        Ok(Response::new(match $result {
            Ok(response) => response,
            Err(diags) => <$resp>::default_with_diagnostics(convert::diagnostics(diags)),
        }))
    };
}

trait WithDiagnostics: Default {
    fn set_diagnostics(&mut self, diagnostics: Vec<pb::Diagnostic>);
    fn default_with_diagnostics(diagnostics: Vec<pb::Diagnostic>) -> Self {
        let mut response = Self::default();
        response.set_diagnostics(diagnostics);
        response
    }
}

macro_rules! with_diagnostics {
    ($($t:ty),* $(,)?) => {$(
        impl WithDiagnostics for $t {
            fn set_diagnostics(&mut self, diagnostics: Vec<pb::Diagnostic>) {
                self.diagnostics = diagnostics;
            }
        }
    )*};
}

with_diagnostics!(
    pb::plan_resource_change::Response,
    pb::apply_resource_change::Response,
    pb::read_resource::Response,
    pb::import_resource_state::Response,
    pb::upgrade_resource_state::Response,
    pb::read_data_source::Response,
    pb::validate_resource_config::Response,
    pb::validate_data_resource_config::Response,
    pb::validate_provider_config::Response,
    pb::configure_provider::Response,
);

#[tonic::async_trait]
impl ProviderRpc for ProviderService {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        use pb::get_metadata::{DataSourceMetadata, FunctionMetadata, ResourceMetadata};
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(capabilities()),
            data_sources: self
                .data_sources
                .keys()
                .map(|k| DataSourceMetadata { type_name: k.clone() })
                .collect(),
            resources: self.resources.keys().map(|k| ResourceMetadata { type_name: k.clone() }).collect(),
            functions: self.functions.keys().map(|name| FunctionMetadata { name: name.clone() }).collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        tracing::debug!("serving provider schema");
        Ok(Response::new(self.full_schema()))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = req.into_inner();
        let result = async {
            let (config, mut diags) =
                self.validate_with(&self.provider_schema, &self.provider_type, req.config.as_ref()).await?;
            self.provider.validate(&self.ctx(), &config, &mut diags).await;
            Ok(pb::validate_provider_config::Response { diagnostics: convert::diagnostics(diags) })
        }
        .await;
        respond!(result, pb::validate_provider_config::Response)
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let result = async {
            let entry = self.resource(&req.type_name)?;
            let (config, mut diags) =
                self.validate_with(&entry.schema, &entry.ty, req.config.as_ref()).await?;
            entry.imp.validate(&self.ctx(), &config, &mut diags).await;
            Ok(pb::validate_resource_config::Response { diagnostics: convert::diagnostics(diags) })
        }
        .await;
        respond!(result, pb::validate_resource_config::Response)
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let result = async {
            let entry = self.data_source(&req.type_name)?;
            let (config, mut diags) =
                self.validate_with(&entry.schema, &entry.ty, req.config.as_ref()).await?;
            entry.imp.validate(&self.ctx(), &config, &mut diags).await;
            Ok(pb::validate_data_resource_config::Response { diagnostics: convert::diagnostics(diags) })
        }
        .await;
        respond!(result, pb::validate_data_resource_config::Response)
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        respond!(self.upgrade_resource(req.into_inner()).await, pb::upgrade_resource_state::Response)
    }

    async fn get_resource_identity_schemas(
        &self,
        _: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        Ok(Response::new(pb::get_resource_identity_schemas::Response::default()))
    }

    async fn upgrade_resource_identity(
        &self,
        _: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: unsupported("resource identities"),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = req.into_inner();
        {
            // A new run: a stop asked for in an earlier one no longer applies.
            let mut stop = self.stop.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if stop.is_cancelled() {
                *stop = self.stop_root.child_token();
            }
        }
        let result = async {
            let config = decode(req.config.as_ref(), &self.provider_type, "provider configuration")?;
            let mut diags = Diagnostics::new();
            self.provider.configure(&self.ctx(), &req.terraform_version, &config, &mut diags).await;
            Ok(pb::configure_provider::Response { diagnostics: convert::diagnostics(diags) })
        }
        .await;
        respond!(result, pb::configure_provider::Response)
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        respond!(self.read_resource(req.into_inner()).await, pb::read_resource::Response)
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        respond!(self.plan_resource(req.into_inner()).await, pb::plan_resource_change::Response)
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let _applying = Applying::enter(&self.applying);
        respond!(self.apply_resource(req.into_inner()).await, pb::apply_resource_change::Response)
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        respond!(self.import_resource(req.into_inner()).await, pb::import_resource_state::Response)
    }

    async fn move_resource_state(
        &self,
        _: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        Ok(Response::new(pb::move_resource_state::Response {
            diagnostics: unsupported("support for moving state between resource types"),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        respond!(self.read_data(req.into_inner()).await, pb::read_data_source::Response)
    }

    async fn validate_ephemeral_resource_config(
        &self,
        _: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        Ok(Response::new(pb::validate_ephemeral_resource_config::Response {
            diagnostics: unsupported("ephemeral resources"),
        }))
    }

    async fn open_ephemeral_resource(
        &self,
        _: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: unsupported("ephemeral resources"),
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        _: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: unsupported("ephemeral resources"),
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        _: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: unsupported("ephemeral resources"),
        }))
    }

    async fn get_functions(
        &self,
        _: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.function_signatures(),
            diagnostics: Vec::new(),
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let response = match self.call(req.into_inner()).await {
            Ok(result) => pb::call_function::Response { result: Some(result), error: None },
            Err(e) => pb::call_function::Response {
                result: None,
                error: Some(pb::FunctionError {
                    text: e.text,
                    function_argument: e.argument.and_then(|i| i64::try_from(i).ok()),
                }),
            },
        };
        Ok(Response::new(response))
    }

    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("stop requested: cancelling operations in progress");
        self.stop().cancel();
        Ok(Response::new(pb::stop_provider::Response::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Context as Ctx;
    use crate::schema::{Attribute, Block, PlanModifier};
    use std::collections::BTreeMap;
    use std::time::Duration;

    struct Waiter;

    #[async_trait::async_trait]
    impl Resource for Waiter {
        fn type_name(&self) -> &'static str {
            "test_waiter"
        }
        fn schema(&self) -> Schema {
            Schema::new(
                Block::new("waits for stop")
                    .attribute(
                        Attribute::required("name", Type::String).modifier(PlanModifier::RequiresReplace),
                    )
                    .attribute(Attribute::computed("id", Type::String)),
            )
            .version(2)
        }
        async fn create(&self, ctx: &Ctx, change: &Change, diags: &mut Diagnostics) -> Option<State> {
            tokio::select! {
                _ = ctx.stop.cancelled() => diags.error("Stopped", "stop requested while creating"),
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            Some(State { value: change.planned.clone(), private: Vec::new() })
        }
        async fn read(&self, _: &Ctx, state: &State, _: &mut Diagnostics) -> Option<State> {
            Some(state.clone())
        }
        async fn update(&self, _: &Ctx, change: &Change, _: &mut Diagnostics) -> Option<State> {
            Some(State { value: change.planned.clone(), private: Vec::new() })
        }
        async fn delete(&self, _: &Ctx, _: &State, _: &mut Diagnostics) {}
    }

    struct TestProvider;

    #[async_trait::async_trait]
    impl Provider for TestProvider {
        fn type_name(&self) -> &'static str {
            "test"
        }
        fn schema(&self) -> Schema {
            Schema::new(Block::new("test provider"))
        }
        async fn configure(&self, _: &Ctx, _: &str, _: &Value, _: &mut Diagnostics) {}
        fn resources(&self) -> Vec<Arc<dyn Resource>> {
            vec![Arc::new(Waiter)]
        }
        fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
            Vec::new()
        }
        fn functions(&self) -> Vec<Arc<dyn Function>> {
            vec![Arc::new(Repeat)]
        }
    }

    /// `repeat("ab", 3)` is `"ababab"`.
    struct Repeat;

    #[async_trait::async_trait]
    impl Function for Repeat {
        fn name(&self) -> &'static str {
            "repeat"
        }
        fn signature(&self) -> Signature {
            use crate::function::Parameter;
            Signature {
                summary: "Repeats a string.".into(),
                description: String::new(),
                parameters: vec![
                    Parameter::new("text", Type::String, "What to repeat."),
                    Parameter::new("times", Type::Number, "How often."),
                ],
                variadic: None,
                returns: Type::String,
            }
        }
        async fn call(&self, _: &Ctx, arguments: &[Value]) -> Result<Value, FunctionError> {
            let text = arguments[0].as_str().unwrap_or_default();
            match arguments[1].as_number().and_then(|n| n.to_i64()).and_then(|n| usize::try_from(n).ok()) {
                Some(times) => Ok(Value::String(text.repeat(times))),
                None => Err(FunctionError::argument(1, "times must be a whole number of at least 0")),
            }
        }
    }

    fn service() -> Arc<ProviderService> {
        Arc::new(ProviderService::new(Arc::new(TestProvider), CancellationToken::new()))
    }

    fn object(name: &str, id: Value) -> Value {
        Value::Object(BTreeMap::from([
            ("name".to_owned(), Value::String(name.to_owned())),
            ("id".to_owned(), id),
        ]))
    }

    fn msgpack(value: &Value) -> Option<pb::DynamicValue> {
        let ty = Waiter.schema().value_type();
        Some(pb::DynamicValue {
            msgpack: crate::value::encode_msgpack(value, &ty).expect("encode"),
            json: Vec::new(),
        })
    }

    fn summaries(diagnostics: &[pb::Diagnostic]) -> Vec<&str> {
        diagnostics.iter().map(|d| d.summary.as_str()).collect()
    }

    #[tokio::test]
    async fn stop_provider_reaches_operations_in_progress() {
        let svc = service();
        let apply = {
            let svc = svc.clone();
            tokio::spawn(async move {
                svc.apply_resource(pb::apply_resource_change::Request {
                    type_name: "test_waiter".into(),
                    prior_state: msgpack(&Value::Null),
                    planned_state: msgpack(&object("a", Value::unknown())),
                    config: msgpack(&object("a", Value::Null)),
                    ..Default::default()
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        ProviderRpc::stop_provider(&*svc, Request::new(pb::stop_provider::Request {})).await.expect("stop");
        let response = tokio::time::timeout(Duration::from_secs(5), apply)
            .await
            .expect("apply returns promptly after stop")
            .expect("task")
            .expect("response");
        assert_eq!(summaries(&response.diagnostics), ["Stopped"]);

        // The next run of the same process (debug mode) starts unstopped.
        let configure = pb::configure_provider::Request {
            config: msgpack(&Value::Object(Default::default())),
            ..Default::default()
        };
        ProviderRpc::configure_provider(&*svc, Request::new(configure)).await.expect("configure");
        assert!(!svc.ctx().stop.is_cancelled(), "a new run is not stopped");
        svc.stop_root.cancel();
        assert!(svc.ctx().stop.is_cancelled(), "stopping the process stops the run");
    }

    #[tokio::test]
    async fn functions_are_declared_and_called_with_typed_arguments() {
        let svc = service();
        let declared = ProviderRpc::get_functions(&*svc, Request::new(pb::get_functions::Request {}))
            .await
            .expect("functions")
            .into_inner();
        let repeat = declared.functions.get("repeat").expect("repeat declared");
        assert_eq!(repeat.parameters.len(), 2);
        assert_eq!(repeat.r#return.as_ref().map(|r| r.r#type.clone()), Some(Type::String.to_json()));
        assert!(svc.full_schema().functions.contains_key("repeat"), "in the provider schema too");
        let argument = |value: Value, ty: &Type| pb::DynamicValue {
            msgpack: crate::value::encode_msgpack(&value, ty).expect("encode"),
            json: Vec::new(),
        };
        let call = |arguments: Vec<pb::DynamicValue>| {
            let svc = svc.clone();
            async move {
                let request = pb::call_function::Request { name: "repeat".into(), arguments };
                ProviderRpc::call_function(&*svc, Request::new(request)).await.expect("call").into_inner()
            }
        };
        let done = call(vec![argument("ab".into(), &Type::String), argument(3.into(), &Type::Number)]).await;
        let result = crate::value::decode_msgpack(&done.result.expect("result").msgpack, &Type::String);
        assert_eq!(result.ok(), Some(Value::String("ababab".into())));
        let refused =
            call(vec![argument("ab".into(), &Type::String), argument((-1).into(), &Type::Number)]).await;
        let error = refused.error.expect("an error");
        assert_eq!(error.function_argument, Some(1), "{}", error.text);
        let too_many = call(vec![
            argument("a".into(), &Type::String),
            argument(1.into(), &Type::Number),
            argument(1.into(), &Type::Number),
        ])
        .await;
        assert_eq!(too_many.error.and_then(|e| e.function_argument), Some(2));
    }

    #[tokio::test]
    async fn plan_marks_computed_unknown_and_flags_replacement() {
        let svc = service();
        let created = svc
            .plan_resource(pb::plan_resource_change::Request {
                type_name: "test_waiter".into(),
                prior_state: msgpack(&Value::Null),
                proposed_new_state: msgpack(&object("a", Value::Null)),
                config: msgpack(&object("a", Value::Null)),
                ..Default::default()
            })
            .await
            .expect("plan");
        let ty = Waiter.schema().value_type();
        let planned = crate::value::decode_msgpack(&created.planned_state.expect("planned").msgpack, &ty)
            .expect("decode");
        assert!(planned.attr("id").is_some_and(Value::is_unknown), "{planned:?}");

        let renamed = svc
            .plan_resource(pb::plan_resource_change::Request {
                type_name: "test_waiter".into(),
                prior_state: msgpack(&object("a", Value::String("x".into()))),
                proposed_new_state: msgpack(&object("b", Value::String("x".into()))),
                config: msgpack(&object("b", Value::Null)),
                ..Default::default()
            })
            .await
            .expect("plan");
        assert_eq!(renamed.requires_replace, vec![convert::attribute_path(&AttributePath::attr("name"))]);
    }

    #[tokio::test]
    async fn unsupported_and_unknown_requests_answer_with_diagnostics() {
        let svc = service();
        let ephemeral = ProviderRpc::validate_ephemeral_resource_config(
            &*svc,
            Request::new(pb::validate_ephemeral_resource_config::Request::default()),
        )
        .await
        .expect("answers")
        .into_inner();
        assert_eq!(summaries(&ephemeral.diagnostics), ["Not Supported"]);

        let unknown = ProviderRpc::read_resource(
            &*svc,
            Request::new(pb::read_resource::Request { type_name: "test_nope".into(), ..Default::default() }),
        )
        .await
        .expect("answers")
        .into_inner();
        assert_eq!(summaries(&unknown.diagnostics), ["Unknown Type"]);

        let import = svc
            .import_resource(pb::import_resource_state::Request {
                type_name: "test_waiter".into(),
                id: "x-1".into(),
                ..Default::default()
            })
            .await
            .expect("import answers");
        assert_eq!(summaries(&import.diagnostics), ["Import Not Supported"]);
        assert!(import.imported_resources.is_empty());
    }

    #[tokio::test]
    async fn state_upgrade_accepts_the_current_version_only() {
        let svc = service();
        let upgrade = |version| {
            let svc = svc.clone();
            async move {
                svc.upgrade_resource(pb::upgrade_resource_state::Request {
                    type_name: "test_waiter".into(),
                    version,
                    raw_state: Some(pb::RawState {
                        json: br#"{"name":"a","id":"x"}"#.to_vec(),
                        ..Default::default()
                    }),
                })
                .await
                .expect("answers")
            }
        };
        let current = upgrade(2).await;
        assert!(current.diagnostics.is_empty(), "{:?}", current.diagnostics);
        let ty = Waiter.schema().value_type();
        let value = crate::value::decode_msgpack(&current.upgraded_state.expect("state").msgpack, &ty)
            .expect("decode");
        assert_eq!(value, object("a", Value::String("x".into())));
        assert_eq!(summaries(&upgrade(1).await.diagnostics), ["Unsupported State Version"]);
    }
}
