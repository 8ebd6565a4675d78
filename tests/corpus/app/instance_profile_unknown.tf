# instance profile that does not exist
# summary: Unknown Instance Profile
# at: iam_instance_profile = "nope-profile"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "nope-profile"
}
