# EC2 spells instance types in lower case
# summary: Invalid Instance Type
# at: instance_types = ["T3.Small"]

data "immutable_spot_price" "x" {
  instance_types = ["T3.Small"]
}
