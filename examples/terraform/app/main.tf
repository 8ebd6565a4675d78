# An app on Spot Fleet behind the `web` target group, running the newest build of
# the `demo-web-app` layer. Re-applying after a new build rolls it out blue/green, in
# two steps: half of the new fleet, healthy and baked, before half of the old one goes.
#
# The core infrastructure (security group `web-sg`, target group `web`, instance
# profile `web-profile`, role `aws-ec2-spot-fleet-tagging-role`) exists already and
# is found by name. `cargo xtask demo` creates it in the local emulator.

terraform {
  required_version = ">= 1.5"
  required_providers {
    immutable = {
      source = "terraform.local/immutable/immutable"
    }
  }
}

provider "immutable" {
  default_tags = {
    Project = "demo"
  }
}

variable "capacity" {
  description = "How many instances serve the app."
  type        = number
  default     = 2
}

data "immutable_ami" "app" {
  layer = "demo-web-app"
}

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = data.immutable_ami.app.ami_id
  instance_types       = ["t3.small", "t3a.small"]
  target_capacity      = var.capacity
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  user_data            = "#!/bin/sh\nsystemctl start web\n"

  rollout {
    health_timeout = "2m"
    drain_timeout  = "5s"
    steps          = [50, 100]
    bake_time      = "2s"
  }
}

output "rollout_plan" {
  value = immutable_app.web.rollout_plan.summary
}

output "last_rollout" {
  value = [for step in immutable_app.web.last_rollout.steps : "${step.instances} instances: ${step.verdict} in ${step.duration}"]
}

output "fleet_id" {
  value = immutable_app.web.fleet_id
}

output "generation" {
  value = immutable_app.web.generation
}

output "commit" {
  value = immutable_app.web.commit
}

output "instances" {
  value = immutable_app.web.instance_ids
}

# What the running instances cost now, in USD per hour: each instance at its Spot
# pool's current price, and the same instances On-Demand (null when the prices cannot
# be read: `ec2:DescribeSpotPriceHistory` and `pricing:GetProducts`).
output "hourly_cost" {
  value = immutable_app.web.hourly_cost
}

output "on_demand_hourly_cost" {
  value = immutable_app.web.on_demand_hourly_cost
}

output "savings_percent" {
  value = immutable_app.web.savings_percent
}

# What the last rollout's two fleets cost while both ran, e.g. "4 extra instance-seconds, $0.0000075"
output "rollout_overlap" {
  value = format(
    "%d extra instance-seconds, $%s",
    coalesce(immutable_app.web.last_rollout.overlap_instance_seconds, 0),
    coalesce(immutable_app.web.last_rollout.overlap_cost, "unknown"),
  )
}

output "lineage" {
  value = [for step in data.immutable_ami.app.lineage : "${step.layer}: ${step.ami_id}"]
}
