//! [`Val`]: a model field that may be null or not yet known.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// Name of the unit struct the value (de)serializers use to signal an unknown value.
pub(crate) const UNKNOWN_MARKER: &str = "$tfplugin::value::Unknown";

/// A model field that may be null or unknown, as configuration and plans can be.
///
/// With [`from_value`](super::from_value) and [`to_value`](super::to_value) all three states map
/// to Terraform values. With other serde formats `Null` and `Unknown` are written as none and
/// `Known` as some.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Val<T> {
    #[default]
    Null,
    Unknown,
    Known(T),
}

impl<T> Val<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Val::Known(value) => Some(value),
            _ => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Val::Unknown)
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }

    pub fn is_known(&self) -> bool {
        matches!(self, Val::Known(_))
    }

    /// `Some` for a known value; `None` for null and unknown.
    pub fn into_option(self) -> Option<T> {
        match self {
            Val::Known(value) => Some(value),
            _ => None,
        }
    }

    pub fn as_ref(&self) -> Val<&T> {
        match self {
            Val::Null => Val::Null,
            Val::Unknown => Val::Unknown,
            Val::Known(value) => Val::Known(value),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Val<U> {
        match self {
            Val::Null => Val::Null,
            Val::Unknown => Val::Unknown,
            Val::Known(value) => Val::Known(f(value)),
        }
    }
}

impl<T> From<Option<T>> for Val<T> {
    fn from(value: Option<T>) -> Val<T> {
        match value {
            Some(value) => Val::Known(value),
            None => Val::Null,
        }
    }
}

impl<T: Serialize> Serialize for Val<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Val::Null => serializer.serialize_none(),
            Val::Unknown => serializer.serialize_newtype_struct(UNKNOWN_MARKER, &Option::<()>::None),
            Val::Known(value) => serializer.serialize_some(value),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Val<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Val<T>, D::Error> {
        deserializer.deserialize_option(ValVisitor(PhantomData))
    }
}

struct ValVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ValVisitor<T> {
    type Value = Val<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Val<T>, E> {
        Ok(Val::Null)
    }

    /// Reached for an unknown value that serde buffered (a `#[serde(flatten)]` group, see
    /// [`from_value`](super::from_value)).
    fn visit_unit<E: de::Error>(self) -> Result<Val<T>, E> {
        Ok(Val::Unknown)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val<T>, D::Error> {
        T::deserialize(deserializer).map(Val::Known)
    }

    /// Reached only from the value deserializer, for an unknown value.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<Val<T>, D::Error> {
        deserializer.deserialize_unit_struct(UNKNOWN_MARKER, UnknownVisitor)?;
        Ok(Val::Unknown)
    }
}

struct UnknownVisitor;

impl<'de> Visitor<'de> for UnknownVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an unknown value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_formats_see_an_option() {
        let vals: Vec<Val<u8>> = vec![Val::Null, Val::Unknown, Val::Known(3)];
        assert_eq!(serde_json::to_string(&vals).expect("serializes"), "[null,null,3]");
        let back: Vec<Val<u8>> = serde_json::from_str("[null,3]").expect("deserializes");
        assert_eq!(back, [Val::Null, Val::Known(3)]);
        assert_eq!(Val::Known(1).into_option(), Some(1));
        assert_eq!(Val::<u8>::Unknown.into_option(), None);
        assert_eq!(Val::from(Some("a")).known(), Some(&"a"));
    }
}
