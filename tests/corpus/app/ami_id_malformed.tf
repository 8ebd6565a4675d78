# ami_id that is not an AMI id
# summary: Invalid AMI Id
# at: ami_id               = "image-1234"

resource "immutable_app" "web" {
  name                 = "web"
  ami_id               = "image-1234"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}
