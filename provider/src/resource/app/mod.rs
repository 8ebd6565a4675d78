//! `immutable_app`: an app on a Spot Fleet behind target groups. A change of what
//! runs (AMI, instance types, user data, launch settings) is a blue/green rollout,
//! gated on target health, rolled back automatically; a capacity change modifies the
//! fleet in place.
//!
//! `schema` declares the arguments, `model` groups them by what a change does,
//! `deploy` carries out the apply in AWS, `import` rebuilds a model from a fleet. This
//! file is the resource's sequence of steps for each Terraform call.

mod cost;
mod deploy;
mod import;
mod model;
mod ownership;
mod preview;
mod schema;

pub use ownership::new_run;
pub use schema::{DEFAULT_FLEET_ROLE, TYPE_NAME, schema};

use crate::aws::Clients;
use crate::aws::fleets::Fleet;
use crate::capacity::Capacity as _;
use crate::config::Shared;
use crate::resource::Base;
use async_trait::async_trait;
use deploy::Step;
use model::{ChangeKind, Model, change_kind, list};
use ownership::{Found, Replacements};
use schema::TIMEOUTS;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::provider::{Change, Context, Plan, Resource, State};
use tfplugin::schema::{Schema, Timeouts};
use tfplugin::value::{Val, Value};

pub struct AppResource(Base);

impl AppResource {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self(Base::new(shared, schema::schema()))
    }
}

#[async_trait]
impl Resource for AppResource {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }

    fn schema(&self) -> Schema {
        self.0.schema()
    }

    async fn validate(&self, _ctx: &Context, config: &Value, diags: &mut Diagnostics) {
        let Some(model) = tfplugin::provider::decode::<Model>(config, "configuration", diags) else { return };
        if let Some(until) = model.launch.valid_until.known()
            && let Ok(when) =
                aws_smithy_types::DateTime::from_str(until, aws_smithy_types::date_time::Format::DateTime)
            && when.secs() <= aws_smithy_types::DateTime::from(std::time::SystemTime::now()).secs()
        {
            diags.error_at(
                "valid_until",
                "Value In The Past",
                format!("valid_until {until} has passed; a fleet valid until then would never launch"),
            );
        }
        if let (Some(on_demand), Some(target)) =
            (model.size.on_demand_capacity.known(), model.size.target_capacity.known())
            && on_demand > target
        {
            diags.error_at(
                "on_demand_capacity",
                "Value Out Of Range",
                format!("on_demand_capacity ({on_demand}) cannot exceed target_capacity ({target})"),
            );
        }
        // As SpotCapacityRebalance takes them: a termination delay with
        // launch-before-terminate (required), never with launch.
        let rebalance = &model.launch.capacity_rebalance;
        let delay = &model.launch.capacity_rebalance_termination_delay;
        if delay.is_known()
            && !rebalance.is_unknown()
            && rebalance.known().map(String::as_str) != Some("launch-before-terminate")
        {
            diags.error_at(
                "capacity_rebalance_termination_delay",
                "Argument Needs launch-before-terminate",
                "capacity_rebalance_termination_delay applies only with capacity_rebalance = \"launch-before-terminate\"",
            );
        }
        if rebalance.known().map(String::as_str) == Some("launch-before-terminate") && delay.is_null() {
            diags.error_at(
                "capacity_rebalance",
                "Missing Termination Delay",
                "capacity_rebalance = \"launch-before-terminate\" needs capacity_rebalance_termination_delay: the seconds \
                 (120 to 7200) between a replacement's launch and the termination of the instance at risk",
            );
        }
        let strategy = &model.launch.allocation_strategy;
        if model.launch.instance_pools_to_use_count.is_known()
            && strategy.known().map(String::as_str) != Some("lowestPrice")
            && !strategy.is_unknown()
        {
            diags.error_at(
                "instance_pools_to_use_count",
                "Argument Needs lowestPrice",
                "instance_pools_to_use_count applies only with allocation_strategy = \"lowestPrice\"",
            );
        }
    }

    async fn plan(&self, _ctx: &Context, plan: &mut Plan, diags: &mut Diagnostics) {
        let Some(config) = plan.config::<Model>(diags) else { return };
        let Some(mut planned) = plan.planned::<Model>(diags) else { return };
        let prior = plan.prior::<Model>(diags);
        let kind = prior.as_ref().map(|p| change_kind(p, &config));
        if let (Some(prior), Some(ChangeKind::Settings)) = (&prior, kind) {
            // Nothing changes in AWS: keep every computed value, unless stray fleets are
            // to be cancelled.
            planned.computed = prior.computed.clone();
            if prior.computed.has_strays() {
                planned.computed.plan_cleanup();
            }
            if prior.rollout != config.rollout {
                // What the next rollout does changed.
                let Some(clients) = self.0.clients(diags) else { return };
                let arns = list(&prior.computed.target_group_arns);
                let groups = match crate::aws::target_groups::resolve(&clients.elbv2, &arns).await {
                    Ok(Ok(groups)) => groups,
                    Ok(Err(_)) => Vec::new(),
                    Err(e) => {
                        diags.push(e.diagnostic());
                        return;
                    }
                };
                planned.computed.rollout_plan =
                    preview::preview(clients, &config, &groups, true, diags).await;
                if diags.has_errors() {
                    return;
                }
            }
        } else {
            // Plan-time checks: the AMI and every name must resolve before apply.
            let Some(clients) = self.0.clients(diags) else { return };
            let resolved = deploy::resolve_model(clients, &config, diags).await;
            if diags.has_errors() {
                return;
            }
            let arns = if config.launch.target_groups.is_unknown() {
                Val::Unknown
            } else {
                Val::Known(resolved.target_groups.iter().map(|g| g.arn.clone()).collect())
            };
            planned.computed.id = config.name.clone();
            // What runs after a create or a rollout (its generation, the commit) is known
            // once it runs: planned known, a failed apply would leave outputs saying what
            // the plan wanted rather than what runs.
            planned.computed.generation = Val::Unknown;
            planned.computed.commit = Val::Unknown;
            match (&prior, kind) {
                (None, _) => {
                    let hint = ownership::read_hint(&plan.prior_private);
                    let Some(owner) = plan_create(clients, &config.name, hint, diags).await else {
                        return;
                    };
                    planned.computed.owner = owner;
                    planned.computed.target_group_arns = arns;
                    planned.computed.last_rollout = Val::Unknown;
                }
                (Some(prior), Some(ChangeKind::Capacity)) => {
                    planned.computed = prior.computed.clone();
                    planned.computed.instance_ids = Val::Unknown;
                    planned.computed.healthy_count = Val::Unknown;
                    planned.computed.plan_cost();
                    if prior.computed.has_strays() {
                        planned.computed.plan_cleanup();
                    }
                }
                (Some(prior), _) => {
                    planned.computed.target_group_arns = arns;
                    planned.computed.last_rollout = Val::Unknown;
                    // An app from before ownership gets an owner with its next fleet.
                    planned.computed.owner = match &prior.computed.owner {
                        Val::Known(owner) => Val::Known(owner.clone()),
                        _ => Val::Unknown,
                    };
                }
            }
            planned.computed.rollout_plan =
                preview::preview(clients, &config, &resolved.target_groups, prior.is_some(), diags).await;
            // The instances' permission to leave their target groups, when what grants
            // it (the profile) or what it is for (the groups) is new.
            let spot = config.size.on_demand_capacity.known() != config.size.target_capacity.known()
                || config.size.on_demand_capacity.is_null();
            if spot
                && prior.as_ref().is_none_or(|p| {
                    p.launch.iam_instance_profile != config.launch.iam_instance_profile
                        || p.launch.target_groups != config.launch.target_groups
                })
            {
                preview::check_deregistration_permission(clients, &config, &resolved.target_groups, diags)
                    .await;
            }
            if diags.has_errors() {
                return;
            }
        }
        // The tags the fleet should carry: a difference from what it carries (read at
        // refresh) is re-tagged in place.
        let Some(clients) = self.0.clients(diags) else { return };
        planned.computed.tags_all = model::tags_all(&clients.default_tags, &config.labels.tags);
        if let Some(prior) = &prior {
            if import::is_imported(&plan.prior_private) {
                planned.computed.owner = Val::Unknown;
                let fleet = prior.computed.fleet_id.known().map_or("", String::as_str);
                diags.warning(
                    "App Taken Over On Apply",
                    format!(
                        "applying this plan makes this state the owner of app {} (fleet {fleet}): its fleet, launch \
                         template and instances get this state's owner id, and a state that managed the app \
                         before drops it at its next refresh",
                        prior.name.known().map_or("", String::as_str)
                    ),
                );
            }
            // Terraform hands this to the plan of the create that replaces this object
            // (a replacement is planned as an update, then as a create).
            plan.planned_private = ownership::hint(prior.computed.owner.known().map_or("", String::as_str));
        }
        self.0.plan_computed(plan, &planned, diags);
    }

    async fn create(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.0.clients(diags)?;
        let _changing = clients.reads.changing();
        let mut model = change.planned::<Model>(diags)?;
        let app = model.name.known()?.clone();
        let timeout = Timeouts::limit(&model.timeouts, "create", &TIMEOUTS);
        // Looked at again (the plan may be old): another object's app is never touched.
        let open = match deploy::open_fleets(clients, &app).await {
            Ok(open) => open,
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        let notes = Replacements::new();
        let replacing = noted_replacement(&notes, &clients.region, &app, &open);
        let found = ownership::assess_create(&open, replacing.as_deref());
        let (owner, generation) = match &found {
            Found::Taken { owner, fleet_id } => {
                name_in_use(diags, &app, fleet_id, owner);
                return None;
            }
            Found::Nothing => (ownership::new_owner(), 1),
            Found::Beside { generation, .. } => (ownership::new_owner(), *generation),
            Found::Resume { owner } => {
                (owner.clone(), ownership::newest_generation(&open, Some(owner)).unwrap_or(1))
            }
            Found::Legacy => (ownership::new_owner(), ownership::newest_generation(&open, None).unwrap_or(1)),
        };
        model.computed.owner = Val::Known(owner);
        // A fleet of this app left serving (an interrupted create, or one from before
        // ownership that Terraform lost track of) is adopted, or rolled over when it
        // runs another configuration (see deploy).
        let lost_track = matches!(found, Found::Resume { .. } | Found::Legacy);
        let step = Step { generation, blue: None, timeout, lost_track };
        let mut state = deploy::deploy(ctx, clients, &model, step, &mut None, diags).await?;
        if lost_track || state.computed.has_strays() {
            // Terraform had lost track of the app: older fleets of it may still be open.
            deploy::cancel_strays(clients, &mut state, diags).await;
        }
        match &found {
            // The replaced object still runs its generation; its delete removes it.
            Found::Beside { predecessor, .. } => notes.forget(&clients.region, &app, predecessor),
            _ => {
                let generation = state.computed.generation.known().copied().unwrap_or(generation);
                let owner = state.computed.owner.known().map(String::as_str);
                deploy::delete_previous_template(clients, &app, generation, owner, diags).await;
            }
        }
        state.computed.tags_all = model::tags_all(&clients.default_tags, &state.labels.tags);
        let cost = cost::settle(clients, &mut state, diags).await;
        cost::price_overlap(&mut state, cost.as_ref());
        self.0.state(&state, diags)
    }

    async fn read(&self, _ctx: &Context, state: &State, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.0.clients(diags)?;
        let mut model = state.decode::<Model>(diags)?;
        let fleet_id = model.computed.fleet_id.known()?.clone();
        // Shared with the other apps read in this run (see aws::reads).
        let observed = match clients.reads.fleet(&fleet_id).await {
            Ok(observed) => observed,
            Err(e) => {
                diags.push(e.diagnostic());
                return None;
            }
        };
        let owner = model.computed.owner.known().cloned();
        let observed = match observed.filter(|o| o.fleet.is_open()) {
            Some(observed) => observed,
            // Its own newer fleet serves (a run stopped between its switch and the state
            // save): follow it.
            None => match follow(clients, &model, &fleet_id, diags).await? {
                Some(newer) => {
                    // It runs the configuration of the apply that requested it: read the
                    // arguments back as an import does.
                    let mut followed = import::model_of(clients, &newer.fleet, diags).await?;
                    followed.timeouts = model.timeouts.clone();
                    followed.computed.owner = model.computed.owner.clone();
                    // The generation it replaced is the one whose template is left.
                    let mut stray = list(&model.computed.stray_launch_template_ids);
                    if let Some(old) = model.computed.launch_template_id.known()
                        && newer.fleet.launch_template_id.as_ref() != Some(old)
                    {
                        stray.push(old.clone());
                    }
                    followed.computed.stray_launch_template_ids = Val::Known(stray);
                    model = followed;
                    newer
                }
                None => {
                    tracing::warn!(fleet = %fleet_id, "fleet is cancelled, failed or gone; removing the app from state");
                    return None;
                }
            },
        };
        let fleet_id = observed.fleet.id.clone();
        if let (Some(mine), Some(theirs)) = (&owner, observed.fleet.owner())
            && mine != theirs
        {
            tracing::warn!(
                fleet = %fleet_id,
                "the app's fleet now belongs to another Terraform object (owner {theirs}, imported elsewhere); \
                 removing the app from this state"
            );
            return None;
        }

        let groups = list(&model.computed.target_group_arns);
        let mut health = Vec::new();
        for group in &groups {
            match clients.reads.target_health(group).await {
                Ok(targets) => health.push((group.as_str(), targets)),
                Err(e) => {
                    diags.warning("Health Unknown", e.to_string());
                    break;
                }
            }
        }
        if health.len() == groups.len() {
            let assessment =
                crate::health::assess(&observed.instances, health.iter().map(|(g, t)| (*g, t.as_slice())));
            model.computed.healthy_count = Val::Known(u32::try_from(assessment.healthy).unwrap_or(u32::MAX));
        }
        // Other open fleets of the app, from the same snapshot (no further call).
        if let Some(app) = model.name.known() {
            match clients.reads.open_fleets(app).await {
                Ok(open) => {
                    model.computed.stray_fleet_ids = Val::Known(
                        open.into_iter()
                            .filter(|f| f.owner() == owner.as_deref() && f.id != fleet_id)
                            .map(|f| f.id)
                            .collect(),
                    )
                }
                Err(e) => diags.warning("Stray Fleets Unknown", e.to_string()),
            }
        }
        let app = model.name.known().cloned().unwrap_or_default();
        let cost =
            cost::of_instances(clients, &app, &list(&model.launch.instance_types), &observed.running, diags)
                .await;
        cost::set(&mut model, cost.as_ref());
        model.computed.instance_ids = Val::Known(observed.instances);
        model.computed.tags_all = Val::Known(model::user_visible(&observed.fleet.tags));
        model.size.target_capacity = Val::Known(observed.fleet.target_capacity);
        if model.size.on_demand_capacity.is_known() || observed.fleet.on_demand_capacity > 0 {
            model.size.on_demand_capacity = Val::Known(observed.fleet.on_demand_capacity);
        }
        Some(State { private: state.private.clone(), ..self.0.state(&model, diags)? })
    }

    async fn update(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let Some(clients) = self.0.clients(diags) else { return Some(change.prior_state()) };
        let _changing = clients.reads.changing();
        let (Some(prior), Some(planned)) = (change.prior::<Model>(diags), change.planned::<Model>(diags))
        else {
            return Some(change.prior_state());
        };
        let timeout = Timeouts::limit(&planned.timeouts, "update", &TIMEOUTS);
        let mut record = None;
        let next = match change_kind(&prior, &planned) {
            ChangeKind::Settings => Some(Model { computed: prior.computed.clone(), ..planned.clone() }),
            ChangeKind::Capacity => deploy::resize(ctx, clients, &prior, &planned, timeout, diags).await,
            ChangeKind::Rollout => {
                let blue_id = prior.computed.fleet_id.known().cloned().unwrap_or_default();
                let blue_instances = match deploy::existing(clients).instances(&blue_id).await {
                    Ok(instances) => instances,
                    Err(e) => {
                        tracing::warn!("{e}; the state's instances stand for blue");
                        list(&prior.computed.instance_ids)
                    }
                };
                let capacity = prior.size.target_capacity.known().copied().unwrap_or(1);
                let blue = crate::rollout::machine::Blue {
                    fleet_id: blue_id,
                    instances: blue_instances,
                    capacity,
                    on_demand: prior.size.on_demand_capacity.known().copied().unwrap_or(0).min(capacity),
                };
                let generation = prior.computed.generation.known().copied().unwrap_or(1) + 1;
                let step = Step { generation, blue: Some(blue), timeout, lost_track: false };
                let mut planned = planned.clone();
                // A new owner when planned so (an import taking the app over, or an app
                // from before ownership), which this fleet carries.
                let owner = planned.computed.owner.known().cloned().unwrap_or_else(ownership::new_owner);
                planned.computed.owner = Val::Known(owner);
                let next = deploy::deploy(ctx, clients, &planned, step, &mut record, diags).await;
                if next.is_some()
                    && let Some(template) = prior.computed.launch_template_id.known()
                    && let Err(e) = crate::aws::launch_templates::delete(&clients.ec2, template).await
                {
                    diags.warning("Cleanup Incomplete", e.to_string());
                }
                next
            }
        };
        match next {
            Some(mut model) => {
                // As planned: the rollout this configuration would run.
                model.computed.rollout_plan = planned.computed.rollout_plan.clone();
                // What the instances cost now that they changed (kept, as planned, when
                // they did not).
                match change_kind(&prior, &planned) {
                    ChangeKind::Rollout => {
                        let cost = cost::settle(clients, &mut model, diags).await;
                        cost::price_overlap(&mut model, cost.as_ref());
                    }
                    ChangeKind::Capacity => {
                        cost::settle(clients, &mut model, diags).await;
                    }
                    ChangeKind::Settings => {}
                }
                // Re-tagged in place (a rollout's new fleet has every tag already).
                let wanted = model::tags_all(&clients.default_tags, &planned.labels.tags);
                if let Val::Known(wanted) = &wanted {
                    if change_kind(&prior, &planned) == ChangeKind::Rollout {
                        model.computed.tags_all = Val::Known(wanted.clone());
                    } else if prior.computed.tags_all.known() != Some(wanted) {
                        deploy::retag(clients, &mut model, &prior.computed.tags_all, wanted, diags).await;
                    }
                }
                // An import takes the app over: a new owner, unless the rollout gave one.
                if planned.computed.owner.is_unknown() && model.computed.owner == prior.computed.owner {
                    deploy::take_over(clients, &mut model, &ownership::new_owner(), diags).await;
                }
                if prior.computed.has_strays() || model.computed.has_strays() {
                    deploy::cancel_strays(clients, &mut model, diags).await;
                } else {
                    for ids in
                        [&mut model.computed.stray_fleet_ids, &mut model.computed.stray_launch_template_ids]
                    {
                        if !ids.is_known() {
                            *ids = Val::Known(Vec::new());
                        }
                    }
                }
                self.0.state(&model, diags)
            }
            // Failure: Terraform keeps recording what still serves, and what the
            // rollout did.
            None => match record {
                Some(record) => {
                    let mut kept = prior.clone();
                    kept.computed.last_rollout = Val::Known(record);
                    self.0.state(&kept, diags).or_else(|| Some(change.prior_state()))
                }
                None => Some(change.prior_state()),
            },
        }
    }

    async fn delete(&self, ctx: &Context, prior: &State, diags: &mut Diagnostics) {
        let Some(clients) = self.0.clients(diags) else { return };
        let _changing = clients.reads.changing();
        let Some(model) = prior.decode::<Model>(diags) else { return };
        // From the prior state: Terraform sends no configuration with a destroy.
        let limits =
            crate::wait::Limits::new(Timeouts::limit(&model.timeouts, "delete", &TIMEOUTS), &ctx.stop);
        deploy::delete(clients, &model, &limits, diags).await;
    }

    async fn import(&self, _ctx: &Context, id: &str, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.0.clients(diags)?;
        let model = import::import(clients, id, diags).await?;
        // The next plan takes the app over (see import).
        Some(State { private: import::takeover(), ..self.0.state(&model, diags)? })
    }
}

/// The planned owner of a new app (unknown when the apply makes a new one), or `None`
/// with an error when the app name is another object's (or a second resource's of
/// this configuration).
async fn plan_create(
    clients: &Clients,
    name: &Val<String>,
    hint: Option<String>,
    diags: &mut Diagnostics,
) -> Option<Val<String>> {
    // Not yet known: the apply looks.
    let Some(app) = name.known() else { return Some(Val::Unknown) };
    let open = match clients.reads.open_fleets(app).await {
        Ok(open) => open,
        Err(e) => {
            diags.push(e.diagnostic());
            return None;
        }
    };
    let notes = Replacements::new();
    let replacing = hint.clone().or_else(|| noted_replacement(&notes, &clients.region, app, &open));
    let found = ownership::assess_create(&open, replacing.as_deref());
    if hint.is_none()
        && !matches!(found, Found::Taken { .. })
        && !ownership::first_plan_of(&clients.region, app)
    {
        diags.error_at(
            "name",
            "Duplicate App Name",
            format!(
                "another immutable_app of this configuration is named {app:?}; an app name names fleets, \
                 launch templates and tags, and must be unique in the account and region"
            ),
        );
        return None;
    }
    match found {
        Found::Nothing | Found::Legacy => Some(Val::Unknown),
        Found::Beside { predecessor, .. } => {
            if hint.is_some() {
                // The apply re-plans this create without Terraform's private data.
                notes.record(&clients.region, app, &predecessor);
            }
            Some(Val::Unknown)
        }
        Found::Resume { owner } => Some(Val::Known(owner)),
        Found::Taken { owner, fleet_id } => {
            name_in_use(diags, app, &fleet_id, &owner);
            None
        }
    }
}

/// The owner among those of `open` whose replacement a plan on this machine noted
/// (`""` for fleets from before ownership).
fn noted_replacement(notes: &Replacements, region: &str, app: &str, open: &[Fleet]) -> Option<String> {
    let mut owners: Vec<&str> = open.iter().map(|f| f.owner().unwrap_or_default()).collect();
    owners.sort_unstable();
    owners.dedup();
    owners.into_iter().find(|owner| notes.planned(region, app, owner)).map(str::to_owned)
}

fn name_in_use(diags: &mut Diagnostics, app: &str, fleet_id: &str, owner: &str) {
    diags.error_at(
        "name",
        "App Name In Use",
        format!(
            "app {app:?} is served by Spot Fleet {fleet_id}, which another Terraform object owns (owner {owner}): \
             another state, or another resource, manages it, and nothing of it was changed. To manage it here, \
             import it (an import block with id = \"{fleet_id}\", or `terraform import`); otherwise choose \
             another name."
        ),
    );
}

/// The open fleet of the app's own owner that serves now, when the one its state names
/// is gone (a run stopped after its switch, before Terraform saved the state).
async fn follow(
    clients: &Clients,
    model: &Model,
    gone: &str,
    diags: &mut Diagnostics,
) -> Option<Option<crate::aws::reads::ObservedFleet>> {
    let (Some(owner), Some(app)) = (model.computed.owner.known(), model.name.known()) else {
        return Some(None);
    };
    let open = match clients.reads.open_fleets(app).await {
        Ok(open) => open,
        Err(e) => {
            diags.push(e.diagnostic());
            return None;
        }
    };
    let newest = open
        .into_iter()
        .filter(|f| f.owner() == Some(owner.as_str()))
        .max_by_key(|f| f.generation().unwrap_or(0));
    let Some(newest) = newest else { return Some(None) };
    tracing::info!(
        app = %app,
        "fleet {gone} is gone; the app's own fleet {} (generation {:?}) serves, and the state follows it",
        newest.id,
        newest.generation()
    );
    match clients.reads.fleet(&newest.id).await {
        Ok(observed) => Some(observed),
        Err(e) => {
            diags.push(e.diagnostic());
            None
        }
    }
}
