//! `tracing` written as hclog JSON lines on stderr, the form go-plugin parses, so that
//! `TF_LOG=debug terraform plan` shows provider lines at their own levels.
//!
//! No secret reaches the log at any level: dependencies log at most at DEBUG (their
//! TRACE lines hold whole requests, signed headers and session tokens included), and
//! every line is scrubbed of the secrets registered with [`redact`].

use serde_json::{Map, Value as Json};
use std::io::Write;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;

/// The most verbose level to emit, from `TF_LOG_PROVIDER`, else `TF_LOG`, else INFO.
/// `None` means off.
pub fn level_from_env() -> Option<Level> {
    let setting = std::env::var("TF_LOG_PROVIDER")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var("TF_LOG").ok().filter(|v| !v.is_empty()));
    match setting {
        None => Some(Level::INFO),
        Some(v) => parse_level(&v),
    }
}

fn parse_level(text: &str) -> Option<Level> {
    match text.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        "OFF" => None,
        // Terraform treats an unrecognised value as TRACE.
        _ => Some(Level::TRACE),
    }
}

/// Secrets no log line may show (credentials the provider found).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers `secrets`: from now on every log line shows `[redacted]` in their place.
pub fn redact(secrets: impl IntoIterator<Item = String>) {
    let mut known = SECRETS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    for secret in secrets {
        // Too short to be a secret, and replacing it would garble every line.
        if secret.len() >= 8 && !known.contains(&secret) {
            known.push(secret);
        }
    }
}

/// `line` with every registered secret replaced.
fn scrub(mut line: String) -> String {
    let known = SECRETS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    for secret in known.iter() {
        if line.contains(secret.as_str()) {
            line = line.replace(secret.as_str(), "[redacted]");
        }
    }
    line
}

/// Installs the hclog layer as the global subscriber (once; later calls do nothing).
pub fn init(module: &'static str) {
    let Some(max) = level_from_env() else { return };
    let layer = HclogLayer { module, max };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

struct HclogLayer {
    module: &'static str,
    max: Level,
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        let level = *metadata.level();
        // Dependencies' internals (HTTP/2 frames, TLS, retries) show only at TRACE, and
        // their own TRACE lines never.
        level <= self.max
            && (is_ours(metadata.target())
                || level <= Level::INFO
                || (self.max == Level::TRACE && level <= Level::DEBUG))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert("@level".into(), Json::from(level_name(*metadata.level())));
        line.insert("@message".into(), Json::from(fields.message.unwrap_or_default()));
        line.insert("@module".into(), Json::from(self.module));
        line.insert("@timestamp".into(), Json::from(timestamp(SystemTime::now())));
        if *metadata.level() >= Level::DEBUG {
            line.insert("@caller".into(), Json::from(metadata.target()));
        }
        for (key, value) in fields.values {
            line.insert(key, value);
        }
        let Ok(text) = serde_json::to_string(&Json::Object(line)) else { return };
        let mut text = scrub(text);
        text.push('\n');
        // One write per line so lines from several threads never interleave.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

fn is_ours(target: &str) -> bool {
    ["tfplugin", "provider", "immutable"].iter().any(|prefix| target.starts_with(prefix))
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(String, Json)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Json::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Json::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Json::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Json::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Json::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Json::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Json::from(value.to_string()));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Json) {
        if field.name() == "message" {
            self.message = Some(match value {
                Json::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.values.push((field.name().to_owned(), value));
        }
    }
}

/// RFC 3339 with microseconds in UTC, as hclog writes it.
fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_667_400_123_456);
        assert_eq!(timestamp(t), "2026-11-26T04:30:00.123456Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(timestamp(leap).starts_with("2000-02-29T00:00:00"));
    }

    #[test]
    fn registered_secrets_never_show() {
        redact(["wJalrXUtnFEMI/K7MDENG".to_owned(), "short".to_owned()]);
        let line = scrub(r#"{"@message":"x-amz-security-token: wJalrXUtnFEMI/K7MDENG, short"}"#.to_owned());
        assert_eq!(line, r#"{"@message":"x-amz-security-token: [redacted], short"}"#);
    }

    #[test]
    fn levels_follow_terraform_names() {
        assert_eq!(parse_level("debug"), Some(Level::DEBUG));
        assert_eq!(parse_level("JSON"), Some(Level::TRACE));
        assert_eq!(parse_level("off"), None);
        assert_eq!(parse_level("warn"), Some(Level::WARN));
    }
}
