# no ami_id
# summary: Missing required argument
# at: resource "immutable_app" "web" {

resource "immutable_app" "web" {
  name                 = "web"
  instance_types       = ["t3.small"]
  target_capacity      = 1
  security_groups      = ["web-sg"]
  target_groups        = ["web"]
  iam_instance_profile = "web-profile"
}
