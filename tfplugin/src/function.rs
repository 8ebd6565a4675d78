//! Provider-defined functions (Terraform 1.8 and later), called in a configuration as
//! `provider::<provider>::<name>(arguments...)`.

use crate::provider::Context;
use crate::value::{Type, Value};
use async_trait::async_trait;

/// One parameter of a function.
#[derive(Clone, Debug)]
pub struct Parameter {
    pub name: String,
    pub ty: Type,
    /// Markdown.
    pub description: String,
    /// Whether the function takes null here (else Terraform refuses the call).
    pub allow_null: bool,
    /// Whether the function takes a value not yet known here (else Terraform waits for it).
    pub allow_unknown: bool,
}

impl Parameter {
    pub fn new(name: impl Into<String>, ty: Type, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ty,
            description: description.into(),
            allow_null: false,
            allow_unknown: false,
        }
    }
}

/// What a function takes and returns, and what it is for (shown by Terraform and in the
/// docs).
#[derive(Clone, Debug)]
pub struct Signature {
    /// One line.
    pub summary: String,
    /// Markdown.
    pub description: String,
    pub parameters: Vec<Parameter>,
    /// Takes any number of further arguments like this one.
    pub variadic: Option<Parameter>,
    pub returns: Type,
}

/// Why a call failed; `argument` is the index of the argument at fault, if one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionError {
    pub text: String,
    pub argument: Option<usize>,
}

impl FunctionError {
    /// The argument at `index` is the problem.
    pub fn argument(index: usize, text: impl Into<String>) -> Self {
        Self { text: text.into(), argument: Some(index) }
    }
}

#[async_trait]
pub trait Function: Send + Sync + 'static {
    /// The name after `provider::<provider>::`.
    fn name(&self) -> &'static str;

    fn signature(&self) -> Signature;

    /// Computes the result from one value per parameter (then the variadic ones), each
    /// of its parameter's type. Functions are pure: same arguments, same result, no I/O.
    async fn call(&self, ctx: &Context, arguments: &[Value]) -> Result<Value, FunctionError>;
}
