//! Conversions between the crate's types and the generated protocol types.

use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::function::{Parameter, Signature};
use crate::path::{AttributePath, Step};
use crate::proto::tfplugin6 as pb;
use crate::schema::{Attribute, Block, Mode, NestedBlock, Nesting, Schema};
use crate::value::{self, Type, Value};

pub(crate) fn schema(schema: &Schema) -> pb::Schema {
    pb::Schema { version: schema.version, block: Some(block(&schema.block, schema.version)) }
}

pub(crate) fn function(signature: &Signature) -> pb::Function {
    let parameter = |p: &Parameter| pb::function::Parameter {
        name: p.name.clone(),
        r#type: p.ty.to_json(),
        allow_null_value: p.allow_null,
        allow_unknown_values: p.allow_unknown,
        description: p.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
    };
    pb::Function {
        parameters: signature.parameters.iter().map(parameter).collect(),
        variadic_parameter: signature.variadic.as_ref().map(parameter),
        r#return: Some(pb::function::Return { r#type: signature.returns.to_json() }),
        summary: signature.summary.clone(),
        description: signature.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

fn block(b: &Block, version: i64) -> pb::schema::Block {
    pb::schema::Block {
        version,
        attributes: b.attributes.iter().map(attribute).collect(),
        block_types: b.blocks.iter().map(nested_block).collect(),
        description: b.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: b.deprecated,
    }
}

fn attribute(a: &Attribute) -> pb::schema::Attribute {
    pb::schema::Attribute {
        name: a.name.clone(),
        r#type: a.ty.to_json(),
        nested_type: None,
        description: attribute_description(a),
        required: a.mode == Mode::Required,
        optional: matches!(a.mode, Mode::Optional | Mode::OptionalComputed),
        computed: a.is_computed(),
        sensitive: a.sensitive,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: a.deprecated.is_some(),
        write_only: false,
    }
}

/// The description Terraform shows: the attribute's own text plus what its validators
/// and plan modifiers promise.
pub(crate) fn attribute_description(a: &Attribute) -> String {
    let mut text = a.description.clone();
    for extra in
        a.validators.iter().map(|v| v.description.as_str()).chain(a.modifiers.iter().map(|m| m.description()))
    {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(extra);
    }
    text
}

fn nested_block(b: &NestedBlock) -> pb::schema::NestedBlock {
    use pb::schema::nested_block::NestingMode;
    let nesting = match b.nesting {
        Nesting::Single => NestingMode::Single,
        Nesting::List => NestingMode::List,
        Nesting::Set => NestingMode::Set,
        Nesting::Map => NestingMode::Map,
        Nesting::Group => NestingMode::Group,
    };
    pb::schema::NestedBlock {
        type_name: b.name.clone(),
        block: Some(block(&b.block, 0)),
        nesting: nesting as i32,
        min_items: b.min_items,
        max_items: b.max_items,
    }
}

pub(crate) fn diagnostics(diags: Diagnostics) -> Vec<pb::Diagnostic> {
    diags.into_iter().map(diagnostic).collect()
}

fn diagnostic(d: Diagnostic) -> pb::Diagnostic {
    let severity = match d.severity {
        Severity::Error => pb::diagnostic::Severity::Error,
        Severity::Warning => pb::diagnostic::Severity::Warning,
    };
    pb::Diagnostic {
        severity: severity as i32,
        summary: d.summary,
        detail: d.detail,
        attribute: d.attribute.filter(|p| !p.is_root()).map(|p| attribute_path(&p)),
    }
}

pub(crate) fn attribute_path(path: &AttributePath) -> pb::AttributePath {
    use pb::attribute_path::{Step as PbStep, step::Selector};
    pb::AttributePath {
        steps: path
            .steps
            .iter()
            .map(|step| PbStep {
                selector: Some(match step {
                    Step::Attr(name) => Selector::AttributeName(name.clone()),
                    Step::Key(key) => Selector::ElementKeyString(key.clone()),
                    Step::Index(index) => Selector::ElementKeyInt(*index),
                }),
            })
            .collect(),
    }
}

/// Decodes a DynamicValue (msgpack preferred, JSON accepted); absent means null.
pub(crate) fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<Value, Diagnostics> {
    let Some(dv) = dv else { return Ok(Value::Null) };
    let decoded = if !dv.msgpack.is_empty() {
        value::decode_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        value::decode_json(&dv.json, ty)
    } else {
        return Ok(Value::Null);
    };
    decoded.map_err(|e| {
        Diagnostics::from(Diagnostic::error(
            "Malformed Value From Terraform",
            format!("decoding {what}: {e}"),
        ))
    })
}

pub(crate) fn encode(value: &Value, ty: &Type, what: &str) -> Result<pb::DynamicValue, Diagnostics> {
    value::encode_msgpack(value, ty).map(|msgpack| pb::DynamicValue { msgpack, json: Vec::new() }).map_err(
        |e| {
            Diagnostics::from(Diagnostic::error(
                "Provider Produced An Invalid Value",
                format!("encoding {what}: {e}; this is a bug in the provider"),
            ))
        },
    )
}
