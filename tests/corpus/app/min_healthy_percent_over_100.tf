# min_healthy_percent above 100
# summary: Value Out Of Range
# at: min_healthy_percent = 150

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  rollout {
    min_healthy_percent = 150
  }
}
