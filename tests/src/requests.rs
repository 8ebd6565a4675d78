//! What each account asked AWS to do, as counted by the emulator.
//!
//! The emulator (`scripts/emulator/accounting.py`)
//! counts every request it receives under its account as `"<service>:<Action>"`,
//! e.g. `"ec2:DescribeImages"` or `"elbv2:CreateTargetGroup"`, and serves the counts
//! on `GET /_immutable/requests?account=ID` (reset with `POST .../reset`). With
//! `&timing=1` the same endpoints also give the seconds spent serving them
//! ([`RequestStats`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::local_aws::Account;

/// Counts of requests by `"<service>:<Action>"`.
pub type RequestCounts = BTreeMap<String, u64>;

/// What an account's requests cost the emulator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestStats {
    /// Requests by `"<service>:<Action>"`, as [`Account::requests`].
    pub counts: RequestCounts,
    /// Seconds the emulator spent serving them, by `"<service>:<Action>"`: from
    /// receiving a request to handing over the last byte of its response, summed.
    pub seconds: BTreeMap<String, f64>,
    /// Wall-clock seconds during which at least one of the account's requests was
    /// being served: the sum of [`RequestStats::seconds`] without the overlaps of
    /// concurrent requests.
    pub busy_seconds: f64,
}

impl RequestStats {
    /// All requests, whatever the action.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// [`RequestStats::busy_seconds`] as a duration.
    pub fn busy(&self) -> Duration {
        Duration::try_from_secs_f64(self.busy_seconds).unwrap_or_default()
    }
}

/// Action-name prefixes of AWS's read-only API calls.
pub const READ_ONLY_PREFIXES: [&str; 3] = ["Describe", "Get", "List"];

/// Read-only calls whose names do not start with one of [`READ_ONLY_PREFIXES`]:
/// they hand out or explain credentials, or evaluate policies, and change nothing
/// in the account.
pub const READ_ONLY_ACTIONS: [&str; 5] = [
    "sts:AssumeRole",
    "sts:AssumeRoleWithWebIdentity",
    "sts:DecodeAuthorizationMessage",
    "iam:SimulateCustomPolicy",
    "iam:SimulatePrincipalPolicy",
];

/// Whether the request `key` (`"<service>:<Action>"`) may change something in AWS.
///
/// Read-only are the actions named `Describe…`, `Get…` or `List…` (the prefix
/// followed by an upper-case letter, as in `DescribeImages` or
/// `GetCallerIdentity`) and the few in [`READ_ONLY_ACTIONS`]. Everything else
/// counts as mutating, including keys the emulator could not classify
/// (`unknown:unknown`, `"s3:PUT /bucket"`): when in doubt, assume a change.
pub fn is_mutating(key: &str) -> bool {
    if READ_ONLY_ACTIONS.contains(&key) {
        return false;
    }
    let Some((_service, action)) = key.split_once(':') else { return true };
    !READ_ONLY_PREFIXES.iter().any(|prefix| {
        action
            .strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    })
}

/// The mutating requests among `requests` (see [`is_mutating`]), each as
/// `"<service>:<Action> x<count>"`, sorted.
pub fn mutating(requests: &RequestCounts) -> Vec<String> {
    requests
        .iter()
        .filter(|(key, count)| **count > 0 && is_mutating(key))
        .map(|(key, count)| format!("{key} x{count}"))
        .collect()
}

impl Account {
    /// The requests the emulator received for this account since it started or
    /// since the last [`Account::reset_requests`].
    pub fn requests(&self) -> anyhow::Result<RequestCounts> {
        let body = self.accounting_call("GET", "/_immutable/requests")?;
        parse_counts(&body)
    }

    /// Forgets this account's requests so far; returns what was counted.
    pub fn reset_requests(&self) -> anyhow::Result<RequestCounts> {
        let body = self.accounting_call("POST", "/_immutable/requests/reset")?;
        parse_counts(&body)
    }

    /// The requests the emulator received for this account since it started or
    /// since the last reset, with the time it spent serving them.
    pub fn request_stats(&self) -> anyhow::Result<RequestStats> {
        let body = self.accounting_call("GET", "/_immutable/requests?timing=1")?;
        parse_stats(&body)
    }

    /// Forgets this account's requests and their timing so far; returns what was
    /// counted.
    pub fn reset_request_stats(&self) -> anyhow::Result<RequestStats> {
        let body = self.accounting_call("POST", "/_immutable/requests/reset?timing=1")?;
        parse_stats(&body)
    }

    fn accounting_call(&self, method: &str, path: &str) -> anyhow::Result<String> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let target = format!("{path}{separator}account={}", self.id);
        http_call(&self.endpoint, method, &target)
            .with_context(|| format!("{method} {target} on the emulator at {}", self.endpoint))
    }
}

fn parse_counts(body: &str) -> anyhow::Result<RequestCounts> {
    serde_json::from_str(body)
        .with_context(|| format!("request counts are not a JSON object of counts: {body}"))
}

fn parse_stats(body: &str) -> anyhow::Result<RequestStats> {
    let malformed = || format!("request timing is not {{counts, seconds, busy_seconds}}: {body}");
    let value: serde_json::Value = serde_json::from_str(body).with_context(malformed)?;
    let counts = serde_json::from_value(value.get("counts").cloned().with_context(malformed)?)
        .with_context(malformed)?;
    let seconds = serde_json::from_value(value.get("seconds").cloned().with_context(malformed)?)
        .with_context(malformed)?;
    let busy_seconds =
        value.get("busy_seconds").and_then(serde_json::Value::as_f64).with_context(malformed)?;
    Ok(RequestStats { counts, seconds, busy_seconds })
}

/// One HTTP/1.1 request without a body to `endpoint` (`http://HOST:PORT`); the
/// response body when the status is 200.
pub(crate) fn http_call(endpoint: &str, method: &str, target: &str) -> anyhow::Result<String> {
    http_call_with(endpoint, method, target, "")
}

/// An HTTP/1.1 call to the emulator's control paths with a JSON `body` (may be
/// empty); the body of a 200 answer, or an error with the status and body.
pub(crate) fn http_call_with(
    endpoint: &str,
    method: &str,
    target: &str,
    body: &str,
) -> anyhow::Result<String> {
    let authority = endpoint
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// endpoint: {endpoint}"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).with_context(|| format!("connecting to {authority}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).context("reading the response")?;
    let response = String::from_utf8(response).context("response is not UTF-8")?;
    let (head, body) = response.split_once("\r\n\r\n").context("response without a header end")?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{status}: {body}");
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn reads_are_not_mutating() {
        for key in [
            "ec2:DescribeImages",
            "ec2:DescribeSpotFleetRequests",
            "elbv2:DescribeTargetHealth",
            "iam:GetRole",
            "iam:GetInstanceProfile",
            "iam:ListRoles",
            "sts:GetCallerIdentity",
            "sts:AssumeRole",
            "iam:SimulatePrincipalPolicy",
        ] {
            assert!(!is_mutating(key), "{key} is read-only");
        }
    }

    #[test]
    fn changes_and_unknowns_are_mutating() {
        for key in [
            "ec2:CreateTags",
            "ec2:RunInstances",
            "ec2:RequestSpotFleet",
            "ec2:CreateLaunchTemplate",
            "ec2:CancelSpotFleetRequests",
            "ec2:DeregisterImage",
            "ec2:ModifySpotFleetRequest",
            "elbv2:RegisterTargets",
            "iam:PassRole",
            // The prefix alone is not enough: the action must continue with a new word.
            "ec2:Getaway",
            "ec2:Describe",
            "ec2:Listen",
            // Unclassified requests and malformed keys count as changes.
            "unknown:unknown",
            "s3:PUT /bucket",
            "DescribeImages",
            // Only the exact exceptions are read-only.
            "ec2:AssumeRole",
        ] {
            assert!(is_mutating(key), "{key} may change AWS");
        }
    }

    #[test]
    fn mutating_lists_changes_with_their_counts() {
        let counts: RequestCounts = [
            ("ec2:DescribeImages", 3),
            ("ec2:CreateTags", 2),
            ("ec2:RunInstances", 0),
            ("sts:GetCallerIdentity", 1),
            ("elbv2:RegisterTargets", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(mutating(&counts), vec!["ec2:CreateTags x2", "elbv2:RegisterTargets x1"]);
        assert!(mutating(&RequestCounts::new()).is_empty());
    }

    #[test]
    fn counts_parse_from_the_emulators_json() {
        let counts = parse_counts(r#"{"ec2:DescribeImages": 3, "sts:GetCallerIdentity": 1}"#).expect("parse");
        assert_eq!(counts.get("ec2:DescribeImages"), Some(&3));
        assert!(parse_counts(r#"{"error": "x"}"#).is_err());
    }

    #[test]
    fn timing_parses_from_the_emulators_json() {
        let stats = parse_stats(
            r#"{"busy_seconds": 0.25, "counts": {"ec2:DescribeImages": 2}, "seconds": {"ec2:DescribeImages": 0.3}}"#,
        )
        .expect("parse");
        assert_eq!(stats.total(), 2);
        assert_eq!(stats.seconds.get("ec2:DescribeImages"), Some(&0.3));
        assert_eq!(stats.busy(), Duration::from_millis(250));
        assert!(parse_stats(r#"{"ec2:DescribeImages": 2}"#).is_err(), "plain counts are not timing");
    }
}
