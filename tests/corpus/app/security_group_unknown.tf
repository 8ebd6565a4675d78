# security group that does not exist
# summary: Unknown Security Group
# at: security_groups      = ["nope-sg"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["nope-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}
