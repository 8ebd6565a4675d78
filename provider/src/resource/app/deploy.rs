//! What the app's apply does in AWS: resolve the configuration into a group spec, roll
//! it out (a first deploy is a rollout without blue), resize in place, cancel stray
//! fleets, and delete.

use super::model::{LastRollout, Model, RolloutStep, list};
use super::schema::{DEFAULT_ALLOCATION, DEFAULT_FLEET_ROLE, DEFAULT_INTERRUPTION};
use crate::aws::images::Image;
use crate::aws::launch_templates::TemplateData;
use crate::aws::{AwsError, Clients, instances, launch_templates, target_groups};
use crate::capacity::spot_fleet::SpotFleet;
use crate::capacity::{Capacity, GroupSpec, SpotOptions};
use crate::health;
use crate::resource::resolve::{Lookups, Resolved, resolve};
use crate::rollout::machine::{Blue, Outcome, Settings};
use crate::rollout::record::Record;
use crate::rollout::runner::{self, Resize, Runner};
use crate::wait::{Backoff, Limits, Poll, WaitError, poll_until};
use conventions::{ami_tags, fleet_tags};
use std::collections::BTreeMap;
use std::time::Duration;
use tfplugin::diag::Diagnostics;
use tfplugin::path::AttributePath;
use tfplugin::provider::Context;
use tfplugin::value::Val;

/// Resolves everything the model names (values not yet known are skipped), all at once;
/// problems are diagnostics on their attributes. Reads only.
pub async fn resolve_model(clients: &Clients, model: &Model, diags: &mut Diagnostics) -> Resolved {
    let launch = &model.launch;
    let at = AttributePath::attr;
    // The default fleet role is looked up too: a missing one would fail the request.
    let fleet_role = (!launch.iam_fleet_role.is_unknown())
        .then(|| launch.iam_fleet_role.known().cloned().unwrap_or_else(|| DEFAULT_FLEET_ROLE.to_owned()));
    let lookups = Lookups {
        image: launch.ami_id.known().map(|id| (at("ami_id"), id.as_str(), "AMI")),
        security_groups: launch.security_groups.known().map(|g| (at("security_groups"), g.as_slice())),
        target_groups: launch.target_groups.known().map(|g| (at("target_groups"), g.as_slice())),
        instance_profile: launch
            .iam_instance_profile
            .known()
            .map(|p| (at("iam_instance_profile"), p.as_str())),
        fleet_role: fleet_role.as_deref().map(|r| (at("iam_fleet_role"), r)),
        instance_types: launch.instance_types.known().map(|t| (at("instance_types"), t.as_slice())),
        key_name: launch.key_name.known().map(|k| (at("key_name"), k.as_str())),
        availability_zones: launch
            .availability_zones
            .known()
            .map(|z| (at("availability_zones"), z.as_slice())),
        subnets: launch.subnet_ids.known().map(|s| (at("subnet_ids"), s.as_slice())),
    };
    resolve(clients, &lookups, diags).await
}

/// The group of `generation` that the model asks for, or `None` while parts of it are
/// unknown or did not resolve.
fn group_spec(clients: &Clients, model: &Model, resolved: &Resolved, generation: u64) -> Option<GroupSpec> {
    let app = model.name.known()?.clone();
    let owner = model.computed.owner.known()?.clone();
    let image: &Image = resolved.image.as_ref()?;
    let launch = &model.launch;
    let mut tags = clients.default_tags.clone();
    tags.extend(model.labels.tags.known().cloned().unwrap_or_default());
    tags.insert(fleet_tags::APP.into(), app.clone());
    tags.insert(fleet_tags::GENERATION.into(), generation.to_string());
    tags.insert(fleet_tags::AMI.into(), image.id.clone());
    tags.insert(fleet_tags::OWNER.into(), owner);
    tags.insert(ami_tags::MANAGED_BY.into(), ami_tags::MANAGED_BY_VALUE.into());
    if let Some(commit) = image.tag(ami_tags::COMMIT) {
        tags.insert(ami_tags::COMMIT.into(), commit.to_owned());
    }
    let or =
        |value: &Val<String>, default: &str| value.known().cloned().unwrap_or_else(|| default.to_owned());
    Some(GroupSpec {
        app,
        generation,
        template: TemplateData {
            ami_id: image.id.clone(),
            root_device_name: image.root_device_name.clone().unwrap_or_else(|| "/dev/xvda".into()),
            security_group_ids: resolved.security_group_ids.clone(),
            instance_profile_arn: resolved.instance_profile_arn.clone(),
            user_data: launch.user_data.known().cloned(),
            key_name: launch.key_name.known().cloned(),
            instance_tags: BTreeMap::new(),
            metadata_tags: tags.keys().all(|k| conventions::agent_tags::readable_in_metadata(k)),
        },
        template_tags: super::model::args_tags(model),
        instance_types: list(&launch.instance_types),
        subnet_ids: list(&launch.subnet_ids),
        availability_zones: list(&launch.availability_zones),
        target_capacity: model.size.target_capacity.known().copied().unwrap_or(1),
        on_demand_capacity: model.size.on_demand_capacity.known().copied().unwrap_or(0),
        spot: SpotOptions {
            allocation_strategy: or(&launch.allocation_strategy, DEFAULT_ALLOCATION),
            instance_pools_to_use_count: launch.instance_pools_to_use_count.known().copied(),
            max_price: launch.max_price.known().cloned(),
            interruption_behavior: or(&launch.interruption_behavior, DEFAULT_INTERRUPTION),
            capacity_rebalance: launch.capacity_rebalance.known().map(|strategy| {
                (strategy.clone(), launch.capacity_rebalance_termination_delay.known().copied())
            }),
        },
        target_group_arns: resolved.target_groups.iter().map(|g| g.arn.clone()).collect(),
        tags,
    })
}

/// The capacity backend that requests the model's groups.
pub fn requesting(clients: &Clients, model: &Model, resolved: &Resolved) -> SpotFleet {
    SpotFleet::new(
        clients.ec2.clone(),
        resolved.fleet_role_arn.clone(),
        model.launch.valid_until.known().cloned(),
    )
    .listing_through(clients.reads.clone())
}

/// The capacity backend for groups that exist (status, resize, cancel).
pub fn existing(clients: &Clients) -> SpotFleet {
    SpotFleet::new(clients.ec2.clone(), None, None).listing_through(clients.reads.clone())
}

/// One deploy: the generation to launch, the fleet it replaces, the time limit.
pub struct Step {
    pub generation: u64,
    pub blue: Option<Blue>,
    pub timeout: Duration,
    /// A create whose plan found a fleet of the app serving: Terraform lost track of
    /// it, and that fleet may run another configuration.
    pub lost_track: bool,
}

/// Runs a rollout (a first deploy when there is no blue) and returns the new state, or
/// `None` with the failure in `diags`. `model.computed.owner` must be known: it tags
/// everything the rollout creates. The fleet that serves at the end is committed
/// (see `conventions::fleet_tags::COMMITTED`).
pub async fn deploy(
    ctx: &Context,
    clients: &Clients,
    model: &Model,
    step: Step,
    record: &mut Option<LastRollout>,
    diags: &mut Diagnostics,
) -> Option<Model> {
    let Step { mut generation, mut blue, timeout, lost_track } = step;
    let resolved = resolve_model(clients, model, diags).await;
    if diags.has_errors() {
        return None;
    }
    let capacity = requesting(clients, model, &resolved);
    let groups: Vec<String> = resolved.target_groups.iter().map(|g| g.arn.clone()).collect();
    let drain_delay = longest_deregistration_delay(clients, &groups).await;
    let instance_tags = agent_tags(&groups, drain_delay);
    let mut spec = group_spec(clients, model, &resolved, generation)?;
    spec.template.instance_tags = instance_tags.clone();
    if blue.is_none() && lost_track {
        // A create that finds this generation's fleet serving another configuration
        // (Terraform lost track of the app, and the configuration changed since):
        // that fleet is blue, and the configuration rolls out over it.
        let serving = match capacity.find(&spec.app, generation).await {
            Ok(found) => found
                .filter(|g| g.belongs_to(spec.owner()) && g.runs_other_config_than(&capacity.token(&spec))),
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        if let Some(serving) = serving {
            let status = match capacity.status(&serving.id).await {
                Ok(status) => status,
                Err(e) => {
                    diags.push(e.diagnostic());
                    return None;
                }
            };
            tracing::info!(app = %spec.app, "fleet {} (generation {generation}) serves another configuration; rolling out over it", serving.id);
            generation += 1;
            blue = Some(Blue {
                fleet_id: serving.id,
                instances: status.instances,
                capacity: status.target_capacity,
                on_demand: spec.on_demand_capacity.min(status.target_capacity),
            });
            spec = group_spec(clients, model, &resolved, generation)?;
            spec.template.instance_tags = instance_tags;
        }
    }
    let settings = Settings {
        target_groups: spec.target_group_arns.clone(),
        min_healthy_percent: model.min_healthy_percent(),
        drain: model.drain_timeout(),
        steps: model.step_plan(spec.target_capacity).sizes,
        on_demand: spec.on_demand_capacity,
        bake: model.bake_time(),
    };
    let alarms = model.alarms();
    let runner = Runner {
        clients,
        capacity: &capacity,
        spec: &spec,
        limits: Limits::new(timeout, &ctx.stop),
        health_timeout: model.health_timeout().min(timeout),
        alarms: &alarms,
        drain_delay,
    };
    let result = runner.run(settings, blue.clone()).await;
    let overlap =
        result.record.overlap_instance_seconds(spec.target_capacity, blue.as_ref().map(|b| b.capacity));
    *record = Some(last_rollout(generation, &result.record, &result.outcome, &resolved, overlap));
    for problem in &result.cleanup_errors {
        diags.warning("Cleanup Incomplete", problem.clone());
    }
    let what = if generation == 1 { "deploying" } else { "rolling out" };
    match result.outcome {
        Outcome::Switched { fleet_id, instances } => {
            // The apply is done with this fleet: a later create that finds it knows it is
            // not an interrupted one.
            if let Err(e) = capacity.commit(&fleet_id, spec.owner().unwrap_or_default()).await {
                tracing::warn!("{e}; the next apply marks the fleet again");
            }
            let mut state = model.clone();
            let computed = &mut state.computed;
            // Blue's cancellation kept failing: record it as a stray, so that the next
            // plan shows it and the next apply cancels it.
            computed.stray_fleet_ids = Val::Known(match &blue {
                Some(blue) if !result.cleanup_errors.is_empty() => vec![blue.fleet_id.clone()],
                _ => Vec::new(),
            });
            computed.stray_launch_template_ids = Val::Known(Vec::new());
            computed.id = Val::Known(spec.app.clone());
            computed.fleet_id = Val::Known(fleet_id);
            computed.healthy_count =
                Val::Known(healthy_now(clients, &spec.target_group_arns, &instances).await);
            computed.instance_ids = Val::Known(instances);
            computed.generation = Val::Known(generation);
            computed.commit = resolved.image.and_then(|i| i.tag(ami_tags::COMMIT).map(str::to_owned)).into();
            computed.target_group_arns = Val::Known(spec.target_group_arns.clone());
            computed.launch_template_id = result.green_template.into();
            computed.last_rollout = record.clone().into();
            Some(state)
        }
        Outcome::RolledBack { failure } => {
            let failure = with_group_names(&failure.to_string(), &resolved);
            let blue_note = match &blue {
                Some(b) => format!("; the previous fleet {} keeps serving", b.fleet_id),
                None => String::new(),
            };
            diags.error(
                "Rollout Failed",
                format!("{what} app {} (generation {generation}): {failure}{blue_note}", spec.app),
            );
            None
        }
    }
}

/// The longest deregistration delay among the target groups, read once per apply: the
/// instances' drain tag and every drain of the rollout use it. Unknown delays are left
/// out; `None` when none is known.
async fn longest_deregistration_delay(clients: &Clients, groups: &[String]) -> Option<Duration> {
    let mut drain: Option<Duration> = None;
    for group in groups {
        match target_groups::deregistration_delay(&clients.elbv2, group).await {
            Ok(Some(delay)) => drain = Some(drain.unwrap_or_default().max(delay)),
            Ok(None) => {}
            Err(e) => tracing::debug!("{e}"),
        }
    }
    drain
}

/// The instance tags `immutable-agent` reads: each target group's ARN and the longest
/// deregistration delay among them (left out when unknown; the agent then drains until
/// the reclaim).
fn agent_tags(groups: &[String], drain: Option<Duration>) -> BTreeMap<String, String> {
    use conventions::agent_tags::{DRAIN_SECONDS, target_group};
    let mut tags: BTreeMap<String, String> =
        groups.iter().enumerate().map(|(i, arn)| (target_group(i), arn.clone())).collect();
    if let Some(drain) = drain {
        tags.insert(DRAIN_SECONDS.to_owned(), drain.as_secs().to_string());
    }
    tags
}

/// `text` with target group ARNs replaced by their names.
fn with_group_names(text: &str, resolved: &Resolved) -> String {
    let mut text = text.to_owned();
    for group in &resolved.target_groups {
        text = text.replace(&group.arn, &group.name);
    }
    text
}

/// The `last_rollout` of a finished run that overlapped two fleets for `overlap`
/// instance-seconds (priced by the caller, who knows green's prices).
fn last_rollout(
    generation: u64,
    record: &Record,
    outcome: &Outcome,
    resolved: &Resolved,
    overlap: u64,
) -> LastRollout {
    let time = |t: std::time::SystemTime| {
        aws_smithy_types::DateTime::from(t)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default()
    };
    let seconds = |d: Duration| tfplugin::duration::format(Duration::from_secs(d.as_secs()));
    let (verdict, reason) = match outcome {
        Outcome::Switched { .. } => ("switched", Val::Null),
        Outcome::RolledBack { failure } => {
            ("rolled back", Val::Known(with_group_names(&failure.to_string(), resolved)))
        }
    };
    LastRollout {
        generation: Val::Known(generation),
        started: Val::Known(time(record.started)),
        finished: record.finished.map(time).into(),
        outcome: Val::Known(verdict.to_owned()),
        reason,
        steps: Val::Known(
            record
                .steps
                .iter()
                .map(|s| RolloutStep {
                    instances: Val::Known(s.instances),
                    percent: Val::Known(s.percent),
                    started: Val::Known(time(s.started)),
                    launched_after: s.launched_after.map(seconds).into(),
                    healthy_after: s.healthy_after.map(seconds).into(),
                    duration: s.duration.map(seconds).into(),
                    verdict: Val::Known(s.verdict.clone()),
                })
                .collect(),
        ),
        overlap_instance_seconds: Val::Known(overlap),
        overlap_cost: Val::Null,
    }
}

/// Serving instances healthy in every target group, asked now (0 when unknown).
async fn healthy_now(clients: &Clients, groups: &[String], instances: &[String]) -> u32 {
    let mut by_group = Vec::new();
    for group in groups {
        match target_groups::health(&clients.elbv2, group, Some(instances)).await {
            Ok(health) => by_group.push((group.as_str(), health)),
            Err(e) => {
                tracing::warn!("healthy_count unknown after the rollout: {e}");
                return 0;
            }
        }
    }
    let assessment = health::assess(instances, by_group.iter().map(|(g, h)| (*g, h.as_slice())));
    u32::try_from(assessment.healthy).unwrap_or(u32::MAX)
}

/// Resizes the serving fleet to the planned capacity, with the rollout's registration
/// and health gate; returns the new state.
pub async fn resize(
    ctx: &Context,
    clients: &Clients,
    prior: &Model,
    planned: &Model,
    timeout: Duration,
    diags: &mut Diagnostics,
) -> Option<Model> {
    let fleet_id = prior.computed.fleet_id.known()?.clone();
    let app = planned.name.known().cloned().unwrap_or_default();
    let target = planned.size.target_capacity.known().copied().unwrap_or(1);
    let groups = list(&prior.computed.target_group_arns);
    let request = Resize {
        app: &app,
        group_id: &fleet_id,
        target_capacity: target,
        on_demand_capacity: planned.size.on_demand_capacity.known().copied().unwrap_or(0),
        target_groups: &groups,
        required_healthy: health::required_healthy(target, planned.min_healthy_percent()),
    };
    let limits = Limits::new(planned.health_timeout().min(timeout), &ctx.stop);
    let resized = match runner::resize(clients, &existing(clients), &request, &limits).await {
        Ok(resized) => resized,
        Err(e) => {
            diags.push(e.diagnostic());
            return None;
        }
    };
    if let Some(why) = &resized.incomplete {
        diags.error(
            "Resize Incomplete",
            format!("fleet {fleet_id} of app {app} towards {target} instances: {why}; the fleet keeps working on it"),
        );
    }
    let mut state = planned.clone();
    state.computed = prior.computed.clone();
    state.computed.instance_ids = Val::Known(resized.instances);
    state.computed.healthy_count = Val::Known(u32::try_from(resized.healthy).unwrap_or(u32::MAX));
    Some(state)
}

/// Gives the app's fleet, its launch template, its running instances and the
/// instances the fleet launches from now on the user's tags `wanted` in place of
/// `had` (the provider's own tags stay), and keeps the new `tags` in the template's
/// arguments for import. `state.computed.tags_all` says what the fleet carries after.
pub async fn retag(
    clients: &Clients,
    state: &mut Model,
    had: &Val<BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) {
    let Some(fleet) = state.computed.fleet_id.known().cloned() else { return };
    let template = state.computed.launch_template_id.known().cloned();
    let removed: Vec<String> = had
        .known()
        .map(|had| had.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect())
        .unwrap_or_default();
    let result = async {
        let instances = existing(clients).instances(&fleet).await?;
        let mut ids = vec![fleet.clone()];
        ids.extend(template.clone());
        ids.extend(instances);
        crate::aws::tag(&clients.ec2, &ids, wanted).await?;
        crate::aws::untag(&clients.ec2, &ids, &removed).await?;
        if let Some(template) = &template {
            launch_templates::retag_launches(&clients.ec2, template, wanted, &removed).await?;
            let ids = std::slice::from_ref(template);
            crate::aws::tag(&clients.ec2, ids, &super::model::args_tags(state)).await?;
        }
        Ok::<_, crate::aws::AwsError>(ids.len() - 1 - usize::from(template.is_some()))
    }
    .await;
    match result {
        Ok(instances) => {
            tracing::info!(fleet = %fleet, "re-tagged the fleet, its launch template and {instances} instances");
            state.computed.tags_all = Val::Known(wanted.clone());
        }
        Err(e) => diags.push(e.diagnostic()),
    }
}

/// Deregisters and cancels the app's open fleets of its own owner other than the one
/// `state` names (an app has exactly one), deletes the launch templates its earlier
/// generations left, and records what could not be cleaned up. What other owners have
/// is never touched.
pub async fn cancel_strays(clients: &Clients, state: &mut Model, diags: &mut Diagnostics) {
    let (Some(app), Some(keep)) = (state.name.known().cloned(), state.computed.fleet_id.known().cloned())
    else {
        return;
    };
    let fleets = match clients.reads.fleets_now().await {
        Ok(fleets) => fleets,
        Err(e) => {
            diags.warning("Cleanup Incomplete", format!("looking for stray fleets of app {app}: {e}"));
            std::sync::Arc::new(Vec::new())
        }
    };
    let capacity = existing(clients);
    let groups = list(&state.computed.target_group_arns);
    let owner = state.computed.owner.known().map(String::as_str);
    let mut remaining = Vec::new();
    for stray in fleets.iter().filter(|f| f.is_open_of(&app) && f.owner() == owner && f.id != keep) {
        tracing::warn!(app = %app, "cancelling stray fleet {} (generation {:?}), which the state does not name", stray.id, stray.generation());
        let result = async {
            let instances = capacity.instances(&stray.id).await?;
            for group in &groups {
                target_groups::deregister(&clients.elbv2, group, &instances).await?;
            }
            capacity.cancel(&stray.id).await
        }
        .await;
        if let Err(e) = result {
            diags.warning(
                "Cleanup Incomplete",
                format!("cancelling stray fleet {} of app {app}: {e}", stray.id),
            );
            remaining.push(stray.id.clone());
        }
    }
    state.computed.stray_fleet_ids = Val::Known(remaining);
    let mut templates_left = Vec::new();
    for template in list(&state.computed.stray_launch_template_ids) {
        let deleted = async {
            let tags = launch_templates::find_tags(&clients.ec2, &template).await?;
            if tags.get(fleet_tags::OWNER).is_some_and(|theirs| Some(theirs.as_str()) != owner) {
                tracing::warn!("launch template {template} now belongs to another object; leaving it");
                return Ok(());
            }
            tracing::info!(app = %app, "deleting launch template {template} of an earlier generation");
            launch_templates::delete(&clients.ec2, &template).await
        }
        .await;
        if let Err(e) = deleted {
            diags.warning("Cleanup Incomplete", e.to_string());
            templates_left.push(template);
        }
    }
    state.computed.stray_launch_template_ids = Val::Known(templates_left);
}

/// Gives the app's fleet, its launch template and its instances the owner `owner`:
/// this object takes the app over (after an import), and a state that managed it
/// before drops it at its next refresh.
pub async fn take_over(clients: &Clients, state: &mut Model, owner: &str, diags: &mut Diagnostics) {
    let computed = &state.computed;
    let mut ids: Vec<String> = computed.fleet_id.known().into_iter().cloned().collect();
    ids.extend(computed.launch_template_id.known().cloned());
    ids.extend(list(&computed.instance_ids));
    let tags = [(fleet_tags::OWNER.to_owned(), owner.to_owned())].into();
    match crate::aws::tag(&clients.ec2, &ids, &tags).await {
        Ok(()) => {
            tracing::info!(app = ?state.name.known(), "this state now owns the app (owner {owner})");
            state.computed.owner = Val::Known(owner.to_owned());
        }
        Err(e) => diags.push(e.diagnostic()),
    }
}

/// The open fleets of the app, from a listing made now or in flight now (not from the
/// shared snapshot of reads).
pub async fn open_fleets(clients: &Clients, app: &str) -> Result<Vec<crate::aws::fleets::Fleet>, AwsError> {
    Ok(clients.reads.fleets_now().await?.iter().filter(|f| f.is_open_of(app)).cloned().collect())
}

/// Deletes the launch template of the generation before `generation` (its state went
/// with the state that named it), if it is still there and `owner`'s (or from before
/// ownership).
pub async fn delete_previous_template(
    clients: &Clients,
    app: &str,
    generation: u64,
    owner: Option<&str>,
    diags: &mut Diagnostics,
) {
    if generation <= 1 {
        return;
    }
    let previous = launch_templates::template_name(app, generation - 1);
    let result = async {
        let Some(template) = launch_templates::find(&clients.ec2, &previous).await? else { return Ok(()) };
        let tags = launch_templates::find_tags(&clients.ec2, &template).await?;
        if tags.get(fleet_tags::OWNER).is_some_and(|theirs| Some(theirs.as_str()) != owner) {
            return Ok(());
        }
        launch_templates::delete(&clients.ec2, &template).await
    }
    .await;
    if let Err(e) = result {
        diags.warning("Cleanup Incomplete", e.to_string());
    }
}

/// Deletes the app: deregisters its instances, cancels its fleet with termination,
/// waits until every instance has terminated (within `limits`), deletes its template.
pub async fn delete(clients: &Clients, model: &Model, limits: &Limits, diags: &mut Diagnostics) {
    let Some(fleet_id) = model.computed.fleet_id.known() else { return };
    let capacity = existing(clients);
    let mut all = list(&model.computed.instance_ids);
    match capacity.instances(fleet_id).await {
        Ok(instances) => all.extend(instances),
        // The state's list stands in; a fleet that is gone has nothing left to drain.
        Err(e) => tracing::warn!("{e}; deregistering the instances the state names"),
    }
    all.sort();
    all.dedup();
    for group in list(&model.computed.target_group_arns) {
        if let Err(e) = target_groups::deregister(&clients.elbv2, &group, &all).await {
            diags.warning("Deregistration Failed", e.to_string());
        }
    }
    tracing::info!(app = ?model.name.known(), "cancelling fleet {fleet_id} and terminating {} instances", all.len());
    if let Err(e) = capacity.cancel(fleet_id).await {
        diags.push(e.diagnostic());
        return;
    }
    let waited = poll_until(
        limits,
        Backoff::rollout(),
        &format!("terminating the instances of fleet {fleet_id}"),
        || async {
            let live = instances::live_instances(&clients.ec2, &all).await?;
            Ok(if live.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{} instances still terminating: {}", live.len(), live.join(", ")))
            })
        },
    )
    .await;
    match waited {
        Ok(()) => {}
        Err(WaitError::Aws(e)) => return diags.push(e.diagnostic()),
        Err(e) => return diags.error("Delete Incomplete", e.to_string()),
    }
    if let Some(template) = model.computed.launch_template_id.known()
        && let Err(e) = launch_templates::delete(&clients.ec2, template).await
    {
        diags.warning("Cleanup Incomplete", e.to_string());
    }
}
