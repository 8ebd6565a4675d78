//! Everything that talks to AWS, organised by AWS object: `images`, `fleets` (Spot
//! Fleet requests), `launch_templates`, `instances`, `network` (security groups,
//! subnets, zones, key pairs, instance types), `target_groups`, `iam`, `alarms` (CloudWatch),
//! `prices` (Spot and On-Demand prices, from EC2 and the AWS Price List). Finders return
//! `Ok(None)` for an object that is not there ([`OrNotFound`]), waiters take
//! [`crate::wait::Limits`], and every error carries what the provider was doing and
//! AWS's code and message ([`AwsError`]). `reads` shares the reads of a Terraform run.

pub mod alarms;
pub mod attempts;
mod coalesce;
pub mod fleets;
pub mod iam;
pub mod images;
pub mod instances;
pub mod launch_templates;
pub mod network;
pub mod prices;
pub mod reads;
pub mod target_groups;

use crate::config::{DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES, ProviderModel};
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::request_id::RequestId;
use std::collections::BTreeMap;
use std::fmt;
use tfplugin::diag::Diagnostic;

/// The configured AWS clients and provider-wide settings.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub iam: aws_sdk_iam::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// The AWS Price List Query API, always in [`prices::PRICE_LIST_REGION`].
    pub pricing: aws_sdk_pricing::Client,
    pub region: String,
    /// The provider block's `profile`, when set (Packer gets it as `-var profile=...`).
    pub profile: Option<String>,
    /// The provider block's `endpoints.ec2`, when set (Packer gets it as
    /// `-var ec2_endpoint=...`).
    pub ec2_endpoint: Option<String>,
    pub default_tags: BTreeMap<String, String>,
    /// Describe calls shared by concurrent reads.
    pub reads: std::sync::Arc<reads::Reads>,
    /// Prices, read once per provider process.
    pub prices: std::sync::Arc<reads::PriceReads>,
    /// Where the clients get their credentials.
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
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
        let timeout = |value: &tfplugin::value::Val<String>, default| {
            value.known().and_then(|text| tfplugin::duration::parse(text).ok()).unwrap_or(default)
        };
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(timeout(&model.connect_timeout, DEFAULT_CONNECT_TIMEOUT))
            .operation_attempt_timeout(timeout(&model.attempt_timeout, DEFAULT_ATTEMPT_TIMEOUT))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .retry_config(retry_config(max_retries))
            .timeout_config(timeouts);
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
        let endpoints = model.endpoints.clone().unwrap_or_default();
        // Every service's client the same way: the retry partition, the attempts
        // interceptor and classifier, the endpoint override.
        macro_rules! client {
            ($service:ident, $endpoint:expr) => {
                client!($service, $endpoint, $service::config::Builder::from(&sdk))
            };
            ($service:ident, $endpoint:expr, $builder:expr) => {{
                let mut config = $builder
                    .retry_partition(retry_partition())
                    .interceptor(attempts::Attempts)
                    .retry_classifier(attempts::RefusedIsFinal);
                if let Some(url) = $endpoint {
                    config = config.endpoint_url(url);
                }
                $service::Client::from_conf(config.build())
            }};
        }
        let ec2_endpoint = endpoints.ec2.clone();
        let ec2 = client!(aws_sdk_ec2, endpoints.ec2);
        let elbv2 = client!(aws_sdk_elasticloadbalancingv2, endpoints.elbv2);
        // The Price List is served in a few regions only, with the same prices for
        // every region: its client ignores the provider's region.
        let pricing = client!(
            aws_sdk_pricing,
            endpoints.pricing,
            aws_sdk_pricing::config::Builder::from(&sdk)
                .region(aws_config::Region::new(prices::PRICE_LIST_REGION))
        );
        Ok(Self {
            reads: std::sync::Arc::new(reads::Reads::new(ec2.clone(), elbv2.clone())),
            prices: std::sync::Arc::new(reads::PriceReads::new(ec2.clone(), pricing.clone())),
            ec2,
            elbv2,
            iam: client!(aws_sdk_iam, endpoints.iam),
            cloudwatch: client!(aws_sdk_cloudwatch, endpoints.cloudwatch),
            pricing,
            region,
            profile: model.profile.known().cloned(),
            ec2_endpoint,
            default_tags: model.default_tags.known().cloned().unwrap_or_default(),
            credentials: sdk.credentials_provider(),
        })
    }

    /// Clients built elsewhere (SDK-level mocks), with no credential chain of their own.
    pub fn from_parts(
        ec2: aws_sdk_ec2::Client,
        elbv2: aws_sdk_elasticloadbalancingv2::Client,
        iam: aws_sdk_iam::Client,
        region: impl Into<String>,
    ) -> Self {
        let region = region.into();
        let cloudwatch = aws_sdk_cloudwatch::Client::from_conf(
            aws_sdk_cloudwatch::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.clone()))
                .build(),
        );
        let pricing = aws_sdk_pricing::Client::from_conf(
            aws_sdk_pricing::Config::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(prices::PRICE_LIST_REGION))
                .build(),
        );
        Self {
            reads: std::sync::Arc::new(reads::Reads::new(ec2.clone(), elbv2.clone())),
            prices: std::sync::Arc::new(reads::PriceReads::new(ec2.clone(), pricing.clone())),
            ec2,
            elbv2,
            iam,
            cloudwatch,
            pricing,
            region,
            profile: None,
            ec2_endpoint: None,
            default_tags: BTreeMap::new(),
            credentials: None,
        }
    }

    /// Looks for credentials the way the clients will, without calling AWS: the
    /// secrets found (for the log to redact), or what to tell the user.
    pub async fn find_credentials(&self) -> Result<Vec<String>, String> {
        use aws_credential_types::provider::ProvideCredentials;
        let Some(provider) = &self.credentials else {
            return Err(missing_credentials("no credential provider is configured"));
        };
        match provider.provide_credentials().await {
            Ok(found) => Ok([Some(found.secret_access_key()), found.session_token()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect()),
            Err(e) => Err(missing_credentials(&causes(&e))),
        }
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

/// Tags as the EC2 API takes them.
pub(crate) fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter().map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()).collect()
}

/// Adds (or overwrites) tags of EC2 resources of any kind (Spot Fleet requests, launch
/// templates, instances, images), in one call.
pub async fn tag(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if ids.is_empty() || tags.is_empty() {
        return Ok(());
    }
    ec2.create_tags()
        .set_resources(Some(ids.to_vec()))
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("tagging {}", ids.join(", ")), &e))?;
    Ok(())
}

/// Removes the tags `keys` (whatever their values) from EC2 resources of any kind, in
/// one call.
pub async fn untag(ec2: &aws_sdk_ec2::Client, ids: &[String], keys: &[String]) -> Result<(), AwsError> {
    if ids.is_empty() || keys.is_empty() {
        return Ok(());
    }
    let tags = keys.iter().map(|k| aws_sdk_ec2::types::Tag::builder().key(k).build()).collect();
    ec2.delete_tags()
        .set_resources(Some(ids.to_vec()))
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("untagging {}", ids.join(", ")), &e))?;
    Ok(())
}

/// An AWS call that failed: what the provider was doing, and AWS's code, message and
/// request id. Shown as "cancelling Spot Fleet sfr-1: InvalidSpotFleetRequestId.NotFound:
/// The spotFleetRequestId 'sfr-1' does not exist. (request id 5e1a…)".
#[derive(Clone, Debug)]
pub struct AwsError {
    /// Lower case, naming the object: "cancelling Spot Fleet sfr-1".
    pub action: String,
    /// AWS's error code; none for a request that got no answer from AWS.
    pub code: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    pub scope: Scope,
}

/// Whose problem a failure is: this request's, or that of every request of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// This request's (AWS said no to it, or something about it is wrong).
    Request,
    /// No answer from the endpoint: refused, timed out or broken.
    Endpoint(Box<NoAnswer>),
    /// No credentials could be found, or AWS did not accept them.
    Credentials,
}

/// How a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoAnswer {
    /// `scheme://host:port`.
    pub endpoint: String,
    pub refused: bool,
    pub timed_out: bool,
    /// The innermost cause ("Connection reset by peer").
    pub cause: String,
}

/// AWS's codes for credentials it does not accept (EC2, and the query APIs of ELB and IAM).
const CREDENTIAL_CODES: &[&str] = &[
    "AuthFailure",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
];

impl AwsError {
    /// A failure that is not an SDK error (a missing field in an answer, bad input).
    pub fn plain(action: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            message: message.into(),
            code: None,
            request_id: None,
            scope: Scope::Request,
        }
    }

    pub fn new<E>(action: impl Into<String>, err: &aws_sdk_ec2::error::SdkError<E>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let action = action.into();
        match err.as_service_error() {
            Some(service) => Self {
                action,
                code: service.code().map(str::to_owned),
                message: service.message().map(str::to_owned).unwrap_or_else(|| causes(err)),
                request_id: service.meta().request_id().or_else(|| err.request_id()).map(str::to_owned),
                scope: if service.code().is_some_and(|c| CREDENTIAL_CODES.contains(&c)) {
                    Scope::Credentials
                } else {
                    Scope::Request
                },
            },
            None => Self {
                action,
                code: None,
                message: causes(err),
                request_id: err.request_id().map(str::to_owned),
                scope: scope_of_unanswered(err),
            },
        }
    }

    /// Whether AWS answered with one of `codes`.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code.as_deref().is_some_and(|code| codes.contains(&code))
    }

    /// What failed, for a diagnostic's summary: "Cancelling Spot Fleet sfr-1 failed".
    pub fn summary(&self) -> String {
        let mut chars = self.action.chars();
        match chars.next() {
            Some(first) => format!("{}{} failed", first.to_uppercase(), chars.as_str()),
            None => "AWS request failed".to_owned(),
        }
    }

    /// AWS's answer: "Code: message (request id …)".
    pub fn detail(&self) -> String {
        let mut detail = match &self.code {
            Some(code) => format!("{code}: {}", self.message),
            None => self.message.clone(),
        };
        if let Some(id) = &self.request_id {
            detail.push_str(&format!(" (request id {id})"));
        }
        detail
    }

    /// An error diagnostic: what failed, then AWS's answer. A failure of every request
    /// (no answer from the endpoint, credentials) reads the same whichever request met
    /// it, so that Terraform shows it once.
    pub fn diagnostic(&self) -> Diagnostic {
        match &self.scope {
            Scope::Request => Diagnostic::error(self.summary(), self.detail()),
            Scope::Endpoint(no_answer) => {
                let NoAnswer { endpoint, refused, timed_out, cause } = &**no_answer;
                let what = if *refused {
                    "refused the connection".to_owned()
                } else if *timed_out {
                    "did not answer in time (the provider's connect_timeout and attempt_timeout)".to_owned()
                } else {
                    format!("could not be reached ({cause})")
                };
                Diagnostic::error(
                    "AWS Endpoint Unreachable",
                    format!(
                        "{endpoint} {what}. Check the endpoint (the provider's `endpoints`, AWS_ENDPOINT_URL, \
                         the region) and the network between here and it."
                    ),
                )
            }
            Scope::Credentials => match &self.code {
                Some(_) => Diagnostic::error(
                    "AWS Credentials Rejected",
                    format!(
                        "AWS did not accept the credentials: {}. Check the access key, secret and session \
                         token the provider found (environment, profile), and that they have not expired.",
                        self.detail()
                    ),
                ),
                None => Diagnostic::error("AWS Credentials Unavailable", missing_credentials(&self.message)),
            },
        }
    }

    /// [`Self::diagnostic`] on the attribute `path`, when the failure is this request's.
    pub fn diagnostic_at(&self, path: impl Into<tfplugin::path::AttributePath>) -> Diagnostic {
        match self.scope {
            Scope::Request => self.diagnostic().at(path),
            _ => self.diagnostic(),
        }
    }
}

/// Why a request got no answer from AWS, from its causes.
fn scope_of_unanswered(err: &(dyn std::error::Error + 'static)) -> Scope {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(unreachable) = e.downcast_ref::<attempts::Unreachable>() {
            let mut innermost = e;
            while let Some(next) = innermost.source() {
                innermost = next;
            }
            return Scope::Endpoint(Box::new(NoAnswer {
                endpoint: unreachable.endpoint.clone(),
                refused: unreachable.refused(),
                timed_out: unreachable.timed_out(),
                cause: innermost.to_string(),
            }));
        }
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>().is_some() {
            return Scope::Credentials;
        }
        current = e.source();
    }
    Scope::Request
}

/// What to do when the credential chain found nothing, after `why` it gave.
pub fn missing_credentials(why: &str) -> String {
    format!(
        "The provider found no AWS credentials ({why}). It looked, in order, at: the environment \
         (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN for temporary ones); the \
         profile (the provider's `profile`, else AWS_PROFILE, else \"default\") in the shared files \
         (AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE, default ~/.aws/credentials and ~/.aws/config), \
         including SSO, credential_process and role_arn settings; web identity (AWS_WEB_IDENTITY_TOKEN_FILE \
         with AWS_ROLE_ARN); the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or \
         _FULL_URI); and the EC2 instance metadata service (unless AWS_EC2_METADATA_DISABLED is true). Set \
         one of them, e.g. `export AWS_PROFILE=name` after `aws configure --profile name`, or \
         `aws sso login`."
    )
}

/// The error and its causes, each once: "dispatch failure: io error: … Connection refused".
fn causes(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.action, self.detail())
    }
}

impl std::error::Error for AwsError {}

/// Turns AWS's ways of saying "not there" into `Ok(None)`.
pub trait OrNotFound<T> {
    /// `Ok(None)` when the call failed with one of `codes`.
    fn or_not_found(self, codes: &[&str]) -> Result<Option<T>, AwsError>;
}

impl<T> OrNotFound<T> for Result<T, AwsError> {
    fn or_not_found(self, codes: &[&str]) -> Result<Option<T>, AwsError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.is(codes) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::{ErrorMetadata, SdkError};
    use aws_sdk_ec2::operation::describe_images::DescribeImagesError;

    fn service_error(code: &str) -> AwsError {
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("The image id '[ami-1]' does not exist")
            .custom("aws_request_id", "req-1")
            .build();
        let err: SdkError<DescribeImagesError> = SdkError::service_error(
            DescribeImagesError::generic(meta),
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("status"),
                aws_smithy_types::body::SdkBody::empty(),
            ),
        );
        AwsError::new("describing AMI ami-1", &err)
    }

    #[test]
    fn an_error_says_what_failed_and_what_aws_answered() {
        let err = service_error("InvalidAMIID.NotFound");
        assert_eq!(err.summary(), "Describing AMI ami-1 failed");
        assert_eq!(
            err.detail(),
            "InvalidAMIID.NotFound: The image id '[ami-1]' does not exist (request id req-1)"
        );
        assert_eq!(
            err.to_string(),
            "describing AMI ami-1: InvalidAMIID.NotFound: The image id '[ami-1]' does not exist (request id req-1)"
        );
        let unreachable: SdkError<DescribeImagesError> = SdkError::timeout_error("operation timed out");
        let err = AwsError::new("describing AMI ami-1", &unreachable);
        assert_eq!(err.code, None);
        assert!(err.message.contains("operation timed out"), "{}", err.message);
        assert!(!err.to_string().contains("TimeoutError"), "no Debug dump: {err}");
    }

    #[test]
    fn rejected_credentials_read_the_same_whichever_request_met_them() {
        let (a, b) = (service_error("AuthFailure"), service_error("AuthFailure"));
        let b = AwsError { action: "describing security groups".into(), ..b };
        assert_eq!(a.scope, Scope::Credentials);
        assert_eq!(a.diagnostic(), b.diagnostic(), "shown once");
        assert_eq!(a.diagnostic().summary, "AWS Credentials Rejected");
        assert_eq!(a.diagnostic_at("name"), a.diagnostic(), "not any one attribute's problem");
        let other = service_error("InvalidAMIID.NotFound");
        assert_eq!(other.scope, Scope::Request);
        assert!(other.diagnostic_at("ami_id").attribute.is_some());
    }

    #[test]
    fn not_found_codes_become_none() {
        let gone: Result<(), AwsError> = Err(service_error("InvalidAMIID.NotFound"));
        assert!(matches!(gone.or_not_found(&["InvalidAMIID.NotFound"]), Ok(None)));
        let other: Result<(), AwsError> = Err(service_error("UnauthorizedOperation"));
        assert!(other.or_not_found(&["InvalidAMIID.NotFound"]).is_err());
        let found: Result<u8, AwsError> = Ok(1);
        assert!(matches!(found.or_not_found(&["InvalidAMIID.NotFound"]), Ok(Some(1))));
    }
}
