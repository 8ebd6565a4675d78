//! Terraform values: types, dynamically typed values, their wire encodings (MessagePack and
//! JSON), and typed conversion to and from model structs via serde.
//!
//! Set elements have no path step of their own: a path into a set addresses the set itself.

mod de;
mod json;
mod msgpack;
mod number;
mod ser;
mod types;
mod val;

use std::collections::BTreeMap;

pub use de::{from_value, from_value_at};
pub use json::{decode_json, encode_json};
pub use msgpack::{decode_msgpack, encode_msgpack};
pub use number::{Number, ParseNumberError};
pub use ser::to_value;
pub use types::Type;
pub use val::Val;

use crate::path::{AttributePath, Step};

/// What is known about an unknown value. `bool` in the bounds: the bound is inclusive.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Refinements {
    /// The value will definitely not be null.
    pub not_null: bool,
    /// A string value will start with this.
    pub string_prefix: Option<String>,
    pub number_lower: Option<(Number, bool)>,
    pub number_upper: Option<(Number, bool)>,
    /// Inclusive bounds of the number of elements of a collection.
    pub length_lower: Option<u64>,
    pub length_upper: Option<u64>,
}

impl Refinements {
    /// Whether nothing at all is known.
    pub fn is_empty(&self) -> bool {
        *self == Refinements::default()
    }
}

/// A Terraform value. Its type is given separately (a [`Type`]) when encoding or decoding.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Value {
    #[default]
    Null,
    /// Not known until apply, possibly with some facts about the eventual value.
    Unknown(Refinements),
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// Elements in no particular order (not deduplicated here).
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
}

impl Value {
    /// A wholly unknown value.
    pub fn unknown() -> Value {
        Value::Unknown(Refinements::default())
    }

    /// The null value of a type (values do not carry their type, so this is always `Null`).
    pub fn null_of(_ty: &Type) -> Value {
        Value::Null
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown(_))
    }

    /// Whether there is no unknown value anywhere in this value.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown(_) => false,
            Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
                items.iter().all(Value::is_wholly_known)
            }
            Value::Map(items) | Value::Object(items) => items.values().all(Value::is_wholly_known),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => true,
        }
    }

    /// This value with every list, set, map or tuple that holds an unknown somewhere
    /// replaced by a plain unknown; objects keep their shape. A model field such as
    /// `Val<Vec<String>>` can then say "not yet known" for `["a", unknown]` instead
    /// of failing to decode.
    pub fn collapse_partial_unknowns(&self) -> Value {
        match self {
            Value::List(_) | Value::Set(_) | Value::Tuple(_) | Value::Map(_) if !self.is_wholly_known() => {
                Value::unknown()
            }
            Value::Object(attrs) => {
                Value::Object(attrs.iter().map(|(k, v)| (k.clone(), v.collapse_partial_unknowns())).collect())
            }
            other => other.clone(),
        }
    }

    fn step(&self, step: &Step) -> Option<&Value> {
        match (self, step) {
            (Value::Object(attrs), Step::Attr(name)) => attrs.get(name),
            (Value::Map(items), Step::Key(key)) => items.get(key),
            (Value::List(items) | Value::Tuple(items), Step::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| items.get(i))
            }
            _ => None,
        }
    }

    fn step_mut(&mut self, step: &Step) -> Option<&mut Value> {
        match (self, step) {
            (Value::Object(attrs), Step::Attr(name)) => attrs.get_mut(name),
            (Value::Map(items), Step::Key(key)) => items.get_mut(key),
            (Value::List(items) | Value::Tuple(items), Step::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| items.get_mut(i))
            }
            _ => None,
        }
    }

    /// The value at `path`: `Attr` steps into objects, `Key` into maps, `Index` into lists and tuples.
    pub fn get(&self, path: &AttributePath) -> Option<&Value> {
        path.steps.iter().try_fold(self, |value, step| value.step(step))
    }

    /// The value at `path`, mutably.
    pub fn get_mut(&mut self, path: &AttributePath) -> Option<&mut Value> {
        path.steps.iter().try_fold(self, |value, step| value.step_mut(step))
    }

    /// An attribute of an object value.
    pub fn attr(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(attrs) => attrs.get(name),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// Visits every value with its path, depth-first, parents before children. The closure may
    /// replace the value; the children of the replacement are visited next.
    pub fn transform(&mut self, f: &mut impl FnMut(&AttributePath, &mut Value)) {
        let mut path = AttributePath::root();
        self.transform_at(&mut path, f);
    }

    fn transform_at<F: FnMut(&AttributePath, &mut Value)>(&mut self, path: &mut AttributePath, f: &mut F) {
        f(path, self);
        match self {
            Value::List(items) | Value::Tuple(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.steps.push(Step::Index(i64::try_from(i).unwrap_or(i64::MAX)));
                    item.transform_at(path, f);
                    path.steps.pop();
                }
            }
            Value::Set(items) => {
                for item in items {
                    item.transform_at(path, f);
                }
            }
            Value::Map(items) => {
                for (key, item) in items {
                    path.steps.push(Step::Key(key.clone()));
                    item.transform_at(path, f);
                    path.steps.pop();
                }
            }
            Value::Object(attrs) => {
                for (name, item) in attrs {
                    path.steps.push(Step::Attr(name.clone()));
                    item.transform_at(path, f);
                    path.steps.pop();
                }
            }
            Value::Null | Value::Unknown(_) | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }

    /// "a string", "an object", ... for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown(_) => "an unknown value",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::List(_) => "a list",
            Value::Set(_) => "a set",
            Value::Map(_) => "a map",
            Value::Object(_) => "an object",
            Value::Tuple(_) => "a tuple",
        }
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Value {
        Value::Bool(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Value {
        Value::String(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::String(value)
    }
}

impl From<Number> for Value {
    fn from(value: Number) -> Value {
        Value::Number(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Number(Number::from_i64(value))
    }
}

/// A value could not be decoded (from bytes or into a model).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    pub path: AttributePath,
    pub message: String,
}

impl DecodeError {
    pub fn new(path: AttributePath, message: impl Into<String>) -> DecodeError {
        DecodeError { path, message: message.into() }
    }
}

/// A value could not be encoded (to bytes or from a model).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EncodeError {
    pub path: AttributePath,
    pub message: String,
}

impl EncodeError {
    pub fn new(path: AttributePath, message: impl Into<String>) -> EncodeError {
        EncodeError { path, message: message.into() }
    }
}

/// "a string", "a list of number", "an object", ... describing what a type expects, for messages.
pub(crate) fn type_kind(ty: &Type) -> String {
    match ty {
        Type::Bool => "a bool".to_owned(),
        Type::Number => "a number".to_owned(),
        Type::String => "a string".to_owned(),
        Type::Dynamic => "a value".to_owned(),
        Type::List(_) | Type::Set(_) | Type::Map(_) => format!("a {ty}"),
        Type::Object { .. } => "an object".to_owned(),
        Type::Tuple(elements) => format!("a tuple of {} elements", elements.len()),
    }
}

/// The type a value has when it is stored at a `dynamic` type: nulls and unknowns are
/// `dynamic`, collections take the common type of their elements (`dynamic` when they differ).
pub(crate) fn infer_type(value: &Value) -> Type {
    fn common<'a>(items: impl IntoIterator<Item = &'a Value>) -> Type {
        let mut result = Type::Dynamic;
        for item in items {
            match unify(&result, &infer_type(item)) {
                Some(t) => result = t,
                None => return Type::Dynamic,
            }
        }
        result
    }
    match value {
        Value::Null | Value::Unknown(_) => Type::Dynamic,
        Value::Bool(_) => Type::Bool,
        Value::Number(_) => Type::Number,
        Value::String(_) => Type::String,
        Value::List(items) => Type::list(common(items)),
        Value::Set(items) => Type::set(common(items)),
        Value::Map(items) => Type::map(common(items.values())),
        Value::Object(attrs) => Type::Object {
            attrs: attrs.iter().map(|(name, v)| (name.clone(), infer_type(v))).collect(),
            optional: Default::default(),
        },
        Value::Tuple(items) => Type::Tuple(items.iter().map(infer_type).collect()),
    }
}

/// The most specific type both `a` and `b` conform to, treating `dynamic` as "not yet decided".
fn unify(a: &Type, b: &Type) -> Option<Type> {
    match (a, b) {
        (Type::Dynamic, other) | (other, Type::Dynamic) => Some(other.clone()),
        (Type::List(x), Type::List(y)) => Some(Type::list(unify(x, y)?)),
        (Type::Set(x), Type::Set(y)) => Some(Type::set(unify(x, y)?)),
        (Type::Map(x), Type::Map(y)) => Some(Type::map(unify(x, y)?)),
        (Type::Tuple(xs), Type::Tuple(ys)) if xs.len() == ys.len() => {
            Some(Type::Tuple(xs.iter().zip(ys).map(|(x, y)| unify(x, y)).collect::<Option<_>>()?))
        }
        (Type::Object { attrs: xs, .. }, Type::Object { attrs: ys, .. })
            if xs.len() == ys.len() && xs.keys().eq(ys.keys()) =>
        {
            Some(Type::Object {
                attrs: xs
                    .iter()
                    .zip(ys.values())
                    .map(|((name, x), y)| Some((name.clone(), unify(x, y)?)))
                    .collect::<Option<_>>()?,
                optional: Default::default(),
            })
        }
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod collapse_tests {
    use super::*;

    #[test]
    fn partially_unknown_collections_become_unknown() {
        let value = Value::Object(BTreeMap::from([
            ("tags".to_owned(), Value::Map(BTreeMap::from([("a".to_owned(), Value::unknown())]))),
            ("names".to_owned(), Value::List(vec![Value::from("x")])),
            (
                "nested".to_owned(),
                Value::Object(BTreeMap::from([("l".to_owned(), Value::List(vec![Value::unknown()]))])),
            ),
        ]));
        let collapsed = value.collapse_partial_unknowns();
        assert!(collapsed.attr("tags").is_some_and(Value::is_unknown));
        assert_eq!(collapsed.attr("names"), Some(&Value::List(vec![Value::from("x")])));
        assert!(collapsed.attr("nested").and_then(|n| n.attr("l")).is_some_and(Value::is_unknown));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Value {
        Value::Object(BTreeMap::from([
            ("name".to_owned(), Value::from("web")),
            ("ports".to_owned(), Value::List(vec![Value::from(80), Value::unknown()])),
            ("tags".to_owned(), Value::Map(BTreeMap::from([("Name".to_owned(), Value::from("x"))]))),
            ("ids".to_owned(), Value::Set(vec![Value::from("a")])),
        ]))
    }

    #[test]
    fn get_and_known() {
        let mut v = sample();
        assert!(!v.is_wholly_known());
        assert_eq!(v.get(&AttributePath::attr("ports").push_index(0)), Some(&Value::from(80)));
        assert_eq!(v.get(&AttributePath::attr("tags").push_key("Name")).and_then(Value::as_str), Some("x"));
        assert_eq!(v.get(&AttributePath::attr("tags").push_attr("Name")), None);
        assert_eq!(v.get(&AttributePath::attr("ports").push_index(-1)), None);
        assert_eq!(v.attr("name").and_then(Value::as_str), Some("web"));
        if let Some(port) = v.get_mut(&AttributePath::attr("ports").push_index(1)) {
            *port = Value::from(443);
        }
        assert!(v.is_wholly_known());
        assert_eq!(v.get(&AttributePath::root()), Some(&v));
    }

    #[test]
    fn transform_visits_parents_first() {
        let mut v = sample();
        let mut seen = Vec::new();
        v.transform(&mut |path, value| {
            seen.push(path.to_string());
            if value.is_unknown() {
                *value = Value::from(1);
            }
            if value.as_str() == Some("web") {
                *value = Value::List(vec![Value::from("replaced")]);
            }
        });
        assert_eq!(
            seen,
            [
                "(root)",
                "ids",
                "ids",
                "name",
                "name[0]",
                "ports",
                "ports[0]",
                "ports[1]",
                "tags",
                "tags[\"Name\"]"
            ]
        );
        assert!(v.is_wholly_known());
        assert_eq!(v.get(&AttributePath::attr("name").push_index(0)), Some(&Value::from("replaced")));
    }

    #[test]
    fn infers_types() {
        let v = Value::List(vec![
            Value::Object(BTreeMap::from([("a".to_owned(), Value::Null)])),
            Value::Object(BTreeMap::from([("a".to_owned(), Value::from("x"))])),
        ]);
        assert_eq!(infer_type(&v), Type::list(Type::object([("a", Type::String)])));
        let mixed = Value::List(vec![Value::from(1), Value::from("x")]);
        assert_eq!(infer_type(&mixed), Type::list(Type::Dynamic));
        assert_eq!(infer_type(&Value::Set(vec![])), Type::set(Type::Dynamic));
    }
}
