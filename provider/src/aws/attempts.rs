//! What every AWS request does besides the SDK's own work: failed attempts and retries
//! are logged at debug with the operation, the attempt and the endpoint; a refused
//! connection is not retried (nothing listens there, and waiting will not change
//! that); and a request that got no answer carries the endpoint it tried, so that the
//! error can name it ([`Unreachable`]).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, Error, FinalizerInterceptorContextMut,
    FinalizerInterceptorContextRef, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::fmt;

/// The interceptor every client of the provider carries.
#[derive(Debug, Default)]
pub struct Attempts;

impl Intercept for Attempts {
    fn name(&self) -> &'static str {
        "immutable::attempts"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts);
        let target = endpoint(ctx.request().uri());
        if attempt > 1 {
            tracing::debug!(operation = %operation(cfg), attempt, endpoint = %target, "retrying AWS request");
        }
        // The request is gone once sent: keep where it went.
        cfg.interceptor_state().store_put(Target(target));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // (An attempt that runs out of time ends without this hook; the next one's
        // "retrying" line and the final error say so.)
        if let Some(Err(err)) = ctx.inner().output_or_error() {
            let attempt = cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts);
            let endpoint = cfg.load::<Target>().map_or("", |t| t.0.as_str());
            tracing::debug!(operation = %operation(cfg), attempt, endpoint, "AWS request attempt failed: {}", chain(err));
        }
        Ok(())
    }

    fn modify_before_completion(
        &self,
        ctx: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Target(endpoint)) = cfg.load::<Target>().cloned() else { return Ok(()) };
        let Some(result) = ctx.inner_mut().output_or_error_mut() else { return Ok(()) };
        let Err(err) = result else { return Ok(()) };
        if !(err.is_connector_error() || err.is_timeout_error()) {
            return Ok(());
        }
        // Same kind of error (so that retries are classified as before), now naming the endpoint.
        let original = std::mem::replace(err, OrchestratorError::other("replaced"));
        let wrapped = match original.as_connector_error() {
            Some(connector) => {
                let (io, timeout, user, other) =
                    (connector.is_io(), connector.is_timeout(), connector.is_user(), connector.as_other());
                let source: BoxError = Box::new(Unreachable { endpoint, source: original });
                OrchestratorError::connector(match (io, timeout, user) {
                    (true, _, _) => ConnectorError::io(source),
                    (_, true, _) => ConnectorError::timeout(source),
                    (_, _, true) => ConnectorError::user(source),
                    _ => ConnectorError::other(source, other),
                })
            }
            None => OrchestratorError::timeout(Box::new(Unreachable { endpoint, source: original })),
        };
        *err = wrapped;
        Ok(())
    }
}

/// Where the attempt's request went.
#[derive(Clone, Debug)]
struct Target(String);

impl Storable for Target {
    type Storer = StoreReplace<Self>;
}

/// `scheme://host:port` of a request URI: where the request went, without its path.
fn endpoint(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split(['/', '?']).next().unwrap_or(rest);
            format!("{scheme}://{authority}")
        }
        None => uri.to_owned(),
    }
}

/// "EC2.DescribeImages", from the operation metadata the SDK stores.
fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>().map_or_else(|| "unknown".to_owned(), |m| format!("{}.{}", m.service(), m.name()))
}

/// An error and its causes, for a log line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// An attempt that got no answer from `endpoint` (refused, timed out, broken).
#[derive(Debug)]
pub struct Unreachable {
    pub endpoint: String,
    source: OrchestratorError<Error>,
}

impl Unreachable {
    /// Whether nothing accepted the connection.
    pub fn refused(&self) -> bool {
        is_refused(&self.source)
    }

    /// Whether the endpoint accepted but did not answer in time.
    pub fn timed_out(&self) -> bool {
        self.source.is_timeout_error()
            || self.source.as_connector_error().is_some_and(ConnectorError::is_timeout)
    }
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer from {}", self.endpoint)
    }
}

impl std::error::Error for Unreachable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Whether a connection refused is among the causes of `err`.
fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Refuses to retry a connection that nothing accepted. The SDK retries it as a
/// transient error, for up to a minute and a half with the default retries, while the
/// endpoint is wrong or down; a rollout still retries its own steps (see the runner).
#[derive(Debug, Default)]
pub struct RefusedIsFinal;

impl ClassifyRetry for RefusedIsFinal {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(err)) if is_refused(err) => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "immutable::refused_is_final"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_drop_the_path() {
        assert_eq!(
            endpoint("https://ec2.eu-west-1.amazonaws.com/?Action=X"),
            "https://ec2.eu-west-1.amazonaws.com"
        );
        assert_eq!(endpoint("http://127.0.0.1:5000/"), "http://127.0.0.1:5000");
        assert_eq!(endpoint("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
    }

    #[test]
    fn a_refused_connection_is_found_among_the_causes() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err: OrchestratorError<Error> =
            OrchestratorError::connector(ConnectorError::io(Box::new(refused)));
        assert!(is_refused(&err));
        let unreachable = Unreachable { endpoint: "http://127.0.0.1:1".into(), source: err };
        assert!(unreachable.refused() && !unreachable.timed_out());
        assert_eq!(unreachable.to_string(), "no answer from http://127.0.0.1:1");
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let err: OrchestratorError<Error> = OrchestratorError::connector(ConnectorError::io(Box::new(reset)));
        assert!(!is_refused(&err), "a reset connection may be retried");
    }
}
