# a tag key with AWS's reserved prefix
# summary: Reserved Tag Key
# at: tags                 = { "aws:team" = "web" }

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "@AMI@"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
  tags                 = { "aws:team" = "web" }
}
