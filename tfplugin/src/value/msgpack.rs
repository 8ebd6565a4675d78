//! Terraform's MessagePack encoding of values (the `msgpack` field of `DynamicValue`).

use std::collections::BTreeMap;

use super::{DecodeError, EncodeError, Number, Refinements, Type, Value, infer_type, type_kind};
use crate::path::{AttributePath, Step};

/// Extension code of an unknown value that carries refinements.
const EXT_REFINED: i8 = 12;
/// Deepest nesting accepted when decoding (dynamic values could nest without bound otherwise;
/// 128 is also serde_json's limit for JSON).
const MAX_DEPTH: usize = 128;
/// Longest string prefix refinement sent (a shorter prefix is still a true statement).
const MAX_PREFIX_LEN: usize = 256;

/// Decodes a MessagePack value of type `ty`.
pub fn decode_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut decoder = Decoder { reader: Reader { buf: bytes, pos: 0 }, path: Vec::new(), depth: 0 };
    let value = decoder.value(ty)?;
    if decoder.reader.remaining() > 0 {
        return Err(decoder.error("unexpected bytes after the value"));
    }
    Ok(value)
}

/// Encodes a value of type `ty` as MessagePack.
pub fn encode_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, EncodeError> {
    let mut encoder = Encoder { out: Vec::new(), path: Vec::new() };
    encoder.value(value, ty)?;
    Ok(encoder.out)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One MessagePack item's header; strings, binary data and extensions include their payload.
enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Uint(u64),
    F32(f32),
    F64(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u64),
    Map(u64),
    Ext(i8, &'a [u8]),
}

impl Head<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Head::Nil => "nil",
            Head::Bool(_) => "a bool",
            Head::Int(_) | Head::Uint(_) => "an integer",
            Head::F32(_) | Head::F64(_) => "a float",
            Head::Str(_) => "a string",
            Head::Bin(_) => "binary data",
            Head::Array(_) => "an array",
            Head::Map(_) => "a map",
            Head::Ext(..) => "an extension value",
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const TRUNCATED: &str = "unexpected end of MessagePack data";

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if n > self.remaining() {
            return Err(TRUNCATED);
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, width: usize) -> Result<u64, &'static str> {
        Ok(self.take(width)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn len(&mut self, width: usize) -> Result<usize, &'static str> {
        usize::try_from(self.uint(width)?).map_err(|_| TRUNCATED)
    }

    fn sized(&mut self, width: usize) -> Result<&'a [u8], &'static str> {
        let n = self.len(width)?;
        self.take(n)
    }

    fn ext(&mut self, len: usize) -> Result<Head<'a>, &'static str> {
        let code = self.byte()? as i8;
        Ok(Head::Ext(code, self.take(len)?))
    }

    fn head(&mut self) -> Result<Head<'a>, &'static str> {
        let marker = self.byte()?;
        Ok(match marker {
            0x00..=0x7f => Head::Uint(u64::from(marker)),
            0x80..=0x8f => Head::Map(u64::from(marker & 0x0f)),
            0x90..=0x9f => Head::Array(u64::from(marker & 0x0f)),
            0xa0..=0xbf => Head::Str(self.take(usize::from(marker & 0x1f))?),
            0xc0 => Head::Nil,
            0xc1 => return Err("invalid MessagePack marker 0xc1"),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => Head::Bin(self.sized(1)?),
            0xc5 => Head::Bin(self.sized(2)?),
            0xc6 => Head::Bin(self.sized(4)?),
            0xc7 => {
                let n = self.len(1)?;
                self.ext(n)?
            }
            0xc8 => {
                let n = self.len(2)?;
                self.ext(n)?
            }
            0xc9 => {
                let n = self.len(4)?;
                self.ext(n)?
            }
            0xca => Head::F32(f32::from_bits(self.uint(4)? as u32)),
            0xcb => Head::F64(f64::from_bits(self.uint(8)?)),
            0xcc => Head::Uint(self.uint(1)?),
            0xcd => Head::Uint(self.uint(2)?),
            0xce => Head::Uint(self.uint(4)?),
            0xcf => Head::Uint(self.uint(8)?),
            0xd0 => Head::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Head::Int(self.uint(8)? as i64),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => Head::Str(self.sized(1)?),
            0xda => Head::Str(self.sized(2)?),
            0xdb => Head::Str(self.sized(4)?),
            0xdc => Head::Array(self.uint(2)?),
            0xdd => Head::Array(self.uint(4)?),
            0xde => Head::Map(self.uint(2)?),
            0xdf => Head::Map(self.uint(4)?),
            0xe0..=0xff => Head::Int(i64::from(marker as i8)),
        })
    }

    /// Skips one complete item (without recursion).
    fn skip(&mut self) -> Result<(), &'static str> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            match self.head()? {
                Head::Array(n) => pending = pending.saturating_add(n),
                Head::Map(n) => pending = pending.saturating_add(n.saturating_mul(2)),
                _ => {}
            }
        }
        Ok(())
    }
}

/// An initial capacity for a declared number of elements: no more than the remaining input could
/// hold (each element takes at least a byte), and modest either way; vectors grow as needed.
fn capacity(declared: u64, remaining: usize) -> usize {
    usize::try_from(declared).unwrap_or(usize::MAX).min(remaining).min(1024)
}

struct Decoder<'a> {
    reader: Reader<'a>,
    path: Vec<Step>,
    depth: usize,
}

impl<'a> Decoder<'a> {
    fn error(&self, message: impl Into<String>) -> DecodeError {
        DecodeError::new(AttributePath { steps: self.path.clone() }, message)
    }

    fn head(&mut self) -> Result<Head<'a>, DecodeError> {
        let pos = self.reader.pos;
        let head = self.reader.head();
        head.map_err(|m| {
            DecodeError::new(AttributePath { steps: self.path.clone() }, format!("{m} (at byte {pos})"))
        })
    }

    fn value(&mut self, ty: &Type) -> Result<Value, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("value is nested too deeply"));
        }
        self.depth += 1;
        let result = self.value_inner(ty);
        self.depth -= 1;
        result
    }

    fn value_inner(&mut self, ty: &Type) -> Result<Value, DecodeError> {
        let head = self.head()?;
        match (head, ty) {
            (Head::Nil, _) => Ok(Value::Null),
            (Head::Ext(code, payload), _) => self.unknown(code, payload),
            (Head::Bool(b), Type::Bool) => Ok(Value::Bool(b)),
            (head, Type::Number) => number_from_head(&head).map(Value::Number).map_err(|m| self.error(m)),
            (Head::Str(bytes) | Head::Bin(bytes), Type::String) => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(Value::String(s.to_owned())),
                Err(_) => Err(self.error("string is not valid UTF-8")),
            },
            (Head::Array(len), Type::List(element)) => self.list(len, element).map(Value::List),
            (Head::Array(len), Type::Set(element)) => self.set(len, element).map(Value::Set),
            (Head::Array(len), Type::Tuple(elements)) => self.tuple(len, elements).map(Value::Tuple),
            (Head::Map(len), Type::Map(element)) => self.map(len, element).map(Value::Map),
            (Head::Map(len), Type::Object { attrs, .. }) => self.object(len, attrs).map(Value::Object),
            (Head::Array(len), Type::Dynamic) => self.dynamic(len),
            (head, ty) => Err(self.mismatch(&head, ty)),
        }
    }

    #[inline(never)]
    fn mismatch(&self, head: &Head<'_>, ty: &Type) -> DecodeError {
        let what = match ty {
            Type::Bool => "a bool",
            Type::String => "a string",
            Type::Number => "a number",
            Type::List(_) => "an array for a list",
            Type::Set(_) => "an array for a set",
            Type::Tuple(_) => "an array for a tuple",
            Type::Map(_) => "a map",
            Type::Object { .. } => "a map for an object",
            Type::Dynamic => "a [type, value] array for a dynamic value",
        };
        self.error(format!("expected {what}, got {}", head.describe()))
    }

    #[inline(never)]
    fn unknown(&self, code: i8, payload: &[u8]) -> Result<Value, DecodeError> {
        if code != EXT_REFINED {
            return Ok(Value::unknown());
        }
        decode_refinements(payload)
            .map(Value::Unknown)
            .map_err(|m| self.error(format!("invalid refinements of an unknown value: {m}")))
    }

    #[inline(never)]
    fn list(&mut self, len: u64, element: &Type) -> Result<Vec<Value>, DecodeError> {
        let mut items = Vec::with_capacity(capacity(len, self.reader.remaining()));
        for i in 0..len {
            self.path.push(Step::Index(i as i64));
            items.push(self.value(element)?);
            self.path.pop();
        }
        Ok(items)
    }

    #[inline(never)]
    fn set(&mut self, len: u64, element: &Type) -> Result<Vec<Value>, DecodeError> {
        let mut items = Vec::with_capacity(capacity(len, self.reader.remaining()));
        for _ in 0..len {
            items.push(self.value(element)?);
        }
        Ok(items)
    }

    #[inline(never)]
    fn tuple(&mut self, len: u64, elements: &[Type]) -> Result<Vec<Value>, DecodeError> {
        if len != elements.len() as u64 {
            let message = format!("expected a tuple of {} elements, got {len} elements", elements.len());
            return Err(self.error(message));
        }
        let mut items = Vec::with_capacity(elements.len());
        for (i, element) in elements.iter().enumerate() {
            self.path.push(Step::Index(i as i64));
            items.push(self.value(element)?);
            self.path.pop();
        }
        Ok(items)
    }

    #[inline(never)]
    fn map(&mut self, len: u64, element: &Type) -> Result<BTreeMap<String, Value>, DecodeError> {
        let mut items = BTreeMap::new();
        for _ in 0..len {
            let key = self.key()?;
            self.path.push(Step::Key(key));
            let item = self.value(element)?;
            let Some(Step::Key(key)) = self.path.pop() else {
                return Err(self.error("internal error: path out of step"));
            };
            items.insert(key, item);
        }
        Ok(items)
    }

    #[inline(never)]
    fn object(
        &mut self,
        len: u64,
        attrs: &BTreeMap<String, Type>,
    ) -> Result<BTreeMap<String, Value>, DecodeError> {
        let mut values = BTreeMap::new();
        for _ in 0..len {
            let name = self.key()?;
            let Some(attr_ty) = attrs.get(&name) else {
                return Err(self.error(format!("unsupported attribute {name:?}")));
            };
            self.path.push(Step::Attr(name));
            let item = self.value(attr_ty)?;
            let Some(Step::Attr(name)) = self.path.pop() else {
                return Err(self.error("internal error: path out of step"));
            };
            values.insert(name, item);
        }
        for name in attrs.keys() {
            if !values.contains_key(name) {
                values.insert(name.clone(), Value::Null);
            }
        }
        Ok(values)
    }

    #[inline(never)]
    fn dynamic(&mut self, len: u64) -> Result<Value, DecodeError> {
        if len != 2 {
            return Err(
                self.error(format!("a dynamic value must be a [type, value] array, got {len} elements"))
            );
        }
        let actual = match self.head()? {
            Head::Str(bytes) | Head::Bin(bytes) => Type::from_json(bytes),
            other => {
                let message = format!("expected a JSON type description, got {}", other.describe());
                return Err(self.error(message));
            }
        };
        let actual = actual.map_err(|e| self.error(e.message))?;
        self.value(&actual)
    }

    fn key(&mut self) -> Result<String, DecodeError> {
        match self.head()? {
            Head::Str(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => Ok(s.to_owned()),
                Err(_) => Err(self.error("map key is not valid UTF-8")),
            },
            other => {
                let message = format!("expected a string map key, got {}", other.describe());
                Err(self.error(message))
            }
        }
    }
}

fn number_from_head(head: &Head<'_>) -> Result<Number, String> {
    match *head {
        Head::Uint(u) => Ok(Number::from_u64(u)),
        Head::Int(i) => Ok(Number::from_i64(i)),
        Head::F32(f) => Number::from_f64_exact(f64::from(f)).ok_or_else(|| "number is not finite".to_owned()),
        Head::F64(f) => Number::from_f64_exact(f).ok_or_else(|| "number is not finite".to_owned()),
        Head::Str(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| "number is not valid UTF-8".to_owned())?;
            text.parse().map_err(|e| format!("{e}"))
        }
        ref other => Err(format!("expected a number, got {}", other.describe())),
    }
}

fn decode_refinements(payload: &[u8]) -> Result<Refinements, String> {
    let mut reader = Reader { buf: payload, pos: 0 };
    let Head::Map(len) = reader.head()? else {
        return Err("expected a map".to_owned());
    };
    let mut refinements = Refinements::default();
    for _ in 0..len {
        let key = match reader.head()? {
            Head::Uint(k) => k,
            Head::Int(k) => u64::try_from(k).unwrap_or(u64::MAX),
            _ => u64::MAX,
        };
        match key {
            1 => match reader.head()? {
                Head::Bool(is_null) => refinements.not_null = !is_null,
                other => return Err(format!("nullness: expected a bool, got {}", other.describe())),
            },
            2 => match reader.head()? {
                Head::Str(bytes) => {
                    let prefix = std::str::from_utf8(bytes).map_err(|_| "prefix is not valid UTF-8")?;
                    refinements.string_prefix = Some(prefix.to_owned());
                }
                other => return Err(format!("string prefix: expected a string, got {}", other.describe())),
            },
            3 | 4 => {
                match reader.head()? {
                    Head::Array(2) => {}
                    _ => return Err("number bound: expected a [number, inclusive] array".to_owned()),
                }
                let number = number_from_head(&reader.head()?)?;
                let Head::Bool(inclusive) = reader.head()? else {
                    return Err("number bound: expected a bool for inclusiveness".to_owned());
                };
                if key == 3 {
                    refinements.number_lower = Some((number, inclusive));
                } else {
                    refinements.number_upper = Some((number, inclusive));
                }
            }
            5 | 6 => {
                let bound = match reader.head()? {
                    Head::Uint(n) => n,
                    Head::Int(n) if n >= 0 => n as u64,
                    other => {
                        return Err(format!("length bound: expected an integer, got {}", other.describe()));
                    }
                };
                if key == 5 {
                    refinements.length_lower = Some(bound);
                } else {
                    refinements.length_upper = Some(bound);
                }
            }
            _ => reader.skip()?,
        }
    }
    Ok(refinements)
}

// ---------------------------------------------------------------------------------------------
// Writing

struct Encoder {
    out: Vec<u8>,
    path: Vec<Step>,
}

fn write_uint(out: &mut Vec<u8>, n: u64) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xcc, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        write_uint(out, n as u64);
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Writes a length-prefixed header: the fixed form when `len <= fix_max`, else 8/16/32-bit forms.
fn write_len(out: &mut Vec<u8>, len: usize, fix: Option<(u8, usize)>, wide: [Option<u8>; 3]) -> bool {
    if let Some((base, max)) = fix
        && len <= max
    {
        out.push(base | len as u8);
        return true;
    }
    if let Some(marker) = wide[0]
        && len <= usize::from(u8::MAX)
    {
        out.extend_from_slice(&[marker, len as u8]);
        return true;
    }
    if let Some(marker) = wide[1]
        && len <= usize::from(u16::MAX)
    {
        out.push(marker);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        return true;
    }
    if let (Some(marker), Ok(len)) = (wide[2], u32::try_from(len)) {
        out.push(marker);
        out.extend_from_slice(&len.to_be_bytes());
        return true;
    }
    false
}

fn write_str(out: &mut Vec<u8>, s: &str) -> bool {
    if !write_len(out, s.len(), Some((0xa0, 31)), [Some(0xd9), Some(0xda), Some(0xdb)]) {
        return false;
    }
    out.extend_from_slice(s.as_bytes());
    true
}

fn write_bin(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    if !write_len(out, bytes.len(), None, [Some(0xc4), Some(0xc5), Some(0xc6)]) {
        return false;
    }
    out.extend_from_slice(bytes);
    true
}

fn write_array_len(out: &mut Vec<u8>, len: usize) -> bool {
    write_len(out, len, Some((0x90, 15)), [None, Some(0xdc), Some(0xdd)])
}

fn write_map_len(out: &mut Vec<u8>, len: usize) -> bool {
    write_len(out, len, Some((0x80, 15)), [None, Some(0xde), Some(0xdf)])
}

fn write_ext(out: &mut Vec<u8>, code: i8, payload: &[u8]) -> bool {
    let fixed = match payload.len() {
        1 => Some(0xd4),
        2 => Some(0xd5),
        4 => Some(0xd6),
        8 => Some(0xd7),
        16 => Some(0xd8),
        _ => None,
    };
    if let Some(marker) = fixed {
        out.push(marker);
    } else if !write_len(out, payload.len(), None, [Some(0xc7), Some(0xc8), Some(0xc9)]) {
        return false;
    }
    out.push(code as u8);
    out.extend_from_slice(payload);
    true
}

fn write_number(out: &mut Vec<u8>, n: &Number) -> bool {
    if let Some(i) = n.to_i64() {
        write_int(out, i);
    } else if let Some(u) = n.to_u64() {
        write_uint(out, u);
    } else if let Some(f) = n.to_f64_exact() {
        out.push(0xcb);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    } else {
        return write_str(out, &n.to_string());
    }
    true
}

/// The refinement map for an unknown value of type `ty`, keeping only refinements that apply to
/// that type; empty when none apply.
fn encode_refinements(refinements: &Refinements, ty: &Type) -> Vec<u8> {
    let mut entries: Vec<(u8, Vec<u8>)> = Vec::new();
    if matches!(ty, Type::Dynamic) {
        return Vec::new();
    }
    if refinements.not_null {
        entries.push((1, vec![0xc2]));
    }
    if let (Type::String, Some(prefix)) = (ty, &refinements.string_prefix) {
        let mut end = prefix.len().min(MAX_PREFIX_LEN);
        while !prefix.is_char_boundary(end) {
            end -= 1;
        }
        if end > 0 {
            let mut bytes = Vec::new();
            write_str(&mut bytes, &prefix[..end]);
            entries.push((2, bytes));
        }
    }
    if let Type::Number = ty {
        for (key, bound) in [(3, &refinements.number_lower), (4, &refinements.number_upper)] {
            if let Some((number, inclusive)) = bound {
                let mut bytes = vec![0x92];
                write_number(&mut bytes, number);
                bytes.push(if *inclusive { 0xc3 } else { 0xc2 });
                entries.push((key, bytes));
            }
        }
    }
    if let Type::List(_) | Type::Set(_) | Type::Map(_) = ty {
        for (key, bound) in [(5, refinements.length_lower), (6, refinements.length_upper)] {
            if let Some(bound) = bound {
                let mut bytes = Vec::new();
                write_uint(&mut bytes, bound);
                entries.push((key, bytes));
            }
        }
    }
    if entries.is_empty() {
        return Vec::new();
    }
    let mut payload = Vec::new();
    write_map_len(&mut payload, entries.len());
    for (key, bytes) in entries {
        payload.push(key);
        payload.extend_from_slice(&bytes);
    }
    payload
}

impl Encoder {
    fn error(&self, message: impl Into<String>) -> EncodeError {
        EncodeError::new(AttributePath { steps: self.path.clone() }, message)
    }

    fn too_long(&self) -> EncodeError {
        self.error("value is too large for MessagePack")
    }

    fn mismatch(&self, value: &Value, ty: &Type) -> EncodeError {
        self.error(format!("expected {}, got {}", type_kind(ty), value.kind()))
    }

    fn value(&mut self, value: &Value, ty: &Type) -> Result<(), EncodeError> {
        match (value, ty) {
            (Value::Null, _) => self.out.push(0xc0),
            (Value::Unknown(refinements), _) => {
                let payload = encode_refinements(refinements, ty);
                if payload.is_empty() {
                    self.out.extend_from_slice(&[0xd4, 0, 0]);
                } else if !write_ext(&mut self.out, EXT_REFINED, &payload) {
                    return Err(self.too_long());
                }
            }
            (_, Type::Dynamic) => {
                let actual = infer_type(value);
                self.out.push(0x92);
                if !write_bin(&mut self.out, &actual.to_json()) {
                    return Err(self.too_long());
                }
                self.value(value, &actual)?;
            }
            (Value::Bool(b), Type::Bool) => self.out.push(if *b { 0xc3 } else { 0xc2 }),
            (Value::Number(n), Type::Number) => {
                if !write_number(&mut self.out, n) {
                    return Err(self.too_long());
                }
            }
            (Value::String(s), Type::String) => {
                if !write_str(&mut self.out, s) {
                    return Err(self.too_long());
                }
            }
            (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::List(element)) => {
                self.array(items, true, |_| element)?;
            }
            (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::Set(element)) => {
                self.array(items, false, |_| element)?;
            }
            (Value::List(items) | Value::Set(items) | Value::Tuple(items), Type::Tuple(elements)) => {
                if items.len() != elements.len() {
                    return Err(self.error(format!(
                        "expected a tuple of {} elements, got {} elements",
                        elements.len(),
                        items.len()
                    )));
                }
                self.array(items, true, |i| &elements[i])?;
            }
            (Value::Map(items) | Value::Object(items), Type::Map(element)) => {
                if !write_map_len(&mut self.out, items.len()) {
                    return Err(self.too_long());
                }
                for (key, item) in items {
                    write_str(&mut self.out, key);
                    self.path.push(Step::Key(key.clone()));
                    self.value(item, element)?;
                    self.path.pop();
                }
            }
            (Value::Map(items) | Value::Object(items), Type::Object { attrs, .. }) => {
                if let Some(extra) = items.keys().find(|name| !attrs.contains_key(*name)) {
                    return Err(self.error(format!("unexpected attribute {extra:?}")));
                }
                if !write_map_len(&mut self.out, attrs.len()) {
                    return Err(self.too_long());
                }
                for (name, attr_ty) in attrs {
                    write_str(&mut self.out, name);
                    self.path.push(Step::Attr(name.clone()));
                    self.value(items.get(name).unwrap_or(&Value::Null), attr_ty)?;
                    self.path.pop();
                }
            }
            _ => return Err(self.mismatch(value, ty)),
        }
        Ok(())
    }

    fn array<'t>(
        &mut self,
        items: &[Value],
        indexed: bool,
        element: impl Fn(usize) -> &'t Type,
    ) -> Result<(), EncodeError> {
        if !write_array_len(&mut self.out, items.len()) {
            return Err(self.too_long());
        }
        for (i, item) in items.iter().enumerate() {
            if indexed {
                self.path.push(Step::Index(i as i64));
            }
            self.value(item, element(i))?;
            if indexed {
                self.path.pop();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Number {
        text.parse().expect("valid number")
    }

    fn obj<const N: usize>(attrs: [(&str, Value); N]) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn round_trip(value: &Value, ty: &Type) -> Value {
        let bytes = encode_msgpack(value, ty).expect("encodes");
        decode_msgpack(&bytes, ty).expect("decodes")
    }

    fn big_type() -> Type {
        Type::object([
            ("name", Type::String),
            ("count", Type::Number),
            ("enabled", Type::Bool),
            ("ports", Type::list(Type::Number)),
            ("ids", Type::set(Type::String)),
            ("tags", Type::map(Type::String)),
            ("pair", Type::tuple([Type::String, Type::Number])),
            ("any", Type::Dynamic),
            (
                "rules",
                Type::list(Type::object([("port", Type::Number), ("cidrs", Type::list(Type::String))])),
            ),
        ])
    }

    fn big_value() -> Value {
        obj([
            ("name", Value::from("web")),
            ("count", Value::from(3)),
            ("enabled", Value::Bool(true)),
            ("ports", Value::List(vec![Value::from(80), Value::from(-5), Value::Null, Value::unknown()])),
            ("ids", Value::Set(vec![Value::from("a"), Value::from("b")])),
            ("tags", Value::Map([("Name".to_owned(), Value::from("x"))].into())),
            ("pair", Value::Tuple(vec![Value::from("p"), Value::Number(n("2.5"))])),
            (
                "any",
                obj([("deep", Value::List(vec![Value::from(1), Value::from(2)])), ("none", Value::Null)]),
            ),
            (
                "rules",
                Value::List(vec![
                    obj([("port", Value::from(22)), ("cidrs", Value::List(vec![Value::from("10.0.0.0/8")]))]),
                    obj([("port", Value::unknown()), ("cidrs", Value::Null)]),
                ]),
            ),
        ])
    }

    #[test]
    fn round_trips_every_type() {
        let ty = big_type();
        let value = big_value();
        assert_eq!(round_trip(&value, &ty), value);
        assert_eq!(round_trip(&Value::Null, &ty), Value::Null);
        assert_eq!(round_trip(&Value::unknown(), &ty), Value::unknown());
        // Missing attributes come back as null.
        let sparse = obj([("name", Value::from("x"))]);
        let back = round_trip(&sparse, &ty);
        assert_eq!(back.attr("name"), Some(&Value::from("x")));
        assert_eq!(back.attr("rules"), Some(&Value::Null));
    }

    #[test]
    fn numbers() {
        let cases: [(&str, &[u8]); 10] = [
            ("0", &[0x00]),
            ("-5", &[0xfb]),
            ("127", &[0x7f]),
            ("200", &[0xcc, 200]),
            ("-200", &[0xd1, 0xff, 0x38]),
            ("18446744073709551615", &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            ("0.5", &[0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]),
            ("0.1", b"\xa30.1"),
            ("1180591620717411303424", &[0xcb, 0x44, 0x50, 0, 0, 0, 0, 0, 0]),
            ("1180591620717411303425", b"\xb61180591620717411303425"),
        ];
        for (text, bytes) in cases {
            let value = Value::Number(n(text));
            assert_eq!(encode_msgpack(&value, &Type::Number).expect("encodes"), bytes, "{text}");
            assert_eq!(decode_msgpack(bytes, &Type::Number), Ok(value), "{text}");
        }
        for text in ["1e-30", "-1.5", "1e300", "123456789012345678901234567890.123456789", "1e-400"] {
            let value = Value::Number(n(text));
            assert_eq!(round_trip(&value, &Type::Number), value, "{text}");
        }
        // Other encodings Terraform may use.
        assert_eq!(decode_msgpack(&[0xd3, 0, 0, 0, 0, 0, 0, 0, 7], &Type::Number), Ok(Value::from(7)));
        assert_eq!(decode_msgpack(&[0xca, 0x3f, 0xc0, 0, 0], &Type::Number), Ok(Value::Number(n("1.5"))));
        assert_eq!(decode_msgpack(b"\xa2-3", &Type::Number), Ok(Value::from(-3)));
        assert!(decode_msgpack(&[0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0], &Type::Number).is_err());
        assert!(decode_msgpack(b"\xa3abc", &Type::Number).is_err());
    }

    #[test]
    fn known_terraform_bytes() {
        // {"a": "x", "b": unknown}
        let bytes = [0x82, 0xa1, b'a', 0xa1, b'x', 0xa1, b'b', 0xd4, 0x00, 0x00];
        let ty = Type::object([("a", Type::String), ("b", Type::String)]);
        let value = obj([("a", Value::from("x")), ("b", Value::unknown())]);
        assert_eq!(decode_msgpack(&bytes, &ty), Ok(value.clone()));
        assert_eq!(encode_msgpack(&value, &ty).expect("encodes"), bytes);
        // Any other extension code is an unknown too, whatever its payload.
        assert_eq!(decode_msgpack(&[0xd5, 0x05, 1, 2], &Type::String), Ok(Value::unknown()));
        // Refined: not null, prefix "ab".
        let refined = [0xc7, 0x07, 0x0c, 0x82, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b'];
        let expected = Value::Unknown(Refinements {
            not_null: true,
            string_prefix: Some("ab".to_owned()),
            ..Refinements::default()
        });
        assert_eq!(decode_msgpack(&refined, &Type::String), Ok(expected.clone()));
        assert_eq!(encode_msgpack(&expected, &Type::String).expect("encodes"), refined);
        // Dynamic: ["string" as JSON in bin, "hi"]
        let dynamic = [0x92, 0xc4, 0x08, b'"', b's', b't', b'r', b'i', b'n', b'g', b'"', 0xa2, b'h', b'i'];
        assert_eq!(decode_msgpack(&dynamic, &Type::Dynamic), Ok(Value::from("hi")));
        assert_eq!(encode_msgpack(&Value::from("hi"), &Type::Dynamic).expect("encodes"), dynamic);
        // The type may also come as a msgpack string.
        let mut as_str = dynamic.to_vec();
        as_str[1] = 0xa8;
        as_str.remove(2);
        assert_eq!(decode_msgpack(&as_str, &Type::Dynamic), Ok(Value::from("hi")));
        assert_eq!(decode_msgpack(&[0xc0], &Type::Dynamic), Ok(Value::Null));
    }

    #[test]
    fn refinements_round_trip() {
        let cases = [
            (
                Type::Number,
                Refinements {
                    not_null: true,
                    number_lower: Some((n("0"), true)),
                    number_upper: Some((n("1e30"), false)),
                    ..Refinements::default()
                },
            ),
            (
                Type::list(Type::String),
                Refinements { length_lower: Some(1), length_upper: Some(3), ..Refinements::default() },
            ),
            (Type::map(Type::String), Refinements { not_null: true, ..Refinements::default() }),
            (
                Type::String,
                Refinements { string_prefix: Some("arn:aws:".to_owned()), ..Refinements::default() },
            ),
        ];
        for (ty, refinements) in cases {
            let value = Value::Unknown(refinements);
            assert_eq!(round_trip(&value, &ty), value, "{ty}");
        }
        // Refinements that do not apply to the type are dropped; none left means plain unknown.
        let prefix_on_number =
            Value::Unknown(Refinements { string_prefix: Some("x".to_owned()), ..Refinements::default() });
        assert_eq!(encode_msgpack(&prefix_on_number, &Type::Number).expect("encodes"), [0xd4, 0, 0]);
        assert_eq!(
            encode_msgpack(
                &Value::Unknown(Refinements { not_null: true, ..Default::default() }),
                &Type::Dynamic
            )
            .expect("encodes"),
            [0xd4, 0, 0]
        );
        // Unknown refinement keys are ignored.
        let future = [0xc7, 0x06, 0x0c, 0x82, 0x09, 0x91, 0xc0, 0x01, 0xc2];
        assert_eq!(
            decode_msgpack(&future, &Type::String),
            Ok(Value::Unknown(Refinements { not_null: true, ..Default::default() }))
        );
    }

    #[test]
    fn dynamic_round_trips() {
        let values = [
            Value::from("s"),
            Value::from(5),
            Value::Bool(false),
            Value::List(vec![]),
            Value::List(vec![Value::from(1), Value::from("mixed")]),
            Value::Set(vec![Value::from("a")]),
            Value::Map([("k".to_owned(), Value::from(1))].into()),
            obj([("a", Value::Null), ("b", Value::Tuple(vec![Value::from(1), Value::unknown()]))]),
            Value::List(vec![obj([("a", Value::Null)]), obj([("a", Value::from("x"))])]),
        ];
        for value in values {
            assert_eq!(round_trip(&value, &Type::Dynamic), value, "{value:?}");
        }
    }

    #[test]
    fn wrong_kinds_are_errors_with_paths() {
        let ty = Type::object([("rules", Type::list(Type::object([("port", Type::Number)])))]);
        let bad = obj([(
            "rules",
            Value::List(vec![obj([("port", Value::from(1))]), obj([("port", Value::from("x"))])]),
        )]);
        let err = encode_msgpack(&bad, &ty).expect_err("mismatch");
        assert_eq!(err.path.to_string(), "rules[1].port");
        assert_eq!(err.message, "expected a number, got a string");

        // {"rules": [{"port": []}]}
        let bytes =
            [0x81, 0xa5, b'r', b'u', b'l', b'e', b's', 0x91, 0x81, 0xa4, b'p', b'o', b'r', b't', 0x90];
        let err = decode_msgpack(&bytes, &ty).expect_err("mismatch");
        assert_eq!(err.to_string(), "rules[0].port: expected a number, got an array");

        let err = decode_msgpack(&[0x81, 0xa1, b'z', 0xc0], &ty).expect_err("extra attribute");
        assert_eq!(err.message, "unsupported attribute \"z\"");
        let err = encode_msgpack(&obj([("z", Value::Null)]), &ty).expect_err("extra attribute");
        assert_eq!(err.message, "unexpected attribute \"z\"");
        assert!(decode_msgpack(&[0xc0, 0xc0], &ty).is_err());
        assert!(decode_msgpack(&[0x92, 0x01, 0x02], &Type::tuple([Type::Number])).is_err());
    }

    #[test]
    fn deepest_accepted_nesting_fits_a_small_stack() {
        // Lists of dynamic values nested as deep as allowed, decoded on a 512 KiB stack.
        let mut bytes = Vec::new();
        for _ in 0..MAX_DEPTH / 2 - 1 {
            bytes.extend_from_slice(&[0x92, 0xc4, 0x12]);
            bytes.extend_from_slice(br#"["list","dynamic"]"#);
            bytes.push(0x91);
        }
        bytes.push(0xc0);
        let worker = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let value = decode_msgpack(&bytes, &Type::Dynamic).expect("decodes");
                let again = encode_msgpack(&value, &Type::Dynamic).expect("encodes");
                assert_eq!(decode_msgpack(&again, &Type::Dynamic), Ok(value));
            })
            .expect("spawns");
        assert!(worker.join().is_ok());
    }

    #[test]
    fn random_input_never_panics() {
        // A fixed xorshift sequence; bytes are biased towards markers and small lengths.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let interesting =
            [0xc0, 0xc2, 0xc3, 0xc4, 0xc7, 0xcb, 0xd4, 0xd9, 0xdc, 0xde, 0x92, 0x81, 0xa1, 0x0c];
        let types = [big_type(), Type::Dynamic, Type::list(Type::Number), Type::map(Type::Dynamic)];
        for _ in 0..20_000 {
            let len = (next() % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 3 == 0 {
                        interesting[(r >> 8) as usize % interesting.len()]
                    } else {
                        (r >> 16) as u8
                    }
                })
                .collect();
            for ty in &types {
                if let Ok(value) = decode_msgpack(&bytes, ty) {
                    let _ = encode_msgpack(&value, ty);
                }
            }
        }
    }

    #[test]
    fn truncated_and_garbage_input_is_an_error() {
        let ty = big_type();
        let bytes = encode_msgpack(&big_value(), &ty).expect("encodes");
        for len in 0..bytes.len() {
            assert!(decode_msgpack(&bytes[..len], &ty).is_err(), "prefix of {len} bytes");
        }
        let dyn_bytes = encode_msgpack(&big_value(), &Type::Dynamic).expect("encodes");
        for len in 0..dyn_bytes.len() {
            assert!(decode_msgpack(&dyn_bytes[..len], &Type::Dynamic).is_err(), "prefix of {len} bytes");
        }
        // Corrupt each byte in turn: any result is fine, as long as nothing panics.
        for i in 0..dyn_bytes.len() {
            for replacement in [0x00, 0xc1, 0xdd, 0xdf, 0xff, 0xc9, 0xdb] {
                let mut corrupt = dyn_bytes.clone();
                corrupt[i] = replacement;
                let _ = decode_msgpack(&corrupt, &Type::Dynamic);
                let _ = decode_msgpack(&corrupt, &ty);
            }
        }
        // Huge declared lengths.
        for huge in [
            &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
            &[0xdb, 0xff, 0xff, 0xff, 0xff],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x0c],
        ] {
            assert!(decode_msgpack(huge, &Type::list(Type::String)).is_err());
            assert!(decode_msgpack(huge, &Type::map(Type::String)).is_err());
            assert!(decode_msgpack(huge, &Type::String).is_err());
        }
        // Refinement payload that claims a huge map, and one that is not a map.
        assert!(decode_msgpack(&[0xd6, 0x0c, 0xdf, 0xff, 0xff, 0xff], &Type::String).is_err());
        assert!(decode_msgpack(&[0xd4, 0x0c, 0x01], &Type::String).is_err());
        // Dynamic nesting without bound.
        let mut nested = Vec::new();
        for _ in 0..100_000 {
            nested.extend_from_slice(&[0x92, 0xc4, 0x09]);
            nested.extend_from_slice(b"\"dynamic\"");
        }
        nested.push(0xc0);
        let err = decode_msgpack(&nested, &Type::Dynamic).expect_err("too deep");
        assert_eq!(err.message, "value is nested too deeply");
        // Invalid type descriptions and UTF-8.
        assert!(decode_msgpack(&[0x92, 0xa3, b'a', b'b', b'c', 0xc0], &Type::Dynamic).is_err());
        assert!(decode_msgpack(&[0xa1, 0xff], &Type::String).is_err());
    }
}
