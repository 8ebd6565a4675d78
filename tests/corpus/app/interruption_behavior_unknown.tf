# unknown interruption behaviour
# summary: Invalid Value
# at: interruption_behavior = "explode"

resource "immutable_app" "web" {
  name                  = "web"
  ami_id                = "@AMI@"
  instance_types        = ["t3.small"]
  target_capacity       = 1
  security_groups       = ["web-sg"]
  target_groups         = ["web"]
  iam_instance_profile  = "web-profile"
  interruption_behavior = "explode"
}
