//! An app belongs to the Terraform object that created or imported it: a replacement
//! with `create_before_destroy` runs beside its predecessor, and another state or
//! another resource of the same name is refused at plan time, with nothing changed.

use super::app::{
    app_footprint, config, deployed, fleet_owner, out_list, out_str, runtime, setup, watch_target_group,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tests::{Account, Workdir, mutating};

/// Names of the account's launch templates, sorted.
fn launch_templates(account: &Account) -> Vec<String> {
    runtime().block_on(async {
        let ec2 = account.ec2().await;
        let out = ec2.describe_launch_templates().send().await.expect("describe launch templates");
        let mut names: Vec<String> = out
            .launch_templates()
            .iter()
            .filter_map(|t| t.launch_template_name().map(str::to_owned))
            .collect();
        names.sort();
        names
    })
}

/// `terraform apply -replace` of an app with `create_before_destroy`: the new object
/// starts its fleet beside the old one (which another object owns, so a create that
/// took it for its own would fail or adopt it), the target group keeps full capacity
/// throughout, and the old object's delete then removes only its own fleet.
#[test]
fn a_replacement_with_create_before_destroy_serves_throughout() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    let lifecycle = "lifecycle {\n    create_before_destroy = true\n  }";
    workdir.write("main.tf", &config(&s.amis[0], 2, lifecycle));
    workdir.init().expect("init");
    workdir.apply().expect("create");
    let old = out_str(&workdir, "fleet_id");
    let old_owner = fleet_owner(&s.account, &old);

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_target_group(s.account.clone(), s.infra.target_group_arn.clone(), stop.clone());
    let replace = workdir.run_ok(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-replace=immutable_app.web",
    ]);
    stop.store(true, Ordering::SeqCst);
    let (fewest, samples) = watcher.join().expect("watcher");
    let replace = replace.expect("replace");
    assert!(replace.stdout.contains("create replacement and then destroy"), "{replace}");
    assert!(replace.stdout.contains("1 added, 0 changed, 1 destroyed"), "{replace}");
    assert!(samples >= 5, "the watcher sampled the target group during the replacement ({samples})");
    assert!(fewest >= 2, "the target group never dropped below full capacity; fewest healthy: {fewest}");

    let new = out_str(&workdir, "fleet_id");
    assert_ne!(new, old, "the new object has its own fleet");
    assert_ne!(fleet_owner(&s.account, &new), old_owner, "and its own owner");
    assert_eq!(workdir.output("generation").expect("output"), serde_json::json!(2), "the next generation");
    let (open, running) = app_footprint(&s.account, "web");
    assert_eq!(open, vec![new], "the old object's delete cancelled its fleet alone");
    let mut instances = out_list(&workdir, "instance_ids");
    instances.sort();
    let mut running = running;
    running.sort();
    assert_eq!(running, instances, "only the new object's instances run");
    assert_eq!(
        launch_templates(&s.account),
        vec!["immutable-web-g2"],
        "the old generation's template is gone"
    );
    assert!(!workdir.plan_has_changes().expect("plan"), "converged");
}

/// Applies `workdir` (whose app `web` another object owns) and asserts what a refused
/// create must do: fail at plan with `App Name In Use`, naming the serving `fleet` and
/// the import, with no mutating request, `fleet` still serving alone.
fn assert_refused(workdir: &Workdir, fleet: &str) {
    let account = workdir.account();
    account.reset_requests().expect("reset");
    let apply = workdir.terraform(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(!apply.success(), "{apply}");
    apply.assert_error_at("App Name In Use", r#"name                 = "web""#);
    assert!(apply.stderr.contains(fleet) && apply.stderr.contains("import"), "{apply}");
    let requests = account.requests().expect("requests");
    assert!(mutating(&requests).is_empty(), "nothing changed in AWS: {requests:?}");
    let (open, _) = app_footprint(account, "web");
    assert_eq!(open, vec![fleet.to_owned()], "the owner's fleet alone serves");
}

/// A second state with an app of the same name fails at plan time, pointing at the
/// import that would move the app, and changes nothing; the first state still plans
/// no change.
#[test]
fn a_second_state_cannot_take_an_app_by_its_name() {
    let s = setup();
    let first = deployed(&s);
    let fleet = out_str(&first, "fleet_id");
    let owner = fleet_owner(&s.account, &fleet);

    let second = Workdir::new(&s.account);
    second.write("main.tf", &config(&s.amis[1], 2, ""));
    second.init().expect("init");
    assert_refused(&second, &fleet);
    assert_eq!(fleet_owner(&s.account, &fleet), owner, "the fleet keeps its owner");
    assert!(!first.plan_has_changes().expect("plan"), "the first state has nothing to change");
}

/// `terraform state rm` drops the app from the state while its fleet serves: the
/// fleet carries the owner of the object that was in the state, so the next plan
/// fails with a pointer to import, and changes nothing in AWS.
#[test]
fn an_app_removed_from_its_state_is_not_taken_over_by_a_plan() {
    let s = setup();
    let workdir = deployed(&s);
    let serving = out_str(&workdir, "fleet_id");
    let mut instances = out_list(&workdir, "instance_ids");
    workdir.run_ok(&["state", "rm", "immutable_app.web"]).expect("state rm");
    workdir.write("main.tf", &config(&s.amis[1], 2, ""));
    assert_refused(&workdir, &serving);
    let (_, mut running) = app_footprint(&s.account, "web");
    running.sort();
    instances.sort();
    assert_eq!(running, instances, "its instances stay");
}

/// Two resources of one configuration with the same app name: the plan fails before
/// anything is created.
#[test]
fn two_resources_of_one_name_fail_at_plan() {
    let s = setup();
    let workdir = Workdir::new(&s.account);
    let text = format!(
        r#"{}
resource "immutable_app" "web_again" {{
  name                 = "web"
  ami_id               = "{}"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}}
"#,
        config(&s.amis[0], 1, ""),
        s.amis[0]
    );
    workdir.write("main.tf", &text);
    workdir.init().expect("init");
    s.account.reset_requests().expect("reset");
    let apply = workdir.terraform(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert!(!apply.success(), "{apply}");
    apply.assert_error_at("Duplicate App Name", r#"name                 = "web""#);
    let requests = s.account.requests().expect("requests");
    assert!(mutating(&requests).is_empty(), "nothing created: {requests:?}");
    assert_eq!(app_footprint(&s.account, "web"), (Vec::new(), Vec::new()));
    assert!(launch_templates(&s.account).is_empty());
}

/// An import block by app name into another state: the plan shows the import and the
/// takeover, the apply moves the owner and nothing else, and an unknown name is a
/// clear error.
#[test]
fn an_app_is_imported_by_name_with_an_import_block() {
    let s = setup();
    let first = deployed(&s);
    let fleet = out_str(&first, "fleet_id");
    let instances = out_list(&first, "instance_ids");
    let owner = fleet_owner(&s.account, &fleet);

    let second = Workdir::new(&s.account);
    let import = |id: &str| format!("import {{\n  to = immutable_app.web\n  id = \"{id}\"\n}}\n");
    second.write("main.tf", &format!("{}{}", config(&s.amis[0], 2, ""), import("nope")));
    second.init().expect("init");
    let missing = second.terraform(&["plan", "-input=false", "-no-color"]);
    assert!(!missing.success(), "{missing}");
    assert!(missing.stderr.contains("App Not Found") && missing.stderr.contains("\"nope\""), "{missing}");

    second.write("main.tf", &format!("{}{}", config(&s.amis[0], 2, ""), import("web")));
    let plan = second.run_ok(&["plan", "-input=false", "-no-color"]).expect("plan");
    assert!(plan.stdout.contains("1 to import, 0 to add, 1 to change, 0 to destroy"), "{plan}");
    assert!(plan.stdout.contains("~ owner"), "{plan}");
    assert!(format!("{}{}", plan.stdout, plan.stderr).contains("App Taken Over On Apply"), "{plan}");
    s.account.reset_requests().expect("reset");
    second.apply().expect("import and take over");
    let requests = s.account.requests().expect("requests");
    let changed = mutating(&requests);
    assert!(changed.iter().all(|c| c.starts_with("ec2:CreateTags")), "a takeover only tags: {changed:?}");
    assert_ne!(fleet_owner(&s.account, &fleet), owner, "the importing state owns the app");
    assert_eq!(out_str(&second, "fleet_id"), fleet);
    assert_eq!(out_list(&second, "instance_ids"), instances);
    assert!(!second.plan_has_changes().expect("plan"), "converged");
}
