//! Schema-driven behaviour every resource gets for free: validators, deprecation
//! warnings and the generic planner (plan modifiers, computed-unknown on create).

use crate::diag::{Diagnostic, Diagnostics};
use crate::path::{AttributePath, Step};
use crate::schema::{Block, Nesting, PlanModifier};
use crate::value::Value;

/// Runs every attribute's validators on the known, non-null values of `config`, and the
/// block's own validators on the block.
pub fn validate_block(block: &Block, config: &Value, path: &AttributePath, diags: &mut Diagnostics) {
    if config.is_null() || config.is_unknown() {
        return;
    }
    for validator in &block.validators {
        validator.check(config, path, diags);
    }
    for attribute in &block.attributes {
        let attr_path = path.child(Step::Attr(attribute.name.clone()));
        let Some(value) = config.attr(&attribute.name) else { continue };
        if value.is_null() {
            continue;
        }
        if let Some(message) = &attribute.deprecated {
            diags.push(Diagnostic::warning("Deprecated Attribute", message.clone()).at(attr_path.clone()));
        }
        if value.is_unknown() {
            continue;
        }
        for validator in &attribute.validators {
            validator.check(value, &attr_path, diags);
        }
    }
    for nested in &block.blocks {
        let nested_path = path.child(Step::Attr(nested.name.clone()));
        let Some(value) = config.attr(&nested.name) else { continue };
        match (nested.nesting, value) {
            (Nesting::Single | Nesting::Group, object) => {
                validate_block(&nested.block, object, &nested_path, diags)
            }
            (Nesting::List, Value::List(items)) => {
                check_item_count(nested.min_items, nested.max_items, items.len(), &nested_path, diags);
                for (i, item) in items.iter().enumerate() {
                    let item_path = nested_path.child(Step::Index(i as i64));
                    validate_block(&nested.block, item, &item_path, diags);
                }
            }
            (Nesting::Set, Value::Set(items)) => {
                check_item_count(nested.min_items, nested.max_items, items.len(), &nested_path, diags);
                for item in items {
                    validate_block(&nested.block, item, &nested_path, diags);
                }
            }
            (Nesting::Map, Value::Map(items)) => {
                for (key, item) in items {
                    validate_block(&nested.block, item, &nested_path.child(Step::Key(key.clone())), diags);
                }
            }
            _ => {}
        }
    }
}

fn check_item_count(min: i64, max: i64, len: usize, path: &AttributePath, diags: &mut Diagnostics) {
    let len = len as i64;
    if (min > 0 && len < min) || (max > 0 && len > max) {
        diags.error_at(
            path.clone(),
            "Wrong Number Of Blocks",
            format!("{path} needs between {min} and {max} blocks, got {len}"),
        );
    }
}

/// The generic part of planning: settles computed attributes and finds the changes
/// that force replacement. Returns the planned value and the replace paths.
pub fn plan(block: &Block, prior: &Value, config: &Value, proposed: Value) -> (Value, Vec<AttributePath>) {
    let mut planned = proposed;
    let mut requires_replace = Vec::new();
    if planned.is_null() {
        return (planned, requires_replace);
    }
    let creating = prior.is_null();
    let changed = creating || &planned != prior;
    for attribute in block.attributes.iter().filter(|a| a.is_computed()) {
        let configured = config.attr(&attribute.name).is_some_and(|v| !v.is_null());
        if configured || !changed {
            continue;
        }
        if !creating && attribute.has_modifier(PlanModifier::UseStateForUnknown) {
            continue;
        }
        if let Some(slot) = planned.get_mut(&AttributePath::attr(attribute.name.clone())) {
            *slot = Value::unknown();
        }
    }
    if !creating {
        for attribute in block.attributes.iter().filter(|a| a.has_modifier(PlanModifier::RequiresReplace)) {
            let before = prior.attr(&attribute.name);
            let after = planned.attr(&attribute.name);
            if before != after {
                requires_replace.push(AttributePath::attr(attribute.name.clone()));
            }
        }
    }
    (planned, requires_replace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, validators};
    use crate::value::Type;
    use std::collections::BTreeMap;

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Object(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>())
    }

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn block() -> Block {
        Block::new("test")
            .attribute(Attribute::required("name", Type::String).modifier(PlanModifier::RequiresReplace))
            .attribute(Attribute::optional("mode", Type::String).validator(validators::one_of(&["a", "b"])))
            .attribute(Attribute::computed("id", Type::String).modifier(PlanModifier::UseStateForUnknown))
            .attribute(Attribute::computed("version", Type::String))
    }

    #[test]
    fn computed_attributes_are_unknown_on_create() {
        let config = object(&[
            ("name", s("web")),
            ("mode", Value::Null),
            ("id", Value::Null),
            ("version", Value::Null),
        ]);
        let (planned, replace) = plan(&block(), &Value::Null, &config, config.clone());
        assert!(planned.attr("id").is_some_and(Value::is_unknown));
        assert!(planned.attr("version").is_some_and(Value::is_unknown));
        assert!(replace.is_empty());
    }

    #[test]
    fn update_keeps_state_for_unknown_and_flags_replacement() {
        let prior = object(&[("name", s("web")), ("mode", s("a")), ("id", s("i-1")), ("version", s("v1"))]);
        let config =
            object(&[("name", s("api")), ("mode", s("a")), ("id", Value::Null), ("version", Value::Null)]);
        let proposed =
            object(&[("name", s("api")), ("mode", s("a")), ("id", s("i-1")), ("version", s("v1"))]);
        let (planned, replace) = plan(&block(), &prior, &config, proposed);
        assert_eq!(planned.attr("id"), Some(&s("i-1")));
        assert!(planned.attr("version").is_some_and(Value::is_unknown));
        assert_eq!(replace, vec![AttributePath::attr("name")]);
    }

    #[test]
    fn no_change_plans_no_unknowns() {
        let prior =
            object(&[("name", s("web")), ("mode", Value::Null), ("id", s("i-1")), ("version", s("v1"))]);
        let config = object(&[
            ("name", s("web")),
            ("mode", Value::Null),
            ("id", Value::Null),
            ("version", Value::Null),
        ]);
        let (planned, replace) = plan(&block(), &prior, &config, prior.clone());
        assert_eq!(planned, prior);
        assert!(replace.is_empty());
    }

    #[test]
    fn validators_report_on_the_attribute_path() {
        let config =
            object(&[("name", s("web")), ("mode", s("c")), ("id", Value::Null), ("version", Value::Null)]);
        let mut diags = Diagnostics::new();
        validate_block(&block(), &config, &AttributePath::root(), &mut diags);
        assert_eq!(diags.0.len(), 1);
        assert_eq!(diags.0[0].attribute, Some(AttributePath::attr("mode")));
        assert!(diags.0[0].detail.contains("must be one of a, b"), "{}", diags.0[0].detail);
    }
}
