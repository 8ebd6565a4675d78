# fleet role that does not exist
# summary: Unknown Fleet Role
# at: iam_fleet_role       = "nope-role"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  iam_fleet_role       = "nope-role"
}
