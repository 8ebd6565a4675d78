//! What `immutable-agent` needs from the app: the instance tags it reads through the
//! instance metadata, the permission to leave the target groups (warned about at plan
//! time), and, end to end, an interrupted instance leaving its group before it goes.

use super::app::{config, out_list, runtime, setup};
use tests::Workdir;

const WARNING: &str = "Instances Cannot Leave Their Target Groups";

#[test]
fn the_plan_warns_when_the_instance_profile_cannot_deregister() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 1, ""));
    workdir.init().expect("init");
    let allowed = workdir.plan().expect("plan");
    assert!(!allowed.stdout.contains(WARNING), "web-profile's role may deregister: {}", allowed.stdout);

    runtime().block_on(async {
        let iam = aws_sdk_iam::Client::new(&s.account.sdk_config().await);
        iam.create_instance_profile().instance_profile_name("bare-profile").send().await.expect("profile");
        iam.create_role()
            .role_name("bare")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
            .send()
            .await
            .expect("role");
        iam.put_role_policy()
            .role_name("bare")
            .policy_name("elsewhere")
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"elasticloadbalancing:DeregisterTargets","Resource":"arn:aws:elasticloadbalancing:*:*:targetgroup/other/*"}]}"#,
            )
            .send()
            .await
            .expect("policy");
        iam.add_role_to_instance_profile()
            .instance_profile_name("bare-profile")
            .role_name("bare")
            .send()
            .await
            .expect("role in profile");
    });
    workdir.write("main.tf", &config(&s.amis[0], 1, "").replace("\"web-profile\"", "\"bare-profile\""));
    let denied = workdir.plan().expect("plan");
    let text = denied.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains(WARNING), "{text}");
    assert!(text.contains("bare-profile"), "{text}");
    assert!(text.contains("target group web"), "names the group: {text}");
}

#[test]
fn instances_carry_their_target_groups_and_drain_time_for_the_agent() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 1, ""));
    workdir.init().expect("init");
    workdir.apply().expect("apply");
    let instance = out_list(&workdir, "instance_ids").remove(0);
    let (tags, metadata_tags) = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let out = ec2.describe_instances().instance_ids(&instance).send().await.expect("instance");
        let found = out.reservations()[0].instances()[0].clone();
        let tags: std::collections::BTreeMap<String, String> =
            found.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect();
        let metadata_tags =
            found.metadata_options().and_then(|m| m.instance_metadata_tags()).map(|t| t.as_str().to_owned());
        (tags, metadata_tags)
    });
    assert_eq!(tags.get("immutable:target-group:0"), Some(&s.infra.target_group_arn), "{tags:?}");
    assert_eq!(
        tags.get("immutable:drain-seconds").map(String::as_str),
        Some("300"),
        "the group's delay: {tags:?}"
    );
    assert_eq!(metadata_tags.as_deref(), Some("enabled"), "the instance may read its tags from its metadata");
    workdir.destroy().expect("destroy");
}

#[test]
fn a_tag_key_metadata_cannot_hold_keeps_tags_out_of_metadata_with_a_warning() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 1, r#"tags = { "team/owner" = "web" }"#));
    workdir.init().expect("init");
    let plan = workdir.plan().expect("plan");
    let text = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains("Instance Tags Not In Metadata"), "{text}");
    assert!(text.contains("\"team/owner\""), "names the key: {text}");
    workdir.apply().expect("the app still deploys");
    let instance = out_list(&workdir, "instance_ids").remove(0);
    let metadata_tags = runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let out = ec2.describe_instances().instance_ids(&instance).send().await.expect("instance");
        out.reservations()[0].instances()[0]
            .metadata_options()
            .and_then(|m| m.instance_metadata_tags())
            .map(|t| t.as_str().to_owned())
    });
    assert_eq!(metadata_tags.as_deref(), Some("disabled"), "AWS would refuse the launch otherwise");
    workdir.destroy().expect("destroy");
}
