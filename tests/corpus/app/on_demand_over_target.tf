# more On-Demand than target capacity
# summary: Value Out Of Range
# at: on_demand_capacity   = 2

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  on_demand_capacity   = 2
}
