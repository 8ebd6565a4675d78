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
    let mut tag_keys: Vec<String> = clients.default_tags.keys().cloned().collect();
    tag_keys
        .extend(model.labels.tags.known().map(|t| t.keys().cloned().collect::<Vec<_>>()).unwrap_or_default());
    let unreadable: Vec<String> = tag_keys
        .into_iter()
        .filter(|k| !conventions::agent_tags::readable_in_metadata(k))
        .map(|k| format!("{k:?}"))
        .collect();
    if !unreadable.is_empty() {
        diags.warning(
            "Instance Tags Not In Metadata",
            format!(
                "tag key{} {} cannot be read from instance metadata (only letters, digits and + - = . , _ : @; AWS \
                 fails a launch that allows tags in metadata with other keys), so the instances are launched \
                 without their tags in metadata: immutable-agent on them cannot find its target groups and needs \
                 --target-group options",
                if unreadable.len() == 1 { "" } else { "s" },
                unreadable.join(", ")
            ),
        );
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

/// Warns when the instances of `model` could not leave their target groups on a Spot
/// interruption notice: `immutable-agent` on them deregisters with the instance
/// profile's credentials, which need `elasticloadbalancing:DeregisterTargets` on each
/// group. Silent when IAM cannot be read.
pub async fn check_deregistration_permission(
    clients: &Clients,
    model: &Model,
    groups: &[TargetGroup],
    diags: &mut Diagnostics,
) {
    let Some(profile) = model.launch.iam_instance_profile.known() else { return };
    if groups.is_empty() {
        return;
    }
    let arns: Vec<String> = groups.iter().map(|g| g.arn.clone()).collect();
    match crate::aws::iam::may_deregister(&clients.iam, profile, &arns).await {
        Ok(Some(false)) => diags.warning(
            "Instances Cannot Leave Their Target Groups",
            format!(
                "the roles of instance profile {profile:?} are not allowed elasticloadbalancing:DeregisterTargets on \
                 target group{} {}: immutable-agent on the instances cannot take them out of service when Spot \
                 announces an interruption, and the load balancer keeps sending them requests until they are gone. \
                 Allow that action on the app's target groups (see docs/agent.md).",
                if groups.len() == 1 { "" } else { "s" },
                groups.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        ),
        Ok(_) => {}
        Err(e) => tracing::debug!("{e}"),
    }
}
