//! AWS credentials: fixed ones from the environment, or the instance profile's
//! through IMDS (`meta-data/iam/security-credentials/<role>`), renewed before they
//! expire ("Retrieve security credentials from instance metadata", Amazon EC2 User
//! Guide, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html:
//! new credentials are available at least five minutes before the old ones expire).

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::clock;
use crate::imds::{Imds, ImdsError};
use crate::log::Log;

/// Renew instance-profile credentials this long before they expire.
pub const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// The least time between two attempts to renew, so that credentials IMDS serves
/// close to their expiration are not fetched on every poll.
const RETRY_AFTER: Duration = Duration::from_secs(60);

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expiration: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl Credentials {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally
    /// `AWS_SESSION_TOKEN`; `Ok(None)` when neither key is set.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Credentials>, String> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (None, None) => Ok(None),
            (Some(access_key_id), Some(secret_access_key)) => Ok(Some(Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
                expiration: None,
            })),
            (Some(_), None) => Err("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY".into()),
            (None, Some(_)) => Err("AWS_SECRET_ACCESS_KEY is set without AWS_ACCESS_KEY_ID".into()),
        }
    }

    fn renew_due(&self, now: SystemTime) -> bool {
        self.expiration.is_some_and(|at| now + RENEW_BEFORE >= at)
    }

    fn expired(&self, now: SystemTime) -> bool {
        self.expiration.is_some_and(|at| now >= at)
    }
}

/// Where the credentials come from, and the last ones fetched.
pub struct CredentialSource {
    fixed: Option<Credentials>,
    cached: Option<Credentials>,
    last_attempt: Option<Instant>,
}

impl CredentialSource {
    /// Fixed credentials, or the instance profile's.
    pub fn new(fixed: Option<Credentials>) -> CredentialSource {
        CredentialSource { fixed, cached: None, last_attempt: None }
    }

    pub fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }

    /// Whether renewing is worth a try now: none yet, or close to expiring, and no
    /// attempt in the last minute.
    pub fn renew_due(&self, now: SystemTime) -> bool {
        if self.fixed.is_some() {
            return false;
        }
        let needed = self.cached.as_ref().is_none_or(|c| c.renew_due(now));
        needed && self.last_attempt.is_none_or(|at| at.elapsed() >= RETRY_AFTER)
    }

    /// Forget the cached ones (AWS said they expired).
    pub fn invalidate(&mut self) {
        self.cached = None;
        self.last_attempt = None;
    }

    /// Current credentials, fetched when there are none or they are due for renewal;
    /// the old ones while they are still valid if renewing fails.
    pub fn get(&mut self, imds: &mut Imds, log: &Log) -> Result<Credentials, String> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let now = SystemTime::now();
        if let Some(cached) = &self.cached
            && !cached.renew_due(now)
        {
            return Ok(cached.clone());
        }
        self.last_attempt = Some(Instant::now());
        match fetch(imds) {
            Ok((role, fresh)) => {
                log.info(
                    "credentials",
                    format!("instance profile credentials of role {role}"),
                    json!({
                        "source": "instance-profile",
                        "role": role,
                        "expiration": fresh.expiration.map(clock::rfc3339_seconds),
                    }),
                );
                self.cached = Some(fresh.clone());
                Ok(fresh)
            }
            Err(e) => {
                match &self.cached {
                    Some(cached) if !cached.expired(now) => {
                        log.warn(
                        "credentials-unavailable",
                        format!("renewing the instance profile credentials: {e}; the current ones are still valid"),
                        json!({"error": e}),
                    );
                        Ok(cached.clone())
                    }
                    _ => Err(e),
                }
            }
        }
    }
}

fn fetch(imds: &mut Imds) -> Result<(String, Credentials), String> {
    let describe = |e: ImdsError| format!("instance metadata: {e}");
    let listing = imds
        .get("meta-data/iam/security-credentials/")
        .map_err(describe)?
        .ok_or("the instance has no instance profile (meta-data/iam/security-credentials/ is 404)")?;
    let role = listing
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or("the instance profile has no role (meta-data/iam/security-credentials/ is empty)")?
        .to_owned();
    let document = imds
        .get(&format!("meta-data/iam/security-credentials/{role}"))
        .map_err(describe)?
        .ok_or_else(|| format!("meta-data/iam/security-credentials/{role} is 404"))?;
    let credentials = parse(&document).map_err(|e| format!("credentials of role {role}: {e}"))?;
    Ok((role, credentials))
}

/// The JSON document IMDS serves for a role.
pub fn parse(document: &str) -> Result<Credentials, String> {
    let value: Value = serde_json::from_str(document).map_err(|e| format!("not JSON ({e})"))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(code) = field("Code")
        && code != "Success"
    {
        return Err(format!("Code {code}: {}", field("Message").unwrap_or("no message")));
    }
    let required = |name: &str| field(name).map(str::to_owned).ok_or_else(|| format!("no {name}"));
    let expiration = match field("Expiration") {
        Some(text) => {
            Some(clock::parse_rfc3339(text).ok_or_else(|| format!("Expiration {text:?} is not a time"))?)
        }
        None => None,
    };
    Ok(Credentials {
        access_key_id: required("AccessKeyId")?,
        secret_access_key: required("SecretAccessKey")?,
        session_token: field("Token").map(str::to_owned),
        expiration,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_role_document() {
        let document = r#"{"Code":"Success","LastUpdated":"2026-05-01T11:00:00Z","Type":"AWS-HMAC",
            "AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"secret","Token":"token",
            "Expiration":"2026-05-01T17:00:00Z"}"#;
        let credentials = parse(document).expect("valid credentials");
        assert_eq!(credentials.access_key_id, "ASIAEXAMPLE");
        assert_eq!(credentials.session_token.as_deref(), Some("token"));
        let expiration = clock::parse_rfc3339("2026-05-01T17:00:00Z");
        assert_eq!(credentials.expiration, expiration);
        assert!(!format!("{credentials:?}").contains("secret\""));
        let Some(expiration) = expiration else { return };
        assert!(!credentials.renew_due(expiration - Duration::from_secs(301)));
        assert!(credentials.renew_due(expiration - Duration::from_secs(299)));
        assert!(parse(r#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"no"}"#).is_err());
        assert!(parse(r#"{"Code":"Success","AccessKeyId":"A"}"#).is_err());
    }

    #[test]
    fn renews_at_most_once_a_minute() {
        let mut source = CredentialSource::new(None);
        let now = SystemTime::now();
        assert!(source.renew_due(now));
        source.last_attempt = Some(Instant::now());
        assert!(!source.renew_due(now), "an attempt just now");
        source.cached = Some(Credentials {
            access_key_id: "A".into(),
            secret_access_key: "S".into(),
            session_token: None,
            expiration: Some(now + Duration::from_secs(3600)),
        });
        source.last_attempt = None;
        assert!(!source.renew_due(now), "an hour left");
        assert!(source.renew_due(now + Duration::from_secs(3400)), "less than five minutes left");
        assert!(!CredentialSource::new(source.cached.clone()).renew_due(now + Duration::from_secs(7200)));
    }
}
