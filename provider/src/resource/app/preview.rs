//! The plan's view of a rollout: `rollout_plan` (the steps, the extra capacity, the
//! gates and the least time it takes), the gating alarms looked up, and a warning when
//! a target group drains longer than Spot's interruption notice.

use super::model::{Model, RolloutPlan};
use super::schema::TIMEOUTS;
use crate::aws::target_groups::{self, TargetGroup};
use crate::aws::{Clients, alarms};
use std::time::Duration;
use tfplugin::diag::Diagnostics;
use tfplugin::duration::format;
use tfplugin::path::AttributePath;
use tfplugin::schema::Timeouts;
use tfplugin::value::Val;

/// How long before reclaiming a Spot Instance AWS gives notice.
const SPOT_NOTICE: Duration = Duration::from_secs(120);

/// What a rollout of `model` onto `groups` does (over a serving fleet when `has_blue`);
/// unknown while the capacity is. Unknown alarm names are errors on
/// `rollout.alarms`; the drain warning is one per target group.
pub async fn preview(
    clients: &Clients,
    model: &Model,
    groups: &[TargetGroup],
    has_blue: bool,
    diags: &mut Diagnostics,
) -> Val<RolloutPlan> {
    let names = model.alarms();
    if !names.is_empty() {
        match alarms::states(&clients.cloudwatch, &names).await {
            Ok(found) => {
                let missing: Vec<&String> = names.iter().filter(|n| !found.contains_key(*n)).collect();
                if !missing.is_empty() {
                    diags.error_at(
                        AttributePath::attr("rollout").push_attr("alarms"),
                        "Alarm Not Found",
                        format!(
                            "no CloudWatch alarm named {} in {}; a rollout gated on it could never be judged",
                            missing.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
                            clients.region
                        ),
                    );
                }
            }
            Err(e) => diags.push(e.diagnostic()),
        }
    }
    let Some(target) = model.size.target_capacity.known().copied() else { return Val::Unknown };
    let spot = model.size.on_demand_capacity.known().copied().unwrap_or(0) < target;
    let mut drain = Duration::ZERO;
    for group in groups {
        match target_groups::deregistration_delay(&clients.elbv2, &group.arn).await {
            Ok(Some(delay)) => {
                drain = drain.max(delay);
                if spot && delay > SPOT_NOTICE {
                    diags.warning(
                        "Drain Longer Than Spot Notice",
                        format!(
                            "target group {} drains deregistered targets for {} (deregistration_delay), longer than \
                             the 2-minute notice Spot gives before it reclaims an instance: a reclaimed instance's \
                             connections are cut when it goes, not drained. Set the group's \
                             deregistration_delay.timeout_seconds to 120 or less, or run this app On-Demand.",
                            group.name,
                            format(delay)
                        ),
                    );
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("{e}"),
        }
    }
    let plan = model.step_plan(target);
    let health = groups.iter().map(TargetGroup::time_to_healthy).max().unwrap_or_default();
    let bake = model.bake_time();
    let drain = if has_blue { drain.min(model.drain_timeout()) } else { Duration::ZERO };
    let steps = u32::try_from(plan.sizes.len()).unwrap_or(u32::MAX);
    let estimate = (health + bake + drain) * steps;
    let sizes: Vec<String> = plan.sizes.iter().map(u32::to_string).collect();
    let mut summary = format!(
        "{} step{} ({} of {target} instances), at most {} extra instance{}",
        steps,
        if steps == 1 { "" } else { "s" },
        sizes.join(", "),
        plan.surge,
        if plan.surge == 1 { "" } else { "s" }
    );
    if bake > Duration::ZERO {
        summary.push_str(&format!(", {} bake per step", format(bake)));
    }
    if !names.is_empty() {
        summary.push_str(&format!(", rolled back on alarm {}", names.join(", ")));
    }
    summary.push_str(&format!(", at least {} plus instance boot and Spot fulfilment", format(estimate)));
    let operation = if has_blue { "update" } else { "create" };
    let limit = Timeouts::limit(&model.timeouts, operation, &TIMEOUTS);
    if estimate > limit {
        diags.warning(
            "Rollout May Outlast Its Timeout",
            format!(
                "a rollout of this configuration takes at least {} ({summary}), longer than the {operation} timeout \
                 of {}: it would roll back when the timeout passes. Raise timeouts.{operation}, or shorten \
                 bake_time or the steps.",
                format(estimate),
                format(limit)
            ),
        );
    }
    Val::Known(RolloutPlan {
        steps: Val::Known(plan.sizes),
        max_surge: Val::Known(plan.surge),
        bake_time: Val::Known(format(bake)),
        alarms: Val::Known(names),
        estimated_duration: Val::Known(format(estimate)),
        summary: Val::Known(summary),
    })
}
