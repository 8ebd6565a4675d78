//! Schemas: what a provider, resource or data source accepts and returns.
//!
//! Built with small chained constructors; the descriptions given here feed both
//! Terraform (which shows them in `terraform providers schema`) and the generated docs.

use crate::diag::Diagnostics;
use crate::path::AttributePath;
use crate::value::{Type, Val, Value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
    /// Checks across this block's attributes and nested blocks.
    pub validators: Vec<BlockValidator>,
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

    /// Adds a check across this block's attributes and nested blocks (see
    /// [`validators::conflicting`] and [`validators::exactly_one_of`]).
    #[must_use]
    pub fn validator(mut self, validator: impl Into<BlockValidator>) -> Self {
        self.validators.push(validator.into());
        self
    }

    /// Adds the conventional `timeouts` block with one optional duration per operation,
    /// documented with its default. A model reads it as [`Timeouts`].
    #[must_use]
    pub fn timeouts(self, defaults: &[(&str, Duration)]) -> Self {
        let mut inner = Block::new("Per-operation time limits, as Go durations (`30s`, `10m`, `1h30m`).");
        for (operation, default) in defaults {
            inner = inner.attribute(
                Attribute::optional(*operation, Type::String)
                    .description(format!(
                        "Time limit for {operation} (default `{}`).",
                        crate::duration::format(*default)
                    ))
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

/// The `timeouts` block (see [`Block::timeouts`]) in a resource's model. Its operations
/// are those the schema declares; the others stay null.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    #[serde(default, skip_serializing_if = "Val::is_null")]
    pub create: Val<String>,
    #[serde(default, skip_serializing_if = "Val::is_null")]
    pub read: Val<String>,
    #[serde(default, skip_serializing_if = "Val::is_null")]
    pub update: Val<String>,
    #[serde(default, skip_serializing_if = "Val::is_null")]
    pub delete: Val<String>,
}

impl Timeouts {
    /// The time limit for `operation`: the block's value when set, else its default among
    /// `defaults` (the list given to [`Block::timeouts`]), else `fallback`.
    ///
    /// Terraform sends no configuration with a destroy: read a delete timeout from the prior
    /// state, where the configuration of the last apply was kept.
    pub fn limit(timeouts: &Val<Timeouts>, operation: &str, defaults: &[(&str, Duration)]) -> Duration {
        let set = timeouts.known().and_then(|t| match operation {
            "create" => t.create.known(),
            "read" => t.read.known(),
            "update" => t.update.known(),
            "delete" => t.delete.known(),
            _ => None,
        });
        set.and_then(|text| crate::duration::parse(text).ok())
            .or_else(|| defaults.iter().find(|(name, _)| *name == operation).map(|(_, d)| *d))
            .unwrap_or(Duration::from_secs(20 * 60))
    }
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

type BlockCheckFn = dyn Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync;

/// A check across the attributes and nested blocks of one block, run at validation with
/// the block's known, non-null value and its path. The description ends up in the docs.
#[derive(Clone)]
pub struct BlockValidator {
    pub description: String,
    check: Arc<BlockCheckFn>,
}

impl fmt::Debug for BlockValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockValidator").field("description", &self.description).finish()
    }
}

impl BlockValidator {
    pub fn new(
        description: impl Into<String>,
        check: impl Fn(&Value, &AttributePath, &mut Diagnostics) + Send + Sync + 'static,
    ) -> Self {
        Self { description: description.into(), check: Arc::new(check) }
    }

    pub fn check(&self, block: &Value, path: &AttributePath, diagnostics: &mut Diagnostics) {
        (self.check)(block, path, diagnostics);
    }
}

/// Validators that most schemas need.
pub mod validators {
    use super::{BlockValidator, Validator};
    use crate::diag::Diagnostics;
    use crate::path::AttributePath;
    use crate::value::Value;

    /// Members of a block (attributes or nested blocks) that go together in a fixed way:
    /// see [`conflicting`] and [`exactly_one_of`]. A member counts as set when it is not
    /// null; a value not yet known counts as set, since the configuration writes it.
    #[derive(Clone, Debug)]
    pub struct Combination {
        members: Vec<String>,
        required: bool,
        at: Option<String>,
        conflict: (String, String),
        missing: (String, String),
    }

    /// At most one of `members` may be set.
    pub fn conflicting(members: &[&str]) -> Combination {
        combination(members, false)
    }

    /// Exactly one of `members` must be set.
    pub fn exactly_one_of(members: &[&str]) -> Combination {
        combination(members, true)
    }

    fn combination(members: &[&str], required: bool) -> Combination {
        let members: Vec<String> = members.iter().map(|m| (*m).to_owned()).collect();
        let list = members.join(" and ");
        Combination {
            conflict: (
                "Conflicting Arguments".to_owned(),
                format!("{list} cannot be set together: choose one"),
            ),
            missing: ("Missing Argument".to_owned(), format!("set one of {list}")),
            members,
            required,
            at: None,
        }
    }

    impl Combination {
        /// The member the diagnostics point at. By default a conflict points at the last
        /// member set and a missing one at the first member; Terraform shows the source
        /// line of an attribute, not of a block, so point at an attribute where one is involved.
        #[must_use]
        pub fn at(mut self, member: &str) -> Self {
            self.at = Some(member.to_owned());
            self
        }

        /// The summary and detail when more than one member is set.
        #[must_use]
        pub fn on_conflict(mut self, summary: &str, detail: &str) -> Self {
            self.conflict = (summary.to_owned(), detail.to_owned());
            self
        }

        /// The summary and detail when an exactly-one-of has none set.
        #[must_use]
        pub fn on_missing(mut self, summary: &str, detail: &str) -> Self {
            self.missing = (summary.to_owned(), detail.to_owned());
            self
        }

        fn check(&self, block: &Value, path: &AttributePath, diags: &mut Diagnostics) {
            let set: Vec<&String> =
                self.members.iter().filter(|m| block.attr(m).is_some_and(|v| !v.is_null())).collect();
            let at = |default: Option<&String>| {
                let member = self.at.as_ref().or(default).cloned().unwrap_or_default();
                path.clone().push_attr(member)
            };
            if set.len() > 1 {
                let (summary, detail) = &self.conflict;
                diags.error_at(at(set.last().copied()), summary.clone(), detail.clone());
            } else if set.is_empty() && self.required {
                let (summary, detail) = &self.missing;
                diags.error_at(at(self.members.first()), summary.clone(), detail.clone());
            }
        }

        fn description(&self) -> String {
            let names: Vec<String> = self.members.iter().map(|m| format!("`{m}`")).collect();
            let list = names.join(" and ");
            if self.required { format!("Exactly one of {list}.") } else { format!("At most one of {list}.") }
        }
    }

    impl From<Combination> for BlockValidator {
        fn from(combination: Combination) -> Self {
            let description = combination.description();
            BlockValidator::new(description, move |block, path, diags| combination.check(block, path, diags))
        }
    }

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

    #[test]
    fn timeouts_block_reads_per_operation_limits() {
        let defaults = [("create", Duration::from_secs(600)), ("delete", Duration::from_secs(300))];
        let block = Block::new("r").timeouts(&defaults);
        let timeouts = block.find_block("timeouts").expect("timeouts block");
        assert_eq!(timeouts.nesting, Nesting::Single);
        let create = timeouts.block.find_attribute("create").expect("create");
        assert!(create.description.contains("(default `10m`)"), "{}", create.description);
        assert!(timeouts.block.find_attribute("update").is_none());

        let value = Value::Object(BTreeMap::from([
            ("create".to_owned(), Value::String("90s".into())),
            ("delete".to_owned(), Value::Null),
        ]));
        let model: Val<Timeouts> = crate::value::from_value(&value).expect("decodes");
        assert_eq!(Timeouts::limit(&model, "create", &defaults), Duration::from_secs(90));
        assert_eq!(Timeouts::limit(&model, "delete", &defaults), Duration::from_secs(300));
        assert_eq!(Timeouts::limit(&Val::Null, "create", &defaults), Duration::from_secs(600));
        let encoded = crate::value::to_value(&model, &timeouts.value_type()).expect("encodes");
        assert_eq!(encoded, value, "operations the block does not declare are left out");
    }

    #[test]
    fn combinations_point_at_the_member() {
        let block = Block::new("r")
            .attribute(Attribute::optional("a", Type::String))
            .attribute(Attribute::optional("b", Type::String))
            .block(NestedBlock::single("c", Block::new("c")))
            .validator(validators::conflicting(&["a", "b"]));
        let object = |a: Value, b: Value, c: Value| {
            Value::Object(BTreeMap::from([("a".to_owned(), a), ("b".to_owned(), b), ("c".to_owned(), c)]))
        };
        let run = |validator: BlockValidator, value: &Value| {
            let mut diags = Diagnostics::new();
            validator.check(value, &AttributePath::root().push_attr("x"), &mut diags);
            diags
                .iter()
                .map(|d| (d.summary.clone(), d.attribute.as_ref().map(ToString::to_string)))
                .collect::<Vec<_>>()
        };
        let set = Value::String("v".into());
        let both = object(set.clone(), Value::unknown(), Value::Null);
        let conflicting: BlockValidator = validators::conflicting(&["a", "b"]).into();
        assert_eq!(conflicting.description, "At most one of `a` and `b`.");
        assert_eq!(
            run(conflicting.clone(), &both),
            [("Conflicting Arguments".to_owned(), Some("x.b".to_owned()))],
            "an unknown value counts as set"
        );
        let none = object(Value::Null, Value::Null, Value::Null);
        assert!(run(conflicting, &none).is_empty());
        let mut diags = Diagnostics::new();
        crate::engine::validate_block(&block, &both, &AttributePath::root(), &mut diags);
        assert_eq!(
            diags.iter().map(|d| d.attribute.clone()).collect::<Vec<_>>(),
            [Some(AttributePath::attr("b"))]
        );
        let one: BlockValidator =
            validators::exactly_one_of(&["a", "c"]).at("a").on_missing("Missing Thing", "set a or c").into();
        assert_eq!(run(one.clone(), &none), [("Missing Thing".to_owned(), Some("x.a".to_owned()))]);
        let with_block = object(set, Value::Null, Value::Object(BTreeMap::new()));
        assert_eq!(
            run(one.clone(), &with_block),
            [("Conflicting Arguments".to_owned(), Some("x.a".to_owned()))]
        );
        assert!(run(one, &object(Value::Null, Value::Null, Value::Object(BTreeMap::new()))).is_empty());
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
