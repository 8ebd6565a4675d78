//! `provider::immutable::manifest_ami(manifest, region)`: the AMI a Packer build
//! recorded in its manifest, for configurations that build with Packer outside
//! Terraform and deploy the result (the `jq` step of a deploy script).

use crate::builder::packer::Manifest;
use async_trait::async_trait;
use tfplugin::function::{Function, FunctionError, Parameter, Signature};
use tfplugin::provider::Context;
use tfplugin::value::{Type, Value};

pub struct ManifestAmi;

/// The AMI in `region` of the manifest's newest run (its last build).
fn manifest_ami(manifest: &str, region: &str) -> Result<String, FunctionError> {
    let parsed: Manifest = serde_json::from_str(manifest)
        .map_err(|e| FunctionError::argument(0, format!("not a Packer manifest (JSON with builds): {e}")))?;
    let artifact = parsed.last_artifact().map_err(|e| FunctionError::argument(0, e))?;
    artifact
        .split(',')
        .filter_map(|pair| pair.trim().split_once(':'))
        .find(|(r, ami)| *r == region && ami.starts_with("ami-"))
        .map(|(_, ami)| ami.to_owned())
        .ok_or_else(|| {
            FunctionError::argument(
                1,
                format!("the newest build's artifact {artifact:?} has no AMI in {region}"),
            )
        })
}

#[async_trait]
impl Function for ManifestAmi {
    fn name(&self) -> &'static str {
        "manifest_ami"
    }

    fn signature(&self) -> Signature {
        Signature {
            summary: "The AMI a Packer build recorded in its manifest.".to_owned(),
            description: "The AMI id in `region` of the newest run in a Packer manifest (the output of Packer's \
                          `manifest` post-processor): the last build of the run named by `last_run_uuid`. For \
                          configurations that build images with Packer outside Terraform and deploy them with \
                          `immutable_app`. Fails when the manifest has no build of its last run, or that build \
                          made no AMI in `region`."
                .to_owned(),
            parameters: vec![
                Parameter::new("manifest", Type::String, "The manifest's text, e.g. `file(\"manifest.json\")`."),
                Parameter::new("region", Type::String, "The region of the AMI, e.g. `eu-west-1`."),
            ],
            variadic: None,
            returns: Type::String,
        }
    }

    async fn call(&self, _ctx: &Context, arguments: &[Value]) -> Result<Value, FunctionError> {
        let text = |i: usize| arguments.get(i).and_then(Value::as_str).unwrap_or_default();
        manifest_ami(text(0), text(1)).map(Value::String)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{
      "builds": [
        {"name": "web", "artifact_id": "eu-west-1:ami-old", "packer_run_uuid": "run-1"},
        {"name": "web", "artifact_id": "eu-west-1:ami-0123,us-east-1:ami-4567", "packer_run_uuid": "run-2"},
        {"name": "web", "artifact_id": "eu-west-1:ami-stale", "packer_run_uuid": "run-1"}
      ],
      "last_run_uuid": "run-2"
    }"#;

    #[test]
    fn the_newest_runs_ami_in_the_region() {
        assert_eq!(manifest_ami(MANIFEST, "eu-west-1").as_deref(), Ok("ami-0123"));
        assert_eq!(manifest_ami(MANIFEST, "us-east-1").as_deref(), Ok("ami-4567"));
        assert_eq!(manifest_ami(MANIFEST, "ap-south-1").map_err(|e| e.argument), Err(Some(1)));
        assert_eq!(manifest_ami("{}", "eu-west-1").map_err(|e| e.argument), Err(Some(0)), "no builds");
        assert_eq!(manifest_ami("not json", "eu-west-1").map_err(|e| e.argument), Err(Some(0)));
    }
}
