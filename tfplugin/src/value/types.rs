//! Terraform types and their JSON type-constraint encoding.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use super::DecodeError;
use crate::path::AttributePath;

/// A Terraform (cty) type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Number,
    String,
    /// Any type, decided at runtime (`any` in HCL, `DynamicPseudoType` in cty).
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    /// `optional` names the attributes that may be omitted (a subset of `attrs`' keys).
    Object {
        attrs: BTreeMap<String, Type>,
        optional: BTreeSet<String>,
    },
    Tuple(Vec<Type>),
}

impl Type {
    /// An object type without optional attributes.
    pub fn object(attrs: impl IntoIterator<Item = (impl Into<String>, Type)>) -> Type {
        Type::Object {
            attrs: attrs.into_iter().map(|(name, ty)| (name.into(), ty)).collect(),
            optional: BTreeSet::new(),
        }
    }

    /// An object type whose attributes named in `optional` may be omitted.
    pub fn object_with_optional(
        attrs: impl IntoIterator<Item = (impl Into<String>, Type)>,
        optional: impl IntoIterator<Item = impl Into<String>>,
    ) -> Type {
        Type::Object {
            attrs: attrs.into_iter().map(|(name, ty)| (name.into(), ty)).collect(),
            optional: optional.into_iter().map(Into::into).collect(),
        }
    }

    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    pub fn tuple(elements: impl IntoIterator<Item = Type>) -> Type {
        Type::Tuple(elements.into_iter().collect())
    }

    /// The element type of a list, set or map.
    pub fn element_type(&self) -> Option<&Type> {
        match self {
            Type::List(t) | Type::Set(t) | Type::Map(t) => Some(t),
            _ => None,
        }
    }

    /// The type of one attribute of an object type.
    pub fn attribute_type(&self, name: &str) -> Option<&Type> {
        match self {
            Type::Object { attrs, .. } => attrs.get(name),
            _ => None,
        }
    }

    /// The compact JSON type-constraint encoding Terraform uses in schemas and dynamic values,
    /// e.g. `"string"`, `["list","string"]`, `["object",{"a":"number"},["a"]]`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_json_value()).unwrap_or_default()
    }

    /// The JSON encoding as a `serde_json::Value`.
    pub fn to_json_value(&self) -> Json {
        let pair = |kind: &str, arg: Json| Json::Array(vec![Json::from(kind), arg]);
        match self {
            Type::Bool => Json::from("bool"),
            Type::Number => Json::from("number"),
            Type::String => Json::from("string"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(t) => pair("list", t.to_json_value()),
            Type::Set(t) => pair("set", t.to_json_value()),
            Type::Map(t) => pair("map", t.to_json_value()),
            Type::Tuple(ts) => pair("tuple", Json::Array(ts.iter().map(Type::to_json_value).collect())),
            Type::Object { attrs, optional } => {
                let attrs: serde_json::Map<String, Json> =
                    attrs.iter().map(|(name, t)| (name.clone(), t.to_json_value())).collect();
                let mut parts = vec![Json::from("object"), Json::Object(attrs)];
                if !optional.is_empty() {
                    parts.push(Json::Array(optional.iter().map(|n| Json::from(n.as_str())).collect()));
                }
                Json::Array(parts)
            }
        }
    }

    /// Parses the JSON type-constraint encoding.
    pub fn from_json(bytes: &[u8]) -> Result<Type, DecodeError> {
        let json: Json = serde_json::from_slice(bytes)
            .map_err(|e| DecodeError::new(AttributePath::root(), format!("invalid type description: {e}")))?;
        Type::from_json_value(&json)
            .map_err(|m| DecodeError::new(AttributePath::root(), format!("invalid type description: {m}")))
    }

    /// Parses the JSON type-constraint encoding from a `serde_json::Value`.
    pub fn from_json_value(json: &Json) -> Result<Type, String> {
        match json {
            Json::String(name) => match name.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            Json::Array(parts) => {
                let Some(Json::String(kind)) = parts.first() else {
                    return Err("a type array must start with the kind of type".to_owned());
                };
                let kind = kind.as_str();
                let expected_len = if kind == "object" { 2..=3 } else { 2..=2 };
                if !expected_len.contains(&parts.len()) {
                    return Err(format!("wrong number of elements in a {kind} type"));
                }
                let arg = &parts[1];
                match kind {
                    "list" => Ok(Type::list(Type::from_json_value(arg)?)),
                    "set" => Ok(Type::set(Type::from_json_value(arg)?)),
                    "map" => Ok(Type::map(Type::from_json_value(arg)?)),
                    "tuple" => {
                        let Json::Array(elements) = arg else {
                            return Err("tuple element types must be an array".to_owned());
                        };
                        Ok(Type::Tuple(elements.iter().map(Type::from_json_value).collect::<Result<_, _>>()?))
                    }
                    "object" => {
                        let Json::Object(attrs) = arg else {
                            return Err("object attribute types must be an object".to_owned());
                        };
                        let attrs = attrs
                            .iter()
                            .map(|(name, t)| Ok((name.clone(), Type::from_json_value(t)?)))
                            .collect::<Result<BTreeMap<_, _>, String>>()?;
                        let mut optional = BTreeSet::new();
                        if let Some(names) = parts.get(2) {
                            let Json::Array(names) = names else {
                                return Err("optional attribute names must be an array".to_owned());
                            };
                            for name in names {
                                let Json::String(name) = name else {
                                    return Err("optional attribute names must be strings".to_owned());
                                };
                                if !attrs.contains_key(name) {
                                    return Err(format!("optional attribute {name:?} is not an attribute"));
                                }
                                optional.insert(name.clone());
                            }
                        }
                        Ok(Type::Object { attrs, optional })
                    }
                    other => Err(format!("unknown kind of type {other:?}")),
                }
            }
            _ => Err("a type must be a string or an array".to_owned()),
        }
    }
}

impl fmt::Display for Type {
    /// Human-readable: `string`, `list of number`, `object`, `tuple`, `dynamic`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("dynamic"),
            Type::List(t) => write!(f, "list of {t}"),
            Type::Set(t) => write!(f, "set of {t}"),
            Type::Map(t) => write!(f, "map of {t}"),
            Type::Object { .. } => f.write_str("object"),
            Type::Tuple(_) => f.write_str("tuple"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let ty = Type::object_with_optional(
            [
                ("name", Type::String),
                ("ports", Type::list(Type::Number)),
                ("tags", Type::map(Type::String)),
                ("ids", Type::set(Type::String)),
                ("pair", Type::tuple([Type::Bool, Type::Dynamic])),
            ],
            ["tags"],
        );
        let json = ty.to_json();
        assert_eq!(
            String::from_utf8_lossy(&json),
            r#"["object",{"ids":["set","string"],"name":"string","pair":["tuple",["bool","dynamic"]],"ports":["list","number"],"tags":["map","string"]},["tags"]]"#
        );
        assert_eq!(Type::from_json(&json), Ok(ty));
        assert_eq!(Type::String.to_json(), br#""string""#);
        assert_eq!(Type::object([("a", Type::Bool)]).to_json(), br#"["object",{"a":"bool"}]"#);
    }

    #[test]
    fn rejects_invalid_types() {
        for bad in [
            "",
            "1",
            "\"str\"",
            "[]",
            "[\"list\"]",
            "[\"list\",\"string\",1]",
            "[\"object\",[]]",
            "[\"object\",{},[\"x\"]]",
            "[\"tuple\",\"string\"]",
            "[\"frob\",\"string\"]",
            "{}",
        ] {
            assert!(Type::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
        let deep = "[\"list\",".repeat(10_000) + "\"string\"" + &"]".repeat(10_000);
        assert!(Type::from_json(deep.as_bytes()).is_err());
    }
}
