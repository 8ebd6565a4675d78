# a termination delay only applies with launch-before-terminate
# summary: Argument Needs launch-before-terminate
# at: capacity_rebalance_termination_delay = 300

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  capacity_rebalance   = "launch"
  capacity_rebalance_termination_delay = 300
}
