# allocation strategy AWS does not have
# summary: Invalid Value
# at: allocation_strategy  = "cheapest"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  allocation_strategy  = "cheapest"
}
