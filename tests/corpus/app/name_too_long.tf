# name over 40 characters
# summary: Invalid App Name
# at: name                 = "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww"

resource "immutable_app" "web" {
  name                 = "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}
