//! The HCL2 templates read back by another HCL parser (hcl-rs) and checked block by
//! block, for both Packer targets. Packer 1.6.6, the one Packer these tests run, cannot
//! load the templates for current Packer, so this is what checks their structure
//! beyond the snapshots' bytes.

use crate::support::{COMMIT, example_dir, fixture, with_packer};
use codegen::layers::Target;
use codegen::{Commit, Format, Layer, Layers};
use hcl::expr::{Expression, ObjectKey};
use hcl::{Block, Body};
use std::collections::BTreeMap;
use std::path::Path;

fn parse(text: &str) -> Body {
    hcl::parse(text).unwrap_or_else(|e| panic!("not HCL: {e}\n{text}"))
}

fn blocks<'a>(body: &'a Body, kind: &str) -> Vec<&'a Block> {
    body.blocks().filter(|b| b.identifier() == kind).collect()
}

fn one<'a>(body: &'a Body, kind: &str) -> &'a Block {
    match blocks(body, kind)[..] {
        [block] => block,
        ref found => panic!("{} `{kind}` blocks, not one", found.len()),
    }
}

fn labels(block: &Block) -> Vec<&str> {
    block.labels().iter().map(|l| l.as_str()).collect()
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn string<'a>(body: &'a Body, key: &str) -> &'a str {
    match attr(body, key) {
        Some(Expression::String(s)) => s,
        other => panic!("{key}: not a string: {other:?}"),
    }
}

/// An object's entries by key (bare or quoted).
fn entries(expr: Option<&Expression>) -> BTreeMap<String, &Expression> {
    let Some(Expression::Object(object)) = expr else { panic!("not an object: {expr:?}") };
    object
        .iter()
        .map(|(key, value)| {
            let key = match key {
                ObjectKey::Identifier(id) => id.as_str().to_owned(),
                ObjectKey::Expression(Expression::String(s)) => s.clone(),
                other => panic!("odd key {other:?}"),
            };
            (key, value)
        })
        .collect()
}

fn is_str(expr: &Expression, expected: &str) -> bool {
    matches!(expr, Expression::String(s) if s == expected)
}

/// `var.commit`, a reference and not a string that looks like one.
fn is_commit_variable(expr: &Expression) -> bool {
    matches!(expr, Expression::Traversal(_)) && expr.to_string() == "var.commit"
}

/// Checks one layer's template against what its layer and the target say.
fn check_template(layers: &Layers, layer: &Layer, fingerprint: &str, text: &str) {
    let body = parse(text);
    let current = layers.target.is_current();

    match &layers.target {
        Target::Packer16 => assert!(blocks(&body, "packer").is_empty(), "{}: a packer block", layer.id),
        Target::Current { required_version } => {
            let packer = one(&body, "packer").body();
            assert_eq!(string(packer, "required_version"), required_version);
            let plugins = one(packer, "required_plugins").body();
            let amazon = entries(attr(plugins, "amazon"));
            assert!(is_str(amazon["source"], "github.com/hashicorp/amazon"), "{amazon:?}");
            assert!(is_str(amazon["version"], codegen::packer::AMAZON_PLUGIN_VERSION), "{amazon:?}");
        }
    }

    let variables: Vec<&str> = blocks(&body, "variable").iter().flat_map(|b| labels(b)).collect();
    for name in ["commit", "parent", "region", "profile", "ec2_endpoint"] {
        assert!(variables.contains(&name), "{}: no variable {name}: {variables:?}", layer.id);
    }
    let commit = blocks(&body, "variable").into_iter().find(|b| labels(b) == ["commit"]).expect("commit");
    assert_eq!(string(commit.body(), "default"), COMMIT);

    let source_block = one(&body, "source");
    assert_eq!(labels(source_block), ["amazon-ebs", layer.id.as_str()]);
    let source = source_block.body();
    assert_eq!(string(source, "instance_type"), layer.instance_type);
    assert_eq!(attr(source, "encrypt_boot"), Some(&Expression::Bool(layer.encrypt_boot)));
    let ami_name = attr(source, "ami_name").expect("ami_name").to_string();
    assert!(ami_name.contains(&format!("{}-{{{{timestamp}}}}-${{uuidv4()}}", layer.id)), "{ami_name}");

    let tags = entries(attr(source, "tags"));
    assert!(is_commit_variable(tags["Commit"]), "{}: Commit tag {:?}", layer.id, tags["Commit"]);
    assert!(is_str(tags["Fingerprint"], fingerprint), "{tags:?}");
    assert!(is_str(tags["Layer"], &layer.id), "{tags:?}");
    assert!(is_str(tags["Project"], &layers.project), "{tags:?}");
    assert!(is_str(tags["ManagedBy"], "immutable"), "{tags:?}");
    assert!(is_str(tags["ParentAMI"], "{{ .SourceAMI }}"), "{tags:?}");
    match &layer.parent {
        Some(parent) => assert!(is_str(tags["ParentLayer"], parent), "{tags:?}"),
        None => assert!(!tags.contains_key("ParentLayer"), "{tags:?}"),
    }
    assert_eq!(entries(attr(source, "snapshot_tags")), tags);
    assert!(is_commit_variable(entries(attr(source, "run_tags"))["Commit"]));

    // SSH: the layer's blocks, else (current Packer) this machine's public IP, else
    // Packer 1.6's default.
    let cidrs = attr(source, "temporary_security_group_source_cidrs");
    let public_ip = attr(source, "temporary_security_group_source_public_ip");
    if layer.ssh_source_cidrs.is_empty() {
        assert_eq!(cidrs, None, "{}", layer.id);
        assert_eq!(public_ip, current.then_some(&Expression::Bool(true)), "{}", layer.id);
    } else {
        let listed = layer.ssh_source_cidrs.iter().map(|c| Expression::String(c.clone())).collect();
        assert_eq!(cidrs, Some(&Expression::Array(listed)), "{}", layer.id);
        assert_eq!(public_ip, None, "{}: both SSH settings", layer.id);
    }

    if current {
        assert_eq!(string(source, "imds_support"), "v2.0");
        let metadata = one(source, "metadata_options").body();
        assert_eq!(string(metadata, "http_endpoint"), "enabled");
        assert_eq!(string(metadata, "http_tokens"), "required");
        let hops = attr(metadata, "http_put_response_hop_limit");
        assert!(matches!(hops, Some(Expression::Number(n)) if n.as_u64() == Some(1)), "{hops:?}");
    } else {
        assert_eq!(attr(source, "imds_support"), None);
        assert!(blocks(source, "metadata_options").is_empty());
    }
    match (attr(source, "deprecate_at"), layer.deprecate_after_days) {
        (None, None) => {}
        (Some(Expression::FuncCall(call)), Some(days)) => {
            assert_eq!(call.name.name.as_str(), "timeadd");
            let [Expression::FuncCall(now), Expression::String(hours)] = &call.args[..] else {
                panic!("timeadd({:?})", call.args)
            };
            assert!(now.name.name.as_str() == "timestamp" && now.args.is_empty(), "{now:?}");
            assert_eq!(*hours, format!("{}h", days * 24));
        }
        (found, days) => panic!("{}: deprecate_at {found:?} for {days:?} days", layer.id),
    }

    let build = one(&body, "build").body();
    let sources = attr(build, "sources").expect("sources");
    assert_eq!(
        sources,
        &Expression::Array(vec![Expression::String(format!("source.amazon-ebs.{}", layer.id))])
    );
    let manifest = one(build, "post-processor");
    assert_eq!(labels(manifest), ["manifest"]);
    assert_eq!(string(manifest.body(), "output"), format!("manifest-{}.json", layer.id));
    let custom = entries(attr(manifest.body(), "custom_data"));
    assert!(is_commit_variable(custom["commit"]) && is_str(custom["fingerprint"], fingerprint), "{custom:?}");
    let provisioners = blocks(build, "provisioner").len();
    let agent_steps = if layer.agent.is_some() { 3 } else { 0 };
    assert_eq!(provisioners, layer.provisioners.len() + agent_steps, "{}", layer.id);
}

/// Generates every HCL2 template of `layers_file` and checks each; returns how many.
fn check_all(layers_file: &Path) -> usize {
    let layers = codegen::layers::load(layers_file).expect("loads");
    let fingerprints = codegen::fingerprint::fingerprints(&layers).expect("fingerprints");
    let out = layers_file.parent().expect("folder").join("out");
    let files =
        codegen::generate(&layers, Format::Hcl, &Commit::Given(COMMIT.into()), &out).expect("generate");
    for file in &files {
        let layer = layers.get(&file.layer).expect("a layer");
        check_template(&layers, layer, &fingerprints[&layer.id], &file.text);
    }
    files.len()
}

#[test]
fn templates_for_packer_1_6_parse_as_hcl_with_the_expected_blocks() {
    let mut count = 0;
    for dir in [fixture("minimal"), fixture("edge-cases"), fixture("agent"), example_dir()] {
        let layers_file = dir.join("layers.toml");
        assert_eq!(codegen::layers::load(&layers_file).expect("loads").target, Target::Packer16);
        count += check_all(&layers_file);
    }
    assert_eq!(count, 1 + 3 + 3 + 5);
}

#[test]
fn templates_for_current_packer_parse_as_hcl_with_the_expected_blocks() {
    let current = fixture("current").join("layers.toml");
    let layers = codegen::layers::load(&current).expect("loads");
    let days: Vec<Option<u32>> = layers.layers.iter().map(|l| l.deprecate_after_days).collect();
    assert_eq!(days, [Some(180), Some(30)], "a layer's own days win over the default");
    assert_eq!(check_all(&current), 2);
    // The other fixtures, moved to current Packer as they are.
    for dir in [fixture("minimal"), fixture("edge-cases"), fixture("agent"), example_dir()] {
        let copy = with_packer(&dir, ">= 1.10");
        let layers_file = copy.path().join("layers.toml");
        let target = codegen::layers::load(&layers_file).expect("loads").target;
        assert_eq!(target, Target::Current { required_version: ">= 1.10.0".into() });
        assert!(check_all(&layers_file) > 0);
    }
}
