//! Documentation in the Terraform Registry's layout (`docs/index.md`,
//! `docs/data-sources/*.md`, `docs/resources/*.md`, `docs/functions/*.md`), rendered
//! from the schemas and function signatures and the examples under `examples/`
//! (`provider/provider.tf`, `data-sources/<type>/data-source.tf`,
//! `resources/<type>/resource.tf`, `functions/<name>/function.tf`, and a resource's
//! `import.tf` and `import.sh`, shown under "Import").
//! `cargo xtask docs` writes it; a test fails when the committed copy is stale.

use crate::ImmutableProvider;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tfplugin::function::Signature;
use tfplugin::provider::Provider;
use tfplugin::schema::{Attribute, Block, Mode, NestedBlock, Nesting, Schema};
use tfplugin::value::Type;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// An example file, or nothing when there is none.
fn example(relative: &str) -> String {
    std::fs::read_to_string(repo_root().join("examples").join(relative)).unwrap_or_default()
}

/// Every page: (path relative to the repository root, content).
pub fn pages() -> Vec<(String, String)> {
    let provider = ImmutableProvider::default();
    let mut pages = vec![(
        "docs/index.md".to_owned(),
        page(
            "Provider: immutable",
            "immutable Provider",
            &provider.schema(),
            &example("provider/provider.tf"),
        ),
    )];
    for data_source in provider.data_sources() {
        let name = data_source.type_name();
        let short = name.trim_start_matches("immutable_");
        pages.push((
            format!("docs/data-sources/{short}.md"),
            page(
                &format!("{name} Data Source - immutable"),
                &format!("{name} (Data Source)"),
                &data_source.schema(),
                &example(&format!("data-sources/{name}/data-source.tf")),
            ),
        ));
    }
    for function in provider.functions() {
        let name = function.name();
        let example = example(&format!("functions/{name}/function.tf"));
        pages.push((
            format!("docs/functions/{name}.md"),
            function_page(name, &function.signature(), &example),
        ));
    }
    for resource in provider.resources() {
        let name = resource.type_name();
        let short = name.trim_start_matches("immutable_");
        pages.push((
            format!("docs/resources/{short}.md"),
            page(
                &format!("{name} Resource - immutable"),
                &format!("{name} (Resource)"),
                &resource.schema(),
                &example(&format!("resources/{name}/resource.tf")),
            ) + &import_section(
                &example(&format!("resources/{name}/import.tf")),
                &example(&format!("resources/{name}/import.sh")),
            ),
        ));
    }
    pages
}

/// How to import a resource: an import block, and the command line.
fn import_section(block: &str, command: &str) -> String {
    if block.trim().is_empty() && command.trim().is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "
## Import

",
    );
    if !block.trim().is_empty() {
        let _ = writeln!(
            out,
            "In Terraform 1.5 and later, with an `import` block:

```terraform
{}
```
",
            block.trim_end()
        );
    }
    if !command.trim().is_empty() {
        let _ = writeln!(
            out,
            "With `terraform import`:

```shell
{}
```",
            command.trim_end()
        );
    }
    out
}

fn page(title: &str, heading: &str, schema: &Schema, example: &str) -> String {
    let description = &schema.block.description;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---\npage_title: \"{title}\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n",
        first_sentence(description)
    );
    let _ = writeln!(out, "# {heading}\n\n{description}\n");
    if !example.trim().is_empty() {
        let _ = writeln!(out, "## Example Usage\n\n```terraform\n{}\n```\n", example.trim_end());
    }
    out.push_str("## Schema\n");
    let mut nested = Vec::new();
    render_block(&mut out, &schema.block, "", &mut nested);
    while !nested.is_empty() {
        let sections = std::mem::take(&mut nested);
        for (anchor, title, block) in sections {
            let _ = write!(out, "\n<a id=\"{anchor}\"></a>\n### Nested Schema for `{title}`\n");
            render_block(&mut out, &block, &format!("{title}."), &mut nested);
        }
    }
    out
}

fn function_page(name: &str, signature: &Signature, example: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---\npage_title: \"{name} function - immutable\"\nsubcategory: \"\"\ndescription: |-\n  {}\n---\n",
        signature.summary
    );
    let _ = writeln!(out, "# function: {name}\n\n{}\n", signature.description);
    if !example.trim().is_empty() {
        let _ = writeln!(out, "## Example Usage\n\n```terraform\n{}\n```\n", example.trim_end());
    }
    let parameters: Vec<String> = signature
        .parameters
        .iter()
        .map(|p| format!("{} {}", p.name, type_name(&p.ty).to_lowercase()))
        .collect();
    let _ = writeln!(
        out,
        "## Signature\n\n```text\n{name}({}) {}\n```\n",
        parameters.join(", "),
        type_name(&signature.returns).to_lowercase()
    );
    out.push_str("## Arguments\n\n");
    for (i, parameter) in signature.parameters.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. `{}` ({}) {}",
            i + 1,
            parameter.name,
            type_name(&parameter.ty),
            parameter.description
        );
    }
    out
}

fn first_sentence(text: &str) -> &str {
    text.split_once(". ").map_or(text, |(first, _)| first)
}

type Nested = Vec<(String, String, Block)>;

fn render_block(out: &mut String, block: &Block, prefix: &str, nested: &mut Nested) {
    // Rules across the block's arguments ("Exactly one of `parent` and `source`.").
    for validator in &block.validators {
        let _ = write!(out, "\n{}\n", validator.description);
    }
    let groups = [
        ("Required", &[Mode::Required][..]),
        ("Optional", &[Mode::Optional, Mode::OptionalComputed][..]),
        ("Read-Only", &[Mode::Computed][..]),
    ];
    for (heading, modes) in groups {
        let attributes: Vec<&Attribute> =
            block.attributes.iter().filter(|a| modes.contains(&a.mode)).collect();
        let blocks: Vec<&NestedBlock> =
            if heading == "Optional" { block.blocks.iter().collect() } else { Vec::new() };
        if attributes.is_empty() && blocks.is_empty() {
            continue;
        }
        let _ = write!(out, "\n### {heading}\n\n");
        for attribute in attributes {
            let mut line = format!("- `{}` ({})", attribute.name, type_name(&attribute.ty));
            if attribute.sensitive {
                line.push_str(", Sensitive");
            }
            let text = describe(attribute);
            if !text.is_empty() {
                let _ = write!(line, " {text}");
            }
            if let Some(object) = object_of(&attribute.ty) {
                let anchor = format!("nestedatt--{prefix}{}", attribute.name).replace('.', "--");
                let _ = write!(line, " (see [below for nested schema](#{anchor}))");
                nested.push((anchor, format!("{prefix}{}", attribute.name), object));
            }
            let _ = writeln!(out, "{line}");
        }
        for b in blocks {
            let anchor = format!("nestedblock--{prefix}{}", b.name).replace('.', "--");
            let nesting = match b.nesting {
                Nesting::Single | Nesting::Group => "Block",
                Nesting::List => "Block List",
                Nesting::Set => "Block Set",
                Nesting::Map => "Block Map",
            };
            let _ = writeln!(
                out,
                "- `{}` ({nesting}) {} (see [below for nested schema](#{anchor}))",
                b.name, b.block.description
            );
            nested.push((anchor, format!("{prefix}{}", b.name), b.block.clone()));
        }
    }
}

fn describe(attribute: &Attribute) -> String {
    let mut parts = vec![attribute.description.clone()];
    parts.extend(attribute.validators.iter().map(|v| v.description.clone()));
    parts.extend(attribute.modifiers.iter().map(|m| m.description().to_owned()));
    if let Some(message) = &attribute.deprecated {
        parts.push(format!("**Deprecated:** {message}"));
    }
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// The attributes of an object-typed attribute (or collection of objects), as a block
/// of read-only attributes for rendering.
fn object_of(ty: &Type) -> Option<Block> {
    match ty {
        Type::List(inner) | Type::Set(inner) | Type::Map(inner) => object_of(inner),
        Type::Object { attrs, .. } => Some(Block {
            attributes: attrs
                .iter()
                .map(|(name, ty)| Attribute::computed(name.clone(), ty.clone()))
                .collect(),
            ..Block::default()
        }),
        _ => None,
    }
}

fn type_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "Boolean".into(),
        Type::Number => "Number".into(),
        Type::String => "String".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(inner) => format!("List of {}", type_name(inner)),
        Type::Set(inner) => format!("Set of {}", type_name(inner)),
        Type::Map(inner) => format!("Map of {}", type_name(inner)),
        Type::Object { .. } => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

#[cfg(test)]
mod tests {
    /// The committed docs must be what `cargo xtask docs` renders now.
    #[test]
    fn committed_docs_are_current() {
        let root = super::repo_root();
        let mut stale = Vec::new();
        for (path, content) in super::pages() {
            let on_disk = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
            if on_disk != content {
                stale.push(path);
            }
        }
        assert!(stale.is_empty(), "stale docs (run `cargo xtask docs`): {stale:?}");
    }
}
