# a step beyond the full capacity
# summary: Invalid Rollout Steps
# at: steps = [50, 150]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 4
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"

  rollout {
    steps = [50, 150]
  }
}
