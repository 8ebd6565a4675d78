//! The core infrastructure an app is deployed into, as Terraform would have created
//! it: a security group, a target group, an instance profile and the Spot Fleet role,
//! all found later by name.

use crate::Account;
use anyhow::Context as _;

/// Names and ids of the core infrastructure in one account.
#[derive(Debug, Clone)]
pub struct CoreInfra {
    pub vpc_id: String,
    pub subnet_ids: Vec<String>,
    pub security_group: String,
    pub security_group_id: String,
    pub target_group: String,
    pub target_group_arn: String,
    pub instance_profile: String,
    pub fleet_role: String,
}

/// Creates the core infrastructure in `account` (the default VPC's subnets, a
/// security group `web-sg`, a target group `web`, an instance profile `web-profile`
/// and the role `aws-ec2-spot-fleet-tagging-role`).
pub async fn core_infra(account: &Account) -> anyhow::Result<CoreInfra> {
    let config = account.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);

    let vpcs = ec2.describe_vpcs().send().await.context("describing VPCs")?;
    let vpc_id = vpcs
        .vpcs()
        .iter()
        .find(|v| v.is_default() == Some(true))
        .or_else(|| vpcs.vpcs().first())
        .and_then(|v| v.vpc_id())
        .context("no VPC in the account")?
        .to_owned();
    let subnets = ec2
        .describe_subnets()
        .filters(aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .context("describing subnets")?;
    let mut subnet_ids: Vec<String> =
        subnets.subnets().iter().filter_map(|s| s.subnet_id()).map(str::to_owned).collect();
    subnet_ids.sort();

    let security_group = "web-sg".to_owned();
    let sg = ec2
        .create_security_group()
        .group_name(&security_group)
        .description("web servers")
        .vpc_id(&vpc_id)
        .send()
        .await
        .context("creating security group")?;
    let security_group_id = sg.group_id().context("security group id")?.to_owned();

    let target_group = "web".to_owned();
    let tg = elb
        .create_target_group()
        .name(&target_group)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc_id)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .context("creating target group")?;
    let target_group_arn =
        tg.target_groups().first().and_then(|g| g.target_group_arn()).context("target group ARN")?.to_owned();

    let instance_profile = "web-profile".to_owned();
    iam.create_instance_profile()
        .instance_profile_name(&instance_profile)
        .send()
        .await
        .context("creating instance profile")?;
    // The instances' role: it may take an instance out of the app's target group (what
    // immutable-agent does on a Spot interruption notice), nothing else.
    let instance_role = "web-instance";
    iam.create_role()
        .role_name(instance_role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .context("creating the instance role")?;
    iam.put_role_policy()
        .role_name(instance_role)
        .policy_name("leave-target-groups")
        .policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"elasticloadbalancing:DeregisterTargets","Resource":"{target_group_arn}"}}]}}"#
        ))
        .send()
        .await
        .context("allowing the instance role to deregister")?;
    iam.add_role_to_instance_profile()
        .instance_profile_name(&instance_profile)
        .role_name(instance_role)
        .send()
        .await
        .context("adding the instance role to its profile")?;
    let fleet_role = "aws-ec2-spot-fleet-tagging-role".to_owned();
    iam.create_role()
        .role_name(&fleet_role)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"spotfleet.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .context("creating fleet role")?;

    Ok(CoreInfra {
        vpc_id,
        subnet_ids,
        security_group,
        security_group_id,
        target_group,
        target_group_arn,
        instance_profile,
        fleet_role,
    })
}

/// Configuration of app `web` on the [`core_infra`] names (`web-sg`, target group
/// `web`, `web-profile`): `capacity` instances of `ami`, green awaited up to
/// `health_timeout`, with `extra` lines inside the resource block.
pub fn web_app_config(ami: &str, capacity: u32, health_timeout: &str, extra: &str) -> String {
    format!(
        r##"
terraform {{
  required_providers {{
    immutable = {{ source = "terraform.local/immutable/immutable" }}
  }}
}}

resource "immutable_app" "web" {{
  name                 = "web"
  ami_id               = "{ami}"
  instance_types       = ["t3.small", "t3a.small"]
  target_capacity      = {capacity}
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  {extra}
  rollout {{
    health_timeout = "{health_timeout}"
    drain_timeout  = "1s"
  }}
}}
"##
    )
}
