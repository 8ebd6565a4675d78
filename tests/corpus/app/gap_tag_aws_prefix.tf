# a tag key with AWS's reserved prefix
# gap: tag keys starting with aws: are not rejected at plan

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
