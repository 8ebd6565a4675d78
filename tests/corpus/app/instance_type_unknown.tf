# instance type that does not exist
# summary: Unknown Instance Type
# at: instance_types       = ["t3.gigantic"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.gigantic"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}
