//! ELBv2's `DeregisterTargets` as an AWS query request (form-encoded POST, SigV4,
//! API version 2015-12-01; Elastic Load Balancing API Reference,
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeregisterTargets.html),
//! and what its failures mean for a retry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ClientConfig;

use crate::credentials::Credentials;
use crate::http::{self, Request, Scheme, Url};
use crate::sigv4::{Signer, Unsigned, uri_encode};

pub const SERVICE: &str = "elasticloadbalancing";
pub const API_VERSION: &str = "2015-12-01";
/// Per request; failed requests are tried again while there is time.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Error codes worth another try ("Common Errors", Elastic Load Balancing API
/// Reference): throttling and AWS's own failures.
const RETRYABLE: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
];
/// Error codes that new credentials may cure.
const CREDENTIALS: &[&str] =
    &["ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId"];

pub fn default_endpoint(region: &str) -> String {
    format!("https://{SERVICE}.{region}.amazonaws.com")
}

/// The system's trust store for HTTPS, with the aws-lc-rs provider.
pub fn tls_config() -> Result<Arc<ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(format!("no trusted root certificates found on this system{why}"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A transient failure: the same request may succeed later.
    Yes,
    /// Try again with credentials fetched anew.
    WithNewCredentials,
    /// It will fail the same way again.
    No,
}

#[derive(Debug)]
pub struct ElbError {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    pub retry: Retry,
}

pub struct Elb {
    endpoint: Url,
    region: String,
    tls: Option<Arc<ClientConfig>>,
}

impl Elb {
    /// `tls` is needed for an `https://` endpoint.
    pub fn new(endpoint: Url, region: String, tls: Option<Arc<ClientConfig>>) -> Elb {
        Elb { endpoint, region, tls }
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    pub fn needs_tls(endpoint: &Url) -> bool {
        endpoint.scheme == Scheme::Https
    }

    /// Deregisters the instance from the target group; the request id on success.
    pub fn deregister_targets(
        &self,
        credentials: &Credentials,
        target_group: &str,
        instance_id: &str,
    ) -> Result<Option<String>, ElbError> {
        let body = form_body(target_group, instance_id);
        let host = self.endpoint.authority();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let path = format!("{}/", self.endpoint.path);
        let signer = Signer {
            access_key_id: &credentials.access_key_id,
            secret_access_key: &credentials.secret_access_key,
            session_token: credentials.session_token.as_deref(),
            region: &self.region,
            service: SERVICE,
        };
        let unsigned = Unsigned {
            method: "POST",
            path: &path,
            query: "",
            headers: &[("Host", &host), ("Content-Type", content_type)],
            body: body.as_bytes(),
        };
        let signed = signer.sign(&unsigned, SystemTime::now());
        let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
        headers.extend(signed.headers);
        let request = Request { method: "POST", path, headers, body: body.into_bytes() };
        let response = http::send(&self.endpoint, &request, TIMEOUT, self.tls.as_ref())
            .map_err(|e| ElbError { status: None, code: None, message: e.to_string(), retry: Retry::Yes })?;
        let text = response.text();
        if (200..300).contains(&response.status) {
            return Ok(xml_text(&text, "RequestId"));
        }
        let code = xml_text(&text, "Code");
        let message = xml_text(&text, "Message").unwrap_or_else(|| format!("HTTP {}", response.status));
        let retry = match code.as_deref() {
            Some(code) if RETRYABLE.contains(&code) => Retry::Yes,
            Some(code) if CREDENTIALS.contains(&code) => Retry::WithNewCredentials,
            _ if response.status >= 500 || response.status == 429 => Retry::Yes,
            _ => Retry::No,
        };
        Err(ElbError { status: Some(response.status), code, message, retry })
    }
}

pub fn form_body(target_group: &str, instance_id: &str) -> String {
    format!(
        "Action=DeregisterTargets&Version={API_VERSION}&TargetGroupArn={}&Targets.member.1.Id={}",
        uri_encode(target_group, true),
        uri_encode(instance_id, true)
    )
}

/// The text of the first `<tag>` element, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let text = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_error_responses() {
        let xml = "<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\">\
            <Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded &amp; more</Message></Error>\
            <RequestId>a1b2</RequestId></ErrorResponse>";
        assert_eq!(xml_text(xml, "Code").as_deref(), Some("Throttling"));
        assert_eq!(xml_text(xml, "Message").as_deref(), Some("Rate exceeded & more"));
        assert_eq!(xml_text(xml, "RequestId").as_deref(), Some("a1b2"));
        assert_eq!(xml_text(xml, "Missing"), None);
    }

    #[test]
    fn encodes_the_form() {
        let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef";
        assert_eq!(
            form_body(arn, "i-0abc"),
            "Action=DeregisterTargets&Version=2015-12-01&TargetGroupArn=arn%3Aaws%3Aelasticloadbalancing\
             %3Aeu-west-1%3A123456789012%3Atargetgroup%2Fweb%2F0123456789abcdef&Targets.member.1.Id=i-0abc"
        );
    }
}
