//! Attribute paths: where in a configuration, plan or state a value lives.

use std::fmt;

/// One step of an [`AttributePath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// An attribute (or nested block) of an object.
    Attr(String),
    /// An element of a map, by key.
    Key(String),
    /// An element of a list or tuple, by index (sets are addressed by the set itself).
    Index(i64),
}

/// A path from the root of a schema's object to one value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributePath {
    pub steps: Vec<Step>,
}

impl AttributePath {
    pub fn root() -> Self {
        Self::default()
    }

    /// A path of one attribute: `AttributePath::attr("region")`.
    pub fn attr(name: impl Into<String>) -> Self {
        Self { steps: vec![Step::Attr(name.into())] }
    }

    pub fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    #[must_use]
    pub fn push_attr(mut self, name: impl Into<String>) -> Self {
        self.steps.push(Step::Attr(name.into()));
        self
    }

    #[must_use]
    pub fn push_key(mut self, key: impl Into<String>) -> Self {
        self.steps.push(Step::Key(key.into()));
        self
    }

    #[must_use]
    pub fn push_index(mut self, index: i64) -> Self {
        self.steps.push(Step::Index(index));
        self
    }

    /// The same path with one more step.
    #[must_use]
    pub fn child(&self, step: Step) -> Self {
        let mut steps = self.steps.clone();
        steps.push(step);
        Self { steps }
    }
}

impl From<&str> for AttributePath {
    /// A dotted path of attribute names: `"rollout.health_timeout"`.
    fn from(dotted: &str) -> Self {
        Self {
            steps: dotted.split('.').filter(|s| !s.is_empty()).map(|s| Step::Attr(s.to_owned())).collect(),
        }
    }
}

impl fmt::Display for AttributePath {
    /// HCL-like rendering: `rollout.health_timeout`, `tags["Name"]`, `subnet_ids[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return f.write_str("(root)");
        }
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Attr(name) if i == 0 => f.write_str(name)?,
                Step::Attr(name) => write!(f, ".{name}")?,
                Step::Key(key) => write!(f, "[{key:?}]")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_hcl() {
        let path = AttributePath::attr("tags").push_key("Name");
        assert_eq!(path.to_string(), r#"tags["Name"]"#);
        let path = AttributePath::from("rollout.health_timeout");
        assert_eq!(path.to_string(), "rollout.health_timeout");
        assert_eq!(AttributePath::attr("subnet_ids").push_index(2).to_string(), "subnet_ids[2]");
        assert_eq!(AttributePath::root().to_string(), "(root)");
    }
}
