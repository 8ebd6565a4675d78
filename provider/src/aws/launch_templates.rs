//! Launch templates: one per generation of an app, with the launch's security defaults
//! (IMDSv2 required, encrypted root volume, no SSH key unless set) and the instance's
//! tags readable from its metadata.

use super::{AwsError, OrNotFound, sdk_tags};
use aws_sdk_ec2::types::{
    Filter, FleetLaunchTemplateSpecification, LaunchTemplateBlockDeviceMappingRequest,
    LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceMetadataTagsState,
    LaunchTemplateTagSpecificationRequest, LaunchTemplateVersion, RequestLaunchTemplateData, ResourceType,
    TagSpecification, VolumeType,
};
use base64::Engine as _;
use conventions::fleet_tags;
use std::collections::BTreeMap;

/// AWS's answers for a launch template that is not there.
pub const NOT_FOUND: &[&str] = &[
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.Malformed",
];

/// What an instance is launched with, resolved to ids and ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateData {
    pub ami_id: String,
    pub root_device_name: String,
    pub security_group_ids: Vec<String>,
    pub instance_profile_arn: Option<String>,
    pub user_data: Option<String>,
    pub key_name: Option<String>,
    /// Tags of the instances only, on top of the group's (what `immutable-agent` reads
    /// from the instance metadata: see `conventions::agent_tags`).
    pub instance_tags: BTreeMap<String, String>,
    /// Whether the instances may read their tags from their metadata (only when every
    /// tag key is one AWS launches with: `conventions::agent_tags::readable_in_metadata`).
    pub metadata_tags: bool,
}

/// The launch template of one generation of an app.
pub fn template_name(app: &str, generation: u64) -> String {
    format!("immutable-{app}-g{generation}")
}

/// Creates the template `name` holding `data`, whose instances and volumes get `tags`
/// (and the template itself `tags`, `extra_tags` and the configuration's `token`), or
/// returns the one an interrupted run created for the same configuration. One holding
/// another configuration is replaced: no fleet uses it (see the rollout runner).
pub async fn ensure(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    data: &TemplateData,
    tags: &BTreeMap<String, String>,
    extra_tags: &BTreeMap<String, String>,
    token: &str,
) -> Result<String, AwsError> {
    if let Some(id) = find(ec2, name).await? {
        let existing = find_tags(ec2, &id).await?;
        if existing.get(fleet_tags::CONFIG).map(String::as_str) == Some(token) {
            return Ok(id);
        }
        // Another Terraform object's template: never replaced.
        if let Some(theirs) = existing.get(fleet_tags::OWNER)
            && tags.get(fleet_tags::OWNER) != Some(theirs)
        {
            return Err(AwsError::plain(
                format!("creating launch template {name}"),
                format!("template {id} of this name belongs to another Terraform object (owner {theirs})"),
            ));
        }
        tracing::info!(template = %id, "launch template {name} holds another configuration; replacing it");
        delete(ec2, &id).await?;
    }
    let tag_spec = |resource, tags: &BTreeMap<String, String>| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(resource)
            .set_tags(Some(sdk_tags(tags)))
            .build()
    };
    let mut instance_tags = tags.clone();
    instance_tags.extend(data.instance_tags.clone());
    let mut request = RequestLaunchTemplateData::builder()
        .image_id(&data.ami_id)
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::Required)
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_put_response_hop_limit(2)
                // The instance reads its own tags (its target groups, for immutable-agent).
                .instance_metadata_tags(if data.metadata_tags {
                    LaunchTemplateInstanceMetadataTagsState::Enabled
                } else {
                    LaunchTemplateInstanceMetadataTagsState::Disabled
                })
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&data.root_device_name)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .encrypted(true)
                        .delete_on_termination(true)
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(tag_spec(ResourceType::Instance, &instance_tags))
        .tag_specifications(tag_spec(ResourceType::Volume, tags))
        .set_security_group_ids(
            (!data.security_group_ids.is_empty()).then(|| data.security_group_ids.clone()),
        )
        .set_key_name(data.key_name.clone());
    if let Some(arn) = &data.instance_profile_arn {
        request = request.iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder().arn(arn).build(),
        );
    }
    if let Some(user_data) = &data.user_data {
        request = request.user_data(base64::engine::general_purpose::STANDARD.encode(user_data));
    }
    let mut template_tags = tags.clone();
    template_tags.extend(extra_tags.clone());
    template_tags.insert(fleet_tags::CONFIG.to_owned(), token.to_owned());
    let out = ec2
        .create_launch_template()
        .launch_template_name(name)
        .client_token(token)
        .launch_template_data(request.build())
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::LaunchTemplate)
                .set_tags(Some(sdk_tags(&template_tags)))
                .build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::new(format!("creating launch template {name}"), &e))?;
    out.launch_template().and_then(|t| t.launch_template_id()).map(str::to_owned).ok_or_else(|| {
        AwsError::plain(format!("creating launch template {name}"), "no template id in the answer")
    })
}

/// The id of the template named `name`.
pub async fn find(ec2: &aws_sdk_ec2::Client, name: &str) -> Result<Option<String>, AwsError> {
    let out = ec2
        .describe_launch_templates()
        .filters(Filter::builder().name("launch-template-name").values(name).build())
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up launch template {name}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| {
        out.launch_templates().first().and_then(|t| t.launch_template_id()).map(str::to_owned)
    }))
}

/// The template's tags (for import).
pub async fn find_tags(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
) -> Result<BTreeMap<String, String>, AwsError> {
    let out = ec2
        .describe_launch_templates()
        .launch_template_ids(template_id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing launch template {template_id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out
        .and_then(|out| {
            out.launch_templates().first().map(|t| {
                t.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect()
            })
        })
        .unwrap_or_default())
}

/// Makes the instances and volumes the template launches from now on carry `tags`
/// and no longer `removed`: a new version, based on the latest (the version the app's
/// fleet launches from), with only its tag specifications changed.
pub async fn retag_launches(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
    tags: &BTreeMap<String, String>,
    removed: &[String],
) -> Result<(), AwsError> {
    let action = format!("re-tagging what launch template {template_id} launches");
    let Some(latest) = latest_version(ec2, template_id).await? else {
        return Err(AwsError::plain(action, "the template is gone"));
    };
    let specs = latest.launch_template_data().map(|d| d.tag_specifications()).unwrap_or_default();
    let specs = specs
        .iter()
        .map(|spec| {
            let mut now: BTreeMap<String, String> = spec
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .filter(|(k, _)| !removed.contains(k))
                .collect();
            now.extend(tags.clone());
            LaunchTemplateTagSpecificationRequest::builder()
                .set_resource_type(spec.resource_type().cloned())
                .set_tags(Some(sdk_tags(&now)))
                .build()
        })
        .collect();
    ec2.create_launch_template_version()
        .launch_template_id(template_id)
        .source_version(latest.version_number().unwrap_or(1).to_string())
        .launch_template_data(
            RequestLaunchTemplateData::builder().set_tag_specifications(Some(specs)).build(),
        )
        .send()
        .await
        .map_err(|e| AwsError::new(&action, &e))?;
    Ok(())
}

/// The template's latest version (the one the app's fleet launches from).
async fn latest_version(
    ec2: &aws_sdk_ec2::Client,
    template_id: &str,
) -> Result<Option<LaunchTemplateVersion>, AwsError> {
    let out = ec2
        .describe_launch_template_versions()
        .launch_template_id(template_id)
        .versions("$Latest")
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing launch template {template_id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| out.launch_template_versions().first().cloned()))
}

/// The user data of the template's latest version, decoded.
pub async fn user_data(ec2: &aws_sdk_ec2::Client, template_id: &str) -> Result<Option<String>, AwsError> {
    Ok(latest_version(ec2, template_id).await?.and_then(|version| {
        version
            .launch_template_data()
            .and_then(|d| d.user_data())
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }))
}

/// The AMI a fleet's launch template version launches.
pub async fn image_of(
    ec2: &aws_sdk_ec2::Client,
    spec: &FleetLaunchTemplateSpecification,
) -> Result<Option<String>, AwsError> {
    let name = spec.launch_template_id().or(spec.launch_template_name()).unwrap_or_default().to_owned();
    let out = ec2
        .describe_launch_template_versions()
        .set_launch_template_id(spec.launch_template_id().map(str::to_owned))
        .set_launch_template_name(spec.launch_template_name().map(str::to_owned))
        .versions(spec.version().unwrap_or("$Default"))
        .send()
        .await
        .map_err(|e| AwsError::new(format!("describing launch template {name}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| {
        out.launch_template_versions()
            .iter()
            .find_map(|v| v.launch_template_data().and_then(|d| d.image_id()).map(str::to_owned))
    }))
}

/// Deletes the template; one already gone is fine.
pub async fn delete(ec2: &aws_sdk_ec2::Client, template_id: &str) -> Result<(), AwsError> {
    ec2.delete_launch_template()
        .launch_template_id(template_id)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("deleting launch template {template_id}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(())
}
