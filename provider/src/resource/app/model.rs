//! The app's model, mirroring its schema, with its arguments grouped by what a change
//! of them does: [`Launch`] (what runs and where: a rollout), [`Size`] (a resize in
//! place), [`Labels`] (tags: re-tagged in place), the rollout settings and timeouts
//! (nothing in AWS). A new argument is a field
//! of its group and an attribute of the schema; the change classification, the plan and
//! import follow from the group.

use super::schema::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEALTH_TIMEOUT, DEFAULT_MIN_HEALTHY};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tfplugin::schema::Timeouts;
use tfplugin::value::Val;

/// Configuration, plan and state alike.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Model {
    pub name: Val<String>,
    #[serde(flatten)]
    pub launch: Launch,
    #[serde(flatten)]
    pub size: Size,
    #[serde(flatten)]
    pub labels: Labels,
    pub rollout: Val<RolloutSettings>,
    pub timeouts: Val<Timeouts>,
    #[serde(flatten)]
    pub computed: Computed,
}

/// What runs and where. A change of any of these is a rollout: a new fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub ami_id: Val<String>,
    pub instance_types: Val<Vec<String>>,
    pub allocation_strategy: Val<String>,
    pub instance_pools_to_use_count: Val<u32>,
    pub max_price: Val<String>,
    pub interruption_behavior: Val<String>,
    pub subnet_ids: Val<Vec<String>>,
    pub availability_zones: Val<Vec<String>>,
    pub security_groups: Val<Vec<String>>,
    pub iam_instance_profile: Val<String>,
    pub iam_fleet_role: Val<String>,
    pub target_groups: Val<Vec<String>>,
    pub user_data: Val<String>,
    pub key_name: Val<String>,
    pub valid_until: Val<String>,
    #[serde(default)]
    pub capacity_rebalance: Val<String>,
    #[serde(default)]
    pub capacity_rebalance_termination_delay: Val<u32>,
}

/// The user's tags. A change re-tags the fleet, its launch template and its running
/// instances in place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Labels {
    pub tags: Val<BTreeMap<String, String>>,
}

/// How many instances serve. A change is a resize of the serving fleet in place.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub target_capacity: Val<u32>,
    pub on_demand_capacity: Val<u32>,
}

/// How a rollout decides (the `rollout` block). A change touches nothing in AWS.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutSettings {
    pub health_timeout: Val<String>,
    pub min_healthy_percent: Val<u32>,
    pub drain_timeout: Val<String>,
    #[serde(default)]
    pub steps: Val<Vec<u32>>,
    #[serde(default)]
    pub bake_time: Val<String>,
    #[serde(default)]
    pub max_surge_percent: Val<u32>,
    #[serde(default)]
    pub alarms: Val<Vec<String>>,
}

/// What the next rollout does (`rollout_plan`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// The new fleet's size at each step.
    pub steps: Val<Vec<u32>>,
    pub max_surge: Val<u32>,
    pub bake_time: Val<String>,
    pub alarms: Val<Vec<String>>,
    pub estimated_duration: Val<String>,
    pub summary: Val<String>,
}

/// What the last rollout did (`last_rollout`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastRollout {
    pub generation: Val<u64>,
    pub started: Val<String>,
    pub finished: Val<String>,
    pub outcome: Val<String>,
    pub reason: Val<String>,
    pub steps: Val<Vec<RolloutStep>>,
    /// The extra instance-seconds while both fleets ran.
    #[serde(default)]
    pub overlap_instance_seconds: Val<u64>,
    /// What they cost, USD.
    #[serde(default)]
    pub overlap_cost: Val<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutStep {
    pub instances: Val<u32>,
    pub percent: Val<u32>,
    pub started: Val<String>,
    #[serde(default)]
    pub launched_after: Val<String>,
    pub healthy_after: Val<String>,
    pub duration: Val<String>,
    pub verdict: Val<String>,
}

/// The attributes only the provider sets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    pub id: Val<String>,
    pub fleet_id: Val<String>,
    pub instance_ids: Val<Vec<String>>,
    pub generation: Val<u64>,
    pub healthy_count: Val<u32>,
    pub commit: Val<String>,
    pub target_group_arns: Val<Vec<String>>,
    pub launch_template_id: Val<String>,
    pub stray_fleet_ids: Val<Vec<String>>,
    pub stray_launch_template_ids: Val<Vec<String>>,
    pub owner: Val<String>,
    pub tags_all: Val<BTreeMap<String, String>>,
    #[serde(default)]
    pub rollout_plan: Val<RolloutPlan>,
    #[serde(default)]
    pub last_rollout: Val<LastRollout>,
    /// What the running instances cost now, USD per hour.
    #[serde(default)]
    pub hourly_cost: Val<String>,
    #[serde(default)]
    pub on_demand_hourly_cost: Val<String>,
    #[serde(default)]
    pub savings_percent: Val<i64>,
}

impl Computed {
    /// Whether fleets or launch templates of the app wait to be cleaned up.
    pub fn has_strays(&self) -> bool {
        let some = |ids: &Val<Vec<String>>| ids.known().is_some_and(|s| !s.is_empty());
        some(&self.stray_fleet_ids) || some(&self.stray_launch_template_ids)
    }

    /// Plans the clean-up of the strays: the apply says what is left.
    pub fn plan_cleanup(&mut self) {
        self.stray_fleet_ids = Val::Unknown;
        self.stray_launch_template_ids = Val::Unknown;
    }

    /// Plans what the app costs as known after the apply (its instances change).
    pub fn plan_cost(&mut self) {
        self.hourly_cost = Val::Unknown;
        self.on_demand_hourly_cost = Val::Unknown;
        self.savings_percent = Val::Unknown;
    }
}

/// What a change does to the running app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// What runs changes: a new fleet, blue/green.
    Rollout,
    /// Only the fleet's size changes: modified in place.
    Capacity,
    /// Nothing that runs: how the provider behaves (rollout settings, timeouts), or
    /// the tags (re-tagged in place when `tags_all` changes).
    Settings,
}

pub fn change_kind(prior: &Model, next: &Model) -> ChangeKind {
    if prior.launch != next.launch {
        ChangeKind::Rollout
    } else if prior.size != next.size {
        ChangeKind::Capacity
    } else {
        ChangeKind::Settings
    }
}

/// Whether the provider sets the tag `key` itself (see docs/design.md, "Tags").
pub fn is_provider_tag(key: &str) -> bool {
    key.starts_with("immutable:")
        || key.starts_with("aws:")
        || key == conventions::ami_tags::COMMIT
        || key == conventions::ami_tags::MANAGED_BY
}

/// The tags an app's fleet carries for the user: the provider's `default_tags` and
/// the app's `tags` (which win), without the ones the provider sets itself.
pub fn tags_all(
    default_tags: &BTreeMap<String, String>,
    tags: &Val<BTreeMap<String, String>>,
) -> Val<BTreeMap<String, String>> {
    let own = match tags {
        Val::Unknown => return Val::Unknown,
        Val::Known(tags) => tags.clone(),
        Val::Null => BTreeMap::new(),
    };
    let mut all = default_tags.clone();
    all.extend(own);
    Val::Known(user_visible(&all))
}

/// `tags` without the provider's own.
pub fn user_visible(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter().filter(|(k, _)| !is_provider_tag(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A known list, or an empty one.
pub fn list(value: &Val<Vec<String>>) -> Vec<String> {
    value.known().cloned().unwrap_or_default()
}

impl Model {
    fn rollout_settings(&self) -> RolloutSettings {
        self.rollout.known().cloned().unwrap_or_default()
    }

    pub fn health_timeout(&self) -> Duration {
        duration_or(&self.rollout_settings().health_timeout, DEFAULT_HEALTH_TIMEOUT)
    }

    pub fn drain_timeout(&self) -> Duration {
        duration_or(&self.rollout_settings().drain_timeout, DEFAULT_DRAIN_TIMEOUT)
    }

    pub fn min_healthy_percent(&self) -> u32 {
        self.rollout_settings().min_healthy_percent.into_option().unwrap_or(DEFAULT_MIN_HEALTHY)
    }

    pub fn bake_time(&self) -> Duration {
        duration_or(&self.rollout_settings().bake_time, Duration::ZERO)
    }

    /// The gating CloudWatch alarms' names.
    pub fn alarms(&self) -> Vec<String> {
        list(&self.rollout_settings().alarms)
    }

    /// The new fleet's size at each step of a rollout to `target` instances.
    pub fn step_plan(&self, target: u32) -> crate::rollout::machine::StepPlan {
        let settings = self.rollout_settings();
        let percents = settings.steps.known().cloned().unwrap_or_default();
        crate::rollout::machine::plan_steps(target, &percents, settings.max_surge_percent.into_option())
    }
}

fn duration_or(value: &Val<String>, default: Duration) -> Duration {
    value.known().and_then(|text| tfplugin::duration::parse(text).ok()).unwrap_or(default)
}

/// Launch template tags carrying the app's arguments, so that import restores them.
const ARGS_TAG_PREFIX: &str = "immutable:args:";
/// Characters per tag value (EC2 allows 256).
const ARGS_CHUNK: usize = 250;
/// Read back from the fleet and its launch template, not kept in the tags: the AMI
/// (a fleet tag) and the user data (in the template, and too long for tags).
const NOT_IN_ARGS: [&str; 2] = ["ami_id", "user_data"];

/// The arguments EC2 cannot give back as the user wrote them (names rather than ids,
/// defaults), as launch template tags: one JSON object (the launch arguments but the
/// AMI and user data, the On-Demand share and the rollout settings) cut into chunks.
pub fn args_tags(model: &Model) -> BTreeMap<String, String> {
    let mut args = serde_json::Map::new();
    for part in [
        serde_json::to_value(&model.launch),
        serde_json::to_value(&model.labels),
        serde_json::to_value(model.rollout_settings()),
        serde_json::to_value(&model.size),
    ] {
        if let Ok(serde_json::Value::Object(fields)) = part {
            args.extend(fields);
        }
    }
    for key in NOT_IN_ARGS.iter().chain(&["target_capacity"]) {
        args.remove(*key);
    }
    let json = serde_json::Value::Object(args).to_string();
    let chars: Vec<char> = json.chars().collect();
    chars
        .chunks(ARGS_CHUNK)
        .enumerate()
        .map(|(i, chunk)| (format!("{ARGS_TAG_PREFIX}{i}"), chunk.iter().collect()))
        .collect()
}

/// The arguments [`args_tags`] kept, as far as the tags hold them.
#[derive(Debug, Default)]
pub struct Args {
    /// Without the AMI and the user data.
    pub launch: Launch,
    pub labels: Labels,
    pub rollout: RolloutSettings,
    pub on_demand: Val<u32>,
}

/// The arguments [`args_tags`] kept.
pub fn args_from_tags(tags: &BTreeMap<String, String>) -> Option<Args> {
    let mut chunks: Vec<(usize, &String)> =
        tags.iter().filter_map(|(k, v)| Some((k.strip_prefix(ARGS_TAG_PREFIX)?.parse().ok()?, v))).collect();
    chunks.sort();
    let json: String = chunks.into_iter().map(|(_, v)| v.as_str()).collect();
    let value: serde_json::Value = serde_json::from_str(&json).ok()?;
    Some(Args {
        launch: serde_json::from_value(value.clone()).ok()?,
        labels: serde_json::from_value(value.clone()).ok()?,
        rollout: serde_json::from_value(value.clone()).ok()?,
        on_demand: serde_json::from_value::<Size>(value).ok()?.on_demand_capacity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model {
            name: Val::Known("web".into()),
            launch: Launch {
                ami_id: Val::Known("ami-1".into()),
                instance_types: Val::Known(vec!["t3.small".into()]),
                ..Launch::default()
            },
            size: Size { target_capacity: Val::Known(2), ..Size::default() },
            ..Model::default()
        }
    }

    #[test]
    fn changes_are_classified() {
        let prior = model();
        let mut next = model();
        assert_eq!(change_kind(&prior, &next), ChangeKind::Settings);
        next.size.target_capacity = Val::Known(3);
        assert_eq!(change_kind(&prior, &next), ChangeKind::Capacity);
        next.launch.ami_id = Val::Known("ami-2".into());
        assert_eq!(change_kind(&prior, &next), ChangeKind::Rollout, "rollout wins over capacity");
        let mut unknown = model();
        unknown.launch.ami_id = Val::Unknown;
        assert_eq!(change_kind(&prior, &unknown), ChangeKind::Rollout, "an unknown AMI may differ");
        let mut tagged = model();
        tagged.labels.tags = Val::Known(BTreeMap::from([("Team".into(), "web".into())]));
        assert_eq!(change_kind(&prior, &tagged), ChangeKind::Settings, "tags are re-tagged in place");
        let mut settings = model();
        settings.rollout =
            Val::Known(RolloutSettings { min_healthy_percent: Val::Known(50), ..Default::default() });
        assert_eq!(change_kind(&prior, &settings), ChangeKind::Settings);
    }

    #[test]
    fn tags_all_are_the_default_and_own_tags_the_user_sees() {
        let defaults =
            BTreeMap::from([("Team".to_owned(), "core".to_owned()), ("Env".to_owned(), "prod".to_owned())]);
        let own = Val::Known(BTreeMap::from([("Team".to_owned(), "web".to_owned())]));
        let all = tags_all(&defaults, &own);
        let expected =
            BTreeMap::from([("Env".to_owned(), "prod".to_owned()), ("Team".to_owned(), "web".to_owned())]);
        assert_eq!(all, Val::Known(expected.clone()), "the app's own tags win");
        assert_eq!(tags_all(&defaults, &Val::Unknown), Val::Unknown);
        let mut on_fleet = expected.clone();
        on_fleet.insert("immutable:app".into(), "web".into());
        on_fleet.insert("Commit".into(), "1".repeat(40));
        on_fleet.insert("ManagedBy".into(), "immutable".into());
        assert_eq!(user_visible(&on_fleet), expected, "the provider's own tags are not the user's");
    }

    #[test]
    fn args_round_trip_through_launch_template_tags() {
        let mut model = model();
        model.launch.security_groups = Val::Known(vec!["web-sg".into(); 20]);
        model.launch.target_groups = Val::Known(vec!["web".into()]);
        model.labels.tags = Val::Known(BTreeMap::from([("Team".into(), "core".repeat(50))]));
        model.launch.user_data = Val::Known("#!/bin/sh\necho hi\n".into());
        model.rollout =
            Val::Known(RolloutSettings { min_healthy_percent: Val::Known(50), ..Default::default() });
        model.size.on_demand_capacity = Val::Known(1);
        let tags = args_tags(&model);
        assert!(tags.len() > 1, "long arguments span several tags");
        assert!(tags.values().all(|v| v.chars().count() <= 256), "each fits a tag value");
        let args = args_from_tags(&tags).expect("arguments");
        let expected = Launch { ami_id: Val::Null, user_data: Val::Null, ..model.launch.clone() };
        assert_eq!(args.launch, expected, "all but the AMI and the user data");
        assert_eq!(args.labels, model.labels);
        assert_eq!(args.rollout.min_healthy_percent, Val::Known(50));
        assert_eq!(args.on_demand, Val::Known(1));
    }

    /// Tags written before the arguments were grouped still import.
    #[test]
    fn older_argument_tags_still_read() {
        let json = r#"{"instance_types":["t3.small"],"on_demand_capacity":null,"allocation_strategy":null,"instance_pools_to_use_count":null,"max_price":null,"interruption_behavior":null,"subnet_ids":null,"availability_zones":null,"security_groups":["web-sg"],"iam_instance_profile":"web-profile","iam_fleet_role":null,"target_groups":["web"],"key_name":null,"tags":null,"valid_until":null,"health_timeout":"5s","min_healthy_percent":null,"drain_timeout":null}"#;
        let tags = BTreeMap::from([(format!("{ARGS_TAG_PREFIX}0"), json.to_owned())]);
        let args = args_from_tags(&tags).expect("arguments");
        assert_eq!(args.launch.security_groups, Val::Known(vec!["web-sg".to_owned()]));
        assert_eq!(args.launch.iam_instance_profile, Val::Known("web-profile".to_owned()));
        assert_eq!(args.launch.allocation_strategy, Val::Null);
        assert_eq!(args.labels.tags, Val::Null);
        assert_eq!(args.rollout.health_timeout, Val::Known("5s".to_owned()));
        assert_eq!(args.on_demand, Val::Null);
    }
}
