//! A child layer builds only from an AMI of its parent layer, as on AWS: real
//! Terraform, real provider, real Packer (`packer build`, `$PACKER` or `packer` on the
//! path) against the emulator.
//!
//! The child is `rails-base` of examples/images, built from the template
//! immutable-codegen generated for it (examples/images/out/rails-base/packer.json).
//! Its source_ami is the `parent` variable the provider passes, and its
//! source_ami_filter asks for our own available AMI of the parent layer
//! (`Layer = ubuntu-1804`) at the parent's fingerprint. Packer sends the id with the
//! owners and filters in one DescribeImages call, so a parent that does not match
//! finds nothing, and Packer stops before it creates anything. The provider itself
//! only checks that `parent` is an AMI this account can see.
//!
//! Only how Packer reaches the emulator differs from the generated template: the EC2
//! endpoint (`custom_endpoint_ec2`, from `AWS_ENDPOINT_URL`) and no communicator (the
//! emulator runs no instance to connect to), hence no provisioners.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{DeviceType, Filter, InstanceType, Tag};
use serde_json::json;
use tests::{Account, LocalAws, Workdir, register_ami, repo_root};

const CHILD_TEMPLATE: &str = "examples/images/out/rails-base/packer.json";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn packer() -> String {
    std::env::var("PACKER").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "packer".to_owned())
}

/// The generated child template, made to reach the emulator, and what it says of
/// its parent and itself.
struct ChildTemplate {
    text: String,
    layer: String,
    fingerprint: String,
    parent_layer: String,
    parent_fingerprint: String,
    description: String,
}

fn child_template() -> ChildTemplate {
    let path = repo_root().join(CHILD_TEMPLATE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut template: serde_json::Value = serde_json::from_str(&text).expect("template JSON");
    let builder = &mut template["builders"][0];
    assert_eq!(builder["source_ami"], json!("{{user `parent`}}"), "{builder}");
    assert_eq!(builder["source_ami_filter"]["owners"], json!(["self"]), "{builder}");
    let field = |value: &serde_json::Value| value.as_str().expect("a string in the template").to_owned();
    let filters = &builder["source_ami_filter"]["filters"];
    assert_eq!(filters["state"], json!("available"), "{builder}");
    let (parent_layer, parent_fingerprint) =
        (field(&filters["tag:Layer"]), field(&filters["tag:Fingerprint"]));
    let (layer, fingerprint) = (field(&builder["tags"]["Layer"]), field(&builder["tags"]["Fingerprint"]));
    let description = field(&builder["ami_description"]);
    builder["custom_endpoint_ec2"] = json!("{{user `endpoint`}}");
    builder["communicator"] = json!("none");
    template["variables"]["endpoint"] = json!("{{env `AWS_ENDPOINT_URL`}}");
    if let Some(fields) = template.as_object_mut() {
        fields.remove("provisioners");
    }
    let text = serde_json::to_string_pretty(&template).expect("template JSON");
    ChildTemplate { text, layer, fingerprint, parent_layer, parent_fingerprint, description }
}

/// An AMI made as a layer build makes it (an instance, then CreateImage), tagged
/// `tags`.
async fn baked_ami(ec2: &aws_sdk_ec2::Client, name: &str, tags: &[(&str, &str)]) -> String {
    let seed = register_ami(ec2, &format!("{name}-seed"), &[]).await.expect("seed image");
    let run = ec2
        .run_instances()
        .image_id(&seed)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    let instance = run.instances()[0].instance_id().expect("instance id").to_owned();
    let ami = ec2.create_image().instance_id(&instance).name(name).send().await.expect("CreateImage");
    let ami = ami.image_id().expect("image id").to_owned();
    ec2.terminate_instances().instance_ids(&instance).send().await.expect("TerminateInstances");
    let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build());
    ec2.create_tags().resources(&ami).set_tags(Some(tags.collect())).send().await.expect("CreateTags");
    ami
}

/// The tags by which a child template's source_ami_filter finds its parent.
fn layer_tags<'a>(layer: &'a str, fingerprint: &'a str) -> [(&'a str, &'a str); 3] {
    [("Layer", layer), ("Fingerprint", fingerprint), ("ManagedBy", "immutable")]
}

fn layer_config(commit: &str, parent: &str) -> String {
    format!(
        r#"terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

resource "immutable_layered_ami" "rails" {{
  layer  = "rails-base"
  commit = "{commit}"
  parent = "{parent}"
  build {{
    packer_template = "images/rails-base/packer.json"
    command         = "{packer} build"
  }}
}}

output "ami" {{ value = immutable_layered_ami.rails.ami_id }}
"#,
        packer = packer()
    )
}

/// The account's AMIs tagged `Layer = layer`.
async fn layer_amis(ec2: &aws_sdk_ec2::Client, layer: &str) -> Vec<aws_sdk_ec2::types::Image> {
    let out = ec2
        .describe_images()
        .owners("self")
        .filters(Filter::builder().name("tag:Layer").values(layer).build())
        .send()
        .await
        .expect("DescribeImages");
    out.images().to_vec()
}

fn tags_of(image: &aws_sdk_ec2::types::Image) -> BTreeMap<String, String> {
    image.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect()
}

/// Whitespace runs as single spaces (Terraform wraps diagnostic text).
fn squeezed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Applies a parent that is not of the child's lineage: the build is refused before
/// anything is created, with an error that names the pinned AMI and the parent it
/// had to be, and Packer's reason in the provider's log.
fn assert_refused(workdir: &Workdir, account: &Account, parent: &str, child: &ChildTemplate, why: &str) {
    account.reset_requests().expect("reset request counts");
    let log = workdir.root().join(format!("provider-{parent}.log"));
    let log_path = log.to_string_lossy().into_owned();
    let apply = workdir.terraform_with_env(
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        &[("TF_LOG_PROVIDER", "info"), ("TF_LOG_PATH", log_path.as_str())],
    );
    assert!(!apply.success(), "{why}: a build from {parent} must fail:\n{apply}");
    let failed: Vec<String> = tests::diagnostic_blocks(&apply.stderr)
        .filter(|b| tests::first_line_is(b, "Error: Layer Build Failed"))
        .map(squeezed)
        .collect();
    assert_eq!(failed.len(), 1, "{why}: one build failure:\n{apply}");
    let error = &failed[0];
    for expected in [
        format!("building layer {} at commit", child.layer),
        format!("from {parent}: packer build exited with exit status: 1"),
        format!("ImageIds: [\"{parent}\"]"),
        format!("Name: \"tag:Layer\", Values: [\"{}\"]", child.parent_layer),
        format!("Name: \"tag:Fingerprint\", Values: [\"{}\"]", child.parent_fingerprint),
        "Owners: [\"self\"]".to_owned(),
        "no artifacts were created".to_owned(),
        // Packer's reason, however long its dump of the filters.
        "errored after".to_owned(),
        "No AMI was found matching filters".to_owned(),
    ] {
        assert!(error.contains(&expected), "{why}: {expected:?} in the error:\n{apply}");
    }
    let log = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(
        log.lines().any(|l| l.contains("packer: ") && l.contains("No AMI was found matching filters")),
        "{why}: Packer's reason, as the provider logs Packer's output:\n{log}"
    );
    let requests = account.requests().expect("request counts");
    assert!(requests.contains_key("ec2:DescribeImages"), "{why}: Packer looked for the parent: {requests:?}");
    assert!(
        tests::mutating(&requests).is_empty(),
        "{why}: no key pair, security group, instance or image was created: {requests:?}"
    );
    let built = runtime().block_on(async { layer_amis(&account.ec2().await, &child.layer).await });
    assert!(built.is_empty(), "{why}: no AMI of {} registered: {built:?}", child.layer);
}

#[test]
fn a_child_layer_pinned_to_a_parent_outside_its_lineage_is_refused() {
    let child = child_template();
    let account = LocalAws::shared().account();
    let elsewhere = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let (parent_layer, parent_fp) = (child.parent_layer.as_str(), child.parent_fingerprint.as_str());
    let stale_fp = "0".repeat(64);
    let (parent, sibling, stale, foreign) = rt.block_on(async {
        let parent = baked_ami(&ec2, "ubuntu-1804-1700000000", &layer_tags(parent_layer, parent_fp)).await;
        // Another child of the same parent: right owner, wrong layer.
        let sibling = baked_ami(
            &ec2,
            "jenkins-master-1700000000",
            &[("Layer", "jenkins-master"), ("ParentLayer", parent_layer), ("ParentAMI", &parent)],
        )
        .await;
        // An older build of the parent layer, from other inputs: wrong fingerprint.
        let stale = baked_ami(&ec2, "ubuntu-1804-1600000000", &layer_tags(parent_layer, &stale_fp)).await;
        // The parent layer as another account built it: not ours, not shared.
        let other = elsewhere.ec2().await;
        let foreign = baked_ami(&other, "ubuntu-1804-1700000000", &layer_tags(parent_layer, parent_fp)).await;
        (parent, sibling, stale, foreign)
    });

    let commit = "b".repeat(40);
    let workdir = Workdir::new(&account);
    workdir.write("images/rails-base/packer.json", &child.text);
    workdir.write("main.tf", &layer_config(&commit, &foreign));
    workdir.init().expect("init");

    // Not visible to this account: the provider refuses at plan, Packer never runs.
    account.reset_requests().expect("reset request counts");
    let apply = workdir.terraform(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert!(!apply.success(), "{apply}");
    assert!(
        apply.stderr.contains("Parent AMI Not Found") && apply.stderr.contains(&foreign),
        "the provider names the parent it cannot see:\n{apply}"
    );
    let requests = account.requests().expect("request counts");
    assert!(tests::mutating(&requests).is_empty(), "nothing was created: {requests:?}");

    // Visible, but not of the parent layer, or of another build of it: Packer's
    // source_ami_filter rules it out.
    workdir.write("main.tf", &layer_config(&commit, &sibling));
    assert_refused(&workdir, &account, &sibling, &child, "another layer's AMI");
    workdir.write("main.tf", &layer_config(&commit, &stale));
    assert_refused(&workdir, &account, &stale, &child, "the parent layer at another fingerprint");

    // The parent of the lineage: the same template builds.
    workdir.write("main.tf", &layer_config(&commit, &parent));
    workdir.apply().expect("a build from the parent layer's AMI");
    let ami = workdir.output("ami").expect("ami").as_str().expect("string").to_owned();
    rt.block_on(async {
        let built = layer_amis(&ec2, &child.layer).await;
        assert_eq!(built.len(), 1, "{built:?}");
        let image = &built[0];
        assert_eq!(image.image_id(), Some(ami.as_str()));
        let tags = tags_of(image);
        let get = |k: &str| tags.get(k).map(String::as_str);
        assert_eq!(get("ParentAMI"), Some(parent.as_str()), "{tags:?}");
        assert_eq!(get("ParentLayer"), Some(child.parent_layer.as_str()), "{tags:?}");
        assert_eq!(get("Fingerprint"), Some(child.fingerprint.as_str()), "{tags:?}");
        assert_eq!(get("Commit"), Some(commit.as_str()), "{tags:?}");
        assert_eq!(image.root_device_type(), Some(&DeviceType::Ebs), "{image:?}");
        let root = image
            .block_device_mappings()
            .iter()
            .find(|m| m.device_name() == image.root_device_name())
            .and_then(|m| m.ebs())
            .expect("the root volume's mapping");
        assert_eq!(root.encrypted(), Some(true), "the template encrypts the boot volume: {image:?}");
        assert_eq!(image.description(), Some(child.description.as_str()), "{image:?}");
        let builders = tests::builder_instances(&ec2, &["pending", "running", "stopping", "stopped"])
            .await
            .expect("DescribeInstances");
        assert!(builders.is_empty(), "Packer terminated its builder instance: {builders:?}");
    });
    assert!(!workdir.plan_has_changes().expect("plan"), "the built AMI satisfies the configuration");
}
