# no instance type to price
# summary: Empty List
# at: instance_types = []

data "immutable_spot_price" "x" {
  instance_types = []
}
