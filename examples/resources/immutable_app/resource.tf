# The newest build of the app's image...
data "immutable_ami" "web" {
  layer = "demo-web-app"
}

# ...on Spot capacity behind the `web` target group. A new AMI rolls out blue/green:
# the old fleet is cancelled only once the new instances are healthy.
resource "immutable_app" "web" {
  name           = "web"
  ami_id         = data.immutable_ami.web.ami_id
  instance_types = ["t3.small", "t3a.small", "t2.small"]

  target_capacity    = 2
  on_demand_capacity = 0

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
  }
}

output "serving_fleet" {
  value = immutable_app.web.fleet_id
}
