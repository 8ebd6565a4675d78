//! The native builder: no Packer. Launch an instance from the parent with the user
//! data, wait until the user data powers it off, CreateImage, wait until the AMI is
//! available, terminate the instance (always, also when anything failed).

use super::{BuildError, BuildRequest};
use crate::aws::images;
use crate::aws::instances::{self, BuilderInstance, InstanceGuard};
use conventions::ami_tags;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeSpec {
    /// Must end by powering the instance off (`shutdown -h now`).
    pub user_data: String,
    pub instance_type: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
}

/// `<layer>-<unix timestamp>`, as Packer's `{{timestamp}}` names images.
pub fn image_name(layer: &str) -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{layer}-{now}")
}

impl NativeSpec {
    pub(super) async fn build(
        &self,
        ec2: &aws_sdk_ec2::Client,
        request: &BuildRequest,
    ) -> Result<String, BuildError> {
        let layer = request.layer.as_str();
        request.limits.check(&format!("starting the build of layer {layer}"))?;
        let mut instance_tags = request.resource_tags.clone();
        instance_tags.insert(ami_tags::NAME.to_owned(), format!("immutable builder: {layer}"));
        instance_tags.insert(ami_tags::LAYER.to_owned(), layer.to_owned());
        instance_tags.insert(ami_tags::COMMIT.to_owned(), request.commit.clone());
        instance_tags.insert(ami_tags::MANAGED_BY.to_owned(), ami_tags::MANAGED_BY_VALUE.to_owned());
        let spec = BuilderInstance {
            layer,
            image_id: &request.parent.ami_id,
            instance_type: &self.instance_type,
            user_data: &self.user_data,
            subnet_id: self.subnet_id.as_deref(),
            security_group_ids: &self.security_group_ids,
            iam_instance_profile: self.iam_instance_profile.as_deref(),
            tags: instance_tags,
        };
        let instance = instances::launch_builder(ec2, &spec).await?;
        tracing::info!(layer, instance = %instance, parent = %request.parent.ami_id, "launched builder instance");
        let guard = InstanceGuard::new(ec2.clone(), instance);
        let result = self.bake(ec2, request, guard.id()).await;
        // Terminate whatever happened; a build error wins over a termination error.
        let terminated = guard.terminate().await;
        let ami = result?;
        terminated?;
        Ok(ami)
    }

    async fn bake(
        &self,
        ec2: &aws_sdk_ec2::Client,
        request: &BuildRequest,
        instance: &str,
    ) -> Result<String, BuildError> {
        let layer = request.layer.as_str();
        instances::wait_stopped(ec2, instance, &request.limits).await?;
        tracing::info!(layer, instance, "builder instance powered off; creating the image");
        request.limits.check(&format!("creating the image of layer {layer}"))?;
        let name = image_name(layer);
        let description = format!("{layer} at {} (immutable native builder)", request.commit);
        let ami = images::create_image(ec2, instance, &name, &description, &request.tags).await?;
        tracing::info!(layer, ami = %ami, name = %name, "image requested; waiting until available");
        if let Err(e) = images::wait_image_available(ec2, &ami, &request.limits).await {
            // A half-made image must not be adopted later: deregister it.
            if let Err(cleanup) = images::deregister_with_snapshots(ec2, &ami).await {
                tracing::error!(layer, ami = %ami, error = %cleanup, "could not deregister an unfinished image");
            }
            return Err(e.into());
        }
        tracing::info!(layer, ami = %ami, "image available");
        Ok(ami)
    }
}
