//! `data.immutable_ami` end to end: real Terraform, real provider, emulator.

use tests::{LayerSeed, LocalAws, Workdir, register_ami, seed_lineage};

const PROVIDER: &str = r#"
terraform {
  required_providers {
    immutable = { source = "terraform.local/immutable/immutable" }
  }
}
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

fn borrow<'a>(tags: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    tags.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn commit(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}

/// The example from examples/terraform/lineage, from a clean temp dir.
#[test]
fn example_prints_the_newest_ami_and_its_lineage() {
    let account = LocalAws::shared().account();
    let (base, rails, old_app, new_app) = runtime().block_on(async {
        let ec2 = account.ec2().await;
        let ids = seed_lineage(
            &ec2,
            &[
                LayerSeed::new("ubuntu-1804", "Ubuntu 18.04", commit('a')),
                LayerSeed::new("rails-base", "Rails base", commit('b')).parent(0),
            ],
        )
        .await;
        // Two builds of the app layer; the newer (later timestamp in its name, the
        // tie-breaker when creation dates share a second) must win.
        let (c1, c2) = (commit('1'), commit('2'));
        let app = |c: &str| {
            [
                ("Layer", "demo-web-app"),
                ("Commit", c),
                ("ParentLayer", "rails-base"),
                ("ParentAMI", ids[1].as_str()),
            ]
            .map(|(k, v)| (k, v.to_owned()))
        };
        let old = register_ami(&ec2, "demo-web-app-1700000000", &borrow(&app(&c1)))
            .await
            .expect("register old app AMI");
        let new = register_ami(&ec2, "demo-web-app-1700000100", &borrow(&app(&c2)))
            .await
            .expect("register new app AMI");
        (ids[0].clone(), ids[1].clone(), old, new)
    });

    let workdir = Workdir::new(&account);
    let example = std::fs::read_to_string(tests::repo_root().join("examples/terraform/lineage/main.tf"))
        .expect("example config");
    workdir.write("main.tf", &example);
    workdir.init().expect("terraform init");
    let apply = workdir.apply().expect("terraform apply");
    assert!(apply.stdout.contains(&format!("ami_id = \"{new_app}\"")), "{apply}");

    assert_eq!(workdir.output("ami_id").expect("output"), serde_json::json!(new_app));
    assert_eq!(workdir.output("commit").expect("output"), serde_json::json!(commit('2')));
    let lineage = workdir.output("lineage").expect("output");
    assert_eq!(
        lineage,
        serde_json::json!([
            format!("ubuntu-1804: {base} ({})", commit('a')),
            format!("rails-base: {rails} ({})", commit('b')),
            format!("demo-web-app: {new_app} ({})", commit('2')),
        ])
    );
    assert_ne!(old_app, new_app);

    // Pinning the commit selects the older build.
    workdir.write(
        "pin.tf",
        &format!("data \"immutable_ami\" \"pinned\" {{\n  layer  = \"demo-web-app\"\n  commit = \"{}\"\n}}\noutput \"pinned\" {{\n  value = data.immutable_ami.pinned.ami_id\n}}\n", commit('1')),
    );
    workdir.apply().expect("apply with pinned commit");
    assert_eq!(workdir.output("pinned").expect("output"), serde_json::json!(old_app));
}

#[test]
fn no_match_is_an_error_naming_the_filters() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            "{PROVIDER}\ndata \"immutable_ami\" \"x\" {{\n  layer = \"nope\"\n  filter_tags = {{ Team = \"core\" }}\n}}\n"
        ),
    );
    workdir.init().expect("init");
    let plan = workdir.terraform(&["plan", "-no-color"]);
    assert!(!plan.success(), "{plan}");
    assert!(plan.stderr.contains("No Matching AMI"), "{plan}");
    assert!(plan.stderr.contains(r#"Layer = "nope""#), "{plan}");
    assert!(plan.stderr.contains(r#"Team = "core""#), "{plan}");
    assert!(plan.stderr.contains("owners: self"), "{plan}");
}

#[test]
fn tf_log_debug_shows_provider_log_lines() {
    let account = LocalAws::shared().account();
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        seed_lineage(&ec2, &[LayerSeed::new("logged", "Logged", commit('e'))]).await;
    });
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!("{PROVIDER}\ndata \"immutable_ami\" \"x\" {{\n  layer = \"logged\"\n}}\n"),
    );
    workdir.init().expect("init");
    let plan = workdir.terraform_with_env(&["plan", "-no-color"], &[("TF_LOG", "debug")]);
    assert!(plan.success(), "{plan}");
    // go-plugin re-logs the provider's hclog JSON lines under the plugin's name.
    let ours: Vec<&str> = plan
        .stderr
        .lines()
        .filter(|l| l.contains("terraform-provider-immutable") && l.contains("found newest AMI of layer"))
        .collect();
    assert!(!ours.is_empty(), "no provider line in TF_LOG=debug output:\n{}", plan.stderr);
    assert!(ours[0].contains("[INFO]"), "logged at its own level: {}", ours[0]);
    assert!(plan.stderr.contains("[DEBUG] provider.terraform-provider-immutable"), "debug lines too");

    // TF_LOG_PROVIDER=off silences the provider alone.
    let quiet = workdir
        .terraform_with_env(&["plan", "-no-color"], &[("TF_LOG", "debug"), ("TF_LOG_PROVIDER", "off")]);
    assert!(quiet.success(), "{quiet}");
    assert!(!quiet.stderr.contains("found newest AMI of layer"), "provider should be silent");
}

/// Each bad argument gets its own diagnostic, pointing at its own line.
#[test]
fn bad_provider_configuration_is_reported_on_each_attribute() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            r#"{PROVIDER}
provider "immutable" {{
  region      = "nowhere"
  max_retries = 1000
  endpoints {{
    ec2 = "ftp://example"
  }}
}}
data "immutable_ami" "x" {{
  layer = "whatever"
}}
"#
        ),
    );
    workdir.init().expect("init");
    let validate = workdir.terraform(&["validate", "-no-color"]);
    assert!(!validate.success(), "{validate}");
    for (summary, line) in [
        ("Invalid Region", r#"region      = "nowhere""#),
        ("Value Out Of Range", "max_retries = 1000"),
        ("Invalid Endpoint URL", r#"ec2 = "ftp://example""#),
    ] {
        validate.assert_error_at(summary, line);
    }
}

#[test]
fn bad_data_source_arguments_are_reported_on_each_attribute() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &format!(
            r#"{PROVIDER}
data "immutable_ami" "x" {{
  layer  = ""
  commit = "abc123"
  owners = []
}}
"#
        ),
    );
    workdir.init().expect("init");
    let plan = workdir.terraform(&["plan", "-no-color"]);
    assert!(!plan.success(), "{plan}");
    for (summary, line) in [
        ("Empty Value", r#"layer  = """#),
        ("Invalid Commit", r#"commit = "abc123""#),
        ("Empty Owners", "owners = []"),
    ] {
        plan.assert_error_at(summary, line);
    }
}
