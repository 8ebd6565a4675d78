# negative drain_timeout
# summary: Invalid Duration
# at: drain_timeout = "-30s"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  rollout {
    drain_timeout = "-30s"
  }
}
