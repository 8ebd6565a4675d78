# timeouts.create that is not a duration
# summary: Invalid Duration
# at: create = "forever"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  timeouts {
    create = "forever"
  }
}
