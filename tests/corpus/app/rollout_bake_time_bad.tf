# bake time that is not a duration
# summary: Invalid Duration
# at: bake_time = "five minutes"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 2
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"

  rollout {
    bake_time = "five minutes"
  }
}
