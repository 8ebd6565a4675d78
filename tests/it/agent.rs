//! What `immutable-agent` needs from the app: the instance tags it reads through the
//! instance metadata, the permission to leave the target groups (warned about at plan
//! time), and, end to end, an interrupted instance leaving its group before it goes.

use super::app::{config, out_list, runtime, setup};
use tests::{Agents, Workdir};

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

#[test]
fn an_interrupted_instance_leaves_its_target_group_before_it_goes() {
    use std::time::Duration;
    use tests::{Watch, wait_until};
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &config(&s.amis[0], 3, ""));
    workdir.init().expect("init");
    workdir.apply().expect("apply");
    let instances = out_list(&workdir, "instance_ids");
    assert_eq!(instances.len(), 3);

    // One poll every 50 ms: 5 AWS seconds on the test clock, as on an instance.
    let agents = Agents::start(&s.account, &instances, "50ms", true).expect("starting the agents");
    wait_until(Duration::from_secs(30), "every agent polling", || {
        instances.iter().all(|i| agents.logged(i, "polling") == 1)
    })
    .expect("agents up");
    for instance in &instances {
        let groups: Vec<serde_json::Value> =
            agents.events(instance).into_iter().filter(|e| e["event"] == "target-groups").collect();
        assert_eq!(groups.len(), 1, "read from the instance's tags: {:?}", agents.events(instance));
        assert!(groups[0].to_string().contains(&s.infra.target_group_arn), "{}", groups[0]);
    }
    // Quiet while nothing is announced.
    std::thread::sleep(Duration::from_millis(500));
    assert!(instances.iter().all(|i| agents.logged(i, "deregistered") == 0), "no notice, no deregistration");

    // The victim's metadata service goes away for 30 AWS seconds and comes back: its
    // agent notices, waits, and carries on.
    let victim = instances[0].clone();
    s.account.control("POST", &format!("/_immutable/imds/{victim}/outage?seconds=30"), None).expect("outage");
    wait_until(Duration::from_secs(30), "the agent back from the outage", || {
        agents.logged(&victim, "imds-unavailable") == 1 && agents.logged(&victim, "imds-recovered") == 1
    })
    .unwrap_or_else(|e| panic!("{e:#}: {:?}", agents.events(&victim)));

    let watch = Watch::start(&s.account, &s.infra.target_group_arn, "web");
    s.account
        .control("POST", &format!("/_immutable/spot/interrupt?instance={victim}"), None)
        .expect("interrupt");
    wait_until(Duration::from_secs(30), "the victim's termination", || {
        runtime().block_on(async {
            let ec2 = s.account.ec2().await;
            let out = ec2.describe_instances().instance_ids(&victim).send().await.expect("victim");
            let state = out.reservations()[0].instances()[0].state().and_then(|s| s.name()).cloned();
            matches!(state.map(|s| s.as_str().to_owned()).as_deref(), Some("terminated" | "shutting-down"))
        })
    })
    .expect("terminated");
    wait_until(Duration::from_secs(60), "the replacement healthy", || {
        super::waves::healthy(&s.account, &s.infra.target_group_arn).iter().filter(|i| **i != victim).count()
            == 3
    })
    .expect("replacement healthy");
    let watched = watch.stop();
    assert_eq!(agents.logged(&victim, "notice"), 1, "{:?}", agents.events(&victim));
    assert_eq!(
        agents.logged(&victim, "deregistered"),
        1,
        "once, from its one group: {:?}",
        agents.events(&victim)
    );
    assert_eq!(agents.hooks(&victim), 1, "the drain hook ran once");
    for other in &instances[1..] {
        assert_eq!(agents.hooks(other), 0, "no hook without a notice");
        assert_eq!(
            agents.logged(other, "deregistered"),
            0,
            "{other} had no notice: {:?}",
            agents.events(other)
        );
    }
    let codes = agents.stop();
    assert!(codes.iter().all(|c| *c == Some(0)), "every agent exits 0 on SIGTERM: {codes:?}");

    // The victim left the group while it was still running, one target fewer.
    let left = watched
        .samples
        .iter()
        .find(|sample| !sample.healthy.contains(&victim))
        .expect("the victim left the healthy targets");
    assert!(left.instances.contains(&victim), "it left before it went: {left:?}");
    assert_eq!(left.healthy.len(), 2, "the healthy count dropped by one: {left:?}");
    let gone = watched.samples.iter().find(|sample| !sample.instances.contains(&victim)).expect("it went");
    assert!(left.at < gone.at, "deregistered at {:?}, terminated at {:?}", left.at, gone.at);
    eprintln!(
        "watch: interrupted at ~{:?}, out of service at {:?}, terminated at {:?}",
        watched.samples.first().map(|f| f.at),
        left.at,
        gone.at
    );
    workdir.destroy().expect("destroy");
}
