# both subnet_ids and availability_zones
# summary: Conflicting Arguments
# at: availability_zones   = ["eu-west-1a"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  subnet_ids           = ["subnet-12345678"]
  availability_zones   = ["eu-west-1a"]
}
