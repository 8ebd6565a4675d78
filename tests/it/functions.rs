//! Provider-defined functions, called by the real Terraform.

use tests::{LocalAws, Workdir};

const MANIFEST: &str = r#"{
  "builds": [
    {"name": "web", "builder_type": "amazon-ebs", "build_time": 1, "files": null, "artifact_id": "eu-west-1:ami-0aaa", "packer_run_uuid": "run-1", "custom_data": null},
    {"name": "web", "builder_type": "amazon-ebs", "build_time": 2, "files": null, "artifact_id": "eu-west-1:ami-0bbb", "packer_run_uuid": "run-2", "custom_data": null}
  ],
  "last_run_uuid": "run-2"
}"#;

fn config(region: &str) -> String {
    format!(
        r#"
terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

output "ami" {{
  value = provider::immutable::manifest_ami(file("${{path.module}}/manifest.json"), "{region}")
}}
"#
    )
}

#[test]
fn manifest_ami_gives_the_newest_runs_ami() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write("manifest.json", MANIFEST);
    workdir.write("main.tf", &config("eu-west-1"));
    workdir.init().expect("init");
    workdir.apply().expect("apply");
    assert_eq!(workdir.output("ami").expect("output"), serde_json::json!("ami-0bbb"));

    // No AMI in the region: an error that says why, at plan.
    workdir.write("main.tf", &config("ap-south-1"));
    let plan = workdir.terraform(&["plan", "-no-color"]);
    assert!(!plan.success(), "{plan}");
    assert!(plan.stderr.contains("has no AMI in ap-south-1"), "{plan}");
}
