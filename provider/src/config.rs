//! The provider block: region, profile, credential chain, endpoint overrides, default
//! tags and retries, turned into AWS clients.

use crate::aws::Clients;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::provider::Context;
use tfplugin::provider::decode;
use tfplugin::schema::{Attribute, Block, NestedBlock, Schema, Validator, validators};
use tfplugin::value::{Type, Val, Value};

/// What resources and data sources share once the provider is configured.
#[derive(Default)]
pub struct Shared {
    clients: OnceLock<Clients>,
}

impl Shared {
    /// The AWS clients, or a diagnostic when Terraform has not configured the provider.
    pub fn clients(&self, diags: &mut Diagnostics) -> Option<&Clients> {
        let clients = self.clients.get();
        if clients.is_none() {
            diags.error(
                "Provider Not Configured",
                "the immutable provider was used before Terraform configured it; this is a bug",
            );
        }
        clients
    }
}

#[derive(Debug, Deserialize)]
pub struct ProviderModel {
    pub region: Val<String>,
    pub profile: Val<String>,
    pub endpoints: Option<Endpoints>,
    pub default_tags: Val<BTreeMap<String, String>>,
    pub max_retries: Val<u32>,
    pub connect_timeout: Val<String>,
    pub attempt_timeout: Val<String>,
    pub skip_region_validation: Val<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct Endpoints {
    pub ec2: Option<String>,
    pub elbv2: Option<String>,
    pub iam: Option<String>,
    pub cloudwatch: Option<String>,
    pub pricing: Option<String>,
    pub sts: Option<String>,
}

pub const DEFAULT_MAX_RETRIES: u32 = 10;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The regions of every AWS partition this version knows. A region outside it fails
/// the plan unless `skip_region_validation` is set: the SDK would otherwise retry the
/// unresolvable endpoint of a misspelt region for minutes.
pub const KNOWN_REGIONS: &[&str] = &[
    // aws
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    // aws-cn
    "cn-north-1",
    "cn-northwest-1",
    // aws-us-gov
    "us-gov-east-1",
    "us-gov-west-1",
    // aws-iso, aws-iso-b, aws-iso-e, aws-iso-f, aws-eusc
    "us-iso-east-1",
    "us-iso-west-1",
    "us-isob-east-1",
    "eu-isoe-west-1",
    "us-isof-east-1",
    "us-isof-south-1",
    "eusc-de-east-1",
];

pub fn schema() -> Schema {
    let endpoint = |service: &str| {
        Attribute::optional(service, Type::String)
            .description(format!("URL of the {service} API, instead of AWS's own (for local emulators)."))
            .validator(url())
    };
    Schema::new(
        Block::new(
            "Immutable servers on EC2 Spot: apps on Spot Fleets with health-gated blue/green rollouts, \
             and commit-tagged layered AMIs. Credentials come from the standard AWS chain \
             (environment, shared files, profile, instance or container role) and never appear in \
             state, plans or logs.",
        )
        .attribute(
            Attribute::optional("region", Type::String)
                .description("AWS region, e.g. `eu-west-1`. Defaults to `AWS_REGION` or the profile's region.")
                .validator(region()),
        )
        .attribute(
            Attribute::optional("profile", Type::String)
                .description(
                    "Named profile from the shared AWS config and credentials files; plan fails if neither file \
                     defines it.",
                )
                .validator(validators::not_empty()),
        )
        .attribute(
            Attribute::optional("skip_region_validation", Type::Bool).description(
                "Accept a region this version of the provider does not know (one opened after its release). \
                 Without it, an unknown region is an error at plan rather than minutes of retried requests \
                 to an endpoint that does not exist.",
            ),
        )
        .attribute(
            Attribute::optional("default_tags", Type::map(Type::String))
                .description("Tags added to everything the provider creates; a resource's own `tags` win."),
        )
        .attribute(
            Attribute::optional("max_retries", Type::Number)
                .description(format!(
                    "How many times an AWS request is retried when it is throttled, fails with a server \
                     error or loses its connection (default {DEFAULT_MAX_RETRIES}). Each retry waits a random \
                     pause of up to 1 s, doubling with every retry to at most 20 s; every request gets all \
                     its retries (no retry quota is shared by the requests of a run)."
                ))
                                .validator(validators::int_between(0, 100)),
        )
        .attribute(
            Attribute::optional("connect_timeout", Type::String)
                .description(format!(
                    "How long an AWS request waits for its connection (default `{}`). A duration such as \
                     `5s`. A refused connection fails at once and is not retried.",
                    tfplugin::duration::format(DEFAULT_CONNECT_TIMEOUT)
                ))
                .validator(validators::duration()),
        )
        .attribute(
            Attribute::optional("attempt_timeout", Type::String)
                .description(format!(
                    "How long one attempt of an AWS request may take, from connecting to the end of the \
                     answer (default `{}`); an attempt that runs out is retried like a lost connection, up \
                     to `max_retries` times. Ctrl-C stops the waiting at once.",
                    tfplugin::duration::format(DEFAULT_ATTEMPT_TIMEOUT)
                ))
                .validator(validators::duration()),
        )
        .block(NestedBlock::single(
            "endpoints",
            Block::new("Per-service API endpoints, for local emulators or private endpoints.")
                .attribute(endpoint("ec2"))
                .attribute(endpoint("elbv2"))
                .attribute(endpoint("iam"))
                .attribute(endpoint("cloudwatch"))
                .attribute(
                    Attribute::optional("pricing", Type::String)
                        .description(
                            "URL of the AWS Price List Query API (On-Demand prices of `immutable_spot_price`). \
                             Without it the provider calls the API in us-east-1, whatever its `region`.",
                        )
                        .validator(url()),
                )
                .attribute(
                    Attribute::optional("sts", Type::String)
                        .description(
                            "URL of the STS API. Accepted so that configurations shared with other AWS tools \
                             validate; the provider itself makes no STS call, and the credential chain's \
                             (assumed roles, web identity) follows the SDK's `AWS_ENDPOINT_URL_STS`.",
                        )
                        .validator(url()),
                ),
        )),
    )
}

fn url() -> Validator {
    Validator::new("An `http://` or `https://` URL.", |value, path, diags| {
        if let Value::String(s) = value {
            let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
                diags.error_at(
                    path.clone(),
                    "Invalid Endpoint URL",
                    format!("{path} must be an http:// or https:// URL with a host, got {s:?}"),
                );
            }
        }
    })
}

/// Region names look like `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`.
fn region() -> Validator {
    Validator::new("An AWS region name such as `eu-west-1`.", |value, path, diags| {
        if let Value::String(s) = value {
            let parts: Vec<&str> = s.split('-').collect();
            let well_formed = parts.len() >= 3
                && parts.iter().all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
                && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
            if !well_formed {
                diags.error_at(
                    path.clone(),
                    "Invalid Region",
                    format!("{path} must be an AWS region name such as \"eu-west-1\", got {s:?}"),
                );
            }
        }
    })
}

/// Offline checks beyond the schema's validators.
pub fn validate(config: &Value, diags: &mut Diagnostics) {
    let _ = decode::<ProviderModel>(config, "provider configuration", diags);
}

pub async fn configure(ctx: &Context, shared: &Shared, config: &Value, diags: &mut Diagnostics) {
    let Some(model) = decode::<ProviderModel>(config, "provider configuration", diags) else { return };
    if model.region.is_unknown()
        || model.profile.is_unknown()
        || model.max_retries.is_unknown()
        || model.default_tags.is_unknown()
    {
        diags.error(
            "Provider Configuration Not Yet Known",
            "region, profile, max_retries and default_tags must be known before planning; they depend on \
             values that only apply can compute",
        );
        return;
    }
    if let Some(profile) = model.profile.known()
        && let Err(detail) = check_profile(profile).await
    {
        diags.error_at("profile", "Unknown Profile", detail);
        return;
    }
    match Clients::load(&model).await {
        Ok(clients)
            if model.skip_region_validation.known() != Some(&true)
                && !KNOWN_REGIONS.contains(&clients.region.as_str()) =>
        {
            diags.error_at(
                "region",
                "Unknown Region",
                format!(
                    "{:?} is not an AWS region this provider knows; check the spelling (from the provider \
                     block, AWS_REGION or the profile), or set skip_region_validation = true for a region \
                     opened after this release",
                    clients.region
                ),
            );
        }
        Ok(clients) => {
            // One clear error now rather than one per request later; the secrets found
            // never reach the log.
            let found = tokio::select! {
                found = clients.find_credentials() => found,
                () = ctx.stop.cancelled() => return diags.error("Stopped", "stopped while looking for AWS credentials"),
            };
            match found {
                Ok(secrets) => tfplugin::log::redact(secrets),
                Err(detail) => return diags.error("AWS Credentials Unavailable", detail),
            }
            tracing::info!(region = %clients.region, "provider configured");
            let _ = shared.clients.set(clients);
        }
        Err(problem) => {
            diags.error_at(AttributePath::attr(problem.attribute), problem.summary, problem.detail)
        }
    }
}

/// A named profile must exist in the shared config or credentials file: without this
/// check, credentials from the environment would silently stand in for it.
async fn check_profile(name: &str) -> Result<(), String> {
    use aws_types::os_shim_internal::{Env, Fs};
    // The default files, as the SDK's own loader finds them.
    let profiles = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), None)
        .await
        .map_err(|e| format!("reading the shared AWS config and credentials files: {e}"))?;
    if profiles.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = profiles.profiles().collect();
    known.sort_unstable();
    let known = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
    Err(format!(
        "no profile {name:?} in the shared AWS config or credentials file \
         (AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/config and ~/.aws/credentials); \
         profiles found: {known}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_region_is_well_formed_and_listed_once() {
        let validator = region();
        for name in KNOWN_REGIONS {
            let mut diags = Diagnostics::default();
            validator.check(&Value::String((*name).to_owned()), &AttributePath::attr("region"), &mut diags);
            assert!(!diags.has_errors(), "{name}");
        }
        let unique: std::collections::BTreeSet<&&str> = KNOWN_REGIONS.iter().collect();
        assert_eq!(unique.len(), KNOWN_REGIONS.len());
    }
}
