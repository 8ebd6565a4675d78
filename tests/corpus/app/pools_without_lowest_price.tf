# instance_pools_to_use_count with another strategy
# summary: Argument Needs lowestPrice
# at: instance_pools_to_use_count = 2

resource "immutable_app" "web" {
  name                        = "web"
  ami_id                      = "@AMI@"
  instance_types              = ["t3.small"]
  target_capacity             = 1
  security_groups             = ["web-sg"]
  target_groups               = ["web"]
  iam_instance_profile        = "web-profile"
  allocation_strategy         = "diversified"
  instance_pools_to_use_count = 2
}
