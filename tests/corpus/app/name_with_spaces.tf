# name with characters fleets cannot carry
# summary: Invalid App Name
# at: name                 = "web app!"

resource "immutable_app" "web" {
  name                 = "web app!"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}
