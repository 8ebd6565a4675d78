# valid_until in the past
# summary: Value In The Past
# at: valid_until          = "2000-01-01T00:00:00Z"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  valid_until          = "2000-01-01T00:00:00Z"
}
