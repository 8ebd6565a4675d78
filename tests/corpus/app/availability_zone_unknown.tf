# availability zone that does not exist
# summary: Unknown Availability Zone
# at: availability_zones   = ["mars-1z"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  availability_zones   = ["mars-1z"]
}
