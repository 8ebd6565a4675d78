//! A small HCL2 writer whose output is already in `packer fmt` style: two-space
//! indentation, and the `=` of consecutive one-line attributes aligned, as hclwrite
//! does (a block, a blank line, a comment or a multi-line value ends the run).

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text, escaped on output (`"`, `\`, `${`, `%{`).
    Lit(String),
    /// An interpolated expression, written as `${expr}`.
    Interp(String),
}

/// An expression on the right of `=`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Template(Vec<Part>),
    /// A reference written as is, e.g. `var.commit` or `string`.
    Ref(String),
    Bool(bool),
    Int(i64),
    List(Vec<Expr>),
    /// A list written one item per line (each followed by a comma).
    Lines(Vec<Expr>),
    /// Written one entry per line, in the given order.
    Object(Vec<(String, Expr)>),
    /// `condition ? then : otherwise`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Attr(String, Expr),
    Block(Block),
    Blank,
    Comment(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Block {
    pub kind: String,
    pub labels: Vec<String>,
    pub body: Vec<Item>,
}

impl Block {
    pub fn new(kind: &str, labels: &[&str]) -> Self {
        Block {
            kind: kind.to_owned(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            body: Vec::new(),
        }
    }
    pub fn attr(mut self, key: &str, value: Expr) -> Self {
        self.body.push(Item::Attr(key.to_owned(), value));
        self
    }
    pub fn block(mut self, block: Block) -> Self {
        self.body.push(Item::Block(block));
        self
    }
    pub fn blank(mut self) -> Self {
        self.body.push(Item::Blank);
        self
    }
}

/// Renders a file body (top-level items) to text ending in one newline.
pub fn render(items: &[Item]) -> String {
    let mut out = String::new();
    body(items, 0, &mut out);
    out
}

fn indent(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n("  ", depth));
}

/// Items are aligned in runs of one-line attributes.
fn body(items: &[Item], depth: usize, out: &mut String) {
    let mut i = 0;
    while i < items.len() {
        let run_end = items[i..]
            .iter()
            .position(|item| !matches!(item, Item::Attr(_, v) if one_line(v)))
            .map_or(items.len(), |n| i + n);
        if run_end > i {
            let entries: Vec<(String, &Expr)> = items[i..run_end]
                .iter()
                .filter_map(|item| match item {
                    Item::Attr(k, v) => Some((k.clone(), v)),
                    _ => None,
                })
                .collect();
            aligned(&entries, depth, out);
            i = run_end;
            continue;
        }
        match &items[i] {
            Item::Attr(key, value) => {
                indent(out, depth);
                out.push_str(key);
                out.push_str(" = ");
                expr(value, depth, out);
                out.push('\n');
            }
            Item::Block(block) => {
                indent(out, depth);
                out.push_str(&block.kind);
                for label in &block.labels {
                    out.push(' ');
                    string(label, out);
                }
                if block.body.is_empty() {
                    out.push_str(" {}\n");
                } else {
                    out.push_str(" {\n");
                    body(&block.body, depth + 1, out);
                    indent(out, depth);
                    out.push_str("}\n");
                }
            }
            Item::Blank => out.push('\n'),
            Item::Comment(text) => {
                for line in text.lines() {
                    indent(out, depth);
                    out.push_str("# ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        i += 1;
    }
}

fn aligned(entries: &[(String, &Expr)], depth: usize, out: &mut String) {
    let width = entries.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (key, value) in entries {
        indent(out, depth);
        out.push_str(key);
        out.extend(std::iter::repeat_n(' ', width - key.chars().count()));
        out.push_str(" = ");
        expr(value, depth, out);
        out.push('\n');
    }
}

fn one_line(value: &Expr) -> bool {
    match value {
        Expr::Object(entries) => entries.is_empty(),
        Expr::List(items) => items.iter().all(one_line),
        Expr::Lines(items) => items.is_empty(),
        Expr::Cond(c, t, e) => one_line(c) && one_line(t) && one_line(e),
        _ => true,
    }
}

/// An object key: bare when it is an identifier, else a quoted string.
fn object_key(key: &str) -> String {
    let mut chars = key.chars();
    let ident = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ident {
        key.to_owned()
    } else {
        let mut quoted = String::new();
        string(key, &mut quoted);
        quoted
    }
}

fn expr(value: &Expr, depth: usize, out: &mut String) {
    match value {
        Expr::Str(s) => string(s, out),
        Expr::Template(parts) => {
            out.push('"');
            for part in parts {
                match part {
                    Part::Lit(s) => escape(s, out),
                    Part::Interp(e) => {
                        out.push_str("${");
                        out.push_str(e);
                        out.push('}');
                    }
                }
            }
            out.push('"');
        }
        Expr::Ref(r) => out.push_str(r),
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Int(n) => out.push_str(&n.to_string()),
        Expr::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                expr(item, depth, out);
            }
            out.push(']');
        }
        Expr::Lines(items) if items.is_empty() => out.push_str("[]"),
        Expr::Lines(items) => {
            out.push_str("[\n");
            for item in items {
                indent(out, depth + 1);
                expr(item, depth + 1, out);
                out.push_str(",\n");
            }
            indent(out, depth);
            out.push(']');
        }
        Expr::Cond(condition, then, otherwise) => {
            expr(condition, depth, out);
            out.push_str(" ? ");
            expr(then, depth, out);
            out.push_str(" : ");
            expr(otherwise, depth, out);
        }
        Expr::Object(entries) if entries.is_empty() => out.push_str("{}"),
        Expr::Object(entries) => {
            out.push_str("{\n");
            let items: Vec<Item> =
                entries.iter().map(|(k, v)| Item::Attr(object_key(k), v.clone())).collect();
            body(&items, depth + 1, out);
            indent(out, depth);
            out.push('}');
        }
    }
}

fn string(s: &str, out: &mut String) {
    out.push('"');
    escape(s, out);
    out.push('"');
}

/// HCL string escapes; `${` and `%{` are doubled so they stay literal.
fn escape(s: &str, out: &mut String) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_runs_of_one_line_attributes_only() {
        let block = Block::new("source", &["amazon-ebs", "web"])
            .attr("region", Expr::Str("eu-west-1".into()))
            .attr("ami_name", Expr::Str("web-{{timestamp}}".into()))
            .attr("tags", Expr::Object(vec![("Name".into(), Expr::Str("Web".into()))]))
            .attr("owners", Expr::List(vec![Expr::Str("self".into())]))
            .block(Block::new("x", &[]).attr("a", Expr::Bool(true)));
        let text = render(&[Item::Block(block)]);
        assert_eq!(
            text,
            "source \"amazon-ebs\" \"web\" {\n  region   = \"eu-west-1\"\n  ami_name = \"web-{{timestamp}}\"\n  \
             tags = {\n    Name = \"Web\"\n  }\n  owners = [\"self\"]\n  x {\n    a = true\n  }\n}\n"
        );
    }

    #[test]
    fn lists_one_item_a_line_and_conditionals() {
        let text = render(&[
            Item::Attr("a".into(), Expr::Str("x".into())),
            Item::Attr("inline".into(), Expr::Lines(vec![Expr::Str("one".into()), Expr::Str("two".into())])),
            Item::Attr(
                "long_name".into(),
                Expr::Cond(
                    Box::new(Expr::Ref("var.x != \"\"".into())),
                    Box::new(Expr::Ref("var.x".into())),
                    Box::new(Expr::Template(vec![Part::Interp("path.root".into()), Part::Lit("/y".into())])),
                ),
            ),
            Item::Attr("b".into(), Expr::Bool(true)),
        ]);
        assert_eq!(
            text,
            "a = \"x\"\ninline = [\n  \"one\",\n  \"two\",\n]\nlong_name = var.x != \"\" ? var.x : \"${path.root}/y\"\nb         = true\n"
        );
    }

    #[test]
    fn numbers_and_calls_are_written_bare() {
        let block = Block::new("metadata_options", &[])
            .attr("http_tokens", Expr::Str("required".into()))
            .attr("http_put_response_hop_limit", Expr::Int(1))
            .attr("deprecate_at", Expr::Ref("timeadd(timestamp(), \"24h\")".into()));
        assert_eq!(
            render(&[Item::Block(block)]),
            "metadata_options {\n  http_tokens                 = \"required\"\n  \
             http_put_response_hop_limit = 1\n  deprecate_at                = timeadd(timestamp(), \"24h\")\n}\n"
        );
    }

    #[test]
    fn escapes_template_sequences_and_quotes_odd_keys() {
        let text = render(&[Item::Attr(
            "x".into(),
            Expr::Object(vec![
                ("tag:Layer".into(), Expr::Str("a\"b\\c ${d} %{e} $f".into())),
                (
                    "ok_key".into(),
                    Expr::Template(vec![Part::Interp("path.root".into()), Part::Lit("/a".into())]),
                ),
            ]),
        )]);
        assert_eq!(
            text,
            "x = {\n  \"tag:Layer\" = \"a\\\"b\\\\c $${d} %%{e} $f\"\n  ok_key      = \"${path.root}/a\"\n}\n"
        );
    }
}
