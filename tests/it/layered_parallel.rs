//! Sibling layers built by Packer at the same time.
//!
//! One parent layer (`base`) and three children of it (`rails`, `jenkins`, `worker`),
//! all built through the provider by the stand-in Packer from templates that write
//! the same manifest file. Terraform builds the three children at once; each run of
//! the stand-in pauses at other points of its build, so that the runs overlap and
//! siblings write the shared manifest while another sibling's Packer still runs.
//! Each apply has a new commit for the children, so all three rebuild, ten times
//! in a row: every apply succeeds and gives each child its own image.

use std::collections::BTreeMap;
use std::time::Instant;

use tests::{LocalAws, Workdir, register_ami, repo_root, stand_in_packer};

const PROJECT: &str = "siblings-test";
const CHILDREN: [&str; 3] = ["rails", "jenkins", "worker"];
const APPLIES: u64 = 10;
/// The parent's commit: it is built on the first apply only.
const BASE_COMMIT: &str = "ba5eba5eba5eba5eba5eba5eba5eba5eba5eba5e";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// The layer template fixture (`tests/fixtures/layered-ami/layer.json`, shaped like
/// the templates `immutable-codegen` writes) for `layer`: its `layer` variable
/// defaults to it.
pub(crate) fn layer_template(layer: &str) -> String {
    let path = repo_root().join("tests/fixtures/layered-ami/layer.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut template: serde_json::Value = serde_json::from_str(&text).expect("layer.json is JSON");
    template["variables"]["layer"] = serde_json::Value::String(layer.to_owned());
    serde_json::to_string_pretty(&template).expect("template JSON")
}

/// The region the layer template builds in unless told otherwise.
pub(crate) fn layer_template_default_region() -> String {
    let template: serde_json::Value = serde_json::from_str(&layer_template("any")).expect("template JSON");
    template["variables"]["region"].as_str().expect("the template declares region").to_owned()
}

/// A child's commit on apply `n`: new on every apply.
fn commit(n: u64) -> String {
    format!("{:040x}", 0xc0de_0000 + n)
}

/// The stand-in Packer: every run records its start, manifest write and end in
/// `bin/timeline.jsonl`; the children's runs pause at different points.
fn overlapping_packer(workdir: &Workdir) -> String {
    stand_in_packer(
        workdir,
        r#"export FAKE_PACKER_TIMELINE="$dir/timeline.jsonl"
case "$(basename "$template")" in
  rails.json) export FAKE_PACKER_PAUSE="launch=0.2,exit=1.2" ;;
  jenkins.json) export FAKE_PACKER_PAUSE="start=0.2,launch=0.4,exit=0.8" ;;
  worker.json) export FAKE_PACKER_PAUSE="launch=0.9,image=0.1,exit=0.4" ;;
esac"#,
    )
}

fn config(packer: &str) -> String {
    let mut tf = format!(
        r#"terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

provider "immutable" {{
  default_tags = {{ Project = "{PROJECT}" }}
}}

variable "commit" {{ type = string }}

resource "immutable_layered_ami" "base" {{
  layer  = "base"
  commit = "{BASE_COMMIT}"
  source {{
    owners = ["self"]
    name   = "upstream-os-*"
  }}
  build {{
    packer_template = "images/base.json"
    command         = "{packer} build"
  }}
}}

output "base" {{ value = immutable_layered_ami.base.ami_id }}
"#
    );
    for child in CHILDREN {
        tf.push_str(&format!(
            r#"
resource "immutable_layered_ami" "{child}" {{
  layer  = "{child}"
  commit = var.commit
  parent = immutable_layered_ami.base.ami_id
  build {{
    packer_template = "images/{child}.json"
    command         = "{packer} build"
  }}
}}

output "{child}" {{ value = immutable_layered_ami.{child}.ami_id }}
"#
        ));
    }
    tf
}

fn output_str(workdir: &Workdir, name: &str) -> String {
    match workdir.output(name).expect("output") {
        serde_json::Value::String(s) => s,
        other => panic!("output {name} is not a string: {other}"),
    }
}

/// Tags of an AMI; empty when there is no such AMI.
async fn image_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> BTreeMap<String, String> {
    let response = ec2.describe_images().image_ids(id).send().await.expect("DescribeImages");
    response
        .images()
        .iter()
        .flat_map(|i| i.tags())
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

/// One finished run of the stand-in, as it recorded it.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    template: String,
    ami: String,
    start: f64,
    manifest: f64,
    end: f64,
}

fn timeline(workdir: &Workdir) -> Vec<Run> {
    let path = workdir.path().join("bin/timeline.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("timeline line");
            let time = |key: &str| record[key].as_f64().unwrap_or_else(|| panic!("{key} in {line}"));
            Run {
                template: record["template"].as_str().expect("template").to_owned(),
                ami: record["ami"].as_str().expect("ami").to_owned(),
                start: time("start"),
                manifest: time("manifest"),
                end: time("end"),
            }
        })
        .collect()
}

/// The AMI id the manifest's newest run names.
fn manifest_newest_ami(workdir: &Workdir) -> String {
    let text = std::fs::read_to_string(workdir.path().join("manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let newest = &manifest["last_run_uuid"];
    let builds = manifest["builds"].as_array().expect("builds");
    let build =
        builds.iter().rev().find(|b| &b["packer_run_uuid"] == newest).expect("the newest run's build");
    let artifact = build["artifact_id"].as_str().expect("artifact_id");
    artifact.split_once(':').map(|(_, ami)| ami.to_owned()).expect("region:ami")
}

#[test]
fn sibling_layers_built_at_once_from_one_manifest_each_get_their_own_image() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let upstream = rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    let workdir = Workdir::new(&account);
    let packer = overlapping_packer(&workdir);
    workdir.write("images/base.json", &layer_template("base"));
    for child in CHILDREN {
        workdir.write(&format!("images/{child}.json"), &layer_template(child));
    }
    workdir.write("main.tf", &config(&packer));
    workdir.init().expect("init");

    let mut base = String::new();
    let mut previous: BTreeMap<&str, String> = BTreeMap::new();
    let mut seconds = Vec::new();
    for n in 1..=APPLIES {
        let commit = commit(n);
        workdir.write("terraform.tfvars", &format!("commit = \"{commit}\"\n"));
        let started = Instant::now();
        let apply = workdir.terraform_with_env(
            &["apply", "-auto-approve", "-no-color", "-input=false"],
            &[("TF_LOG_PROVIDER", "info")],
        );
        seconds.push(started.elapsed().as_secs_f64());
        assert!(apply.success(), "apply {n} of {APPLIES} failed:\n{apply}");

        let built = if n == 1 { 1 + CHILDREN.len() } else { CHILDREN.len() };
        let (from_artifacts, from_manifest) = apply
            .stderr
            .lines()
            .filter(|l| l.contains("Packer built the image"))
            .partition::<Vec<&str>, _>(|l| !l.contains("from its manifest"));
        assert_eq!(
            (from_artifacts.len(), from_manifest.len()),
            (built, 0),
            "apply {n}: every build takes its AMI from its own run's artifacts"
        );
        if n == 1 {
            base = output_str(&workdir, "base");
            let tags = rt.block_on(image_tags(&ec2, &base));
            assert_eq!(tags.get("Layer").map(String::as_str), Some("base"), "{tags:?}");
            assert_eq!(tags.get("ParentAMI"), Some(&upstream), "{tags:?}");
        }
        assert_eq!(output_str(&workdir, "base"), base, "apply {n}: the parent is built once");

        let amis: BTreeMap<&str, String> =
            CHILDREN.iter().map(|child| (*child, output_str(&workdir, child))).collect();
        let mut distinct: Vec<&String> = amis.values().collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), CHILDREN.len(), "apply {n}: the siblings' AMIs are distinct: {amis:?}");
        rt.block_on(async {
            for (child, ami) in &amis {
                assert_ne!(previous.get(child), Some(ami), "apply {n}: {child} was rebuilt");
                let tags = image_tags(&ec2, ami).await;
                let tag = |key: &str| tags.get(key).map(String::as_str);
                assert_eq!(tag("Layer"), Some(*child), "apply {n}: {child}'s AMI {ami}: {tags:?}");
                assert_eq!(tag("Commit"), Some(commit.as_str()), "apply {n}: {child}'s AMI {ami}: {tags:?}");
                assert_eq!(tag("ParentAMI"), Some(base.as_str()), "apply {n}: {child}'s AMI {ami}: {tags:?}");
                assert_eq!(tag("ParentLayer"), Some("base"), "apply {n}: {child}'s AMI {ami}: {tags:?}");
            }
        });

        // The three runs of this apply overlapped, and while one was still running
        // after writing the shared manifest, a sibling wrote it again: read from the
        // manifest, that run's newest build would have been the sibling's image.
        let runs: Vec<Run> =
            timeline(&workdir).into_iter().filter(|r| amis.values().any(|a| *a == r.ami)).collect();
        assert_eq!(runs.len(), CHILDREN.len(), "apply {n}: one run per child: {runs:?}");
        for (child, ami) in &amis {
            let run = runs.iter().find(|r| r.ami == *ami).expect("run");
            assert_eq!(run.template, format!("images/{child}.json"), "apply {n}: {runs:?}");
        }
        let latest_start = runs.iter().map(|r| r.start).fold(f64::MIN, f64::max);
        let earliest_end = runs.iter().map(|r| r.end).fold(f64::MAX, f64::min);
        assert!(latest_start < earliest_end, "apply {n}: the three Packer runs overlap: {runs:?}");
        let overwritten = runs
            .iter()
            .any(|a| runs.iter().any(|b| b.ami != a.ami && a.manifest < b.manifest && b.manifest < a.end));
        assert!(
            overwritten,
            "apply {n}: a sibling wrote the manifest while another run was finishing: {runs:?}"
        );
        let newest = manifest_newest_ami(&workdir);
        assert!(
            amis.values().any(|a| *a == newest),
            "apply {n}: the manifest names {newest}, not one of {amis:?}"
        );

        let invocations =
            std::fs::read_to_string(workdir.path().join("bin/invocations.log")).expect("invocations");
        let lines: Vec<&str> = invocations.lines().collect();
        assert_eq!(lines.len(), 1 + CHILDREN.len() * n as usize, "apply {n}: Packer runs: {invocations}");
        let region = format!("-var region={}", account.region);
        assert!(
            lines
                .iter()
                .all(|l| l.starts_with("build -machine-readable -color=false ") && l.contains(&region)),
            "{invocations}"
        );
        previous = amis;
    }
    assert!(!workdir.plan_has_changes().expect("plan"), "the layers are settled");
    let total: f64 = seconds.iter().sum();
    eprintln!(
        "{APPLIES} applies in {total:.1}s: {}",
        seconds.iter().map(|s| format!("{s:.1}s")).collect::<Vec<_>>().join(", ")
    );
}
