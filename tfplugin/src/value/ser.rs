//! Typed encoding of a model into a [`Value`] of a given [`Type`] via serde.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::val::UNKNOWN_MARKER;
use super::{EncodeError, Number, Refinements, Type, Value, type_kind};
use crate::path::{AttributePath, Step};

/// Serializes a model and conforms it to `ty`: struct fields become object attributes (attributes
/// without a field are null; a field without an attribute is an error), `None` becomes null,
/// sequences become lists, sets or tuples and maps become maps or objects as `ty` says,
/// [`Val::Unknown`](super::Val) becomes an unknown value. Numbers and bools are converted to
/// strings where `ty` wants a string; a string where `ty` wants a number is an error.
pub fn to_value<T: Serialize>(model: &T, ty: &Type) -> std::result::Result<Value, EncodeError> {
    let root = AttributePath::root();
    model.serialize(ValueSerializer { ty, path: root.clone() }).map_err(|e| {
        let e = e.at(&root);
        EncodeError { path: e.path.unwrap_or_default(), message: e.message }
    })
}

static DYNAMIC: Type = Type::Dynamic;

/// The serializer's error: its path is attached by the innermost value it passes through.
#[derive(Debug)]
pub(crate) struct SerError {
    path: Option<AttributePath>,
    message: String,
}

impl SerError {
    fn new(path: &AttributePath, message: impl Into<String>) -> SerError {
        SerError { path: Some(path.clone()), message: message.into() }
    }

    fn at(mut self, path: &AttributePath) -> SerError {
        if self.path.is_none() {
            self.path = Some(path.clone());
        }
        self
    }
}

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{path}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(message: T) -> SerError {
        SerError { path: None, message: message.to_string() }
    }
}

type Result<T> = std::result::Result<T, SerError>;

/// Serializes `value` at `ty` and `path`, giving path-less errors that path.
fn serialize_at<T: Serialize + ?Sized>(value: &T, ty: &Type, path: AttributePath) -> Result<Value> {
    let at = path.clone();
    value.serialize(ValueSerializer { ty, path }).map_err(|e| e.at(&at))
}

struct ValueSerializer<'t> {
    ty: &'t Type,
    path: AttributePath,
}

impl<'t> ValueSerializer<'t> {
    fn error(&self, message: impl Into<String>) -> SerError {
        SerError::new(&self.path, message)
    }

    fn mismatch(&self, got: &str) -> SerError {
        self.error(format!("expected {}, got {got}", type_kind(self.ty)))
    }

    fn number(self, n: Number) -> Result<Value> {
        match self.ty {
            Type::Number | Type::Dynamic => Ok(Value::Number(n)),
            Type::String => Ok(Value::String(n.to_string())),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn variant_with_fields(&self, variant: &str) -> SerError {
        self.error(format!("enum variant `{variant}` with fields is not supported"))
    }

    /// A map or struct: entries of a map or attributes of an object, as `ty` says;
    /// `dynamic` at a dynamic type.
    fn entries(self, dynamic: MapKind<'t>, what: &str) -> Result<MapSer<'t>> {
        let kind = match self.ty {
            Type::Map(element) => MapKind::Map(element),
            Type::Object { attrs, .. } => MapKind::Object(attrs),
            Type::Dynamic => dynamic,
            _ => return Err(self.mismatch(what)),
        };
        Ok(MapSer { kind, entries: BTreeMap::new(), key: None, path: self.path })
    }

    fn float(self, n: Option<Number>) -> Result<Value> {
        match n {
            Some(n) => self.number(n),
            None => Err(self.error("number is not finite")),
        }
    }
}

/// The `serialize_*` method of each integer type: a number, through `Number::$make`.
macro_rules! integers {
    ($($method:ident: $ty:ty => $make:ident,)*) => {$(
        fn $method(self, v: $ty) -> Result<Value> {
            self.number(Number::$make(v))
        }
    )*};
}

impl<'t> ser::Serializer for ValueSerializer<'t> {
    type Ok = Value;
    type Error = SerError;
    type SerializeSeq = SeqSer<'t>;
    type SerializeTuple = SeqSer<'t>;
    type SerializeTupleStruct = SeqSer<'t>;
    type SerializeTupleVariant = Impossible<Value, SerError>;
    type SerializeMap = MapSer<'t>;
    type SerializeStruct = MapSer<'t>;
    type SerializeStructVariant = Impossible<Value, SerError>;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        match self.ty {
            Type::Bool | Type::Dynamic => Ok(Value::Bool(v)),
            Type::String => Ok(Value::String(v.to_string())),
            _ => Err(self.mismatch("a bool")),
        }
    }

    integers! {
        serialize_i8: i8 => from,
        serialize_i16: i16 => from,
        serialize_i32: i32 => from,
        serialize_i64: i64 => from,
        serialize_i128: i128 => from_i128,
        serialize_u8: u8 => from,
        serialize_u16: u16 => from,
        serialize_u32: u32 => from,
        serialize_u64: u64 => from,
        serialize_u128: u128 => from_u128,
    }

    fn serialize_f32(self, v: f32) -> Result<Value> {
        // The shortest decimal for the f32 itself: 0.1f32 is 0.1, not 0.10000000149011612.
        let n = if v.is_finite() { format!("{v:e}").parse().ok() } else { None };
        self.float(n)
    }

    fn serialize_f64(self, v: f64) -> Result<Value> {
        self.float(Number::from_f64(v))
    }

    fn serialize_char(self, v: char) -> Result<Value> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<Value> {
        match self.ty {
            Type::String | Type::Dynamic => Ok(Value::String(v.to_owned())),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(v.len()))?;
        for byte in v {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }

    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value> {
        serialize_at(value, self.ty, self.path)
    }

    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<Value> {
        if name == UNKNOWN_MARKER {
            return Ok(Value::Unknown(Refinements::default()));
        }
        serialize_at(value, self.ty, self.path)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value> {
        use ser::SerializeMap;
        let mut map = self.serialize_map(Some(1))?;
        map.serialize_entry(variant, value)?;
        map.end()
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<SeqSer<'t>> {
        let kind = match self.ty {
            Type::List(element) => SeqKind::List(element),
            Type::Set(element) => SeqKind::Set(element),
            Type::Tuple(elements) => SeqKind::Tuple(elements),
            Type::Dynamic => SeqKind::List(&DYNAMIC),
            _ => return Err(self.mismatch("a sequence")),
        };
        Ok(SeqSer { kind, items: Vec::new(), path: self.path })
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'t>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer<'t>> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<Value, SerError>> {
        Err(self.variant_with_fields(variant))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer<'t>> {
        self.entries(MapKind::DynamicMap, "a map")
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<MapSer<'t>> {
        self.entries(MapKind::DynamicObject, "a struct")
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Impossible<Value, SerError>> {
        Err(self.variant_with_fields(variant))
    }
}

enum SeqKind<'t> {
    List(&'t Type),
    Set(&'t Type),
    Tuple(&'t [Type]),
}

struct SeqSer<'t> {
    kind: SeqKind<'t>,
    items: Vec<Value>,
    path: AttributePath,
}

impl SeqSer<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let i = self.items.len();
        let index = Step::Index(i64::try_from(i).unwrap_or(i64::MAX));
        let (ty, path) = match &self.kind {
            SeqKind::List(element) => (*element, self.path.child(index)),
            SeqKind::Set(element) => (*element, self.path.clone()),
            SeqKind::Tuple(elements) => match elements.get(i) {
                Some(element) => (element, self.path.child(index)),
                None => {
                    return Err(SerError::new(
                        &self.path,
                        format!("too many elements for a tuple of {}", elements.len()),
                    ));
                }
            },
        };
        self.items.push(serialize_at(value, ty, path)?);
        Ok(())
    }

    fn finish(self) -> Result<Value> {
        Ok(match self.kind {
            SeqKind::List(_) => Value::List(self.items),
            SeqKind::Set(_) => Value::Set(self.items),
            SeqKind::Tuple(elements) => {
                if self.items.len() != elements.len() {
                    return Err(SerError::new(
                        &self.path,
                        format!(
                            "expected a tuple of {} elements, got {} elements",
                            elements.len(),
                            self.items.len()
                        ),
                    ));
                }
                Value::Tuple(self.items)
            }
        })
    }
}

/// The three sequence traits, each adding an element and finishing the same way.
macro_rules! sequence {
    ($($trait:ident: $method:ident),*) => {$(
        impl ser::$trait for SeqSer<'_> {
            type Ok = Value;
            type Error = SerError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.element(value)
            }

            fn end(self) -> Result<Value> {
                self.finish()
            }
        }
    )*};
}

sequence!(SerializeSeq: serialize_element, SerializeTuple: serialize_element, SerializeTupleStruct: serialize_field);

enum MapKind<'t> {
    Map(&'t Type),
    Object(&'t BTreeMap<String, Type>),
    /// A Rust map at a dynamic type.
    DynamicMap,
    /// A Rust struct at a dynamic type.
    DynamicObject,
}

struct MapSer<'t> {
    kind: MapKind<'t>,
    entries: BTreeMap<String, Value>,
    key: Option<String>,
    path: AttributePath,
}

impl MapSer<'_> {
    fn entry<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<()> {
        let (ty, step) = match &self.kind {
            MapKind::Map(element) => (*element, Step::Key(key.clone())),
            MapKind::DynamicMap => (&DYNAMIC, Step::Key(key.clone())),
            MapKind::DynamicObject => (&DYNAMIC, Step::Attr(key.clone())),
            MapKind::Object(attrs) => match attrs.get(&key) {
                Some(ty) => (ty, Step::Attr(key.clone())),
                None => return Err(SerError::new(&self.path, format!("unexpected attribute {key:?}"))),
            },
        };
        let value = serialize_at(value, ty, self.path.child(step))?;
        self.entries.insert(key, value);
        Ok(())
    }

    fn finish(self) -> Value {
        match self.kind {
            MapKind::Map(_) | MapKind::DynamicMap => Value::Map(self.entries),
            MapKind::DynamicObject => Value::Object(self.entries),
            MapKind::Object(attrs) => {
                let mut entries = self.entries;
                for name in attrs.keys() {
                    if !entries.contains_key(name) {
                        entries.insert(name.clone(), Value::Null);
                    }
                }
                Value::Object(entries)
            }
        }
    }
}

impl ser::SerializeMap for MapSer<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(KeySerializer).map_err(|e| e.at(&self.path))?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let Some(key) = self.key.take() else {
            return Err(SerError::new(&self.path, "map value without a key"));
        };
        self.entry(key, value)
    }

    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSer<'_> {
    type Ok = Value;
    type Error = SerError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        self.entry(key.to_owned(), value)
    }

    fn end(self) -> Result<Value> {
        Ok(self.finish())
    }
}

/// Map keys: strings, and scalars written as strings.
struct KeySerializer;

fn key_error() -> SerError {
    ser::Error::custom("map keys must be strings")
}

impl ser::Serializer for KeySerializer {
    type Ok = String;
    type Error = SerError;
    type SerializeSeq = Impossible<String, SerError>;
    type SerializeTuple = Impossible<String, SerError>;
    type SerializeTupleStruct = Impossible<String, SerError>;
    type SerializeTupleVariant = Impossible<String, SerError>;
    type SerializeMap = Impossible<String, SerError>;
    type SerializeStruct = Impossible<String, SerError>;
    type SerializeStructVariant = Impossible<String, SerError>;

    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _v: f32) -> Result<String> {
        Err(key_error())
    }
    fn serialize_f64(self, _v: f64) -> Result<String> {
        Err(key_error())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(key_error())
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_error())
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_error())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::{Deserialize, Serialize};

    use super::super::{Val, decode_msgpack, encode_msgpack, from_value};
    use super::*;

    fn obj<const N: usize>(attrs: [(&str, Value); N]) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Protocol {
        Tcp,
        Udp,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Rule {
        port: u16,
        protocol: Protocol,
        description: Option<String>,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Model {
        id: Val<String>,
        name: String,
        size: u64,
        ratio: f64,
        rules: Vec<Rule>,
        ids: Vec<String>,
        tags: BTreeMap<String, String>,
        note: Option<String>,
        pair: (String, i32),
        count_as_text: u32,
    }

    fn model_type() -> Type {
        Type::object([
            ("id", Type::String),
            ("name", Type::String),
            ("size", Type::Number),
            ("ratio", Type::Number),
            (
                "rules",
                Type::list(Type::object([
                    ("port", Type::Number),
                    ("protocol", Type::String),
                    ("description", Type::String),
                ])),
            ),
            ("ids", Type::set(Type::String)),
            ("tags", Type::map(Type::String)),
            ("note", Type::String),
            ("pair", Type::tuple([Type::String, Type::Number])),
            ("count_as_text", Type::String),
            ("computed_only", Type::Bool),
        ])
    }

    fn model() -> Model {
        Model {
            id: Val::Unknown,
            name: "web".to_owned(),
            size: u64::MAX,
            ratio: 0.1,
            rules: vec![Rule { port: 22, protocol: Protocol::Tcp, description: None }],
            ids: vec!["a".to_owned(), "b".to_owned()],
            tags: [("Name".to_owned(), "web".to_owned())].into(),
            note: None,
            pair: ("x".to_owned(), -1),
            count_as_text: 7,
        }
    }

    #[test]
    fn conforms_to_the_type() {
        let value = to_value(&model(), &model_type()).expect("serializes");
        let number = |s: &str| Value::Number(s.parse().expect("number"));
        assert_eq!(
            value,
            obj([
                ("id", Value::unknown()),
                ("name", Value::from("web")),
                ("size", number("18446744073709551615")),
                ("ratio", number("0.1")),
                (
                    "rules",
                    Value::List(vec![obj([
                        ("port", Value::from(22)),
                        ("protocol", Value::from("tcp")),
                        ("description", Value::Null),
                    ])])
                ),
                ("ids", Value::Set(vec![Value::from("a"), Value::from("b")])),
                ("tags", Value::Map([("Name".to_owned(), Value::from("web"))].into())),
                ("note", Value::Null),
                ("pair", Value::Tuple(vec![Value::from("x"), Value::from(-1)])),
                ("count_as_text", Value::from("7")),
                ("computed_only", Value::Null),
            ])
        );
        // And back, through MessagePack.
        let bytes = encode_msgpack(&value, &model_type()).expect("encodes");
        let mut decoded = decode_msgpack(&bytes, &model_type()).expect("decodes");
        assert_eq!(decoded, value);
        // A string is not accepted for an integer field.
        let err = from_value::<Model>(&decoded).expect_err("string for u32");
        assert_eq!(err.to_string(), "count_as_text: expected a number, got a string");
        if let Some(count) = decoded.get_mut(&AttributePath::attr("count_as_text")) {
            *count = Value::from(7);
        }
        let mut back: Model = from_value(&decoded).expect("deserializes");
        assert!(back.id.is_unknown());
        back.id = Val::Unknown;
        assert_eq!(back, model());
    }

    #[test]
    fn list_or_set_per_type() {
        let items = vec![1u8, 2];
        assert_eq!(
            to_value(&items, &Type::list(Type::Number)),
            Ok(Value::List(vec![Value::from(1), Value::from(2)]))
        );
        assert_eq!(
            to_value(&items, &Type::set(Type::Number)),
            Ok(Value::Set(vec![Value::from(1), Value::from(2)]))
        );
        assert_eq!(
            to_value(&items, &Type::tuple([Type::Number, Type::String])),
            Ok(Value::Tuple(vec![Value::from(1), Value::from("2")]))
        );
        assert!(to_value(&items, &Type::tuple([Type::Number])).is_err());
        assert_eq!(to_value(&None::<Vec<u8>>, &Type::list(Type::Number)), Ok(Value::Null));
        let map: HashMap<u16, bool> = [(80, true)].into();
        assert_eq!(
            to_value(&map, &Type::map(Type::Bool)),
            Ok(Value::Map([("80".to_owned(), Value::Bool(true))].into()))
        );
    }

    #[test]
    fn dynamic_takes_the_natural_shape() {
        let value = to_value(&model(), &Type::Dynamic).expect("serializes");
        assert_eq!(
            value.attr("rules").and_then(|r| r.get(&AttributePath::root().push_index(0))).map(Value::kind),
            Some("an object")
        );
        assert_eq!(value.attr("ids").map(Value::kind), Some("a list"));
        assert_eq!(value.attr("tags").map(Value::kind), Some("a map"));
        assert_eq!(value.attr("id"), Some(&Value::unknown()));
    }

    #[test]
    fn errors_carry_paths() {
        #[derive(Serialize)]
        struct Wrong {
            rules: Vec<BTreeMap<String, String>>,
        }
        let ty = Type::object([("rules", Type::list(Type::object([("port", Type::Number)])))]);
        let wrong = Wrong { rules: vec![BTreeMap::new(), [("port".to_owned(), "22".to_owned())].into()] };
        let err = to_value(&wrong, &ty).expect_err("string into number");
        assert_eq!(err.to_string(), "rules[1].port: expected a number, got a string");

        #[derive(Serialize)]
        struct Extra {
            rules: Option<u8>,
            surprise: bool,
        }
        let err = to_value(&Extra { rules: None, surprise: true }, &ty).expect_err("extra field");
        assert_eq!(err.to_string(), "(root): unexpected attribute \"surprise\"");

        struct Failing;
        impl Serialize for Failing {
            fn serialize<S: ser::Serializer>(&self, _s: S) -> std::result::Result<S::Ok, S::Error> {
                Err(ser::Error::custom("cannot serialize this"))
            }
        }
        #[derive(Serialize)]
        struct Holder {
            items: Vec<Failing>,
        }
        let err =
            to_value(&Holder { items: vec![Failing] }, &Type::object([("items", Type::list(Type::String))]))
                .expect_err("custom error");
        assert_eq!(err.to_string(), "items[0]: cannot serialize this");
        assert!(to_value(&f64::NAN, &Type::Number).is_err());
        assert!(to_value(&"x", &Type::Bool).is_err());
        assert!(to_value(&true, &Type::Number).is_err());
        assert!(to_value(&vec![1], &Type::String).is_err());
        assert_eq!(to_value(&0.1f32, &Type::Number), Ok(Value::Number("0.1".parse().expect("number"))));
    }
}
