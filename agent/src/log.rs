//! Log lines: one JSON object per line, `{"time", "level", "event", "message", ...}`,
//! written whole and flushed (systemd's journal reads stdout line by line). A failed
//! write is dropped: logging never stops the agent.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::clock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

#[derive(Clone)]
pub struct Log {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Log {
    pub fn stdout() -> Log {
        Log::new(io::stdout())
    }

    pub fn new(out: impl Write + Send + 'static) -> Log {
        Log { out: Arc::new(Mutex::new(Box::new(out))) }
    }

    pub fn info(&self, event: &str, message: impl Into<String>, fields: Value) {
        self.emit(Level::Info, event, message.into(), fields);
    }

    pub fn warn(&self, event: &str, message: impl Into<String>, fields: Value) {
        self.emit(Level::Warn, event, message.into(), fields);
    }

    pub fn error(&self, event: &str, message: impl Into<String>, fields: Value) {
        self.emit(Level::Error, event, message.into(), fields);
    }

    /// `fields` is an object whose members follow the fixed ones (or `Value::Null`).
    pub fn emit(&self, level: Level, event: &str, message: String, fields: Value) {
        let mut line = Map::new();
        line.insert("time".into(), clock::rfc3339_millis(SystemTime::now()).into());
        line.insert("level".into(), level.as_str().into());
        line.insert("event".into(), event.into());
        line.insert("message".into(), message.into());
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
}
