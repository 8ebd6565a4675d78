//! Everything that talks to AWS. Finders return `Ok(None)` for objects that do not
//! exist; errors carry AWS's own message.

pub mod ami;
pub mod build;
pub mod elb;
pub mod fleet;
pub mod iam;
pub mod image;
pub mod network;
pub mod reads;

use crate::config::{DEFAULT_MAX_RETRIES, ProviderModel};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::collections::BTreeMap;
use std::fmt;

/// The configured AWS clients and provider-wide settings.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub region: String,
    pub default_tags: BTreeMap<String, String>,
    /// Describe calls shared by concurrent reads.
    pub reads: std::sync::Arc<reads::Reads>,
}

/// A configuration problem, reported on a provider attribute.
pub struct ConfigProblem {
    pub attribute: &'static str,
    pub summary: &'static str,
    pub detail: String,
}

impl Clients {
    pub async fn load(model: &ProviderModel) -> Result<Self, ConfigProblem> {
        let max_retries = model.max_retries.known().copied().unwrap_or(DEFAULT_MAX_RETRIES);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(retry_config(max_retries));
        if let Some(region) = model.region.known() {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(profile) = model.profile.known() {
            loader = loader.profile_name(profile);
        }
        let sdk = loader.load().await;
        let Some(region) = sdk.region().map(ToString::to_string) else {
            return Err(ConfigProblem {
                attribute: "region",
                summary: "Missing Region",
                detail: "no AWS region: set `region` in the provider block, or AWS_REGION, or a region \
                         in the selected profile"
                    .to_owned(),
            });
        };
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&sdk).retry_partition(retry_partition());
        if let Some(url) = model.endpoints.as_ref().and_then(|e| e.ec2.clone()) {
            ec2 = ec2.endpoint_url(url);
        }
        let mut elbv2 =
            aws_sdk_elasticloadbalancingv2::config::Builder::from(&sdk).retry_partition(retry_partition());
        if let Some(url) = model.endpoints.as_ref().and_then(|e| e.elbv2.clone()) {
            elbv2 = elbv2.endpoint_url(url);
        }
        let mut iam = aws_sdk_iam::config::Builder::from(&sdk).retry_partition(retry_partition());
        if let Some(url) = model.endpoints.as_ref().and_then(|e| e.iam.clone()) {
            iam = iam.endpoint_url(url);
        }
        let ec2 = aws_sdk_ec2::Client::from_conf(ec2.build());
        let elbv2 = aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2.build());
        Ok(Self {
            reads: std::sync::Arc::new(reads::Reads::new(ec2.clone(), elbv2.clone())),
            ec2,
            elbv2,
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            region,
            default_tags: model.default_tags.known().cloned().unwrap_or_default(),
        })
    }
}

/// How every AWS call is retried: the standard mode, `max_retries` retries after the
/// first attempt, exponential backoff with full jitter from 1 s, capped at 20 s (the
/// SDK's defaults, which EC2's throttling guidance expects).
///
/// Not the adaptive mode: its client-side rate limiter only sees this process, while
/// EC2 throttles per account across every client, and it would slow the requests of
/// every resource of the run after a few throttled ones.
///
/// Retried are throttling errors, HTTP 500/502/503/504, timeouts and broken
/// connections, whatever the operation. A request that reached AWS but whose answer
/// was lost is therefore sent again, also RequestSpotFleet, RunInstances and
/// CreateImage: the first two carry a client token so that AWS answers the retry
/// with what the first attempt created; CreateImage has none and its retry may fail
/// with `InvalidAMIName.Duplicate`, which `build::create_image` resolves.
fn retry_config(max_retries: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_retries.saturating_add(1))
        .with_initial_backoff(std::time::Duration::from_secs(1))
        .with_max_backoff(std::time::Duration::from_secs(20))
}

/// The retry partition of all three clients, without a retry quota.
///
/// The standard mode otherwise draws every retry from a token bucket (500 tokens, a
/// retry costs 5, or 10 after a timeout or broken connection, refilled by 1 per
/// first-attempt success) shared by the process, and once it runs dry fails requests
/// at their first error. That protects a service from a crowd of clients; here it
/// would turn a burst of faults into a failed apply in the middle of a rollout, while
/// `max_attempts` and the backoff already bound what each call costs AWS.
fn retry_partition() -> aws_sdk_ec2::config::retry::RetryPartition {
    use aws_sdk_ec2::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom("immutable").token_bucket(TokenBucket::unlimited()).build()
}

/// One HTTPS client for every AWS service, on the same TLS stack as the plugin server.
fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https()
}

/// An AWS call that failed, with what we were doing and AWS's full message.
#[derive(Clone, Debug)]
pub struct AwsError {
    pub action: String,
    pub message: String,
    pub code: Option<String>,
}

impl AwsError {
    /// A failure that is not an SDK error (a missing field in an answer, bad input).
    pub fn plain(action: impl Into<String>, message: impl Into<String>) -> Self {
        Self { action: action.into(), message: message.into(), code: None }
    }

    pub fn new<E>(action: impl Into<String>, err: &aws_sdk_ec2::error::SdkError<E>) -> Self
    where
        E: std::error::Error + aws_sdk_ec2::error::ProvideErrorMetadata + 'static,
    {
        let code = err.as_service_error().and_then(|e| e.code()).map(str::to_owned);
        Self { action: action.into(), message: DisplayErrorContext(err).to_string(), code }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.action, self.message)
    }
}

impl std::error::Error for AwsError {}
