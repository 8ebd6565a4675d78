# key pair that does not exist
# summary: Unknown Key Pair
# at: key_name             = "no-such-key"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  key_name             = "no-such-key"
}
