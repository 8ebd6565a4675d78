//! Behaviours of the emulator switched on per account (`scripts/emulator/switches.py`):
//! the scaled clock, timed target health and draining, throttling, Spot interruptions.
//! Every account starts with none of them; a test switches on what it needs.

use crate::Account;
use crate::requests::http_call_with;
use anyhow::Context as _;
use serde_json::{Value, json};
use std::time::Duration;

/// Real seconds per AWS second in tests that run AWS's timing: 1 AWS second lasts
/// 10 ms, so the default health check (5 passes 30 s apart) takes 1.5 s.
pub const TEST_CLOCK_SCALE: f64 = 0.01;

/// `aws_seconds` of AWS time on the [`TEST_CLOCK_SCALE`] clock.
pub fn scaled(aws_seconds: f64) -> Duration {
    Duration::from_secs_f64(aws_seconds * TEST_CLOCK_SCALE)
}

/// Target health and draining as an ALB computes them, on the test clock.
pub fn realistic_health() -> Value {
    json!({ "clock_scale": TEST_CLOCK_SCALE, "target_health": "timed" })
}

impl Account {
    /// Changes the named settings of this account's behaviour; returns all of them.
    /// An unknown setting or a bad value is an error (the emulator refuses it).
    pub fn behave(&self, settings: Value) -> anyhow::Result<Value> {
        let body = self.control("POST", "/_immutable/behaviour", Some(&settings))?;
        serde_json::from_str(&body).with_context(|| format!("behaviour answer is not JSON: {body}"))
    }

    /// This account's behaviour settings.
    pub fn behaviour(&self) -> anyhow::Result<Value> {
        let body = self.control("GET", "/_immutable/behaviour", None)?;
        serde_json::from_str(&body).with_context(|| format!("behaviour answer is not JSON: {body}"))
    }

    /// A call to one of the emulator's control paths (`/_immutable/...`) for this
    /// account, with an optional JSON body; the answer's body.
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<String> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let target = format!("{path}{separator}account={}", self.id);
        let body = body.map(Value::to_string).unwrap_or_default();
        http_call_with(&self.endpoint, method, &target, &body)
            .with_context(|| format!("{method} {target} on the emulator at {}", self.endpoint))
    }
}
