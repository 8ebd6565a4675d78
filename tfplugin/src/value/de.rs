//! Typed decoding of a [`Value`] into a model via serde.

use std::collections::btree_map;
use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::val::UNKNOWN_MARKER;
use super::{DecodeError, Number, Value};
use crate::path::{AttributePath, Step};

/// Decodes a value into a model: objects and maps into structs and maps (an attribute's name is
/// its field's name), lists, sets and tuples into sequences, null into `Option::None` and
/// [`Val::Null`](super::Val), unknown into [`Val::Unknown`](super::Val). Null attributes count as
/// absent, so `#[serde(default)]` applies to them; a null for a field without a default is the
/// error "value is required". Every error carries the path of the value it is about.
///
/// A struct may group attributes in a `#[serde(flatten)]` field: its fields are decoded from the
/// enclosing object as if they were the enclosing struct's, [`Val`](super::Val) keeps unknown
/// values through it, and null attributes count as absent there too. Errors inside a flattened
/// group carry the path of the enclosing object (serde decodes the group from a buffered copy).
pub fn from_value<T: DeserializeOwned>(value: &Value) -> std::result::Result<T, DecodeError> {
    from_value_at(value, &AttributePath::root())
}

/// Like [`from_value`], for a value found at `base`: error paths start with `base`.
pub fn from_value_at<T: DeserializeOwned>(
    value: &Value,
    base: &AttributePath,
) -> std::result::Result<T, DecodeError> {
    T::deserialize(ValueDeserializer::new(value, base.clone())).map_err(|e| {
        let e = e.at(base);
        DecodeError { path: e.path.unwrap_or_default(), message: e.message }
    })
}

/// The deserializer's error: its path is attached by the innermost value it passes through.
#[derive(Debug)]
pub(crate) struct DeError {
    path: Option<AttributePath>,
    /// Set by `missing_field`: the error is about this attribute of the value being decoded.
    missing_attr: Option<String>,
    message: String,
}

impl DeError {
    fn new(path: &AttributePath, message: impl Into<String>) -> DeError {
        DeError { path: Some(path.clone()), missing_attr: None, message: message.into() }
    }

    fn at(mut self, path: &AttributePath) -> DeError {
        if self.path.is_none() {
            self.path = Some(match self.missing_attr.take() {
                Some(name) => path.child(Step::Attr(name)),
                None => path.clone(),
            });
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> DeError {
        DeError { path: None, missing_attr: None, message: message.to_string() }
    }

    fn missing_field(field: &'static str) -> DeError {
        DeError { path: None, missing_attr: Some(field.to_owned()), message: "value is required".to_owned() }
    }
}

struct ValueDeserializer<'a> {
    value: &'a Value,
    path: AttributePath,
    /// Set inside the entries of an object decoded as a map, which is how serde decodes a
    /// struct with `#[serde(flatten)]` fields: it buffers the entries it does not know through
    /// `deserialize_any`, and only null, unit and some survive the buffer as what they are. So
    /// here an unknown value is a unit (which [`Val`](super::Val) reads as unknown) and null is
    /// none. Elsewhere `deserialize_any` refuses unknown values, so that nothing but `Val` can
    /// take one for null.
    buffered: bool,
}

type Result<T> = std::result::Result<T, DeError>;

/// Wraps every typed `deserialize_*` method: checks null and unknown, then attaches the path to
/// errors that do not have one yet.
macro_rules! typed {
    ($($method:ident($($arg:ident: $ty:ty),*) => $body:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value> {
            let path = self.path.clone();
            self.require_known()?;
            self.$body($($arg,)* visitor).map_err(|e| e.at(&path))
        }
    )*};
}

impl<'a> ValueDeserializer<'a> {
    fn new(value: &'a Value, path: AttributePath) -> Self {
        Self { value, path, buffered: false }
    }

    fn error(&self, message: impl Into<String>) -> DeError {
        DeError::new(&self.path, message)
    }

    fn expected(&self, what: &str) -> DeError {
        self.error(format!("expected {what}, got {}", self.value.kind()))
    }

    fn require_known(&self) -> Result<()> {
        match self.value {
            Value::Null => Err(self.error("value is required")),
            Value::Unknown(_) => Err(self.error("value is not yet known")),
            _ => Ok(()),
        }
    }

    fn number(&self) -> Result<&'a Number> {
        match self.value {
            Value::Number(n) => Ok(n),
            _ => Err(self.expected("a number")),
        }
    }

    fn integer<T: TryFrom<i128>>(&self, name: &str) -> Result<T> {
        let n = self.number()?;
        if !n.is_integer() {
            return Err(self.error(format!("value {n} is not an integer")));
        }
        n.to_i128()
            .and_then(|i| T::try_from(i).ok())
            .ok_or_else(|| self.error(format!("value {n} does not fit in {name}")))
    }

    fn str(&self) -> Result<&'a str> {
        match self.value {
            Value::String(s) => Ok(s),
            _ => Err(self.expected("a string")),
        }
    }

    fn any<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        match self.value {
            Value::Null if self.buffered => visitor.visit_none(),
            Value::Null => visitor.visit_unit(),
            Value::Unknown(_) if self.buffered => visitor.visit_unit(),
            Value::Unknown(_) => Err(self.error("value is not yet known")),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.to_i64() {
                    visitor.visit_i64(i)
                } else if let Some(u) = n.to_u64() {
                    visitor.visit_u64(u)
                } else {
                    visitor.visit_f64(n.to_f64())
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::List(_) | Value::Set(_) | Value::Tuple(_) => self.seq(visitor),
            Value::Map(_) | Value::Object(_) => {
                let (buffered, object) = (self.buffered, matches!(self.value, Value::Object(_)));
                self.map(visitor, buffered && object, buffered)
            }
        }
    }

    fn bool_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            _ => Err(self.expected("a bool")),
        }
    }

    fn i8_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.integer("i8")?)
    }
    fn i16_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i16(self.integer("i16")?)
    }
    fn i32_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i32(self.integer("i32")?)
    }
    fn i64_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i64(self.integer("i64")?)
    }
    fn i128_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i128(self.integer("i128")?)
    }
    fn u8_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u8(self.integer("u8")?)
    }
    fn u16_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u16(self.integer("u16")?)
    }
    fn u32_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(self.integer("u32")?)
    }
    fn u64_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u64(self.integer("u64")?)
    }

    fn u128_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let n = self.number()?;
        if !n.is_integer() {
            return Err(self.error(format!("value {n} is not an integer")));
        }
        let u = n.to_u128().ok_or_else(|| self.error(format!("value {n} does not fit in u128")))?;
        visitor.visit_u128(u)
    }

    fn f32_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f32(self.number()?.to_f64() as f32)
    }

    fn f64_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(self.number()?.to_f64())
    }

    fn char_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let s = self.str()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => visitor.visit_char(c),
            _ => Err(self.error(format!("expected a single character, got {s:?}"))),
        }
    }

    fn str_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        visitor.visit_borrowed_str(self.str()?)
    }

    fn bytes_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        match self.value {
            Value::String(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            Value::List(_) | Value::Set(_) | Value::Tuple(_) => self.seq(visitor),
            _ => Err(self.expected("a string")),
        }
    }

    fn seq<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        let (items, indexed) = match self.value {
            Value::List(items) | Value::Tuple(items) => (items, true),
            Value::Set(items) => (items, false),
            _ => return Err(self.expected("a list")),
        };
        let mut access =
            SeqDe { items: items.iter(), index: 0, indexed, path: &self.path, buffered: self.buffered };
        let result = visitor.visit_seq(&mut access)?;
        if !access.items.as_slice().is_empty() {
            return Err(self.error(format!("expected {} elements, got {}", access.index, items.len())));
        }
        Ok(result)
    }

    fn tuple_<'de, V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        self.seq(visitor)
    }

    fn tuple_struct_<'de, V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value>
    where
        'a: 'de,
    {
        self.seq(visitor)
    }

    fn map<'de, V: Visitor<'de>>(self, visitor: V, skip_null: bool, buffered: bool) -> Result<V::Value>
    where
        'a: 'de,
    {
        let (entries, attrs) = match self.value {
            Value::Object(entries) => (entries, true),
            Value::Map(entries) => (entries, false),
            _ => return Err(self.expected("an object")),
        };
        visitor.visit_map(MapDe {
            entries: entries.iter(),
            pending: None,
            attrs,
            skip_null,
            buffered,
            path: &self.path,
        })
    }

    fn map_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        // An object asked for as a map: a struct with flattened fields (see `buffered`).
        let object = matches!(self.value, Value::Object(_));
        let buffered = self.buffered || object;
        self.map(visitor, object, buffered)
    }

    fn struct_<'de, V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value>
    where
        'a: 'de,
    {
        let buffered = self.buffered;
        self.map(visitor, true, buffered)
    }

    fn enum_<'de, V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value>
    where
        'a: 'de,
    {
        match self.value {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::<DeError>::new(s)),
            Value::Object(entries) | Value::Map(entries) if entries.len() == 1 => {
                let Some((variant, value)) = entries.iter().next() else {
                    return Err(self.expected("a string"));
                };
                let step = match self.value {
                    Value::Map(_) => Step::Key(variant.clone()),
                    _ => Step::Attr(variant.clone()),
                };
                visitor.visit_enum(EnumDe {
                    variant,
                    value,
                    path: self.path.child(step),
                    buffered: self.buffered,
                })
            }
            _ => Err(self.expected("a string")),
        }
    }

    fn identifier_<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value>
    where
        'a: 'de,
    {
        self.str_(visitor)
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let path = self.path.clone();
        self.any(visitor).map_err(|e| e.at(&path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let path = self.path.clone();
        match self.value {
            Value::Null => visitor.visit_none().map_err(|e: DeError| e.at(&path)),
            // Only `Val` accepts this; anything else (such as `Option`) refuses it.
            Value::Unknown(_) => {
                visitor.visit_newtype_struct(UnknownMarker).map_err(|_| self.error("value is not yet known"))
            }
            _ => visitor.visit_some(self).map_err(|e| e.at(&path)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_unit().map_err(|e: DeError| e.at(&self.path)),
            Value::Unknown(_) => Err(self.error("value is not yet known")),
            _ => Err(self.expected("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let path = self.path.clone();
        visitor.visit_newtype_struct(self).map_err(|e| e.at(&path))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    typed! {
        deserialize_bool() => bool_;
        deserialize_i8() => i8_;
        deserialize_i16() => i16_;
        deserialize_i32() => i32_;
        deserialize_i64() => i64_;
        deserialize_i128() => i128_;
        deserialize_u8() => u8_;
        deserialize_u16() => u16_;
        deserialize_u32() => u32_;
        deserialize_u64() => u64_;
        deserialize_u128() => u128_;
        deserialize_f32() => f32_;
        deserialize_f64() => f64_;
        deserialize_char() => char_;
        deserialize_str() => str_;
        deserialize_string() => str_;
        deserialize_bytes() => bytes_;
        deserialize_byte_buf() => bytes_;
        deserialize_seq() => seq;
        deserialize_tuple(len: usize) => tuple_;
        deserialize_tuple_struct(name: &'static str, len: usize) => tuple_struct_;
        deserialize_map() => map_;
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) => struct_;
        deserialize_enum(name: &'static str, variants: &'static [&'static str]) => enum_;
        deserialize_identifier() => identifier_;
    }
}

struct SeqDe<'a, 'p> {
    items: std::slice::Iter<'a, Value>,
    index: usize,
    /// Set elements have no path step.
    indexed: bool,
    path: &'p AttributePath,
    buffered: bool,
}

impl<'de> SeqAccess<'de> for SeqDe<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(value) = self.items.next() else {
            return Ok(None);
        };
        let path = if self.indexed {
            self.path.child(Step::Index(i64::try_from(self.index).unwrap_or(i64::MAX)))
        } else {
            self.path.clone()
        };
        self.index += 1;
        let deserializer = ValueDeserializer { value, path: path.clone(), buffered: self.buffered };
        seed.deserialize(deserializer).map(Some).map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a, 'p> {
    entries: btree_map::Iter<'a, String, Value>,
    pending: Option<(&'a String, &'a Value)>,
    /// Entries are object attributes (else map elements).
    attrs: bool,
    /// Null entries are left out, so that they count as absent fields.
    skip_null: bool,
    buffered: bool,
    path: &'p AttributePath,
}

impl MapDe<'_, '_> {
    fn entry_path(&self, key: &str) -> AttributePath {
        self.path.child(if self.attrs { Step::Attr(key.to_owned()) } else { Step::Key(key.to_owned()) })
    }
}

impl<'de> MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let entry = loop {
            match self.entries.next() {
                None => return Ok(None),
                Some((_, Value::Null)) if self.skip_null => continue,
                Some(entry) => break entry,
            }
        };
        self.pending = Some(entry);
        let key = entry.0;
        seed.deserialize(BorrowedStrDeserializer::<DeError>::new(key))
            .map(Some)
            .map_err(|e| e.at(&self.entry_path(key)))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let Some((key, value)) = self.pending.take() else {
            return Err(DeError::new(self.path, "value requested before its key"));
        };
        let path = self.entry_path(key);
        let buffered = self.buffered;
        seed.deserialize(ValueDeserializer { value, path: path.clone(), buffered }).map_err(|e| e.at(&path))
    }

    fn size_hint(&self) -> Option<usize> {
        if self.skip_null { None } else { Some(self.entries.len()) }
    }
}

struct EnumDe<'a> {
    variant: &'a str,
    value: &'a Value,
    path: AttributePath,
    buffered: bool,
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = DeError;
    type Variant = ValueDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, ValueDeserializer<'de>)> {
        let variant = seed
            .deserialize(BorrowedStrDeserializer::<DeError>::new(self.variant))
            .map_err(|e| e.at(&self.path))?;
        Ok((variant, ValueDeserializer { value: self.value, path: self.path, buffered: self.buffered }))
    }
}

impl<'de> VariantAccess<'de> for ValueDeserializer<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<()> {
        match self.value {
            Value::Null => Ok(()),
            _ => Err(self.expected("null")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        let path = self.path.clone();
        seed.deserialize(self).map_err(|e| e.at(&path))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

/// Handed to a visitor for an unknown value; only [`Val`](super::Val) knows what to do with it.
struct UnknownMarker;

impl<'de> de::Deserializer<'de> for UnknownMarker {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
        Err(de::Error::custom("value is not yet known"))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value> {
        if name == UNKNOWN_MARKER {
            visitor.visit_unit()
        } else {
            Err(de::Error::custom("value is not yet known"))
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, DeError> for ValueDeserializer<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;

    use super::super::{Refinements, Val};
    use super::*;

    fn obj<const N: usize>(attrs: [(&str, Value); N]) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn n(text: &str) -> Value {
        Value::Number(text.parse().expect("valid number"))
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Protocol {
        Tcp,
        Udp,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Rule {
        port: u16,
        protocol: Protocol,
        #[serde(default)]
        cidrs: Vec<String>,
        description: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Name(String);

    #[derive(Debug, Deserialize, PartialEq)]
    struct Model {
        name: Name,
        #[serde(rename = "instance_count")]
        count: u32,
        ratio: f64,
        big: u64,
        offset: i64,
        rules: Vec<Rule>,
        tags: BTreeMap<String, String>,
        labels: HashMap<String, Val<String>>,
        zone: Val<String>,
        arn: Val<String>,
        vpc: Val<String>,
        note: Option<String>,
        boxed: Box<Option<bool>>,
        ids: Vec<String>,
        #[serde(default = "default_retries")]
        retries: u8,
    }

    fn default_retries() -> u8 {
        3
    }

    fn model_value() -> Value {
        obj([
            ("name", Value::from("web")),
            ("instance_count", Value::from(2)),
            ("ratio", n("0.25")),
            ("big", n("18446744073709551615")),
            ("offset", Value::from(-7)),
            (
                "rules",
                Value::List(vec![
                    obj([
                        ("port", Value::from(22)),
                        ("protocol", Value::from("tcp")),
                        ("cidrs", Value::List(vec![Value::from("10.0.0.0/8")])),
                        ("description", Value::from("ssh")),
                    ]),
                    obj([
                        ("port", Value::from(53)),
                        ("protocol", Value::from("udp")),
                        ("cidrs", Value::Null),
                        ("description", Value::Null),
                    ]),
                ]),
            ),
            ("tags", Value::Map([("Name".to_owned(), Value::from("web"))].into())),
            (
                "labels",
                Value::Map([("a".to_owned(), Value::unknown()), ("b".to_owned(), Value::Null)].into()),
            ),
            ("zone", Value::from("eu-west-1a")),
            ("arn", Value::Unknown(Refinements { not_null: true, ..Refinements::default() })),
            ("vpc", Value::Null),
            ("note", Value::Null),
            ("boxed", Value::Bool(true)),
            ("ids", Value::Set(vec![Value::from("x"), Value::from("y")])),
            ("retries", Value::Null),
            ("ignored_extra", Value::unknown()),
        ])
    }

    #[test]
    fn decodes_a_model() {
        let model: Model = from_value(&model_value()).expect("decodes");
        assert_eq!(
            model,
            Model {
                name: Name("web".to_owned()),
                count: 2,
                ratio: 0.25,
                big: u64::MAX,
                offset: -7,
                rules: vec![
                    Rule {
                        port: 22,
                        protocol: Protocol::Tcp,
                        cidrs: vec!["10.0.0.0/8".to_owned()],
                        description: Some("ssh".to_owned()),
                    },
                    Rule { port: 53, protocol: Protocol::Udp, cidrs: vec![], description: None },
                ],
                tags: [("Name".to_owned(), "web".to_owned())].into(),
                labels: [("a".to_owned(), Val::Unknown), ("b".to_owned(), Val::Null)].into(),
                zone: Val::Known("eu-west-1a".to_owned()),
                arn: Val::Unknown,
                vpc: Val::Null,
                note: None,
                boxed: Box::new(Some(true)),
                ids: vec!["x".to_owned(), "y".to_owned()],
                retries: 3,
            }
        );
    }

    fn error_with(path: &str, replacement: Value) -> DecodeError {
        let mut value = model_value();
        if let Some(slot) = value.get_mut(&AttributePath::from(path)) {
            *slot = replacement;
        } else if let Some(slot) = value.get_mut(&AttributePath::attr("rules").push_index(1).push_attr(path))
        {
            *slot = replacement;
        }
        from_value::<Model>(&value).expect_err("invalid model")
    }

    #[test]
    fn errors_carry_paths() {
        let err = error_with("port", Value::from(70000));
        assert_eq!(err.to_string(), "rules[1].port: value 70000 does not fit in u16");
        let err = error_with("port", n("3.5"));
        assert_eq!(err.to_string(), "rules[1].port: value 3.5 is not an integer");
        let err = error_with("port", Value::Null);
        assert_eq!(err.to_string(), "rules[1].port: value is required");
        let err = error_with("port", Value::unknown());
        assert_eq!(err.to_string(), "rules[1].port: value is not yet known");
        let err = error_with("protocol", Value::from("icmp"));
        assert_eq!(err.path.to_string(), "rules[1].protocol");
        assert!(err.message.contains("unknown variant `icmp`"), "{}", err.message);
        let err = error_with("description", Value::unknown());
        assert_eq!(err.to_string(), "rules[1].description: value is not yet known");
        let err = error_with("name", Value::List(vec![]));
        assert_eq!(err.to_string(), "name: expected a string, got a list");
        let err = error_with("instance_count", Value::from("2"));
        assert_eq!(err.to_string(), "instance_count: expected a number, got a string");
        let err = error_with("tags", Value::Map([("k".to_owned(), Value::from(1))].into()));
        assert_eq!(err.to_string(), "tags[\"k\"]: expected a string, got a number");
        let err = error_with("ids", Value::Set(vec![Value::from(true)]));
        assert_eq!(err.to_string(), "ids: expected a string, got a bool");
        let err = error_with("offset", n("1e30"));
        assert_eq!(err.to_string(), "offset: value 1000000000000000000000000000000 does not fit in i64");

        let mut missing = model_value();
        if let Value::Object(attrs) = &mut missing {
            attrs.remove("name");
        }
        let err = from_value::<Model>(&missing).expect_err("missing attribute");
        assert_eq!(err.to_string(), "name: value is required");
        let err = from_value::<Model>(&Value::Null).expect_err("null model");
        assert_eq!(err.to_string(), "(root): value is required");
    }

    #[test]
    fn custom_errors_get_the_value_path() {
        #[derive(Debug)]
        struct Even(u32);
        impl<'de> Deserialize<'de> for Even {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Even, D::Error> {
                let n = u32::deserialize(d)?;
                if n % 2 == 0 { Ok(Even(n)) } else { Err(de::Error::custom(format!("{n} is odd"))) }
            }
        }
        #[derive(Debug, Deserialize)]
        struct Holder {
            values: Vec<Even>,
        }
        let good: Holder = from_value(&obj([("values", Value::List(vec![Value::from(4)]))])).expect("even");
        assert_eq!(good.values[0].0, 4);
        let value = obj([("values", Value::List(vec![Value::from(2), Value::from(3)]))]);
        let err = from_value::<Holder>(&value).expect_err("odd");
        assert_eq!(err.to_string(), "values[1]: 3 is odd");
        let err =
            from_value_at::<Holder>(&value, &AttributePath::attr("outer").push_index(0)).expect_err("odd");
        assert_eq!(err.to_string(), "outer[0].values[1]: 3 is odd");
    }

    #[test]
    fn flattened_groups_keep_null_unknown_and_known_values() {
        use serde::Serialize;

        #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
        struct Settings {
            timeout: Val<String>,
            percent: Val<u32>,
        }
        #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
        struct Launch {
            image: Val<String>,
            types: Val<Vec<String>>,
            tags: Val<BTreeMap<String, String>>,
            #[serde(default)]
            zones: Vec<String>,
            settings: Val<Settings>,
            missing: Val<String>,
        }
        #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
        struct Model {
            name: Val<String>,
            #[serde(flatten)]
            launch: Launch,
            count: Val<u32>,
        }
        let value = obj([
            ("name", Value::from("web")),
            ("image", Value::unknown()),
            ("types", Value::List(vec![Value::from("t3.small")])),
            ("tags", Value::Null),
            ("zones", Value::Null),
            ("settings", obj([("timeout", Value::unknown()), ("percent", Value::from(50))])),
            ("missing", Value::Null),
            ("count", Value::from(3)),
        ]);
        let model: Model = from_value(&value).expect("decodes");
        let expected = Model {
            name: Val::Known("web".into()),
            launch: Launch {
                image: Val::Unknown,
                types: Val::Known(vec!["t3.small".into()]),
                tags: Val::Null,
                zones: Vec::new(),
                settings: Val::Known(Settings { timeout: Val::Unknown, percent: Val::Known(50) }),
                missing: Val::Null,
            },
            count: Val::Known(3),
        };
        assert_eq!(model, expected);
        let ty = crate::value::Type::object([
            ("name", crate::value::Type::String),
            ("image", crate::value::Type::String),
            ("types", crate::value::Type::list(crate::value::Type::String)),
            ("tags", crate::value::Type::map(crate::value::Type::String)),
            ("zones", crate::value::Type::list(crate::value::Type::String)),
            (
                "settings",
                crate::value::Type::object([
                    ("timeout", crate::value::Type::String),
                    ("percent", crate::value::Type::Number),
                ]),
            ),
            ("missing", crate::value::Type::String),
            ("count", crate::value::Type::Number),
        ]);
        let encoded = crate::value::to_value(&model, &ty).expect("encodes");
        assert_eq!(encoded.attr("image"), Some(&Value::unknown()));
        assert_eq!(encoded.attr("missing"), Some(&Value::Null));
        let again: Model = from_value(&encoded).expect("decodes again");
        assert_eq!(again, expected);
        // Outside a flattened group an unknown is still refused by everything but `Val`.
        let json = obj([("a", Value::unknown())]);
        let err = from_value::<serde_json::Value>(&json).expect_err("unknown in any");
        assert_eq!(err.to_string(), "a: value is not yet known");
        let err = from_value::<Model>(&obj([("name", Value::from("web")), ("count", Value::from(-1))]))
            .expect_err("negative count");
        assert_eq!(err.to_string(), "count: value -1 does not fit in u32");
    }

    #[test]
    fn other_shapes() {
        let pair: (String, i32) =
            from_value(&Value::Tuple(vec![Value::from("a"), Value::from(-1)])).expect("tuple");
        assert_eq!(pair, ("a".to_owned(), -1));
        let err = from_value::<(String,)>(&Value::List(vec![Value::from("a"), Value::from("b")]))
            .expect_err("too long");
        assert_eq!(err.message, "expected 1 elements, got 2");
        let json: serde_json::Value =
            from_value(&obj([("a", Value::List(vec![Value::from(1), Value::Null]))])).expect("any");
        assert_eq!(json, serde_json::json!({"a": [1, null]}));
        let float: f32 = from_value(&n("1.5")).expect("f32");
        assert_eq!(float, 1.5);
        let c: char = from_value(&Value::from("x")).expect("char");
        assert_eq!(c, 'x');
        let unknown: Val<Vec<String>> = from_value(&Value::unknown()).expect("unknown");
        assert!(unknown.is_unknown());
        let err = from_value::<Option<String>>(&Value::unknown()).expect_err("unknown option");
        assert_eq!(err.message, "value is not yet known");
        let err = from_value::<serde_json::Value>(&Value::unknown()).expect_err("unknown any");
        assert_eq!(err.message, "value is not yet known");

        #[derive(Debug, Deserialize, PartialEq)]
        enum Shape {
            Circle { radius: u8 },
            Square(u8),
        }
        let shapes: Vec<Shape> = from_value(&Value::List(vec![
            obj([("Circle", obj([("radius", Value::from(2))]))]),
            obj([("Square", Value::from(3))]),
        ]))
        .expect("enums");
        assert_eq!(shapes, [Shape::Circle { radius: 2 }, Shape::Square(3)]);
    }
}
