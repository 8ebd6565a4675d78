# subnet that does not exist
# summary: Unknown Subnet
# at: subnet_ids           = ["subnet-0123456789abcdef0"]

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  subnet_ids           = ["subnet-0123456789abcdef0"]
}
