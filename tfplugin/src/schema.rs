//! Schemas: what a provider, resource or data source accepts and returns.
//!
//! Built with small chained constructors; the descriptions given here feed both
//! Terraform (which shows them in `terraform providers schema`) and the generated docs.

use crate::diag::Diagnostics;
use crate::path::AttributePath;
use crate::value::{Type, Value};
use std::fmt;
use std::sync::Arc;

/// The schema of a provider configuration, resource or data source.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Bumped when the stored state's shape changes; see `Resource::upgrade_state`.
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(block: Block) -> Self {
        Self { version: 0, block }
    }

    #[must_use]
    pub fn version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// The cty type of a whole object of this schema.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
}

#[derive(Clone, Debug, Default)]
pub struct Block {
    pub description: String,
    pub deprecated: bool,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
}

impl Block {
    pub fn new(description: impl Into<String>) -> Self {
        Self { description: description.into(), ..Self::default() }
    }

    #[must_use]
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    #[must_use]
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }

    /// Adds the conventional `timeouts` block with one optional duration per operation.
    #[must_use]
    pub fn timeouts(self, operations: &[(&str, &str)]) -> Self {
        let mut inner = Block::new("Per-operation time limits, as Go durations (`30s`, `10m`, `1h30m`).");
        for (operation, default) in operations {
            inner = inner.attribute(
                Attribute::optional(*operation, Type::String)
                    .description(format!("Time limit for {operation} (default `{default}`)."))
                    .validator(validators::duration()),
            );
        }
        self.block(NestedBlock::single("timeouts", inner))
    }

    pub fn find_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn find_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    pub fn value_type(&self) -> Type {
        let attrs = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .chain(self.blocks.iter().map(|b| (b.name.clone(), b.value_type())));
        Type::object(attrs)
    }
}

/// The time limit for `operation` from a `timeouts` block in `config` (see
/// [`Block::timeouts`]), or `default` when unset or unreadable.
pub fn timeout(config: &Value, operation: &str, default: std::time::Duration) -> std::time::Duration {
    config
        .attr("timeouts")
        .and_then(|t| t.attr(operation))
        .and_then(Value::as_str)
        .and_then(|text| crate::duration::parse(text).ok())
        .unwrap_or(default)
}

/// How a nested block repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; null when absent.
    Single,
    List,
    Set,
    /// Keyed by the block's label.
    Map,
    /// Exactly one, never null: absent means all attributes null.
    Group,
}

#[derive(Clone, Debug)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl NestedBlock {
    pub fn single(name: impl Into<String>, block: Block) -> Self {
        Self { name: name.into(), nesting: Nesting::Single, block, min_items: 0, max_items: 0 }
    }

    pub fn list(name: impl Into<String>, block: Block) -> Self {
        Self { name: name.into(), nesting: Nesting::List, block, min_items: 0, max_items: 0 }
    }

    pub fn set(name: impl Into<String>, block: Block) -> Self {
        Self { name: name.into(), nesting: Nesting::Set, block, min_items: 0, max_items: 0 }
    }

    #[must_use]
    pub fn items(mut self, min: i64, max: i64) -> Self {
        self.min_items = min;
        self.max_items = max;
        self
    }

    pub fn value_type(&self) -> Type {
        let object = self.block.value_type();
        match self.nesting {
            Nesting::Single | Nesting::Group => object,
            Nesting::List => Type::list(object),
            Nesting::Set => Type::set(object),
            Nesting::Map => Type::map(object),
        }
    }
}

/// Whether the user sets an attribute, the provider does, or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Required,
    Optional,
    Computed,
    /// Set by the user, or computed by the provider when left unset.
    OptionalComputed,
}

#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub mode: Mode,
    pub description: String,
    pub sensitive: bool,
    pub deprecated: Option<String>,
    pub modifiers: Vec<PlanModifier>,
    pub validators: Vec<Validator>,
}

impl Attribute {
    fn new(name: impl Into<String>, ty: Type, mode: Mode) -> Self {
        Self {
            name: name.into(),
            ty,
            mode,
            description: String::new(),
            sensitive: false,
            deprecated: None,
            modifiers: Vec::new(),
            validators: Vec::new(),
        }
    }

    pub fn required(name: impl Into<String>, ty: Type) -> Self {
        Self::new(name, ty, Mode::Required)
    }

    pub fn optional(name: impl Into<String>, ty: Type) -> Self {
        Self::new(name, ty, Mode::Optional)
    }

    pub fn computed(name: impl Into<String>, ty: Type) -> Self {
        Self::new(name, ty, Mode::Computed)
    }

    pub fn optional_computed(name: impl Into<String>, ty: Type) -> Self {
        Self::new(name, ty, Mode::OptionalComputed)
    }

    /// Markdown.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    #[must_use]
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecated = Some(message.into());
        self
    }

    #[must_use]
    pub fn modifier(mut self, modifier: PlanModifier) -> Self {
        self.modifiers.push(modifier);
        self
    }

    #[must_use]
    pub fn validator(mut self, validator: Validator) -> Self {
        self.validators.push(validator);
        self
    }

    pub fn is_computed(&self) -> bool {
        matches!(self.mode, Mode::Computed | Mode::OptionalComputed)
    }

    pub fn is_settable(&self) -> bool {
        !matches!(self.mode, Mode::Computed)
    }

    pub fn has_modifier(&self, modifier: PlanModifier) -> bool {
        self.modifiers.contains(&modifier)
    }
}

/// Reusable plan behaviour of an attribute, applied by the generic planner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanModifier {
    /// A change of this attribute replaces the resource.
    RequiresReplace,
    /// A computed attribute keeps its prior value on update instead of becoming unknown.
    UseStateForUnknown,
}

impl PlanModifier {
    pub fn description(self) -> &'static str {
        match self {
            PlanModifier::RequiresReplace => "Changing this value replaces the resource.",
            PlanModifier::UseStateForUnknown => "Keeps its value across updates.",
        }
    }
}

type CheckFn = dyn Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync;

/// A check of one known, non-null attribute value, run at validation time. The
/// description ends up in the docs.
#[derive(Clone)]
pub struct Validator {
    pub description: String,
    check: Arc<CheckFn>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator").field("description", &self.description).finish()
    }
}

impl Validator {
    pub fn new(
        description: impl Into<String>,
        check: impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static,
    ) -> Self {
        Self { description: description.into(), check: Arc::new(check) }
    }

    pub fn check(&self, value: &Value, path: &AttributePath, diagnostics: &mut Diagnostics) {
        (self.check)(value, path, diagnostics);
    }
}

/// Validators that most schemas need.
pub mod validators {
    use super::Validator;
    use crate::value::Value;

    /// The string is one of `allowed`.
    pub fn one_of(allowed: &'static [&'static str]) -> Validator {
        let list = allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
        Validator::new(format!("One of {list}."), move |value, path, diags| {
            if let Value::String(s) = value
                && !allowed.contains(&s.as_str())
            {
                diags.error_at(
                    path.clone(),
                    "Invalid Value",
                    format!("{path} must be one of {}, got {s:?}", allowed.join(", ")),
                );
            }
        })
    }

    /// A whole number within `min..=max`.
    pub fn int_between(min: i64, max: i64) -> Validator {
        Validator::new(format!("Between {min} and {max}."), move |value, path, diags| {
            if let Value::Number(n) = value {
                match n.to_i64() {
                    Some(i) if (min..=max).contains(&i) => {}
                    _ => diags.error_at(
                        path.clone(),
                        "Value Out Of Range",
                        format!("{path} must be a whole number between {min} and {max}, got {n}"),
                    ),
                }
            }
        })
    }

    /// A list with at least one element, none of them a blank string.
    pub fn non_empty_list() -> Validator {
        Validator::new("At least one element.", |value, path, diags| {
            if let Value::List(items) = value {
                if items.is_empty() {
                    diags.error_at(path.clone(), "Empty List", format!("{path} needs at least one element"));
                }
                for (i, item) in items.iter().enumerate() {
                    if item.as_str().is_some_and(|s| s.trim().is_empty()) {
                        let at = path.clone().push_index(i as i64);
                        diags.error_at(at.clone(), "Empty Value", format!("{at} must not be empty"));
                    }
                }
            }
        })
    }

    /// A non-empty string.
    pub fn not_empty() -> Validator {
        Validator::new("Not empty.", |value, path, diags| {
            if let Value::String(s) = value
                && s.trim().is_empty()
            {
                diags.error_at(path.clone(), "Empty Value", format!("{path} must not be empty"));
            }
        })
    }

    /// A Go-style duration such as `90s`, `10m` or `1h30m`.
    pub fn duration() -> Validator {
        Validator::new("A duration such as `30s`, `10m` or `1h30m`.", |value, path, diags| {
            if let Value::String(s) = value
                && let Err(e) = crate::duration::parse(s)
            {
                diags.error_at(path.clone(), "Invalid Duration", format!("{path}: {e}"));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[test]
    fn timeouts_block_reads_per_operation_limits() {
        let block = Block::new("r").timeouts(&[("create", "10m"), ("delete", "5m")]);
        let timeouts = block.find_block("timeouts").expect("timeouts block");
        assert_eq!(timeouts.nesting, Nesting::Single);
        assert!(timeouts.block.find_attribute("create").is_some());

        let config = Value::Object(BTreeMap::from([(
            "timeouts".to_owned(),
            Value::Object(BTreeMap::from([
                ("create".to_owned(), Value::String("90s".into())),
                ("delete".to_owned(), Value::Null),
            ])),
        )]));
        let default = Duration::from_secs(600);
        assert_eq!(timeout(&config, "create", default), Duration::from_secs(90));
        assert_eq!(timeout(&config, "delete", default), default);
        assert_eq!(timeout(&Value::Null, "create", default), default);
    }

    #[test]
    fn value_type_follows_nesting() {
        let block = Block::new("r").attribute(Attribute::required("name", Type::String)).block(
            NestedBlock::list("rule", Block::new("x").attribute(Attribute::optional("port", Type::Number))),
        );
        let expected = Type::object([
            ("name", Type::String),
            ("rule", Type::list(Type::object([("port", Type::Number)]))),
        ]);
        assert_eq!(block.value_type(), expected);
    }
}
