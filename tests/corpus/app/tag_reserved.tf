# a tag key the provider itself sets on fleets
# summary: Reserved Tag Key
# at: tags                 = { "immutable:app" = "other" }

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  tags                 = { "immutable:app" = "other" }
}
