//! Diagnostics that name the file, the line and the key.
//!
//! Checks speak in key paths (`layer[2].parent`); [`Source`] turns a path into a line
//! by walking toml's spanned document, and turns a deserialiser's byte span back into
//! the innermost key path that contains it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One segment of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path into the layers file, printed like `layer[2].provisioner[0].scripts[1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Seg::Key(key.to_owned()));
        self
    }
    pub fn index(mut self, index: usize) -> Self {
        self.0.push(Seg::Index(index));
        self
    }
    pub fn layer(index: usize) -> Self {
        KeyPath::default().key("layer").index(index)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{}", quote_key(k))?,
                Seg::Key(k) => write!(f, ".{}", quote_key(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

fn quote_key(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// A problem in the layers file: `file:line:column: key: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the file itself is the problem (unreadable).
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The key path, empty when no key applies.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The text of a layers file and its spanned document, for locating keys.
pub struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    doc: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Source<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Source { file, text, doc: DeTable::parse(text).ok() }
    }

    /// A diagnostic at the key path's key (or at its deepest part present in the
    /// document; the start of the file if none is).
    pub fn at(&self, path: &KeyPath, message: impl Into<String>) -> Diagnostic {
        let offset = self.doc.as_ref().and_then(|doc| locate(doc, &path.0)).unwrap_or(0);
        self.diagnostic(offset, path.to_string(), message.into())
    }

    pub fn diagnostic(&self, offset: usize, key: String, message: String) -> Diagnostic {
        let (line, column) = line_column(self.text, offset);
        Diagnostic { file: self.file.to_path_buf(), line, column, key, message }
    }

    /// A diagnostic from toml: a syntax error (the key is guessed from the line) or a
    /// type error from the deserialiser (the key is the innermost one around the span).
    pub fn from_toml(&self, error: &toml::de::Error) -> Diagnostic {
        let span = error.span().unwrap_or(0..0);
        let message = error.message().trim().to_owned();
        match &self.doc {
            Some(doc) => {
                let mut best = (0, KeyPath::default());
                walk_table(doc.get_ref(), span.start, &mut KeyPath::default(), &mut best);
                self.diagnostic(span.start, best.1.to_string(), message)
            }
            None => {
                let key = syntax_error_key(self.text, span.start);
                self.diagnostic(span.start, key, format!("TOML syntax error: {message}"))
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn locate(doc: &Spanned<DeTable<'_>>, path: &[Seg]) -> Option<usize> {
    locate_in_table(doc.get_ref(), path)
}

fn locate_in_table(table: &DeTable<'_>, path: &[Seg]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let Seg::Key(name) = first else { return None };
    let (key, value) = table.iter().find(|(k, _)| k.get_ref() == name)?;
    if rest.is_empty() {
        // At the key, so the line is the one a person reads as `key = value`.
        return Some(key.span().start);
    }
    locate_in_value(value, rest).or(Some(key.span().start))
}

fn locate_in_value(value: &Spanned<DeValue<'_>>, path: &[Seg]) -> Option<usize> {
    match (value.get_ref(), path.split_first()) {
        (_, None) => Some(value.span().start),
        (DeValue::Table(t), Some(_)) => locate_in_table(t, path),
        (DeValue::Array(items), Some((Seg::Index(i), rest))) => {
            let item = items.get(*i)?;
            if rest.is_empty() { Some(item_start(item)) } else { locate_in_value(item, rest) }
        }
        _ => None,
    }
}

/// Where an array element starts. A `[[table]]` element's own span may be empty, so
/// fall back to its first key.
fn item_start(item: &Spanned<DeValue<'_>>) -> usize {
    match item.get_ref() {
        DeValue::Table(t) if item.span().is_empty() => {
            t.iter().map(|(k, _)| k.span().start).min().unwrap_or(item.span().start)
        }
        _ => item.span().start,
    }
}

fn consider(candidate: &Range<usize>, at: usize, here: &KeyPath, best: &mut (usize, KeyPath)) {
    if candidate.start <= at && at < candidate.end.max(candidate.start + 1) && here.0.len() >= best.0 {
        *best = (here.0.len(), here.clone());
    }
}

/// Finds the deepest key path whose key or value span contains `at`.
fn walk_table(table: &DeTable<'_>, at: usize, here: &mut KeyPath, best: &mut (usize, KeyPath)) {
    for (key, value) in table {
        here.0.push(Seg::Key(key.get_ref().to_string()));
        consider(&key.span(), at, here, best);
        walk_value(value, at, here, best);
        here.0.pop();
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, at: usize, here: &mut KeyPath, best: &mut (usize, KeyPath)) {
    consider(&value.span(), at, here, best);
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, at, here, best),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                here.0.push(Seg::Index(i));
                walk_value(item, at, here, best);
                here.0.pop();
            }
        }
        _ => {}
    }
}

/// For a syntax error, the key on the error's line (`key = ...`) under the nearest
/// table header above it, e.g. `layer.region`.
fn syntax_error_key(text: &str, offset: usize) -> String {
    let (line_no, _) = line_column(text, offset);
    let lines: Vec<&str> = text.lines().collect();
    let Some(line) = lines.get(line_no.saturating_sub(1)) else { return String::new() };
    let header = lines
        .iter()
        .take(line_no.saturating_sub(1))
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return trimmed.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
    }
    let key = trimmed
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_.\"' ".contains(c)));
    match (header, key) {
        (Some(h), Some(k)) => format!("{h}.{k}"),
        (None, Some(k)) => k.to_owned(),
        (Some(h), None) => h,
        (None, None) => String::new(),
    }
}
