# target group that does not exist
# summary: Unknown Target Group
# at: target_groups        = ["nope"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["nope"]
  iam_instance_profile = "web-profile"
}
