//! The instance metadata service, IMDSv2 only: a session token from
//! `PUT /latest/api/token`, sent with every `GET`, renewed before it expires and
//! when IMDS answers 401 ("Use IMDSv2", Amazon EC2 User Guide,
//! https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html).
//! Nothing is ever read without a token.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{self, Request, Url};
use crate::log::Log;

/// The longest session IMDS grants.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(21_600);

#[derive(Debug, thiserror::Error)]
pub enum ImdsError {
    /// The token PUT was refused (403, 404 or 405) by an endpoint that never issued a
    /// token: IMDSv1 only, or not IMDS at all.
    #[error(
        "the instance metadata service at {endpoint} refused to start an IMDSv2 session \
         (PUT /latest/api/token answered HTTP {status}); IMDSv1 is not used"
    )]
    V2Refused { endpoint: String, status: u16 },
    /// Unreachable or failing: refused or dropped connection, timeout, 5xx, or an
    /// answer that makes no sense. Worth another try later.
    #[error("{0}")]
    Unavailable(String),
}

struct Token {
    value: String,
    renew_at: Instant,
}

pub struct Imds {
    base: Url,
    timeout: Duration,
    ttl: Duration,
    token: Option<Token>,
    /// Once a token was issued, the endpoint speaks IMDSv2: a later refusal is an outage.
    issued_once: bool,
    log: Log,
}

impl Imds {
    /// `base` is what `/latest/...` is appended to.
    pub fn new(base: Url, timeout: Duration, ttl: Duration, log: Log) -> Imds {
        let ttl = ttl.clamp(Duration::from_secs(1), MAX_TOKEN_TTL);
        Imds { base, timeout, ttl, token: None, issued_once: false, log }
    }

    pub fn endpoint(&self) -> &Url {
        &self.base
    }

    /// `GET /latest/<path>`; `Ok(None)` when IMDS has no such item (404).
    pub fn get(&mut self, path: &str) -> Result<Option<String>, ImdsError> {
        let token = self.token()?;
        let response = self.send("GET", path, vec![("X-aws-ec2-metadata-token".into(), token)])?;
        let response = if response.status == 401 {
            // Expired early, or IMDS forgot it (a stopped and started instance).
            self.token = None;
            let token = self.token()?;
            let again = self.send("GET", path, vec![("X-aws-ec2-metadata-token".into(), token)])?;
            if again.status != 401 {
                self.log.info(
                    "imds-token-rejected",
                    "IMDS refused the session token (401); a new session works",
                    json!({"path": path}),
                );
            }
            again
        } else {
            response
        };
        match response.status {
            200 => Ok(Some(response.text())),
            404 => Ok(None),
            status => Err(ImdsError::Unavailable(format!("GET {path}: HTTP {status}"))),
        }
    }

    fn token(&mut self) -> Result<String, ImdsError> {
        if let Some(token) = &self.token
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let asked = Instant::now();
        let ttl = self.ttl.as_secs().to_string();
        let response =
            self.send("PUT", "api/token", vec![("X-aws-ec2-metadata-token-ttl-seconds".into(), ttl)])?;
        match response.status {
            200 => {}
            403..=405 if !self.issued_once => {
                return Err(ImdsError::V2Refused {
                    endpoint: self.base.to_string(),
                    status: response.status,
                });
            }
            status => return Err(ImdsError::Unavailable(format!("PUT api/token: HTTP {status}"))),
        }
        let value = response.text().trim().to_owned();
        if value.is_empty() || value.contains(['\r', '\n']) {
            return Err(ImdsError::Unavailable("PUT api/token: no usable token in the answer".into()));
        }
        let granted = response
            .header("X-aws-ec2-metadata-token-ttl-seconds")
            .and_then(|s| s.parse().ok())
            .map_or(self.ttl, Duration::from_secs)
            .min(self.ttl);
        // Renewed a minute early (a quarter early for short sessions).
        let renew_at = asked + granted - (granted / 4).min(Duration::from_secs(60));
        self.issued_once = true;
        self.token = Some(Token { value: value.clone(), renew_at });
        Ok(value)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
    ) -> Result<http::Response, ImdsError> {
        let request =
            Request { method, path: format!("{}/latest/{path}", self.base.path), headers, body: Vec::new() };
        http::send(&self.base, &request, self.timeout, None)
            .map_err(|e| ImdsError::Unavailable(format!("{method} {path}: {e}")))
    }
}
