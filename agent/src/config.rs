//! Options: command-line flags, each with an `IMMUTABLE_AGENT_*` environment variable
//! (a flag wins), and the AWS credential variables.

use std::time::Duration;

use crate::credentials::Credentials;
use crate::http::{Scheme, Url};
use crate::imds::MAX_TOKEN_TTL;

pub const USAGE: &str = "\
immutable-agent: takes this EC2 Spot instance out of its load balancer target groups
when Spot announces its interruption, then lets connections drain.

Usage: immutable-agent [OPTIONS]

Options (each also read from the environment variable shown; a flag wins):
  --imds-endpoint URL      instance metadata base URL                 [IMMUTABLE_AGENT_IMDS_ENDPOINT]
                           (default http://169.254.169.254; /latest/... is appended)
  --poll-interval DURATION how often to look for notices, e.g. 5s, 500ms
                           (default 5s)                               [IMMUTABLE_AGENT_POLL_INTERVAL]
  --target-group ARN       deregister from this target group too (repeatable; the
                           variable takes ARNs separated by spaces or commas)
                                                                      [IMMUTABLE_AGENT_TARGET_GROUPS]
  --drain-seconds N        how long targets drain when the instance has no
                           immutable:drain-seconds tag (default 300)  [IMMUTABLE_AGENT_DRAIN_SECONDS]
  --drain-hook COMMAND     run once with sh -c after deregistering    [IMMUTABLE_AGENT_DRAIN_HOOK]
  --on-rebalance log|drain what a rebalance recommendation does
                           (default log)                              [IMMUTABLE_AGENT_ON_REBALANCE]
  --elb-endpoint URL       ELBv2 endpoint (default
                           https://elasticloadbalancing.<region>.amazonaws.com)
                                                                      [IMMUTABLE_AGENT_ELB_ENDPOINT]
  --imds-timeout DURATION  per IMDS request (default 2s)              [IMMUTABLE_AGENT_IMDS_TIMEOUT]
  --imds-token-ttl DURATION  IMDSv2 session length, 1s to 6h
                           (default 6h)                               [IMMUTABLE_AGENT_IMDS_TOKEN_TTL]
  -h, --help               this text
  -V, --version            the version

Credentials: the instance profile's, through IMDS; AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN override them.
Logs: one JSON object per line on stdout.
";

pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// ELB's default deregistration delay.
pub const DEFAULT_DRAIN_SECONDS: u64 = 300;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRebalance {
    Log,
    Drain,
}

impl OnRebalance {
    pub fn as_str(self) -> &'static str {
        match self {
            OnRebalance::Log => "log",
            OnRebalance::Drain => "drain",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// What `/latest/...` is appended to.
    pub imds_endpoint: Url,
    pub imds_timeout: Duration,
    pub imds_token_ttl: Duration,
    pub poll_interval: Duration,
    /// `None`: ELB's regional endpoint.
    pub elb_endpoint: Option<Url>,
    /// Besides those the instance tags name.
    pub target_groups: Vec<String>,
    /// When the instance has no `immutable:drain-seconds` tag.
    pub drain_seconds: Option<u64>,
    pub drain_hook: Option<String>,
    pub on_rebalance: OnRebalance,
    /// `None`: the instance profile's.
    pub credentials: Option<Credentials>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl Config {
    /// The defaults, with IMDS at `imds_endpoint`.
    pub fn new(imds_endpoint: Url) -> Config {
        Config {
            imds_endpoint,
            imds_timeout: Duration::from_secs(2),
            imds_token_ttl: MAX_TOKEN_TTL,
            poll_interval: Duration::from_secs(5),
            elb_endpoint: None,
            target_groups: Vec::new(),
            drain_seconds: None,
            drain_hook: None,
            on_rebalance: OnRebalance::Log,
            credentials: None,
        }
    }

    /// From the arguments (without the program name) and the environment.
    pub fn from_args<I>(args: I, env: &dyn Fn(&str) -> Option<String>) -> Result<Command, ConfigError>
    where
        I: IntoIterator<Item = String>,
    {
        // (flag, value, where it was given)
        let mut options: Vec<(&'static str, String, String)> = Vec::new();
        for (flag, var) in OPTIONS {
            if let Some(value) = env(var).filter(|v| !v.trim().is_empty()) {
                if *flag == "--target-group" {
                    let arns = value.split([' ', ',', '\n', '\t']).filter(|s| !s.is_empty());
                    options.extend(arns.map(|arn| (*flag, arn.to_owned(), format!("{var}="))));
                } else {
                    options.push((flag, value, format!("{var}=")));
                }
            }
        }
        let mut from_flags: Vec<(&'static str, String, String)> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Command::Help),
                "-V" | "--version" => return Ok(Command::Version),
                _ => {}
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name.to_owned(), Some(value.to_owned())),
                _ => (arg.clone(), None),
            };
            let Some((flag, _)) = OPTIONS.iter().find(|(flag, _)| *flag == name) else {
                return Err(ConfigError(if name.starts_with('-') {
                    format!("unknown option {name} (see --help)")
                } else {
                    format!("unexpected argument {arg:?} (see --help)")
                }));
            };
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or_else(|| ConfigError(format!("{flag} needs a value")))?,
            };
            from_flags.push((flag, value, format!("{flag} ")));
        }
        // A flag replaces what the environment said for the same option.
        options.retain(|(flag, _, _)| !from_flags.iter().any(|(f, _, _)| f == flag));
        options.extend(from_flags);

        let default = Url::parse(DEFAULT_IMDS_ENDPOINT).map_err(ConfigError)?;
        let mut config = Config::new(default);
        for (flag, value, source) in options {
            config.set(flag, &value).map_err(|e| ConfigError(format!("{source}{value:?}: {e}")))?;
        }
        config.credentials = Credentials::from_env(env).map_err(ConfigError)?;
        Ok(Command::Run(Box::new(config)))
    }

    fn set(&mut self, flag: &str, value: &str) -> Result<(), String> {
        let value = value.trim();
        match flag {
            "--imds-endpoint" => {
                let url = Url::parse(value)?;
                if url.scheme != Scheme::Http {
                    return Err("IMDS answers plain http://".into());
                }
                self.imds_endpoint = url;
            }
            "--elb-endpoint" => self.elb_endpoint = Some(Url::parse(value)?),
            "--poll-interval" => self.poll_interval = positive(parse_duration(value)?)?,
            "--imds-timeout" => self.imds_timeout = positive(parse_duration(value)?)?,
            "--imds-token-ttl" => {
                let ttl = parse_duration(value)?;
                if ttl < Duration::from_secs(1) || ttl > MAX_TOKEN_TTL || ttl.subsec_nanos() != 0 {
                    return Err("a whole number of seconds from 1s to 6h".into());
                }
                self.imds_token_ttl = ttl;
            }
            "--target-group" => {
                if !value.starts_with("arn:") {
                    return Err("not a target group ARN (arn:...)".into());
                }
                if !self.target_groups.iter().any(|t| t == value) {
                    self.target_groups.push(value.to_owned());
                }
            }
            "--drain-seconds" => {
                self.drain_seconds = Some(value.parse().map_err(|_| "a whole number of seconds".to_owned())?)
            }
            "--drain-hook" => self.drain_hook = Some(value.to_owned()),
            "--on-rebalance" => {
                self.on_rebalance = match value {
                    "log" => OnRebalance::Log,
                    "drain" => OnRebalance::Drain,
                    _ => return Err("log or drain".into()),
                }
            }
            _ => return Err("unknown option".into()),
        }
        Ok(())
    }
}

const OPTIONS: &[(&str, &str)] = &[
    ("--imds-endpoint", "IMMUTABLE_AGENT_IMDS_ENDPOINT"),
    ("--poll-interval", "IMMUTABLE_AGENT_POLL_INTERVAL"),
    ("--target-group", "IMMUTABLE_AGENT_TARGET_GROUPS"),
    ("--drain-seconds", "IMMUTABLE_AGENT_DRAIN_SECONDS"),
    ("--drain-hook", "IMMUTABLE_AGENT_DRAIN_HOOK"),
    ("--on-rebalance", "IMMUTABLE_AGENT_ON_REBALANCE"),
    ("--elb-endpoint", "IMMUTABLE_AGENT_ELB_ENDPOINT"),
    ("--imds-timeout", "IMMUTABLE_AGENT_IMDS_TIMEOUT"),
    ("--imds-token-ttl", "IMMUTABLE_AGENT_IMDS_TOKEN_TTL"),
];

fn positive(duration: Duration) -> Result<Duration, String> {
    if duration < Duration::from_millis(1) { Err("at least 1ms".into()) } else { Ok(duration) }
}

/// A Go duration: a sequence of decimal numbers, each with an optional fraction and
/// a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), such as `5s`, `1m30s`, `1.5s`;
/// `0` alone needs no unit. Negative durations are refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?} (expected e.g. 5s, 500ms, 1m30s)");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, after) = rest.split_at(whole_len);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let mut nanos = whole.checked_mul(nanos_per).ok_or_else(invalid)?;
        let mut scale = nanos_per;
        for digit in fraction.bytes().take(18) {
            scale /= 10;
            nanos += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(nanos).ok_or_else(invalid)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| invalid())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        match Config::from_args(args.iter().map(|s| s.to_string()), &lookup) {
            Ok(Command::Run(config)) => Ok(*config),
            Ok(other) => Err(format!("{other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("5s", ms(5000)),
            ("500ms", ms(500)),
            ("20ms", ms(20)),
            ("1m30s", ms(90_000)),
            ("1.5s", ms(1500)),
            ("2h", ms(7_200_000)),
            ("0", Duration::ZERO),
            ("100us", Duration::from_micros(100)),
            ("1µs", Duration::from_micros(1)),
            (".5s", ms(500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for text in ["", "5", "5x", "s", "-5s", "1.s.", "5 s", "99999999999999999999h"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn defaults_flags_and_environment() {
        let config = parse(&[], &[]).expect("defaults");
        assert_eq!(config.imds_endpoint.to_string(), "http://169.254.169.254");
        assert_eq!(config.poll_interval, Duration::from_secs(5));
        assert_eq!(config.on_rebalance, OnRebalance::Log);
        assert!(
            config.credentials.is_none() && config.target_groups.is_empty() && config.elb_endpoint.is_none()
        );

        let config = parse(
            &[
                "--poll-interval=500ms",
                "--target-group",
                "arn:a",
                "--target-group",
                "arn:b",
                "--on-rebalance",
                "drain",
            ],
            &[
                ("IMMUTABLE_AGENT_POLL_INTERVAL", "9s"),
                ("IMMUTABLE_AGENT_DRAIN_HOOK", "systemctl stop app"),
                ("IMMUTABLE_AGENT_TARGET_GROUPS", "arn:c, arn:d"),
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
            ],
        )
        .expect("valid");
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.target_groups, ["arn:a", "arn:b"]);
        assert_eq!(config.drain_hook.as_deref(), Some("systemctl stop app"));
        assert_eq!(config.on_rebalance, OnRebalance::Drain);
        assert_eq!(config.credentials.map(|c| c.access_key_id).as_deref(), Some("AKID"));

        let config = parse(&[], &[("IMMUTABLE_AGENT_TARGET_GROUPS", "arn:c, arn:d")]).expect("valid");
        assert_eq!(config.target_groups, ["arn:c", "arn:d"]);
    }

    #[test]
    fn readable_errors() {
        for (args, env, want) in [
            (&["--poll-interval", "5x"][..], &[][..], "--poll-interval \"5x\": invalid duration \"5x\""),
            (&["--poll-interval"], &[], "--poll-interval needs a value"),
            (&["--bogus"], &[], "unknown option --bogus"),
            (&["stray"], &[], "unexpected argument \"stray\""),
            (&["--imds-endpoint", "https://x"], &[], "IMDS answers plain http://"),
            (&["--target-group", "web"], &[], "not a target group ARN"),
            (&["--on-rebalance", "panic"], &[], "log or drain"),
            (&["--imds-token-ttl", "7h"], &[], "from 1s to 6h"),
            (&["--poll-interval", "0"], &[], "at least 1ms"),
            (&[], &[("AWS_ACCESS_KEY_ID", "AKID")], "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY"),
            (
                &[],
                &[("IMMUTABLE_AGENT_ON_REBALANCE", "x")],
                "IMMUTABLE_AGENT_ON_REBALANCE=\"x\": log or drain",
            ),
        ] {
            let error = parse(args, env).expect_err("invalid");
            assert!(error.contains(want), "{args:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
