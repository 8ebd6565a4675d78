//! `immutable_app`: an app on a Spot Fleet behind target groups. A change of what
//! runs (AMI, instance types, user data, launch settings) is a blue/green rollout,
//! gated on target health, rolled back automatically; a capacity change modifies the
//! fleet in place.
//!
//! `schema` declares the arguments, `model` groups them by what a change does,
//! `deploy` carries out the apply in AWS, `import` rebuilds a model from a fleet. This
//! file is the resource's sequence of steps for each Terraform call.

mod deploy;
mod import;
mod model;
mod schema;

pub use schema::{DEFAULT_FLEET_ROLE, TYPE_NAME};

use crate::capacity::Capacity as _;
use crate::config::Shared;
use crate::resource::Base;
use async_trait::async_trait;
use conventions::ami_tags;
use deploy::Step;
use model::{ChangeKind, Model, change_kind, list};
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
                planned.computed.stray_fleet_ids = Val::Unknown;
            }
        } else {
            // Plan-time checks: the AMI and every name must resolve before apply.
            let Some(clients) = self.0.clients(diags) else { return };
            let resolved = deploy::resolve_model(clients, &config, diags).await;
            if diags.has_errors() {
                return;
            }
            let commit = match (&resolved.image, config.launch.ami_id.is_unknown()) {
                (_, true) => Val::Unknown,
                (Some(image), false) => image.tag(ami_tags::COMMIT).map(str::to_owned).into(),
                (None, false) => Val::Null,
            };
            let arns = if config.launch.target_groups.is_unknown() {
                Val::Unknown
            } else {
                Val::Known(resolved.target_groups.iter().map(|g| g.arn.clone()).collect())
            };
            planned.computed.id = config.name.clone();
            match (&prior, kind) {
                (None, _) => {
                    // A fleet of this app still serving means Terraform lost track of it
                    // (see fleets::newest_open_generation): the create adopts it rather
                    // than launching a second fleet beside it.
                    let serving = match config.name.known() {
                        Some(app) => match clients.reads.newest_open_generation(app).await {
                            Ok(generation) => generation,
                            Err(e) => return diags.push(e.diagnostic()),
                        },
                        None => None,
                    };
                    // Adopted as it is, or rolled over when it runs another
                    // configuration: only apply can tell which generation results.
                    planned.computed.generation = serving.map_or(Val::Known(1), |_| Val::Unknown);
                    planned.computed.commit = commit;
                    planned.computed.target_group_arns = arns;
                }
                (Some(prior), Some(ChangeKind::Capacity)) => {
                    planned.computed = prior.computed.clone();
                    planned.computed.instance_ids = Val::Unknown;
                    planned.computed.healthy_count = Val::Unknown;
                    if prior.computed.has_strays() {
                        planned.computed.stray_fleet_ids = Val::Unknown;
                    }
                }
                (Some(prior), _) => {
                    planned.computed.generation =
                        prior.computed.generation.known().map_or(Val::Unknown, |g| Val::Known(g + 1));
                    planned.computed.commit = commit;
                    planned.computed.target_group_arns = arns;
                }
            }
        }
        self.0.plan_computed(plan, &planned, diags);
    }

    async fn create(&self, ctx: &Context, change: &Change, diags: &mut Diagnostics) -> Option<State> {
        let clients = self.0.clients(diags)?;
        let _changing = clients.reads.changing();
        let model = change.planned::<Model>(diags)?;
        let timeout = Timeouts::limit(&model.timeouts, "create", &TIMEOUTS);
        // A fleet of this app still serving (Terraform lost track of it) is adopted, or
        // rolled over when it runs another configuration (see deploy).
        let found_serving = model.computed.generation.is_unknown();
        let generation = match (model.computed.generation.known(), model.name.known()) {
            (Some(generation), _) => *generation,
            // Planned unknown: a fleet of this app was serving at plan time.
            (None, Some(app)) => match deploy::newest_open_generation(clients, app).await {
                Ok(serving) => serving.unwrap_or(1),
                Err(e) => {
                    diags.push(e.diagnostic());
                    return None;
                }
            },
            (None, None) => 1,
        };
        let step = Step { generation, blue: None, timeout, lost_track: found_serving };
        let mut state = deploy::deploy(ctx, clients, &model, step, diags).await?;
        if found_serving || state.computed.has_strays() {
            // Terraform had lost track of the app: older fleets of it may still be open.
            deploy::cancel_strays(clients, &mut state, diags).await;
        }
        let generation = state.computed.generation.known().copied().unwrap_or(generation);
        let app = state.computed.id.known().cloned().unwrap_or_default();
        deploy::delete_previous_template(clients, &app, generation, diags).await;
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
        let Some(observed) = observed.filter(|o| o.fleet.is_open()) else {
            tracing::warn!(fleet = %fleet_id, "fleet is cancelled, failed or gone; removing the app from state");
            return None;
        };
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
            match clients.reads.open_fleets_of(app).await {
                Ok(open) => {
                    model.computed.stray_fleet_ids =
                        Val::Known(open.into_iter().filter(|id| *id != fleet_id).collect())
                }
                Err(e) => diags.warning("Stray Fleets Unknown", e.to_string()),
            }
        }
        model.computed.instance_ids = Val::Known(observed.instances);
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
                let blue = crate::rollout::machine::Blue { fleet_id: blue_id, instances: blue_instances };
                let generation = prior.computed.generation.known().copied().unwrap_or(1) + 1;
                let step = Step { generation, blue: Some(blue), timeout, lost_track: false };
                let next = deploy::deploy(ctx, clients, &planned, step, diags).await;
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
                if prior.computed.has_strays() || model.computed.has_strays() {
                    deploy::cancel_strays(clients, &mut model, diags).await;
                } else if !model.computed.stray_fleet_ids.is_known() {
                    model.computed.stray_fleet_ids = Val::Known(Vec::new());
                }
                self.0.state(&model, diags)
            }
            // Failure: Terraform keeps recording what still serves.
            None => Some(change.prior_state()),
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
        self.0.state(&model, diags)
    }
}
