//! Tags of a running app change in place: the app's `tags`, the provider's
//! `default_tags`, and tags changed outside Terraform, which the plan shows and the
//! apply repairs. No new fleet, no new generation, the same instances.

use super::app::{config, out_list, out_str, runtime, setup};
use std::collections::BTreeMap;
use tests::{Account, Workdir};

fn tag_map(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect()
}

/// The tags of fleet `id`.
fn fleet_tags(account: &Account, id: &str) -> BTreeMap<String, String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2.describe_spot_fleet_requests().spot_fleet_request_ids(id).send().await.expect("fleet");
        tag_map(out.spot_fleet_request_configs()[0].tags())
    })
}

/// The tags of each instance of `ids`.
fn instance_tags(account: &Account, ids: &[String]) -> Vec<BTreeMap<String, String>> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out =
            ec2.describe_instances().set_instance_ids(Some(ids.to_vec())).send().await.expect("instances");
        out.reservations().iter().flat_map(|r| r.instances()).map(|i| tag_map(i.tags())).collect()
    })
}

/// The instance tags the latest version of the generation's template launches with.
fn launch_tags(account: &Account, generation: u64) -> BTreeMap<String, String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2
            .describe_launch_template_versions()
            .launch_template_name(format!("immutable-web-g{generation}"))
            .versions("$Latest")
            .send()
            .await
            .expect("template versions");
        let data = out.launch_template_versions()[0].launch_template_data().expect("data");
        let spec = data
            .tag_specifications()
            .iter()
            .find(|s| s.resource_type() == Some(&aws_sdk_ec2::types::ResourceType::Instance))
            .expect("instance tags");
        tag_map(spec.tags())
    })
}

fn with_tags(ami: &str, tags: &str, default_tags: &str) -> String {
    format!(
        "{}\nprovider \"immutable\" {{\n  default_tags = {{ {default_tags} }}\n}}\n",
        config(ami, 2, &format!("tags = {{ {tags} }}"))
    )
}

/// Asserts the app still runs `fleet` at `generation` with `instances`, and that the
/// fleet, every instance and the template's launches carry `wanted` and none of `gone`.
fn assert_tagged(
    workdir: &Workdir,
    (fleet, generation, instances): (&str, u64, &[String]),
    wanted: &[(&str, &str)],
    gone: &[&str],
) {
    let account = workdir.account();
    assert_eq!(out_str(workdir, "fleet_id"), fleet, "the same fleet");
    assert_eq!(
        workdir.output("generation").expect("output"),
        serde_json::json!(generation),
        "same generation"
    );
    assert_eq!(out_list(workdir, "instance_ids"), instances, "the same instances");
    let mut carriers = vec![("fleet".to_owned(), fleet_tags(account, fleet))];
    for (i, tags) in instance_tags(account, instances).into_iter().enumerate() {
        carriers.push((format!("instance {i}"), tags));
    }
    carriers.push(("launches".to_owned(), launch_tags(account, generation)));
    for (what, tags) in carriers {
        for (key, value) in wanted {
            assert_eq!(tags.get(*key).map(String::as_str), Some(*value), "{what}: {key} in {tags:?}");
        }
        for key in gone {
            assert!(!tags.contains_key(*key), "{what}: {key} is gone from {tags:?}");
        }
        assert_eq!(
            tags.get("immutable:app").map(String::as_str),
            Some("web"),
            "{what}: the provider's own tags stay"
        );
    }
}

#[test]
fn tags_change_in_place_and_drift_is_repaired() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    workdir.write("main.tf", &with_tags(&s.amis[0], r#"Team = "core", Stage = "one""#, ""));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    let fleet = out_str(&workdir, "fleet_id");
    let instances = out_list(&workdir, "instance_ids");
    let app = (fleet.as_str(), 1, instances.as_slice());
    assert_tagged(&workdir, app, &[("Team", "core"), ("Stage", "one")], &[]);

    // The app's tags: one changed, one removed.
    workdir.write("main.tf", &with_tags(&s.amis[0], r#"Team = "web""#, ""));
    let plan = workdir.run_ok(&["plan", "-no-color", "-input=false"]).expect("plan");
    assert!(plan.stdout.contains("~ tags_all") && plan.stdout.contains("1 to change"), "{plan}");
    assert!(!plan.stdout.contains("generation"), "no rollout planned:\n{plan}");
    workdir.apply().expect("re-tag");
    assert_tagged(&workdir, app, &[("Team", "web")], &["Stage"]);
    assert!(!workdir.plan_has_changes().expect("plan"), "settled");

    // The provider's default_tags.
    workdir.write("main.tf", &with_tags(&s.amis[0], r#"Team = "web""#, r#"CostCenter = "42""#));
    workdir.apply().expect("default tags");
    assert_tagged(&workdir, app, &[("Team", "web"), ("CostCenter", "42")], &["Stage"]);
    assert!(!workdir.plan_has_changes().expect("plan"), "settled");

    // Changed outside Terraform: the plan shows it, the apply repairs it.
    runtime().block_on(async {
        let ec2 = s.account.ec2().await;
        let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
        ec2.create_tags()
            .resources(&fleet)
            .tags(tag("Team", "rogue"))
            .tags(tag("Rogue", "yes"))
            .send()
            .await
            .expect("tag outside Terraform");
    });
    let plan = workdir.run_ok(&["plan", "-no-color", "-input=false"]).expect("plan");
    assert!(plan.stdout.contains("\"Rogue\"") && plan.stdout.contains("1 to change"), "drift shown:\n{plan}");
    workdir.apply().expect("repair");
    assert_tagged(&workdir, app, &[("Team", "web"), ("CostCenter", "42")], &["Stage", "Rogue"]);
    assert!(!workdir.plan_has_changes().expect("plan"), "settled");
}
