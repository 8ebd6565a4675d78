# a gating alarm that does not exist
# summary: Alarm Not Found
# at: alarms = ["web-5xx"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 2
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"

  rollout {
    alarms = ["web-5xx"]
  }
}
