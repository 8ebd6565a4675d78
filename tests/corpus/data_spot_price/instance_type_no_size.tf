# an instance family without its size
# summary: Invalid Instance Type
# at: instance_types = ["t3.small", "t3"]

data "immutable_spot_price" "x" {
  instance_types = ["t3.small", "t3"]
}
