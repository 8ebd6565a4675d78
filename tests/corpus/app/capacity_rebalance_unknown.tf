# a replacement strategy Spot Fleet does not have
# summary: Invalid Value
# at: capacity_rebalance   = "replace"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  capacity_rebalance   = "replace"
}
