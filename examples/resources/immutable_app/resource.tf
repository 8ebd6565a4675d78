# The newest build of the app's image...
data "immutable_ami" "web" {
  layer = "demo-web-app"
}

# ...on Spot capacity behind the `web` target group. A new AMI rolls out blue/green,
# in steps: a tenth, half, then all of the new fleet, each healthy in the target
# group and baked for 5 minutes with the alarm clear before the old fleet gives up
# the same share. An alarm in ALARM rolls back to the old fleet at full capacity.
resource "immutable_app" "web" {
  name           = "web"
  ami_id         = data.immutable_ami.web.ami_id
  instance_types = ["t3.small", "t3a.small", "t2.small"]

  target_capacity    = 10
  on_demand_capacity = 0

  # When AWS signals an elevated risk of interruption, launch a replacement and
  # terminate the instance at risk 2 minutes later.
  capacity_rebalance                   = "launch-before-terminate"
  capacity_rebalance_termination_delay = 120

  # Core infrastructure, found by name.
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"

  user_data = <<-EOT
    #!/bin/sh
    systemctl start web
  EOT

  tags = {
    Team = "shop"
  }

  rollout {
    health_timeout      = "10m"
    min_healthy_percent = 100
    drain_timeout       = "30s"
    steps               = [10, 50, 100]
    bake_time           = "5m"
    max_surge_percent   = 50
    alarms              = ["web-5xx"]
  }
}

output "serving_fleet" {
  value = immutable_app.web.fleet_id
}

# "3 steps (1, 5, 10 of 10 instances), at most 5 extra instances, 5m bake per step, ..."
output "rollout_plan" {
  value = immutable_app.web.rollout_plan.summary
}

# What it costs now, USD per hour: each instance at its Spot pool's current price,
# against the same instances On-Demand, e.g.
# { hourly_cost = "0.0679", on_demand_hourly_cost = "0.228", savings_percent = 70 }
# (nulls when the prices cannot be read).
output "cost" {
  value = {
    hourly_cost           = immutable_app.web.hourly_cost
    on_demand_hourly_cost = immutable_app.web.on_demand_hourly_cost
    savings_percent       = immutable_app.web.savings_percent
  }
}
