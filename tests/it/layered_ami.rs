//! `immutable_layered_ami` end to end: real Terraform, real provider, emulator.
//!
//! The native builder's instance would run its user data and power itself off; the
//! emulator runs nothing, so [`BuilderPlayer`] plays that part by stopping every
//! running builder instance it sees.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceStateName, InstanceType};
use tests::{
    BUILDER_TAG, BuilderPlayer, LocalAws, Workdir, diagnostic_blocks, first_line_is, register_ami, repo_root,
    stand_in_packer,
};

const PROJECT: &str = "layers-test";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn commit(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

fn provider_block() -> String {
    format!(
        r#"terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

provider "immutable" {{
  default_tags = {{ Project = "{PROJECT}" }}
}}
"#
    )
}

async fn builder_instances(ec2: &aws_sdk_ec2::Client, states: &[&str]) -> Vec<String> {
    tests::builder_instances(ec2, states).await.expect("DescribeInstances")
}

async fn all_builder_states(ec2: &aws_sdk_ec2::Client) -> Vec<InstanceStateName> {
    let response = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(BUILDER_TAG).build())
        .send()
        .await
        .expect("DescribeInstances");
    response
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.state().and_then(|s| s.name()).cloned())
        .collect()
}

/// Tags of an AMI; empty when it is gone.
async fn image_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> BTreeMap<String, String> {
    let response = ec2.describe_images().image_ids(id).send().await.expect("DescribeImages");
    response
        .images()
        .iter()
        .flat_map(|i| i.tags())
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect()
}

/// The AMIs this account owns, by id.
async fn own_images(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let response = ec2.describe_images().owners("self").send().await.expect("DescribeImages");
    let mut ids: Vec<String> =
        response.images().iter().filter_map(|i| i.image_id().map(str::to_owned)).collect();
    ids.sort();
    ids
}

async fn snapshots_of(ec2: &aws_sdk_ec2::Client, id: &str) -> Vec<String> {
    let response = ec2.describe_images().image_ids(id).send().await.expect("DescribeImages");
    response
        .images()
        .iter()
        .flat_map(|i| i.block_device_mappings())
        .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
        .collect()
}

async fn snapshot_exists(ec2: &aws_sdk_ec2::Client, id: &str) -> bool {
    match ec2.describe_snapshots().snapshot_ids(id).send().await {
        Ok(response) => response.snapshots().iter().any(|s| s.snapshot_id() == Some(id)),
        Err(_) => false,
    }
}

fn output_str(workdir: &Workdir, name: &str) -> String {
    match workdir.output(name).expect("output") {
        serde_json::Value::String(s) => s,
        other => panic!("output {name} is not a string: {other}"),
    }
}

fn assert_tagged_per_convention(
    tags: &BTreeMap<String, String>,
    layer: &str,
    commit: &str,
    parent_layer: Option<&str>,
    parent_ami: &str,
) {
    let get = |k: &str| tags.get(k).map(String::as_str);
    assert_eq!(get("Layer"), Some(layer), "{tags:?}");
    assert_eq!(get("Commit"), Some(commit), "{tags:?}");
    assert_eq!(get("ParentAMI"), Some(parent_ami), "{tags:?}");
    assert_eq!(get("ParentLayer"), parent_layer, "{tags:?}");
    assert_eq!(get("Project"), Some(PROJECT), "{tags:?}");
    assert_eq!(get("ManagedBy"), Some("immutable"), "{tags:?}");
    assert!(get("Name").is_some_and(|n| !n.is_empty()), "{tags:?}");
    assert!(
        get("Fingerprint").is_some_and(|f| f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit())),
        "{tags:?}"
    );
}

const CHAIN: &str = r##"
variable "base_commit" { type = string }
variable "commit" { type = string }

resource "immutable_layered_ami" "base" {
  layer        = "base"
  display_name = "Base OS"
  commit       = var.base_commit
  source {
    owners = ["self"]
    name   = "upstream-os-*"
  }
  build {
    native {
      user_data = "#!/bin/sh\napt-get -y upgrade\nshutdown -h now\n"
    }
  }
}

resource "immutable_layered_ami" "role" {
  layer  = "role"
  commit = var.commit
  parent = immutable_layered_ami.base.ami_id
  build {
    native {
      user_data     = "#!/bin/sh\napt-get -y install ruby\nshutdown -h now\n"
      instance_type = "t3.small"
    }
  }
}

resource "immutable_layered_ami" "app" {
  layer  = "app"
  commit = var.commit
  parent = immutable_layered_ami.role.ami_id
  tags   = { Team = "web" }
  build {
    native {
      user_data = "#!/bin/sh\ncp -r /tmp/app /srv/app\nshutdown -h now\n"
    }
  }
}

output "base" { value = immutable_layered_ami.base.ami_id }
output "role" { value = immutable_layered_ami.role.ami_id }
output "app" { value = immutable_layered_ami.app.ami_id }
output "lineage" { value = immutable_layered_ami.app.lineage }
"##;

fn vars(workdir: &Workdir, base_commit: &str, commit: &str) {
    workdir.write("terraform.tfvars", &format!("base_commit = \"{base_commit}\"\ncommit = \"{commit}\"\n"));
}

#[test]
fn native_chain_builds_then_does_nothing_then_rebuilds_on_a_new_root_commit() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let upstream = rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    let _player = BuilderPlayer::start(&account);

    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &format!("{}{CHAIN}", provider_block()));
    vars(&workdir, &commit('a'), &commit('b'));
    workdir.init().expect("init");
    workdir.apply().expect("first apply builds the chain");

    let (base, role, app) =
        (output_str(&workdir, "base"), output_str(&workdir, "role"), output_str(&workdir, "app"));
    rt.block_on(async {
        assert_tagged_per_convention(&image_tags(&ec2, &base).await, "base", &commit('a'), None, &upstream);
        assert_tagged_per_convention(
            &image_tags(&ec2, &role).await,
            "role",
            &commit('b'),
            Some("base"),
            &base,
        );
        let app_tags = image_tags(&ec2, &app).await;
        assert_tagged_per_convention(&app_tags, "app", &commit('b'), Some("role"), &role);
        assert_eq!(app_tags.get("Team").map(String::as_str), Some("web"));
        assert_eq!(image_tags(&ec2, &base).await.get("Name").map(String::as_str), Some("Base OS"));
        let states = all_builder_states(&ec2).await;
        assert_eq!(states.len(), 3, "one builder instance per layer: {states:?}");
        assert!(
            states.iter().all(|s| *s == InstanceStateName::Terminated),
            "builders left behind: {states:?}"
        );
    });
    assert_eq!(
        workdir.output("lineage").expect("lineage"),
        serde_json::json!([
            { "layer": "base", "ami_id": base, "commit": commit('a') },
            { "layer": "role", "ami_id": role, "commit": commit('b') },
            { "layer": "app", "ami_id": app, "commit": commit('b') },
        ])
    );

    // Same inputs: nothing to do, nothing built.
    let images_before = rt.block_on(own_images(&ec2));
    let plan = workdir.plan().expect("second plan");
    assert!(plan.stdout.contains("No changes."), "{plan}");
    assert!(!workdir.plan_has_changes().expect("plan"), "a second plan should be empty");
    let again = workdir.apply().expect("second apply");
    assert!(again.stdout.contains("0 added, 0 changed, 0 destroyed"), "{again}");
    assert_eq!(rt.block_on(own_images(&ec2)), images_before, "the second apply built something");

    // A new root commit rebuilds the root and, through their parents, every descendant.
    vars(&workdir, &commit('c'), &commit('b'));
    let plan = workdir.plan().expect("plan after new root commit");
    assert!(plan.stdout.contains("0 to add, 3 to change, 0 to destroy"), "{plan}");
    for layer in ["base", "role", "app"] {
        assert!(
            plan.stdout.contains(&format!("immutable_layered_ami.{layer} will be updated in-place")),
            "{plan}"
        );
    }
    let rebuilds = plan
        .stdout
        .lines()
        .filter(|l| l.contains("~ ami_id") && l.ends_with("-> (known after apply)"))
        .count();
    assert_eq!(rebuilds, 3, "every layer's ami_id becomes unknown: {plan}");
    workdir.apply().expect("apply after new root commit");
    let (base2, role2, app2) =
        (output_str(&workdir, "base"), output_str(&workdir, "role"), output_str(&workdir, "app"));
    assert!(base2 != base && role2 != role && app2 != app, "every layer rebuilt");
    rt.block_on(async {
        assert_tagged_per_convention(&image_tags(&ec2, &base2).await, "base", &commit('c'), None, &upstream);
        assert_tagged_per_convention(
            &image_tags(&ec2, &role2).await,
            "role",
            &commit('b'),
            Some("base"),
            &base2,
        );
        assert_tagged_per_convention(
            &image_tags(&ec2, &app2).await,
            "app",
            &commit('b'),
            Some("role"),
            &role2,
        );
        assert!(builder_instances(&ec2, &["pending", "running", "stopping", "stopped"]).await.is_empty());
    });
    assert!(!workdir.plan_has_changes().expect("plan"), "the rebuilt chain should be stable");
}

/// A stand-in `packer` that checks its template with the real `packer validate`,
/// then registers the image in the emulator and writes Packer's manifest.
fn fake_packer(workdir: &Workdir) -> String {
    stand_in_packer(
        workdir,
        r#"CHECKPOINT_DISABLE=1 "${REAL_PACKER:-packer}" validate "${vars[@]}" "$template"
echo "stand-in: the template passed packer validate""#,
    )
}

/// What a test of a layer built by the stand-in Packer starts from: an account with an
/// upstream AMI (`upstream-os-*`), a workdir with the stand-in as `bin/packer`.
struct PackerCase {
    account: tests::Account,
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
    upstream: String,
    workdir: Workdir,
    packer: String,
}

fn packer_case() -> PackerCase {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let upstream = rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    let workdir = Workdir::new(&account);
    let packer = fake_packer(&workdir);
    PackerCase { account, rt, ec2, upstream, workdir, packer }
}

fn packer_layer(command: &str, commit: &str) -> String {
    format!(
        r#"
resource "immutable_layered_ami" "base" {{
  layer  = "packer-base"
  commit = "{commit}"
  source {{
    owners = ["self"]
    name   = "upstream-os-*"
  }}
  build {{
    packer_template = "images/base.json"
    command         = "{command}"
  }}
}}

output "ami" {{ value = immutable_layered_ami.base.ami_id }}
output "fingerprint" {{ value = immutable_layered_ami.base.fingerprint }}
"#
    )
}

fn template_fixture() -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/layered-ami/base.json"))
        .expect("template fixture")
}

const TEMPLATE_FINGERPRINT: &str = "1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c5b6a7988";

#[test]
fn packer_builder_runs_the_template_and_reads_the_manifest() {
    let PackerCase { account: _, rt, ec2, upstream, workdir, packer } = packer_case();
    workdir.write("images/base.json", &template_fixture());
    workdir.write(
        "main.tf",
        &format!("{}{}", provider_block(), packer_layer(&format!("{packer} build"), &commit('d'))),
    );
    workdir.init().expect("init");
    let apply = workdir.terraform_with_env(
        &["apply", "-auto-approve", "-no-color", "-input=false"],
        &[("TF_LOG_PROVIDER", "info")],
    );
    assert!(apply.success(), "{apply}");
    // Packer's output is streamed into the provider log.
    assert!(apply.stderr.contains("packer: ==> amazon-ebs: Creating AMI"), "{apply}");
    assert!(apply.stderr.contains("stand-in: the template passed packer validate"), "{apply}");

    let ami = output_str(&workdir, "ami");
    let invocations =
        std::fs::read_to_string(workdir.path().join("bin/invocations.log")).expect("invocations");
    assert_eq!(
        invocations.trim(),
        format!(
            "build -machine-readable -color=false -var commit={} -var parent={upstream} images/base.json",
            commit('d')
        )
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workdir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["builds"][0]["artifact_id"], serde_json::json!(format!("eu-west-1:{ami}")));
    assert_eq!(output_str(&workdir, "fingerprint"), TEMPLATE_FINGERPRINT);
    rt.block_on(async {
        let tags = image_tags(&ec2, &ami).await;
        assert_tagged_per_convention(&tags, "packer-base", &commit('d'), None, &upstream);
        assert_eq!(tags.get("Fingerprint").map(String::as_str), Some(TEMPLATE_FINGERPRINT));
        assert_eq!(tags.get("Name").map(String::as_str), Some("Packer base"), "the template's Name stands");
    });

    // Nothing changed: no second Packer run.
    assert!(!workdir.plan_has_changes().expect("plan"), "second plan should be empty");
    workdir.apply().expect("second apply");
    let invocations =
        std::fs::read_to_string(workdir.path().join("bin/invocations.log")).expect("invocations");
    assert_eq!(invocations.lines().count(), 1, "packer ran again: {invocations}");

    // Deregistered outside Terraform: the refresh drops it and the plan builds anew.
    rt.block_on(async { ec2.deregister_image().image_id(&ami).send().await.expect("DeregisterImage") });
    let plan = workdir.plan().expect("plan after deregistration");
    assert!(plan.stdout.contains("1 to add, 0 to change, 0 to destroy"), "{plan}");
}

#[test]
fn a_command_that_drops_machine_readable_reads_the_manifest_with_a_warning() {
    let PackerCase { account: _, rt, ec2, upstream, workdir, packer } = packer_case();
    // A wrapper such as a CI script: it runs Packer without the provider's flags.
    workdir.write(
        "bin/packer-wrapper",
        &format!(
            "#!/usr/bin/env bash\nargs=()\nfor a in \"$@\"; do [ \"$a\" = -machine-readable ] || args+=(\"$a\"); done\n\
             exec \"{packer}\" build \"${{args[@]}}\"\n"
        ),
    );
    let wrapper = workdir.path().join("bin/packer-wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    workdir.write("images/base.json", &template_fixture());
    workdir.write(
        "main.tf",
        &format!("{}{}", provider_block(), packer_layer(&wrapper.display().to_string(), &commit('d'))),
    );
    workdir.init().expect("init");
    let apply = workdir.apply().expect("apply");
    let invocations =
        std::fs::read_to_string(workdir.path().join("bin/invocations.log")).expect("invocations");
    assert_eq!(
        invocations.trim(),
        format!("build -color=false -var commit={} -var parent={upstream} images/base.json", commit('d')),
        "Packer ran without -machine-readable"
    );
    let ami = output_str(&workdir, "ami");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workdir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["builds"][0]["artifact_id"], serde_json::json!(format!("eu-west-1:{ami}")));
    // Terraform prints warnings with the apply's output.
    let warnings: Vec<&str> = diagnostic_blocks(&apply.stdout)
        .filter(|b| first_line_is(b, "Warning: AMI Read From The Packer Manifest"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning\n{apply}");
    let said = warnings[0].replace('\n', " ");
    assert!(said.contains(&ami) && said.contains("-machine-readable"), "{}", warnings[0]);
    rt.block_on(async {
        assert_tagged_per_convention(
            &image_tags(&ec2, &ami).await,
            "packer-base",
            &commit('d'),
            None,
            &upstream,
        )
    });
}

/// An EC2 client for `account` in `region` rather than the account's own.
async fn ec2_in(account: &tests::Account, region: &str) -> aws_sdk_ec2::Client {
    let config = aws_sdk_ec2::config::Builder::from(&account.sdk_config().await)
        .region(aws_sdk_ec2::config::Region::new(region.to_owned()))
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// Every instance of the client's account and region, whatever its state.
async fn all_instances(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let response = ec2.describe_instances().send().await.expect("DescribeInstances");
    response
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect()
}

/// A template whose `region` variable defaults to another region builds in the
/// provider's: the provider passes its region as `-var region=...`. Run without it,
/// the same template builds where its default says.
#[test]
fn a_template_defaulting_to_another_region_builds_in_the_providers_region() {
    let PackerCase { account, rt, ec2, upstream, workdir, packer } = packer_case();
    let elsewhere = crate::layered_parallel::layer_template_default_region();
    assert_ne!(elsewhere, account.region, "the template defaults to another region than the provider's");
    let ec2_elsewhere = rt.block_on(ec2_in(&account, &elsewhere));
    workdir.write("images/base.json", &crate::layered_parallel::layer_template("packer-base"));
    workdir.write(
        "main.tf",
        &format!("{}{}", provider_block(), packer_layer(&format!("{packer} build"), &commit('5'))),
    );
    workdir.init().expect("init");
    workdir.apply().expect("apply");

    let ami = output_str(&workdir, "ami");
    let invocations =
        std::fs::read_to_string(workdir.path().join("bin/invocations.log")).expect("invocations");
    assert_eq!(
        invocations.trim(),
        format!(
            "build -machine-readable -color=false -var commit={} -var parent={upstream} -var region={} images/base.json",
            commit('5'),
            account.region
        )
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(workdir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    assert_eq!(manifest["builds"][0]["artifact_id"], serde_json::json!(format!("{}:{ami}", account.region)));
    rt.block_on(async {
        assert_tagged_per_convention(
            &image_tags(&ec2, &ami).await,
            "packer-base",
            &commit('5'),
            None,
            &upstream,
        );
        assert_eq!(own_images(&ec2).await.len(), 2, "upstream and the layer's AMI");
        assert_eq!(
            all_builder_states(&ec2).await,
            [InstanceStateName::Terminated],
            "the builder ran in {}",
            account.region
        );
        assert!(own_images(&ec2_elsewhere).await.is_empty(), "no AMI in {elsewhere}");
        assert!(all_instances(&ec2_elsewhere).await.is_empty(), "no instance in {elsewhere}");
    });

    // Without `-var region`, the stand-in builds in the template's default region.
    let mut by_hand = std::process::Command::new(&packer);
    by_hand
        .args(["build", "-machine-readable", "-color=false", "-var"])
        .arg(format!("commit={}", commit('6')))
        .arg("-var")
        .arg(format!("parent={upstream}"))
        .arg("images/base.json")
        .current_dir(workdir.path());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            by_hand.env_remove(key);
        }
    }
    let out = by_hand.envs(workdir.env()).output().expect("run the stand-in");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // Machine-readable artifacts as Packer lists them: the builder's, then the one
    // the manifest post-processor passes on.
    let artifacts: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once(',').map(|(_, rest)| rest))
        .filter(|l| l.starts_with("amazon-ebs,artifact"))
        .collect();
    let id = artifacts
        .iter()
        .find_map(|l| l.strip_prefix("amazon-ebs,artifact,0,id,"))
        .unwrap_or_else(|| panic!("no artifact id in:\n{stdout}"));
    let west_ami = id.strip_prefix(&format!("{elsewhere}:")).unwrap_or_else(|| panic!("{id}"));
    let mut expected = vec!["amazon-ebs,artifact-count,2".to_owned()];
    for n in 0..2 {
        expected.extend([
            format!("amazon-ebs,artifact,{n},builder-id,mitchellh.amazonebs"),
            format!("amazon-ebs,artifact,{n},id,{elsewhere}:{west_ami}"),
            format!("amazon-ebs,artifact,{n},string,AMIs were created:\\n{elsewhere}: {west_ami}\\n"),
            format!("amazon-ebs,artifact,{n},files-count,0"),
            format!("amazon-ebs,artifact,{n},end"),
        ]);
    }
    assert_eq!(artifacts, expected);
    rt.block_on(async {
        assert_eq!(own_images(&ec2_elsewhere).await, [west_ami.to_owned()]);
        assert_eq!(own_images(&ec2).await.len(), 2, "nothing more in {}", account.region);
    });
}

#[test]
fn a_template_hard_wired_to_another_region_fails_at_once_naming_it() {
    let PackerCase { account, rt, ec2, upstream, workdir, packer } = packer_case();
    let elsewhere = crate::layered_parallel::layer_template_default_region();
    let ec2_elsewhere = rt.block_on(ec2_in(&account, &elsewhere));
    // The builder's region is written into the template: `-var region` changes nothing.
    let template = crate::layered_parallel::layer_template("packer-base")
        .replace("\"region\": \"{{user `region`}}\"", &format!("\"region\": \"{elsewhere}\""));
    assert!(template.contains(&format!("\"region\": \"{elsewhere}\"")), "{template}");
    workdir.write("images/base.json", &template);
    workdir.write(
        "main.tf",
        &format!("{}{}", provider_block(), packer_layer(&format!("{packer} build"), &commit('5'))),
    );
    workdir.init().expect("init");
    let out = workdir.terraform(&["apply", "-auto-approve", "-no-color", "-input=false"]);
    assert!(!out.success(), "the apply must fail\n{out}");
    let built = rt.block_on(own_images(&ec2_elsewhere));
    let [west_ami] = built.as_slice() else { panic!("one AMI in {elsewhere}: {built:?}") };
    // Refused as soon as Packer is done, naming the image and where it is (the provider
    // used to wait for it in its own region until the create timeout).
    let said =
        format!("Packer built {west_ami} in {elsewhere}, not in {}, the provider's region", account.region);
    assert!(out.stderr.replace('\n', " ").contains(&said), "{said:?} not said\n{out}");
    assert!(!out.stderr.contains("is not visible yet"), "{out}");
    assert!(rt.block_on(own_images(&ec2)) == [upstream.clone()], "nothing was made in {}", account.region);
}

#[test]
fn import_by_ami_id_reads_the_layer_from_its_tags() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let existing = rt.block_on(async {
        let upstream = register_ami(&ec2, "upstream-os-1700000000", &[]).await.expect("upstream AMI");
        let c = commit('7');
        let tags = [
            ("Name", "Packer base"),
            ("Layer", "packer-base"),
            ("Commit", c.as_str()),
            ("Fingerprint", TEMPLATE_FINGERPRINT),
            ("ParentAMI", upstream.as_str()),
            ("ManagedBy", "immutable"),
        ];
        register_ami(&ec2, "packer-base-1700000200", &tags).await.expect("AMI to import")
    });
    let workdir = Workdir::new(&account);
    workdir.write("images/base.json", &template_fixture());
    workdir.write("main.tf", &format!("{}{}", provider_block(), packer_layer("false", &commit('7'))));
    workdir.init().expect("init");
    workdir.run_ok(&["import", "-no-color", "immutable_layered_ami.base", &existing]).expect("import");
    let state = workdir.run_ok(&["state", "show", "-no-color", "immutable_layered_ami.base"]).expect("state");
    for line in
        [r#"layer         = "packer-base""#.to_owned(), format!(r#"commit        = "{}""#, commit('7'))]
    {
        assert!(state.stdout.contains(&line), "{line} in {state}");
    }
    // The imported AMI satisfies the configuration: applying builds nothing (`false` would fail).
    workdir.apply().expect("apply after import");
    assert_eq!(output_str(&workdir, "ami"), existing);
}

#[test]
fn an_existing_ami_with_matching_tags_is_adopted_without_a_build() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let (upstream, existing) = rt.block_on(async {
        let upstream = register_ami(&ec2, "upstream-os-1700000000", &[]).await.expect("upstream AMI");
        let c = commit('e');
        let tags = [
            ("Name", "Packer base"),
            ("Layer", "packer-base"),
            ("Commit", c.as_str()),
            ("Fingerprint", TEMPLATE_FINGERPRINT),
            ("ParentAMI", upstream.as_str()),
            ("ManagedBy", "immutable"),
            ("Project", PROJECT),
        ];
        let existing = register_ami(&ec2, "packer-base-1700000100", &tags).await.expect("CI-built AMI");
        (upstream, existing)
    });
    let workdir = Workdir::new(&account);
    workdir.write("images/base.json", &template_fixture());
    // Any run of this command fails the apply: adoption must not build.
    workdir.write("main.tf", &format!("{}{}", provider_block(), packer_layer("false", &commit('e'))));
    workdir.init().expect("init");
    let plan = workdir.plan().expect("plan");
    let planned_ami = plan.stdout.lines().find(|l| l.contains("+ ami_id")).unwrap_or_default();
    assert!(planned_ami.ends_with(&format!("\"{existing}\"")), "planned ami_id is known: {plan}");
    workdir.apply().expect("apply adopts");
    assert_eq!(output_str(&workdir, "ami"), existing);
    assert_eq!(rt.block_on(own_images(&ec2)).len(), 2, "nothing built besides upstream and the adopted AMI");
    let _ = upstream;

    // A different commit is not adopted: the plan wants a build.
    workdir.write("main.tf", &format!("{}{}", provider_block(), packer_layer("false", &commit('f'))));
    let plan = workdir.plan().expect("plan");
    let planned_ami = plan.stdout.lines().find(|l| l.contains("~ ami_id")).unwrap_or_default();
    assert!(planned_ami.ends_with("-> (known after apply)"), "a new commit needs a build: {plan}");
}

/// A root layer built by the native builder from `upstream-os-*`, keeping `keep` AMIs.
fn kept_layer_config(layer: &str, keep: u32, commit: &str) -> String {
    format!(
        r##"{}
resource "immutable_layered_ami" "base" {{
  layer  = "{layer}"
  commit = "{commit}"
  keep   = {keep}
  source {{
    owners = ["self"]
    name   = "upstream-os-*"
  }}
  build {{
    native {{ user_data = "#!/bin/sh\nshutdown -h now\n" }}
  }}
}}
output "ami" {{ value = immutable_layered_ami.base.ami_id }}
"##,
        provider_block()
    )
}

/// The account's own AMIs tagged with `layer`.
async fn layer_amis(ec2: &aws_sdk_ec2::Client, layer: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for id in own_images(ec2).await {
        if image_tags(ec2, &id).await.get("Layer").map(String::as_str) == Some(layer) {
            ids.push(id);
        }
    }
    ids
}

#[test]
fn keep_prunes_old_amis_and_their_snapshots_but_not_those_in_use() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    let _player = BuilderPlayer::start(&account);
    let workdir = Workdir::new(&account);
    let config = |c: &str| kept_layer_config("kept", 2, c);
    workdir.write("main.tf", &config(&commit('1')));
    workdir.init().expect("init");
    let mut builds = Vec::new();
    let mut snapshots = Vec::new();
    for (i, c) in ['1', '2', '3', '4'].into_iter().enumerate() {
        workdir.write("main.tf", &config(&commit(c)));
        // Image names and creation dates have one-second resolution.
        std::thread::sleep(Duration::from_millis(1100));
        workdir.apply().unwrap_or_else(|e| panic!("build {}: {e:#}", i + 1));
        let ami = output_str(&workdir, "ami");
        snapshots.push(rt.block_on(snapshots_of(&ec2, &ami)));
        builds.push(ami);
        if i == 1 {
            // The first build now runs on an instance: it must survive retention.
            rt.block_on(async {
                ec2.run_instances()
                    .image_id(&builds[0])
                    .instance_type(InstanceType::T3Micro)
                    .min_count(1)
                    .max_count(1)
                    .send()
                    .await
                    .expect("RunInstances");
            });
        }
    }
    let layer_images = rt.block_on(layer_amis(&ec2, "kept"));
    let mut expected = vec![builds[0].clone(), builds[2].clone(), builds[3].clone()];
    expected.sort();
    assert_eq!(layer_images, expected, "newest two plus the one in use; builds: {builds:?}");
    rt.block_on(async {
        assert!(!snapshots[1].is_empty(), "the pruned AMI had snapshots");
        for snapshot in &snapshots[1] {
            assert!(
                !snapshot_exists(&ec2, snapshot).await,
                "snapshot {snapshot} of pruned {} remains",
                builds[1]
            );
        }
        for i in [0, 2, 3] {
            for snapshot in &snapshots[i] {
                assert!(
                    snapshot_exists(&ec2, snapshot).await,
                    "snapshot {snapshot} of kept {} deleted",
                    builds[i]
                );
            }
        }
    });
}

#[test]
fn bad_arguments_fail_at_plan_on_their_attribute_without_touching_aws() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            r#"{}
resource "immutable_layered_ami" "both" {{
  layer  = "both"
  commit = "{c}"
  parent = "ami-12345678"
  source {{
    owners = ["self"]
    name   = "x-*"
  }}
  build {{
    native {{ user_data = "x" }}
  }}
}}

resource "immutable_layered_ami" "neither" {{
  layer  = "neither"
  commit = "{c}"
  build {{
    native {{ user_data = "x" }}
  }}
}}

resource "immutable_layered_ami" "bad" {{
  layer  = "bad"
  commit = "abc123"
  parent = "ami-12345678"
  keep   = 0
  build {{
    packer_template = "images/missing.json"
  }}
}}
"#,
            provider_block(),
            c = commit('a')
        ),
    );
    workdir.init().expect("init");
    let plan = workdir.terraform(&["plan", "-no-color"]);
    assert!(!plan.success(), "{plan}");
    for (summary, line) in [
        ("Conflicting Parent And Source", r#"parent = "ami-12345678""#),
        ("Missing Parent Or Source", r#"resource "immutable_layered_ami" "neither" {"#),
        ("Invalid Commit", r#"commit = "abc123""#),
        ("Invalid Retention", "keep   = 0"),
        ("Packer Template Not Found", r#"packer_template = "images/missing.json""#),
    ] {
        plan.assert_error_at(summary, line);
    }
    rt.block_on(async {
        assert!(own_images(&ec2).await.is_empty(), "no AMI was created");
        let instances = ec2.describe_instances().send().await.expect("DescribeInstances");
        assert!(instances.reservations().is_empty(), "no instance was launched");
    });
}

/// examples/terraform/layered with its module, from a clean directory.
#[test]
fn layered_example_builds_the_chain_through_the_module() {
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    let _player = BuilderPlayer::start(&account);
    let workdir = Workdir::new(&account);
    let examples = repo_root().join("examples/terraform");
    for file in ["main.tf", "variables.tf", "outputs.tf"] {
        let text =
            std::fs::read_to_string(examples.join("modules/layer-chain").join(file)).expect("module file");
        workdir.write(&format!("modules/layer-chain/{file}"), &text);
    }
    let root = std::fs::read_to_string(examples.join("layered/main.tf")).expect("example");
    workdir.write("layered/main.tf", &root);
    let layered = workdir.path().join("layered");
    let run = |args: &[&str]| {
        let mut command = std::process::Command::new(tests::terraform_binary());
        command.args(args).current_dir(&layered);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("TF_") || key.starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        command.envs(workdir.env());
        let out = command.output().expect("terraform");
        let text =
            format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "terraform {args:?}:\n{text}");
        text
    };
    run(&["init", "-no-color", "-input=false"]);
    let vars = [
        "-var".to_owned(),
        format!("commit={}", commit('9')),
        "-var".to_owned(),
        r#"source_owners=["self"]"#.to_owned(),
        "-var".to_owned(),
        "source_name=upstream-os-*".to_owned(),
    ];
    let mut apply = vec!["apply", "-auto-approve", "-no-color", "-input=false"];
    apply.extend(vars.iter().map(String::as_str));
    let applied = run(&apply);
    for layer in ["ubuntu-1804", "rails-base", "demo-web-app"] {
        assert!(applied.contains(&format!("\"{layer}: ami-")), "{layer} in the lineage:\n{applied}");
    }
    let mut plan = vec!["plan", "-no-color", "-input=false", "-detailed-exitcode"];
    plan.extend(vars.iter().map(String::as_str));
    run(&plan);
}

/// Retention spares an AMI that a live Spot Fleet request launches (even with none of
/// its instances running) and one that a child layer was built from.
#[test]
fn keep_spares_amis_a_fleet_launches_or_a_child_was_built_from() {
    use aws_sdk_ec2::types::{
        FleetLaunchTemplateSpecification, LaunchTemplateConfig, LaunchTemplateOverrides,
        RequestLaunchTemplateData, SpotFleetRequestConfigData,
    };
    let account = LocalAws::shared().account();
    let rt = runtime();
    let ec2 = rt.block_on(account.ec2());
    rt.block_on(register_ami(&ec2, "upstream-os-1700000000", &[])).expect("upstream AMI");
    let _player = BuilderPlayer::start(&account);
    let workdir = Workdir::new(&account);
    let config = |c: &str| kept_layer_config("spared", 1, c);
    workdir.write("main.tf", &config(&commit('1')));
    workdir.init().expect("init");
    let mut builds = Vec::new();
    for (i, c) in ['1', '2', '3', '4'].into_iter().enumerate() {
        workdir.write("main.tf", &config(&commit(c)));
        std::thread::sleep(Duration::from_millis(1100));
        workdir.apply().unwrap_or_else(|e| panic!("build {}: {e:#}", i + 1));
        builds.push(output_str(&workdir, "ami"));
        if i == 0 {
            // A child layer is built from the first build.
            rt.block_on(register_ami(
                &ec2,
                "spared-child-1700000000",
                &[("Layer", "spared-child"), ("ParentLayer", "spared"), ("ParentAMI", &builds[0])],
            ))
            .expect("child AMI");
        }
        if i == 1 {
            rt.block_on(async {
                // A live fleet launches the second build, though none of its
                // instances runs now.
                let template = ec2
                    .create_launch_template()
                    .launch_template_name("spared-fleet")
                    .launch_template_data(RequestLaunchTemplateData::builder().image_id(&builds[1]).build())
                    .send()
                    .await
                    .expect("launch template");
                let template_id =
                    template.launch_template().and_then(|t| t.launch_template_id()).expect("id");
                let fleet = ec2
                    .request_spot_fleet()
                    .spot_fleet_request_config(
                        SpotFleetRequestConfigData::builder()
                            .iam_fleet_role(format!("arn:aws:iam::{}:role/fleet", account.id))
                            .target_capacity(1)
                            .allocation_strategy(
                                aws_sdk_ec2::types::AllocationStrategy::PriceCapacityOptimized,
                            )
                            .launch_template_configs(
                                LaunchTemplateConfig::builder()
                                    .launch_template_specification(
                                        FleetLaunchTemplateSpecification::builder()
                                            .launch_template_id(template_id)
                                            .version("$Latest")
                                            .build(),
                                    )
                                    .overrides(
                                        LaunchTemplateOverrides::builder()
                                            .instance_type("t3.micro".into())
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .send()
                    .await
                    .expect("request fleet");
                let fleet_id = fleet.spot_fleet_request_id().expect("fleet id");
                let instances = ec2
                    .describe_spot_fleet_instances()
                    .spot_fleet_request_id(fleet_id)
                    .send()
                    .await
                    .expect("fleet instances");
                let ids: Vec<String> = instances
                    .active_instances()
                    .iter()
                    .filter_map(|i| i.instance_id().map(str::to_owned))
                    .collect();
                assert!(!ids.is_empty(), "the fleet launched an instance");
                ec2.terminate_instances().set_instance_ids(Some(ids)).send().await.expect("terminate");
            });
        }
    }
    let layer_images = rt.block_on(layer_amis(&ec2, "spared"));
    let mut expected = vec![builds[0].clone(), builds[1].clone(), builds[3].clone()];
    expected.sort();
    assert_eq!(
        layer_images, expected,
        "the newest, the child's parent and the fleet's image; builds: {builds:?}"
    );
}

/// The provider block with `default_tags = { Project = "<project>" }`.
fn provider_with_project(project: &str) -> String {
    provider_block().replace(&format!("Project = \"{PROJECT}\""), &format!("Project = \"{project}\""))
}

/// An AMI of layer `packer-base` at `commit`, as the Packer fixture builds it, with
/// `extra` tags; returns its id.
fn seeded_packer_base(ec2: &aws_sdk_ec2::Client, commit: &str, extra: &[(&str, &str)]) -> String {
    runtime().block_on(async {
        let upstream = register_ami(ec2, "upstream-os-1700000000", &[]).await.expect("upstream AMI");
        let mut tags = vec![
            ("Layer", "packer-base"),
            ("Commit", commit),
            ("Fingerprint", TEMPLATE_FINGERPRINT),
            ("ParentAMI", upstream.as_str()),
            ("ManagedBy", "immutable"),
        ];
        tags.extend_from_slice(extra);
        register_ami(ec2, "packer-base-1700000300", &tags).await.expect("layer AMI")
    })
}

/// An import with `-generate-config-out` writes a configuration that, once the build
/// and source blocks (which no AMI tag can give back) are added, plans only their
/// addition to the state; the apply changes nothing in AWS, and the next plan nothing.
#[test]
fn an_imported_layer_plans_clean_once_its_build_is_added() {
    let account = LocalAws::shared().account();
    let ec2 = runtime().block_on(account.ec2());
    let c = commit('8');
    let ami =
        seeded_packer_base(&ec2, &c, &[("Name", "Packer base"), ("Project", PROJECT), ("Team", "core")]);
    let before = runtime().block_on(image_tags(&ec2, &ami));
    let workdir = Workdir::new(&account);
    workdir.write("images/base.json", &template_fixture());
    let import = format!("import {{\n  to = immutable_layered_ami.base\n  id = \"{ami}\"\n}}\n");
    workdir.write("main.tf", &format!("{}{import}", provider_block()));
    workdir.init().expect("init");
    let generate =
        workdir.terraform(&["plan", "-no-color", "-input=false", "-generate-config-out=generated.tf"]);
    let generated = std::fs::read_to_string(workdir.path().join("generated.tf"))
        .unwrap_or_else(|e| panic!("{e}\n{generate}"));
    for line in [r#"display_name          = "Packer base""#, r#"layer                 = "packer-base""#] {
        assert!(generated.contains(line), "{line} in:\n{generated}");
    }
    assert!(generated.contains("Team = \"core\""), "the user's tag, not the default one:\n{generated}");
    assert!(!generated.contains("Project"), "default tags stay the provider's:\n{generated}");

    // What cannot be read back: the build block, and a root layer's source block.
    let added = "  source {\n    owners = [\"self\"]\n    name   = \"upstream-os-*\"\n  }\n  build {\n    packer_template = \"images/base.json\"\n    command         = \"false\"\n  }\n}\n";
    let end = generated.rfind('}').expect("closing brace");
    workdir.write("generated.tf", &format!("{}{added}", &generated[..end]));
    // The state learns the two blocks: an update that changes nothing else.
    let plan = workdir.run_ok(&["plan", "-no-color", "-input=false"]).expect("plan");
    assert!(plan.stdout.contains("1 to import, 0 to add, 1 to change, 0 to destroy"), "{plan}");
    let changed: Vec<&str> = plan
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(['~', '-']) && !l.contains("update in-place"))
        .collect();
    assert_eq!(changed.len(), 1, "only the resource line, no attribute changes: {changed:?}\n{plan}");
    assert!(plan.stdout.contains("+ build {") && plan.stdout.contains("+ source {"), "{plan}");
    account.reset_requests().expect("reset");
    workdir.apply().expect("apply imports");
    let requests = account.requests().expect("requests");
    assert!(tests::mutating(&requests).is_empty(), "the apply changes nothing in AWS: {requests:?}");
    assert_eq!(runtime().block_on(image_tags(&ec2, &ami)), before, "no tag changed");
    assert!(!workdir.plan_has_changes().expect("plan"), "nothing left to change");
}

/// The AMI's tags follow the provider's default tags, and tags the configuration
/// decides that are changed outside Terraform show in the plan and are set back; a
/// tag it does not decide is left alone.
#[test]
fn layer_tags_follow_default_tags_and_drift_is_repaired() {
    let account = LocalAws::shared().account();
    let ec2 = runtime().block_on(account.ec2());
    let c = commit('9');
    let ami = seeded_packer_base(&ec2, &c, &[("Project", PROJECT)]);
    let layer = packer_layer("false", &c)
        .replace("  commit = ", "  tags   = { Team = \"core\" }\n  display_name = \"Base\"\n  commit = ");
    let workdir = Workdir::new(&account);
    workdir.write("images/base.json", &template_fixture());
    workdir.write("main.tf", &format!("{}{layer}", provider_block()));
    workdir.init().expect("init");
    workdir.apply().expect("adopt");
    assert_eq!(output_str(&workdir, "ami"), ami);
    let tags = || runtime().block_on(image_tags(&ec2, &ami));
    let value = |tags: &BTreeMap<String, String>, key: &str| tags.get(key).cloned();
    let now = tags();
    assert_eq!((value(&now, "Team"), value(&now, "Name")), (Some("core".into()), Some("Base".into())));
    assert!(!workdir.plan_has_changes().expect("plan"), "settled");

    workdir.write("main.tf", &format!("{}{layer}", provider_with_project("renamed")));
    let plan = workdir.run_ok(&["plan", "-no-color", "-input=false"]).expect("plan");
    assert!(plan.stdout.contains("~ tags_all") && plan.stdout.contains("1 to change"), "{plan}");
    workdir.apply().expect("default tags");
    assert_eq!(value(&tags(), "Project"), Some("renamed".into()));
    assert!(!workdir.plan_has_changes().expect("plan"), "settled");

    runtime().block_on(async {
        let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
        ec2.create_tags()
            .resources(&ami)
            .tags(tag("Team", "rogue"))
            .tags(tag("Extra", "x"))
            .send()
            .await
            .expect("tag");
        ec2.delete_tags()
            .resources(&ami)
            .tags(aws_sdk_ec2::types::Tag::builder().key("Name").build())
            .send()
            .await
            .expect("untag");
    });
    let plan = workdir.run_ok(&["plan", "-no-color", "-input=false"]).expect("plan");
    assert!(plan.stdout.contains("\"rogue\"") && plan.stdout.contains("1 to change"), "drift shown:\n{plan}");
    workdir.apply().expect("repair");
    let now = tags();
    assert_eq!(value(&now, "Team"), Some("core".into()), "{now:?}");
    assert_eq!(value(&now, "Name"), Some("Base".into()), "{now:?}");
    assert_eq!(
        value(&now, "Extra"),
        Some("x".into()),
        "a tag the configuration does not decide stays: {now:?}"
    );
    assert!(!workdir.plan_has_changes().expect("plan"), "settled");
}

/// Destroying a layer whose AMI an instance runs fails, naming it, and deregisters
/// nothing; with force_deregister applied, the destroy deregisters it.
#[test]
fn destroying_a_layer_in_use_fails_unless_forced() {
    let account = LocalAws::shared().account();
    let ec2 = runtime().block_on(account.ec2());
    let c = commit('a');
    let ami = seeded_packer_base(&ec2, &c, &[("Project", PROJECT)]);
    let workdir = Workdir::new(&account);
    workdir.write("images/base.json", &template_fixture());
    workdir.write("main.tf", &format!("{}{}", provider_block(), packer_layer("false", &c)));
    workdir.init().expect("init");
    workdir.apply().expect("adopt");
    let instance = runtime().block_on(async {
        let out = ec2
            .run_instances()
            .image_id(&ami)
            .instance_type(InstanceType::T3Micro)
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("run instance");
        out.instances()[0].instance_id().expect("instance id").to_owned()
    });

    let destroy = workdir.terraform(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert!(!destroy.success(), "{destroy}");
    assert!(destroy.stderr.contains("AMI In Use") && destroy.stderr.contains(&instance), "{destroy}");
    assert!(runtime().block_on(own_images(&ec2)).contains(&ami), "the AMI is still registered");

    let forced = packer_layer("false", &c).replace("  commit = ", "  force_deregister = true\n  commit = ");
    workdir.write("main.tf", &format!("{}{forced}", provider_block()));
    workdir.apply().expect("apply force_deregister");
    workdir.destroy().expect("forced destroy");
    assert!(!runtime().block_on(own_images(&ec2)).contains(&ami), "deregistered");
}
