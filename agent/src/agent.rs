//! The agent's life: the start-up reads, the poll loop, and the one response to an
//! interruption notice (deregister, hook, drain, idle).

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conventions::agent_tags;
use serde_json::{Value, json};

use crate::clock;
use crate::config::{Config, DEFAULT_DRAIN_SECONDS, OnRebalance};
use crate::credentials::CredentialSource;
use crate::elb::{self, Elb, Retry};
use crate::http::Url;
use crate::imds::{Imds, ImdsError};
use crate::log::{Level, Log};
use crate::stop::Stop;

/// Spot's notice lead: the time left when a notice's time cannot be read, and what a
/// rebalance recommendation treated as a notice gets.
pub const NOTICE_LEAD: Duration = Duration::from_secs(120);
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a run ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stopped by SIGTERM/SIGINT (or the stop flag).
    Stopped,
    /// An On-Demand instance: Spot never interrupts it, nothing to watch.
    OnDemand,
}

/// What ends a run with an error (already logged): nothing another try would change.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error(transparent)]
    Imds(ImdsError),
    #[error("{0}")]
    Setup(String),
}

enum Halt {
    Stopped,
    Fatal(Fatal),
}

/// Runs until stopped: reads the instance's identity and target groups, polls for
/// notices every `poll_interval`, and answers the first one. IMDS outages are waited
/// out; only an IMDSv1-only endpoint or an unusable setup ends it with an error.
pub fn run(config: &Config, stop: &Stop, log: &Log) -> Result<Outcome, Fatal> {
    log.info(
        "started",
        format!("immutable-agent {} watching {}", env!("CARGO_PKG_VERSION"), config.imds_endpoint),
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "imds_endpoint": config.imds_endpoint.to_string(),
            "poll_interval_ms": millis(config.poll_interval),
            "on_rebalance": config.on_rebalance.as_str(),
            "drain_hook": config.drain_hook.is_some(),
        }),
    );
    let imds =
        Imds::new(config.imds_endpoint.clone(), config.imds_timeout, config.imds_token_ttl, log.clone());
    let mut agent = Agent { config, stop, log, imds, outage: None, credentials_failing: false };
    match agent.live() {
        Ok(outcome) => Ok(outcome),
        Err(Halt::Stopped) => {
            log.info("stopped", "stopped", Value::Null);
            Ok(Outcome::Stopped)
        }
        Err(Halt::Fatal(fatal)) => Err(fatal),
    }
}

struct Agent<'a> {
    config: &'a Config,
    stop: &'a Stop,
    log: &'a Log,
    imds: Imds,
    /// Since when IMDS has been failing, during an outage.
    outage: Option<Instant>,
    credentials_failing: bool,
}

struct Identity {
    instance_id: String,
    region: String,
}

/// What the instance tags say.
struct Tags {
    target_groups: Vec<String>,
    drain_seconds: Option<u64>,
}

struct Targets {
    groups: Vec<String>,
    drain: Duration,
}

/// A notice to answer.
struct Trigger {
    /// `terminate`, `stop`, `hibernate`, or `rebalance`.
    action: String,
    /// As IMDS wrote it; none for a rebalance recommendation.
    time: Option<String>,
    /// The instance's expected end: retries, the hook and the drain stop there.
    until: Instant,
}

impl Agent<'_> {
    fn live(&mut self) -> Result<Outcome, Halt> {
        let life_cycle = self.read(|imds| imds.get("meta-data/instance-life-cycle"))?;
        let life_cycle = life_cycle.map(|s| s.trim().to_owned()).unwrap_or_default();
        let instance_id = self.read(|imds| required(imds, "meta-data/instance-id"))?;
        if life_cycle == "on-demand" {
            self.log.info(
                "on-demand",
                format!("{instance_id} is an On-Demand instance: Spot never interrupts it, nothing to watch; exiting"),
                json!({"instance_id": instance_id, "life_cycle": life_cycle}),
            );
            return Ok(Outcome::OnDemand);
        }
        let region = self.read(|imds| required(imds, "meta-data/placement/region"))?;
        let identity = Identity { instance_id, region };
        self.log.info(
            "instance",
            format!("{} in {} ({})", identity.instance_id, identity.region, or_unknown(&life_cycle)),
            json!({"instance_id": identity.instance_id, "region": identity.region, "life_cycle": or_unknown(&life_cycle)}),
        );

        let log = self.log.clone();
        let tags = self.read(|imds| read_tags(imds, &log))?;
        let targets = self.targets(tags);
        let elb = if targets.groups.is_empty() { None } else { Some(self.elb(&identity.region)?) };
        let mut credentials = CredentialSource::new(self.config.credentials.clone());
        if elb.is_some() {
            if credentials.is_fixed() {
                self.log.info(
                    "credentials",
                    "credentials from the environment (AWS_ACCESS_KEY_ID)",
                    json!({"source": "environment"}),
                );
            } else {
                self.renew_credentials(&mut credentials);
            }
        }

        self.log.info(
            "polling",
            format!("polling for Spot notices every {}ms", millis(self.config.poll_interval)),
            json!({"poll_interval_ms": millis(self.config.poll_interval)}),
        );
        let mut last_rebalance = None;
        loop {
            if let Some(trigger) = self.poll(&mut last_rebalance)? {
                self.respond(&trigger, &identity, &targets, elb.as_ref(), &mut credentials)?;
                self.stop.wait_forever();
                return Err(Halt::Stopped);
            }
            if elb.is_some() && credentials.renew_due(SystemTime::now()) {
                self.renew_credentials(&mut credentials);
            }
            if self.stop.wait(self.config.poll_interval) {
                return Err(Halt::Stopped);
            }
        }
    }

    /// Reads from IMDS until it answers, once per poll interval during an outage.
    fn read<T>(&mut self, mut read: impl FnMut(&mut Imds) -> Result<T, ImdsError>) -> Result<T, Halt> {
        loop {
            if let Some(value) = self.attempt(&mut read)? {
                return Ok(value);
            }
            if self.stop.wait(self.config.poll_interval) {
                return Err(Halt::Stopped);
            }
        }
    }

    /// One read: `None` during an outage (warned once, its end logged).
    fn attempt<T>(
        &mut self,
        read: impl FnOnce(&mut Imds) -> Result<T, ImdsError>,
    ) -> Result<Option<T>, Halt> {
        if self.stop.is_set() {
            return Err(Halt::Stopped);
        }
        match read(&mut self.imds) {
            Ok(value) => {
                if let Some(since) = self.outage.take() {
                    self.log.info(
                        "imds-recovered",
                        format!("instance metadata answers again after {}ms", millis(since.elapsed())),
                        json!({"down_ms": millis(since.elapsed())}),
                    );
                }
                Ok(Some(value))
            }
            Err(ImdsError::Unavailable(why)) => {
                if self.outage.is_none() {
                    self.outage = Some(Instant::now());
                    self.log.warn(
                        "imds-unavailable",
                        format!("instance metadata unavailable ({why}); trying again every poll"),
                        json!({"error": why}),
                    );
                }
                Ok(None)
            }
            Err(ImdsError::V2Refused { endpoint, status }) => {
                let refused = ImdsError::V2Refused { endpoint, status };
                self.log.error(
                    "imdsv2-unsupported",
                    refused.to_string(),
                    json!({"endpoint": self.imds.endpoint().to_string(), "status": status}),
                );
                Err(Halt::Fatal(Fatal::Imds(refused)))
            }
        }
    }

    fn targets(&self, tags: Option<Tags>) -> Targets {
        let (from_tags, drain_tag) = match tags {
            Some(tags) => (tags.target_groups, tags.drain_seconds),
            None => {
                self.log.warn(
                    "tags-unavailable",
                    "instance tags are not in the instance metadata (the launch template does not enable \
                     them); only --target-group options apply",
                    Value::Null,
                );
                (Vec::new(), None)
            }
        };
        let mut groups = from_tags.clone();
        for group in &self.config.target_groups {
            if !groups.contains(group) {
                groups.push(group.clone());
            }
        }
        let (drain_seconds, drain_from) = match (drain_tag, self.config.drain_seconds) {
            (Some(seconds), _) => (seconds, "tag"),
            (None, Some(seconds)) => (seconds, "option"),
            (None, None) => (DEFAULT_DRAIN_SECONDS, "default"),
        };
        if groups.is_empty() {
            self.log.warn(
                "no-target-groups",
                "no target groups in the instance tags or the options: notices are logged, nothing is deregistered",
                Value::Null,
            );
        } else {
            self.log.info(
                "target-groups",
                format!(
                    "on a notice, leaving {} and draining for up to {drain_seconds}s",
                    target_groups(groups.len())
                ),
                json!({
                    "target_groups": groups,
                    "from_tags": from_tags.len(),
                    "from_options": groups.len() - from_tags.len(),
                    "drain_seconds": drain_seconds,
                    "drain_seconds_from": drain_from,
                }),
            );
        }
        Targets { groups, drain: Duration::from_secs(drain_seconds) }
    }

    fn elb(&self, region: &str) -> Result<Elb, Halt> {
        let fatal = |log: &Log, what: String| {
            log.error("setup-failed", what.clone(), Value::Null);
            Halt::Fatal(Fatal::Setup(what))
        };
        let endpoint = match &self.config.elb_endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let valid =
                    !region.is_empty() && region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                let url = if valid { Url::parse(&elb::default_endpoint(region)).ok() } else { None };
                url.ok_or_else(|| fatal(self.log, format!("no ELB endpoint for region {region:?}")))?
            }
        };
        let tls = if Elb::needs_tls(&endpoint) {
            let config =
                elb::tls_config().map_err(|e| fatal(self.log, format!("HTTPS to {endpoint}: {e}")))?;
            Some(config)
        } else {
            None
        };
        Ok(Elb::new(endpoint, region.to_owned(), tls))
    }

    fn renew_credentials(&mut self, credentials: &mut CredentialSource) {
        match credentials.get(&mut self.imds, self.log) {
            Ok(_) => self.credentials_failing = false,
            Err(error) => {
                if !self.credentials_failing {
                    self.log.warn(
                        "credentials-unavailable",
                        format!("no AWS credentials yet ({error}); trying again later"),
                        json!({"error": error}),
                    );
                }
                self.credentials_failing = true;
            }
        }
    }

    /// One poll: a notice to answer, if any.
    fn poll(&mut self, last_rebalance: &mut Option<String>) -> Result<Option<Trigger>, Halt> {
        let Some(action) = self.attempt(|imds| imds.get("meta-data/spot/instance-action"))? else {
            return Ok(None);
        };
        if let Some(body) = action {
            return Ok(Some(self.notice(&body)));
        }
        let Some(Some(body)) = self.attempt(|imds| imds.get("meta-data/events/recommendations/rebalance"))?
        else {
            return Ok(None);
        };
        let notice_time = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("noticeTime").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_owned());
        if last_rebalance.as_ref() == Some(&notice_time) {
            return Ok(None);
        }
        *last_rebalance = Some(notice_time.clone());
        let drain = self.config.on_rebalance == OnRebalance::Drain;
        self.log.info(
            "rebalance",
            if drain {
                format!("rebalance recommendation at {notice_time}: leaving the target groups as on a notice")
            } else {
                format!("rebalance recommendation at {notice_time}: logged only (--on-rebalance log)")
            },
            json!({"notice_time": notice_time, "on_rebalance": self.config.on_rebalance.as_str()}),
        );
        Ok(drain.then(|| Trigger {
            action: "rebalance".into(),
            time: None,
            until: Instant::now() + NOTICE_LEAD,
        }))
    }

    fn notice(&self, body: &str) -> Trigger {
        let parsed = serde_json::from_str::<Value>(body).ok();
        let field =
            |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
        let (action, time) = (field("action"), field("time"));
        let left = time
            .as_deref()
            .and_then(clock::parse_rfc3339)
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
        if action.is_none() || left.is_none() {
            self.log.warn(
                "notice-unreadable",
                format!(
                    "an instance-action notice without a readable action and time; assuming {}s left",
                    NOTICE_LEAD.as_secs()
                ),
                json!({"body": body}),
            );
        }
        let action = action.unwrap_or_else(|| "terminate".into());
        // Spot gives two minutes; an hour bounds a notice time that makes no sense.
        let left = left.unwrap_or(NOTICE_LEAD).min(Duration::from_secs(3600));
        self.log.info(
            "notice",
            format!(
                "Spot instance-action {action} at {}: leaving the target groups",
                time.as_deref().unwrap_or("?")
            ),
            json!({"action": action, "time": time, "seconds_left": left.as_secs()}),
        );
        Trigger { action, time, until: Instant::now() + left }
    }

    fn respond(
        &mut self,
        trigger: &Trigger,
        identity: &Identity,
        targets: &Targets,
        elb: Option<&Elb>,
        credentials: &mut CredentialSource,
    ) -> Result<(), Halt> {
        let (left, failed) = match elb {
            Some(elb) => {
                self.deregister_all(elb, &targets.groups, &identity.instance_id, trigger.until, credentials)?
            }
            None => (Vec::new(), Vec::new()),
        };
        if let Some(hook) = &self.config.drain_hook {
            self.run_hook(hook, trigger, &identity.instance_id)?;
        }
        if !left.is_empty() {
            let wait = targets.drain.min(trigger.until.saturating_duration_since(Instant::now()));
            self.log.info(
                "draining",
                format!("letting connections drain for {}s", wait.as_secs_f32().round()),
                json!({"wait_ms": millis(wait), "drain_seconds": targets.drain.as_secs()}),
            );
            let started = Instant::now();
            if self.stop.wait(wait) {
                return Err(Halt::Stopped);
            }
            self.log.info("drained", "connections drained", json!({"waited_ms": millis(started.elapsed())}));
        }
        self.log.emit(
            if failed.is_empty() { Level::Info } else { Level::Error },
            "done",
            if elb.is_none() {
                "done: no target groups to leave; idle until the instance stops".to_owned()
            } else {
                format!(
                    "done: left {} of {}; idle until the instance stops",
                    left.len(),
                    target_groups(targets.groups.len())
                )
            },
            json!({"deregistered": left, "failed": failed}),
        );
        Ok(())
    }

    /// Deregisters from every group, retrying transient failures with backoff until
    /// `until`; (left, failed).
    fn deregister_all(
        &mut self,
        elb: &Elb,
        groups: &[String],
        instance_id: &str,
        until: Instant,
        credentials: &mut CredentialSource,
    ) -> Result<(Vec<String>, Vec<String>), Halt> {
        self.log.info(
            "deregistering",
            format!("deregistering {instance_id} from {} at {}", target_groups(groups.len()), elb.endpoint()),
            json!({"instance_id": instance_id, "target_groups": groups}),
        );
        let (mut left, mut failed) = (Vec::new(), Vec::new());
        let mut pending = groups.to_vec();
        let mut backoff = BACKOFF_FIRST;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match credentials.get(&mut self.imds, self.log) {
                Err(error) => self.log.warn(
                    "credentials-unavailable",
                    format!("no AWS credentials to deregister with ({error}); trying again"),
                    json!({"error": error, "attempt": attempt}),
                ),
                Ok(creds) => {
                    let mut again = Vec::new();
                    for group in pending {
                        if self.stop.is_set() {
                            return Err(Halt::Stopped);
                        }
                        match elb.deregister_targets(&creds, &group, instance_id) {
                            Ok(request_id) => {
                                self.log.info(
                                    "deregistered",
                                    format!("{instance_id} left {group}"),
                                    json!({
                                        "target_group": group,
                                        "instance_id": instance_id,
                                        "attempt": attempt,
                                        "request_id": request_id,
                                    }),
                                );
                                left.push(group);
                            }
                            Err(e) => {
                                let fields = json!({
                                    "target_group": group,
                                    "attempt": attempt,
                                    "status": e.status,
                                    "code": e.code,
                                    "error": e.message,
                                });
                                let what = format!(
                                    "deregistering from {group}: {}{}",
                                    e.code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default(),
                                    e.message
                                );
                                if e.retry == Retry::No {
                                    self.log.error("deregister-failed", what, fields);
                                    failed.push(group);
                                } else {
                                    if e.retry == Retry::WithNewCredentials {
                                        credentials.invalidate();
                                    }
                                    self.log.warn(
                                        "deregister-retry",
                                        format!("{what}; trying again"),
                                        fields,
                                    );
                                    again.push(group);
                                }
                            }
                        }
                    }
                    pending = again;
                }
            }
            if pending.is_empty() {
                return Ok((left, failed));
            }
            let delay = jittered(backoff);
            if Instant::now() + delay >= until {
                self.log.error(
                    "deregister-gave-up",
                    format!(
                        "no time left before the instance goes: still in {}",
                        target_groups(pending.len())
                    ),
                    json!({"target_groups": pending, "attempts": attempt}),
                );
                failed.extend(pending);
                return Ok((left, failed));
            }
            if self.stop.wait(delay) {
                return Err(Halt::Stopped);
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Runs the hook once with `sh -c`, waiting for it until the instance's end.
    fn run_hook(&self, hook: &str, trigger: &Trigger, instance_id: &str) -> Result<(), Halt> {
        let started = Instant::now();
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(hook)
            .env("IMMUTABLE_INSTANCE_ACTION", &trigger.action)
            .env("IMMUTABLE_TERMINATION_TIME", trigger.time.as_deref().unwrap_or(""))
            .env("IMMUTABLE_INSTANCE_ID", instance_id)
            .stdin(Stdio::null())
            // Our stdout carries only JSON lines; the journal takes stderr too.
            .stdout(Stdio::from(io::stderr()))
            .stderr(Stdio::inherit());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.log.error(
                    "hook-failed",
                    format!("starting the drain hook: {e}"),
                    json!({"error": e.to_string()}),
                );
                return Ok(());
            }
        };
        self.log.info("hook-started", "running the drain hook", json!({"pid": child.id()}));
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let ok = status.success();
                    self.log.emit(
                        if ok { Level::Info } else { Level::Warn },
                        "hook-finished",
                        format!("the drain hook finished: {status}"),
                        json!({"exit_code": status.code(), "success": ok, "duration_ms": millis(started.elapsed())}),
                    );
                    return Ok(());
                }
                Ok(None) => {}
                Err(e) => {
                    self.log.error(
                        "hook-failed",
                        format!("waiting for the drain hook: {e}"),
                        json!({"error": e.to_string()}),
                    );
                    return Ok(());
                }
            }
            if Instant::now() >= trigger.until {
                self.log.warn(
                    "hook-timeout",
                    "the drain hook is still running at the instance's end; not waiting for it",
                    json!({"pid": child.id(), "duration_ms": millis(started.elapsed())}),
                );
                return Ok(());
            }
            if self.stop.wait(Duration::from_millis(20)) {
                return Err(Halt::Stopped);
            }
        }
    }
}

fn required(imds: &mut Imds, path: &str) -> Result<String, ImdsError> {
    let value = imds.get(path)?.map(|s| s.trim().to_owned()).unwrap_or_default();
    if value.is_empty() { Err(ImdsError::Unavailable(format!("{path} is missing"))) } else { Ok(value) }
}

/// The target groups and drain time from the instance tags; `None` when the tags
/// are not in the metadata (404).
fn read_tags(imds: &mut Imds, log: &Log) -> Result<Option<Tags>, ImdsError> {
    let Some(listing) = imds.get("meta-data/tags/instance")? else {
        return Ok(None);
    };
    let mut groups: Vec<(usize, String)> = Vec::new();
    let mut drain_seconds = None;
    for key in listing.lines().map(str::trim).filter(|k| !k.is_empty()) {
        let index = key.strip_prefix(agent_tags::TARGET_GROUP_PREFIX).map(str::parse::<usize>);
        if index.is_none() && key != agent_tags::DRAIN_SECONDS {
            continue;
        }
        let value = imds.get(&format!("meta-data/tags/instance/{key}"))?.map(|v| v.trim().to_owned());
        let Some(value) = value.filter(|v| !v.is_empty()) else { continue };
        match index {
            Some(Ok(index)) if value.starts_with("arn:") => groups.push((index, value)),
            None => match value.parse::<u64>() {
                Ok(seconds) => drain_seconds = Some(seconds),
                Err(_) => invalid_tag(log, key, &value, "not a whole number of seconds"),
            },
            Some(Ok(_)) => invalid_tag(log, key, &value, "not an ARN"),
            Some(Err(_)) => invalid_tag(log, key, &value, "not a numbered target group tag"),
        }
    }
    groups.sort();
    let mut target_groups: Vec<String> = Vec::new();
    for (_, group) in groups {
        if !target_groups.contains(&group) {
            target_groups.push(group);
        }
    }
    Ok(Some(Tags { target_groups, drain_seconds }))
}

fn invalid_tag(log: &Log, key: &str, value: &str, why: &str) {
    log.warn(
        "tag-invalid",
        format!("ignoring tag {key}={value:?}: {why}"),
        json!({"key": key, "value": value}),
    );
}

fn target_groups(n: usize) -> String {
    if n == 1 { "1 target group".into() } else { format!("{n} target groups") }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "unknown" } else { text }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Between half and all of `delay`, so that retries of many instances spread out.
fn jittered(delay: Duration) -> Duration {
    let noise = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) % 1000;
    delay / 2 + delay / 2 * noise / 1000
}
