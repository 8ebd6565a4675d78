//! The schema of `immutable_app`, its defaults and its own validators.

use crate::resource::validators;
use std::time::Duration;
use tfplugin::duration::format;
use tfplugin::schema::{self, Attribute, Block, NestedBlock, PlanModifier, Schema, Validator};
use tfplugin::value::{Type, Value};

pub const TYPE_NAME: &str = "immutable_app";
pub const DEFAULT_FLEET_ROLE: &str = "aws-ec2-spot-fleet-tagging-role";
pub const DEFAULT_ALLOCATION: &str = "priceCapacityOptimized";
pub const DEFAULT_INTERRUPTION: &str = "terminate";
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(10 * 60);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MIN_HEALTHY: u32 = 100;
/// The `timeouts` block's operations and their defaults.
pub const TIMEOUTS: [(&str, Duration); 3] = [
    ("create", Duration::from_secs(30 * 60)),
    ("update", Duration::from_secs(30 * 60)),
    ("delete", Duration::from_secs(15 * 60)),
];

fn name_validator() -> Validator {
    Validator::new("1 to 40 letters, digits and hyphens.", |value, path, diags| {
        if let Value::String(s) = value
            && (s.is_empty() || s.len() > 40 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        {
            diags.error_at(
                path.clone(),
                "Invalid App Name",
                format!("{path} must be 1 to 40 letters, digits and hyphens (it names fleets and launch templates), got {s:?}"),
            );
        }
    })
}

fn price_validator() -> Validator {
    Validator::new("A price in USD per hour, e.g. `\"0.05\"`.", |value, path, diags| {
        if let Value::String(s) = value
            && !s.parse::<f64>().is_ok_and(|p| p.is_finite() && p > 0.0)
        {
            diags.error_at(
                path.clone(),
                "Invalid Price",
                format!("{path} must be a positive price in USD per hour, got {s:?}"),
            );
        }
    })
}

fn steps_validator() -> Validator {
    Validator::new("Percentages from 1 to 100, increasing.", |value, path, diags| {
        let Value::List(items) = value else { return };
        let mut previous = 0;
        for item in items {
            let Value::Number(n) = item else { continue };
            let p = n.to_i64().unwrap_or(-1);
            if !(1..=100).contains(&p) || p <= previous {
                diags.error_at(
                    path.clone(),
                    "Invalid Rollout Steps",
                    format!("{path} must be whole percentages from 1 to 100 in increasing order, e.g. [10, 50, 100]"),
                );
                return;
            }
            previous = p;
        }
    })
}

fn timestamp_validator() -> Validator {
    Validator::new("An RFC 3339 timestamp, e.g. `2027-01-01T00:00:00Z`.", |value, path, diags| {
        if let Value::String(s) = value
            && aws_smithy_types::DateTime::from_str(s, aws_smithy_types::date_time::Format::DateTime).is_err()
        {
            diags.error_at(
                path.clone(),
                "Invalid Timestamp",
                format!("{path} must be an RFC 3339 timestamp, got {s:?}"),
            );
        }
    })
}

pub fn schema() -> Schema {
    let computed = |name: &str, ty: Type, text: &str| Attribute::computed(name, ty).description(text);
    let list = Type::list;
    let rollout = Block::new("How a rollout decides that the new fleet is healthy and retires the old one.")
        .attribute(
            Attribute::optional("health_timeout", Type::String)
                .description(format!(
                    "How long the new fleet has to get healthy (default `{}`).",
                    format(DEFAULT_HEALTH_TIMEOUT)
                ))
                .validator(schema::validators::duration()),
        )
        .attribute(
            Attribute::optional("min_healthy_percent", Type::Number)
                .description(format!(
                    "Share of new instances that must be healthy in every target group (default {DEFAULT_MIN_HEALTHY})."
                ))
                .validator(schema::validators::int_between(0, 100)),
        )
        .attribute(
            Attribute::optional("drain_timeout", Type::String)
                .description(format!(
                    "How long old instances drain after deregistration (default `{}`).",
                    format(DEFAULT_DRAIN_TIMEOUT)
                ))
                .validator(schema::validators::duration()),
        )
        .attribute(
            Attribute::optional("steps", list(Type::Number))
                .description(
                    "The new fleet's size at each step, in percent of `target_capacity`, increasing, e.g. \
                     `[10, 50, 100]` (default: one step of 100). At each step the new fleet grows to its share, \
                     must be healthy in every target group and hold for `bake_time`; only then does the old \
                     fleet shrink by the same share, so serving capacity never drops below `target_capacity` \
                     and the extra capacity is the largest step's growth.",
                )
                .validator(steps_validator()),
        )
        .attribute(
            Attribute::optional("bake_time", Type::String)
                .description(
                    "How long each step holds, healthy and with its `alarms` clear, before the old fleet shrinks \
                     (default `0s`).",
                )
                .validator(schema::validators::duration()),
        )
        .attribute(
            Attribute::optional("max_surge_percent", Type::Number)
                .description(
                    "The most extra capacity a rollout may run, in percent of `target_capacity` (at least one \
                     instance): steps that grow more are split. Unset: the largest step's growth.",
                )
                .validator(schema::validators::int_between(1, 100)),
        )
        .attribute(
            Attribute::optional("alarms", list(Type::String))
                .description(
                    "CloudWatch alarms (metric or composite) by name, looked up at plan time: one in `ALARM` \
                     during a step or its bake rolls the rollout back.",
                ),
        );
    Schema::new(
        Block::new(
            "An app on a Spot Fleet behind load balancer target groups. Changing what runs (`ami_id`, \
             `instance_types`, `user_data`, launch settings) is a blue/green rollout: a new fleet is requested, \
             its instances registered and awaited healthy in every target group, and only then is the old \
             fleet drained and cancelled. A rollout that fails (unhealthy, timeout, Spot errors, Ctrl-C) is \
             rolled back: the new fleet is cancelled and the old one keeps serving, untouched. Changing only \
             `target_capacity` or `on_demand_capacity` resizes the fleet in place. Every launch requires IMDSv2 \
             and encrypts the root volume. A run that was interrupted (killed, crashed) leaves nothing behind: \
             the next apply adopts the app's fleet when it runs the configuration, rolls out over it when it \
             runs another, and cancels an unfinished fleet the configuration no longer wants. The app's `name` \
             must be unique in the account and region.",
        )
        .attribute(
            Attribute::required("name", Type::String)
                .description("App name; used in tags, fleet and launch template names and idempotency tokens.")
                .modifier(PlanModifier::RequiresReplace)
                .validator(name_validator()),
        )
        .attribute(
            Attribute::required("ami_id", Type::String)
                .description("The AMI to run. Changing it rolls out a new fleet.")
                .validator(validators::ami_id()),
        )
        .attribute(
            Attribute::required("instance_types", list(Type::String))
                .description("Instance types to diversify across Spot pools, e.g. `[\"t3.small\", \"t3a.small\"]`.")
                .validator(schema::validators::non_empty_list()),
        )
        .attribute(
            Attribute::required("target_capacity", Type::Number)
                .description("How many instances serve the app.")
                .validator(schema::validators::int_between(1, 10_000)),
        )
        .attribute(
            Attribute::optional("on_demand_capacity", Type::Number)
                .description("How many of them are On-Demand rather than Spot (default 0).")
                .validator(schema::validators::int_between(0, 10_000)),
        )
        .attribute(
            Attribute::optional("allocation_strategy", Type::String)
                .description(format!("How Spot capacity is chosen (default `{DEFAULT_ALLOCATION}`)."))
                .validator(schema::validators::one_of(&[
                    "lowestPrice",
                    "diversified",
                    "capacityOptimized",
                    "priceCapacityOptimized",
                ])),
        )
        .attribute(
            Attribute::optional("instance_pools_to_use_count", Type::Number)
                .description("Number of cheapest pools to spread over; only with `lowestPrice`.")
                .validator(schema::validators::int_between(1, 100)),
        )
        .attribute(
            Attribute::optional("max_price", Type::String)
                .description("Highest Spot price per instance-hour in USD (default: the On-Demand price).")
                .validator(price_validator()),
        )
        .attribute(
            Attribute::optional("interruption_behavior", Type::String)
                .description(format!("What Spot does on interruption (default `{DEFAULT_INTERRUPTION}`)."))
                .validator(schema::validators::one_of(&["terminate", "stop", "hibernate"])),
        )
        .attribute(
            Attribute::optional("capacity_rebalance", Type::String)
                .description(
                    "Spot capacity rebalancing: on a rebalance recommendation (an instance at elevated risk of \
                     interruption) the fleet launches a replacement (`launch`), or launches one and terminates \
                     the risky instance after `capacity_rebalance_termination_delay` \
                     (`launch-before-terminate`). Unset: none.",
                )
                .validator(schema::validators::one_of(&["launch", "launch-before-terminate"])),
        )
        .attribute(
            Attribute::optional("capacity_rebalance_termination_delay", Type::Number)
                .description(
                    "Seconds between a replacement's launch and the risky instance's termination, with \
                     `capacity_rebalance = \"launch-before-terminate\"` (120 to 7200).",
                )
                .validator(schema::validators::int_between(120, 7200)),
        )
        .attribute(
            Attribute::optional("subnet_ids", list(Type::String))
                .description("Subnets to launch in. Conflicts with `availability_zones`.")
                .validator(schema::validators::non_empty_list()),
        )
        .attribute(
            Attribute::optional("availability_zones", list(Type::String))
                .description("Availability zones to launch in (default subnets). Conflicts with `subnet_ids`.")
                .validator(schema::validators::non_empty_list()),
        )
        .attribute(
            Attribute::optional("security_groups", list(Type::String))
                .description("Security groups by name or id, resolved at plan time."),
        )
        .attribute(
            Attribute::optional("iam_instance_profile", Type::String)
                .description("Instance profile by name or ARN, resolved at plan time."),
        )
        .attribute(Attribute::optional("iam_fleet_role", Type::String).description(format!(
            "Role that lets Spot Fleet launch and tag instances, by name or ARN (default `{DEFAULT_FLEET_ROLE}`)."
        )))
        .attribute(Attribute::optional("target_groups", list(Type::String)).description(
            "Target groups by name or ARN. New instances must be healthy in every one before the old fleet goes.",
        ))
        .attribute(Attribute::optional("user_data", Type::String).description("User data (plain text; encoded for EC2)."))
        .attribute(
            Attribute::optional("key_name", Type::String)
                .description("SSH key pair. None by default: immutable servers need no remote access."),
        )
        .attribute(
            Attribute::optional("tags", Type::map(Type::String))
                .description(
                    "Tags for the fleet, its instances and volumes, on top of the provider's `default_tags`. A \
                     change re-tags them in place (no new fleet).",
                )
                .validator(validators::user_tags(&[])),
        )
        .attribute(
            Attribute::optional("valid_until", Type::String)
                .description("When the fleet request expires (its instances are then terminated).")
                .validator(timestamp_validator()),
        )
        .attribute(computed("id", Type::String, "The app name.").modifier(PlanModifier::UseStateForUnknown))
        .attribute(computed("fleet_id", Type::String, "The serving Spot Fleet request."))
        .attribute(computed("instance_ids", list(Type::String), "The serving instances."))
        .attribute(computed(
            "generation",
            Type::Number,
            "Rollout generation of the serving fleet: 1 on create, +1 per rollout. Known after the apply: a \
             rollout that fails keeps the previous one, and so do outputs that show it.",
        ))
        .attribute(computed(
            "healthy_count",
            Type::Number,
            "Serving instances healthy in every target group at the last read.",
        ))
        .attribute(computed(
            "commit",
            Type::String,
            "The `Commit` tag of the AMI the serving fleet runs (known after the apply, like `generation`).",
        ))
        .attribute(computed("target_group_arns", list(Type::String), "The target groups, resolved."))
        .attribute(computed("launch_template_id", Type::String, "The launch template of the serving generation."))
        .attribute(computed(
            "stray_fleet_ids",
            list(Type::String),
            "Open Spot Fleets tagged with this app other than `fleet_id`, at the last read: left by an \
             interrupted run or a cancellation that kept failing. While there are any, the plan shows an \
             update, and the apply deregisters and cancels them.",
        ))
                        .attribute(computed(
            "tags_all",
            Type::map(Type::String),
            "The tags the fleet carries for the user: the provider's `default_tags` and `tags`, as read from \
             the fleet (without the provider's own `immutable:*`, `Commit` and `ManagedBy`). A difference, \
             from a change of either or from a change made outside Terraform, is an update that re-tags the \
             fleet, its launch template and its running instances in place, with no new fleet.",
        ))
        .attribute(computed(
            "stray_launch_template_ids",
            list(Type::String),
            "Launch templates of the app's earlier generations that no fleet uses any more, at the last read: \
             left by a run interrupted between its switch to a new fleet and the save of the state. While \
             there are any, the plan shows an update, and the apply deletes them.",
        ))
        .attribute(computed(
            "owner",
            Type::String,
            "The identity of this Terraform object, which its fleets, launch templates and instances carry \
             (`immutable:owner`): another object with the same `name` (in another state, or another resource) \
             never adopts, rolls over or cancels them, and planning it fails instead. Made when the app is \
             created.",
        ))
        .attribute(computed(
            "rollout_plan",
            rollout_plan_type(),
            "What a rollout of this configuration does: the new fleet's size at each step (`steps`), the most \
             extra instances it runs (`max_surge`), `bake_time`, the gating `alarms`, and \
             `estimated_duration`, the least time it takes from the target groups' health checks (healthy \
             threshold x interval), the bake and the drain (deregistration delay) of each step, before instance \
             boot and Spot fulfilment; `summary` says it in one line. Planned with each rollout and change of \
             the `rollout` block.",
        ))
        .attribute(computed(
            "last_rollout",
            last_rollout_type(),
            "What the last rollout did: its `generation`, `started` and `finished` (RFC 3339), `outcome` \
             (`switched` or `rolled back`), the `reason` of a rollback (naming instances and the load \
             balancer's reason codes, or the alarm), and its `steps`, each with its size (`instances`, \
             `percent`), `started`, `launched_after` (how long until the step's first new instance was seen \
             running), `healthy_after` (how long the new instances took to be healthy), `duration` and \
             `verdict` (`passed`, `rolled back`). What running two fleets at once cost: \
             `overlap_instance_seconds`, the sum over the steps of the extra instances (green's and blue's \
             beyond the larger of the app's capacity before and after the rollout; with an unchanged \
             capacity, the step's growth) times the seconds from the step's first new instance running to \
             the step's end (blue's share terminated; at the last step, blue cancelled with termination), \
             rounded down, 0 for a first deploy; and `overlap_cost`, `overlap_instance_seconds` x the mean \
             hourly price of green's instances (priced as `hourly_cost` prices them, at the switch) / 3600, \
             in USD rounded half up to 10 decimal places, null when a price is unknown or the rollout rolled \
             back.",
        ))
        .attribute(computed(
            "hourly_cost",
            Type::String,
            "What the serving fleet's running instances cost now, in USD per hour, as an exact decimal \
             string (e.g. `\"0.0124\"`): each Spot instance at the current Spot price of its pool (instance \
             type and availability zone), each On-Demand instance at its type's On-Demand price. Spot prices \
             come from EC2's Spot price history (`ec2:DescribeSpotPriceHistory`) for the product of the \
             instances' platform as DescribeInstances reports it (`Linux/UNIX` unless it says SUSE, Red Hat \
             or Windows), On-Demand prices from the AWS Price List (`pricing:GetProducts`, shared tenancy, \
             no pre-installed software); both are read once per set of instance types per run. Set by the \
             apply and every refresh, unknown in a plan that changes the instances (a rollout or a resize). \
             `hourly_cost`, `on_demand_hourly_cost` and `savings_percent` are known together or null \
             together: null when a price could not be read (a missing permission, the Price List out of \
             reach) or AWS has none for a pool or type, with one warning per run saying what is missing; \
             the plan and the apply go on.",
        ))
        .attribute(computed(
            "on_demand_hourly_cost",
            Type::String,
            "What the same instances would cost On-Demand, in USD per hour (null with `hourly_cost`).",
        ))
        .attribute(computed(
            "savings_percent",
            Type::Number,
            "What Spot saves: `floor((on_demand_hourly_cost - hourly_cost) * 100 / on_demand_hourly_cost)`, \
             in whole percent rounded down (never overstating the saving; negative when Spot costs more). \
             Null with `hourly_cost`, and when no instance runs.",
        ))
        .block(NestedBlock::single("rollout", rollout))
        .timeouts(&TIMEOUTS)
        .validator(
            schema::validators::conflicting(&["subnet_ids", "availability_zones"])
                .on_conflict("Conflicting Arguments", "set subnet_ids or availability_zones, not both"),
        ),
    )
}

fn rollout_plan_type() -> Type {
    Type::object([
        ("steps", Type::list(Type::Number)),
        ("max_surge", Type::Number),
        ("bake_time", Type::String),
        ("alarms", Type::list(Type::String)),
        ("estimated_duration", Type::String),
        ("summary", Type::String),
    ])
}

fn last_rollout_type() -> Type {
    let step = Type::object([
        ("instances", Type::Number),
        ("percent", Type::Number),
        ("started", Type::String),
        ("launched_after", Type::String),
        ("healthy_after", Type::String),
        ("duration", Type::String),
        ("verdict", Type::String),
    ]);
    Type::object([
        ("generation", Type::Number),
        ("started", Type::String),
        ("finished", Type::String),
        ("outcome", Type::String),
        ("reason", Type::String),
        ("steps", Type::list(step)),
        ("overlap_instance_seconds", Type::Number),
        ("overlap_cost", Type::String),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::model::{Launch, Model, Size};
    use super::*;
    use tfplugin::value::{Val, from_value, to_value};

    #[test]
    fn schema_round_trips_a_model() {
        let model = Model {
            name: Val::Known("web".into()),
            launch: Launch { ami_id: Val::Known("ami-1".into()), ..Launch::default() },
            size: Size { target_capacity: Val::Known(2), ..Size::default() },
            ..Model::default()
        };
        let value = to_value(&model, &schema().value_type()).expect("encode");
        let back: Model = from_value(&value).expect("decode");
        assert_eq!(back.name, Val::Known("web".into()));
        assert_eq!(back.size.target_capacity, Val::Known(2));
        assert!(back.computed.fleet_id.is_null());
    }

    #[test]
    fn documented_defaults_are_the_defaults() {
        let block = schema().block;
        let timeouts = block.find_block("timeouts").expect("timeouts");
        let delete = timeouts.block.find_attribute("delete").expect("delete");
        assert!(delete.description.contains("(default `15m`)"), "{}", delete.description);
        let rollout = block.find_block("rollout").expect("rollout");
        let health = rollout.block.find_attribute("health_timeout").expect("health_timeout");
        assert!(health.description.contains("(default `10m`)"), "{}", health.description);
    }
}
