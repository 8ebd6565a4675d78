//! Import of an app by its name or by the id of its serving Spot Fleet. What EC2
//! cannot give back as the user wrote it (names rather than ids, defaults) comes from
//! the `immutable:args:*` tags the provider put on the generation's launch template.
//!
//! An import takes the app over: the state keeps the owner the fleet carries, and the
//! next apply gives the app a new owner of this state (the plan shows `owner` changing,
//! and says so), after which a state that managed it before drops it.

use super::model::{Args, Computed, Model, RolloutSettings, Size, args_from_tags, user_visible};
use crate::aws::fleets::{self, Fleet};
use crate::aws::{Clients, launch_templates, target_groups};
use conventions::{ami_tags, fleet_tags};
use tfplugin::diag::{Diagnostic, Diagnostics};
use tfplugin::value::Val;

/// The private data of an imported app's state: the next plan takes the app over.
pub fn takeover() -> Vec<u8> {
    serde_json::json!({ "imported": true }).to_string().into_bytes()
}

/// Whether the state comes from an import not yet applied.
pub fn is_imported(private: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(private)
        .is_ok_and(|v| v.get("imported").and_then(serde_json::Value::as_bool) == Some(true))
}

pub async fn import(clients: &Clients, id: &str, diags: &mut Diagnostics) -> Option<Model> {
    let found =
        if id.starts_with("sfr-") { by_fleet_id(clients, id).await } else { by_name(clients, id).await };
    let fleet = match found {
        Ok(fleet) => fleet,
        Err(diagnostic) => {
            diags.push(diagnostic);
            return None;
        }
    };
    model_of(clients, &fleet, diags).await
}

/// The app as its fleet `fleet` runs it: the arguments from the tags of the fleet and
/// of its launch template, the owner from the fleet.
pub async fn model_of(clients: &Clients, fleet: &Fleet, diags: &mut Diagnostics) -> Option<Model> {
    let id = &fleet.id;
    let Some(app) = fleet.tags.get(fleet_tags::APP).cloned() else {
        diags.error(
            "Not An App Fleet",
            format!("Spot Fleet {id} has no {} tag; tag it with the app name to import it", fleet_tags::APP),
        );
        return None;
    };
    let generation = fleet.generation().unwrap_or(1);
    let ec2 = &clients.ec2;
    // The fleet names its template; some emulators do not, so also try the generation's
    // template name.
    let template_id = match &fleet.launch_template_id {
        Some(id) => Some(id.clone()),
        None => launch_templates::find(ec2, &launch_templates::template_name(&app, generation))
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("{e}; importing without the launch template's arguments");
                None
            }),
    };
    let (tags, user_data) = match &template_id {
        Some(template) => {
            let (tags, user_data) = tokio::join!(
                launch_templates::find_tags(ec2, template),
                launch_templates::user_data(ec2, template)
            );
            let tags = tags.unwrap_or_else(|e| {
                tracing::warn!("{e}; importing without the launch template's arguments");
                Default::default()
            });
            let user_data = user_data.unwrap_or_else(|e| {
                tracing::warn!("{e}; importing without user data");
                None
            });
            (tags, user_data)
        }
        None => Default::default(),
    };
    let Args { mut launch, labels, rollout, on_demand } = args_from_tags(&tags).unwrap_or_default();
    launch.ami_id = fleet.tags.get(fleet_tags::AMI).cloned().into();
    launch.user_data = user_data.into();
    if launch.instance_types.is_null() {
        launch.instance_types = Val::Known(fleet.instance_types.clone());
    }
    let target_group_arns = if !fleet.target_group_arns.is_empty() {
        fleet.target_group_arns.clone()
    } else if let Some(refs) = launch.target_groups.known() {
        match target_groups::resolve(&clients.elbv2, refs).await {
            Ok(Ok(groups)) => groups.into_iter().map(|g| g.arn).collect(),
            Ok(Err(missing)) => {
                tracing::warn!("target groups {} no longer exist", missing.join(", "));
                Vec::new()
            }
            Err(e) => {
                tracing::warn!("{e}; the next read fills in the target groups");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    Some(Model {
        name: Val::Known(app.clone()),
        launch,
        size: Size { target_capacity: Val::Known(fleet.target_capacity), on_demand_capacity: on_demand },
        labels,
        rollout: if rollout == RolloutSettings::default() { Val::Null } else { Val::Known(rollout) },
        timeouts: Val::Null,
        computed: Computed {
            id: Val::Known(app),
            fleet_id: Val::Known(fleet.id.clone()),
            instance_ids: Val::Known(Vec::new()),
            generation: Val::Known(generation),
            healthy_count: Val::Known(0),
            commit: fleet.tags.get(ami_tags::COMMIT).cloned().into(),
            target_group_arns: Val::Known(target_group_arns),
            launch_template_id: template_id.into(),
            stray_fleet_ids: Val::Known(Vec::new()),
            stray_launch_template_ids: Val::Known(Vec::new()),
            owner: fleet.owner().map(str::to_owned).into(),
            tags_all: Val::Known(user_visible(&fleet.tags)),
            rollout_plan: Val::Null,
            last_rollout: Val::Null,
            // Priced with the instances, by the read that follows.
            hourly_cost: Val::Null,
            on_demand_hourly_cost: Val::Null,
            savings_percent: Val::Null,
        },
    })
}

async fn by_fleet_id(clients: &Clients, id: &str) -> Result<Fleet, Diagnostic> {
    match fleets::find_fleet(&clients.ec2, id).await {
        Ok(Some(fleet)) if fleet.is_open() => Ok(fleet),
        Ok(_) => Err(Diagnostic::error(
            "Fleet Not Found",
            format!("no active Spot Fleet request {id:?} in {}", clients.region),
        )),
        Err(e) => Err(e.diagnostic()),
    }
}

/// The serving fleet of the app named `app`: the newest generation of its one owner.
async fn by_name(clients: &Clients, app: &str) -> Result<Fleet, Diagnostic> {
    let open = fleets::open_fleets(&clients.ec2, app).await.map_err(|e| e.diagnostic())?;
    let mut owners: Vec<Option<&str>> = open.iter().map(Fleet::owner).collect();
    owners.sort_unstable();
    owners.dedup();
    let not_found = || {
        Diagnostic::error(
            "App Not Found",
            format!(
                "no open Spot Fleet of app {app:?} in {}; import by fleet id (sfr-...) or check the name",
                clients.region
            ),
        )
    };
    match owners.as_slice() {
        [] => Err(not_found()),
        [_] => open.into_iter().max_by_key(|f| f.generation().unwrap_or(0)).ok_or_else(not_found),
        _ => {
            let fleets: Vec<String> =
                open.iter().map(|f| format!("{} (owner {})", f.id, f.owner().unwrap_or("none"))).collect();
            Err(Diagnostic::error(
                "Ambiguous App Name",
                format!(
                    "several Terraform objects run an app named {app:?}: {}; import one by its fleet id",
                    fleets.join(", ")
                ),
            ))
        }
    }
}
