# rollout steps must grow
# summary: Invalid Rollout Steps
# at: steps = [50, 10, 100]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 4
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"

  rollout {
    steps = [50, 10, 100]
  }
}
