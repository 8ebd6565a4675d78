//! Terraform's JSON encoding of values (state, and the `json` field of `DynamicValue`).

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value as Json;

use super::{DecodeError, EncodeError, Number, Type, Value, infer_type, type_kind};
use crate::path::{AttributePath, Step};

/// Decodes a JSON value of type `ty`.
///
/// Follows Terraform's leniency for state: strings are accepted for numbers and bools (and
/// numbers and bools for strings), and object properties the type does not have are ignored
/// (state written by an older schema may still carry them). Missing attributes are null.
pub fn decode_json(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let json: Json = serde_json::from_slice(bytes)
        .map_err(|e| DecodeError::new(AttributePath::root(), format!("invalid JSON: {e}")))?;
    let mut path = Vec::new();
    from_json(&json, ty, &mut path)
}

/// Encodes a wholly known value of type `ty` as JSON.
pub fn encode_json(value: &Value, ty: &Type) -> Result<Vec<u8>, EncodeError> {
    let mut path = Vec::new();
    let json = to_json(value, ty, &mut path)?;
    serde_json::to_vec(&json).map_err(|e| EncodeError::new(AttributePath::root(), e.to_string()))
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn decode_error(path: &[Step], message: impl Into<String>) -> DecodeError {
    DecodeError::new(AttributePath { steps: path.to_vec() }, message)
}

fn from_json(json: &Json, ty: &Type, path: &mut Vec<Step>) -> Result<Value, DecodeError> {
    if json.is_null() {
        return Ok(Value::Null);
    }
    let expected =
        |path: &[Step]| decode_error(path, format!("expected {}, got {}", type_kind(ty), json_kind(json)));
    match ty {
        Type::Bool => match json {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" => Ok(Value::Bool(true)),
            Json::String(s) if s == "false" => Ok(Value::Bool(false)),
            _ => Err(expected(path)),
        },
        Type::Number => {
            let text = match json {
                Json::Number(n) => n.to_string(),
                Json::String(s) => s.clone(),
                _ => return Err(expected(path)),
            };
            Number::from_str(&text).map(Value::Number).map_err(|e| decode_error(path, e.to_string()))
        }
        Type::String => match json {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) => match Number::from_str(&n.to_string()) {
                Ok(n) => Ok(Value::String(n.to_string())),
                Err(e) => Err(decode_error(path, e.to_string())),
            },
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            _ => Err(expected(path)),
        },
        Type::List(element) | Type::Set(element) => {
            let Json::Array(items) = json else {
                return Err(expected(path));
            };
            let is_list = matches!(ty, Type::List(_));
            let mut values = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if is_list {
                    path.push(Step::Index(i as i64));
                }
                values.push(from_json(item, element, path)?);
                if is_list {
                    path.pop();
                }
            }
            Ok(if is_list { Value::List(values) } else { Value::Set(values) })
        }
        Type::Tuple(elements) => {
            let Json::Array(items) = json else {
                return Err(expected(path));
            };
            if items.len() != elements.len() {
                return Err(decode_error(
                    path,
                    format!("expected a tuple of {} elements, got {} elements", elements.len(), items.len()),
                ));
            }
            let mut values = Vec::with_capacity(items.len());
            for (i, (item, element)) in items.iter().zip(elements).enumerate() {
                path.push(Step::Index(i as i64));
                values.push(from_json(item, element, path)?);
                path.pop();
            }
            Ok(Value::Tuple(values))
        }
        Type::Map(element) => {
            let Json::Object(items) = json else {
                return Err(expected(path));
            };
            let mut values = BTreeMap::new();
            for (key, item) in items {
                path.push(Step::Key(key.clone()));
                values.insert(key.clone(), from_json(item, element, path)?);
                path.pop();
            }
            Ok(Value::Map(values))
        }
        Type::Object { attrs, .. } => {
            let Json::Object(items) = json else {
                return Err(expected(path));
            };
            let mut values = BTreeMap::new();
            for (name, attr_ty) in attrs {
                let value = match items.get(name) {
                    Some(item) => {
                        path.push(Step::Attr(name.clone()));
                        let value = from_json(item, attr_ty, path)?;
                        path.pop();
                        value
                    }
                    None => Value::Null,
                };
                values.insert(name.clone(), value);
            }
            Ok(Value::Object(values))
        }
        Type::Dynamic => {
            let Json::Object(parts) = json else {
                return Err(decode_error(
                    path,
                    format!(
                        "expected a {{\"value\", \"type\"}} object for a dynamic value, got {}",
                        json_kind(json)
                    ),
                ));
            };
            let (Some(type_json), Some(value_json)) = (parts.get("type"), parts.get("value")) else {
                return Err(decode_error(path, "a dynamic value needs \"value\" and \"type\" properties"));
            };
            let actual = Type::from_json_value(type_json)
                .map_err(|m| decode_error(path, format!("invalid type description: {m}")))?;
            from_json(value_json, &actual, path)
        }
    }
}

fn encode_error(path: &[Step], message: impl Into<String>) -> EncodeError {
    EncodeError::new(AttributePath { steps: path.to_vec() }, message)
}

fn to_json(value: &Value, ty: &Type, path: &mut Vec<Step>) -> Result<Json, EncodeError> {
    Ok(match (value, ty) {
        (Value::Null, _) => Json::Null,
        (Value::Unknown(_), _) => return Err(encode_error(path, "value is not yet known")),
        (_, Type::Dynamic) => {
            let actual = infer_type(value);
            let mut parts = serde_json::Map::new();
            parts.insert("value".to_owned(), to_json(value, &actual, path)?);
            parts.insert("type".to_owned(), actual.to_json_value());
            Json::Object(parts)
        }
        (Value::Bool(b), Type::Bool) => Json::Bool(*b),
        (Value::Number(n), Type::Number) => Json::Number(
            serde_json::Number::from_str(&n.to_string()).map_err(|e| encode_error(path, e.to_string()))?,
        ),
        (Value::String(s), Type::String) => Json::String(s.clone()),
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::List(element)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i as i64));
                out.push(to_json(item, element, path)?);
                path.pop();
            }
            Json::Array(out)
        }
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::Set(element)) => {
            Json::Array(items.iter().map(|item| to_json(item, element, path)).collect::<Result<_, _>>()?)
        }
        (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::Tuple(elements)) => {
            if items.len() != elements.len() {
                return Err(encode_error(
                    path,
                    format!("expected a tuple of {} elements, got {} elements", elements.len(), items.len()),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (item, element)) in items.iter().zip(elements).enumerate() {
                path.push(Step::Index(i as i64));
                out.push(to_json(item, element, path)?);
                path.pop();
            }
            Json::Array(out)
        }
        (Value::Map(items) | Value::Object(items), Type::Map(element)) => {
            let mut out = serde_json::Map::new();
            for (key, item) in items {
                path.push(Step::Key(key.clone()));
                out.insert(key.clone(), to_json(item, element, path)?);
                path.pop();
            }
            Json::Object(out)
        }
        (Value::Map(items) | Value::Object(items), Type::Object { attrs, .. }) => {
            if let Some(extra) = items.keys().find(|name| !attrs.contains_key(*name)) {
                return Err(encode_error(path, format!("unexpected attribute {extra:?}")));
            }
            let mut out = serde_json::Map::new();
            for (name, attr_ty) in attrs {
                path.push(Step::Attr(name.clone()));
                out.insert(name.clone(), to_json(items.get(name).unwrap_or(&Value::Null), attr_ty, path)?);
                path.pop();
            }
            Json::Object(out)
        }
        _ => {
            return Err(encode_error(path, format!("expected {}, got {}", type_kind(ty), value.kind())));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj<const N: usize>(attrs: [(&str, Value); N]) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn n(text: &str) -> Value {
        Value::Number(text.parse().expect("valid number"))
    }

    #[test]
    fn decodes_state() {
        let ty = Type::object([
            ("id", Type::String),
            ("big", Type::Number),
            ("dec", Type::Number),
            ("neg", Type::Number),
            ("tags", Type::map(Type::String)),
            ("ports", Type::list(Type::Number)),
            ("ids", Type::set(Type::String)),
            ("pair", Type::tuple([Type::Bool, Type::String])),
            ("any", Type::Dynamic),
            ("missing", Type::String),
        ]);
        let json = br#"{
            "id": "i-123", "big": 1180591620717411303424, "dec": 0.000000000000000000000000000001,
            "neg": -5, "tags": {"Name": "web"}, "ports": [80, 443], "ids": ["a"],
            "pair": [true, "x"], "any": {"value": ["a", 1], "type": ["tuple", ["string", "number"]]},
            "removed_attribute": 1
        }"#;
        let value = decode_json(json, &ty).expect("decodes");
        assert_eq!(
            value,
            obj([
                ("id", Value::from("i-123")),
                ("big", n("1180591620717411303424")),
                ("dec", n("1e-30")),
                ("neg", Value::from(-5)),
                ("tags", Value::Map([("Name".to_owned(), Value::from("web"))].into())),
                ("ports", Value::List(vec![Value::from(80), Value::from(443)])),
                ("ids", Value::Set(vec![Value::from("a")])),
                ("pair", Value::Tuple(vec![Value::Bool(true), Value::from("x")])),
                ("any", Value::Tuple(vec![Value::from("a"), Value::from(1)])),
                ("missing", Value::Null),
            ])
        );
        let bytes = encode_json(&value, &ty).expect("encodes");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.contains(r#""big":1180591620717411303424"#), "{text}");
        assert!(text.contains(r#""dec":0.000000000000000000000000000001"#), "{text}");
        assert!(text.contains(r#""any":{"value":["a",1],"type":["tuple",["string","number"]]}"#), "{text}");
        assert_eq!(decode_json(&bytes, &ty), Ok(value));
    }

    #[test]
    fn lenient_primitives_and_errors() {
        assert_eq!(decode_json(br#""12.5""#, &Type::Number), Ok(n("12.5")));
        assert_eq!(decode_json(br#""true""#, &Type::Bool), Ok(Value::Bool(true)));
        assert_eq!(decode_json(b"12", &Type::String), Ok(Value::from("12")));
        assert_eq!(decode_json(b"null", &Type::list(Type::String)), Ok(Value::Null));
        let ty = Type::object([("rules", Type::list(Type::object([("port", Type::Number)])))]);
        let err = decode_json(br#"{"rules": [{"port": 1}, {"port": [1]}]}"#, &ty).expect_err("mismatch");
        assert_eq!(err.to_string(), "rules[1].port: expected a number, got an array");
        assert!(decode_json(br#"{"rules": "#, &ty).is_err());
        assert!(decode_json(b"\"abc\"", &Type::Number).is_err());
        assert!(decode_json(b"[1,2]", &Type::tuple([Type::Number])).is_err());
        assert!(decode_json(br#"{"value": 1}"#, &Type::Dynamic).is_err());
        let err = encode_json(&obj([("rules", Value::unknown())]), &ty).expect_err("unknown");
        assert_eq!(err.to_string(), "rules: value is not yet known");
        let deep = "[".repeat(100_000);
        assert!(decode_json(deep.as_bytes(), &Type::Dynamic).is_err());
    }
}
